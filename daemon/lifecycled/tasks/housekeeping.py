"""Housekeeping: retention of snapshots, delivered webhook events, backups, cached reference
profiles and the replicas seen."""

from __future__ import annotations

import logging
from typing import Any

from lifecycled.context import Context
from lifecycled.store.serving import prune_snapshots

log = logging.getLogger(__name__)


EVENT_RETENTION = 30 * 86400.0  # delivered webhook events are kept this long
PROFILE_RETENTION = 30 * 86400.0  # cached reference profiles unused this long are deleted
REPLICA_RETENTION = 7 * 86400.0  # replicas not seen this long leave `cluster status`


def run_housekeeping(ctx: Context) -> dict[str, Any]:
    """Snapshot retention, delivered-event retention, backup retention, profile-cache retention,
    and replicas not seen for a week forgotten."""
    from lifecycled.actions.backup import prune_backups
    from lifecycled.actions.retire import backup_root
    from lifecycled.sources.profiles import PROFILE_DIR, prune_profiles
    from lifecycled.store.cluster import forget_replicas
    from lifecycled.store.outbox import prune_events

    now = ctx.clock()
    monitoring = ctx.settings.defaults.monitoring
    removed = prune_snapshots(ctx.store, older_than=now - monitoring.snapshot_retention,
                              keep=monitoring.max_snapshots)
    events = prune_events(ctx.store, older_than=now - EVENT_RETENTION)
    retention = ctx.settings.policies.retirement.backup_retention_days * 86400.0
    backups = prune_backups(backup_root(ctx), older_than=now - retention)
    profiles = prune_profiles(ctx.state_dir / PROFILE_DIR, older_than=now - PROFILE_RETENTION)
    replicas = forget_replicas(ctx.store, older_than=REPLICA_RETENTION)
    if removed or events or backups or profiles or replicas:
        log.info("housekeeping snapshots=%d events=%d backups=%d profiles=%d replicas=%d",
                 removed, events, len(backups), profiles, replicas)
    return {"snapshots_pruned": removed, "events_pruned": events,
            "backups_deleted": [str(b) for b in backups], "profiles_deleted": profiles,
            "replicas_forgotten": replicas}
