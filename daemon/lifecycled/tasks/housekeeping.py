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
    streamed = _prune_streams(ctx, now)
    if removed or events or backups or profiles or replicas or streamed:
        log.info("housekeeping snapshots=%d events=%d backups=%d profiles=%d replicas=%d "
                 "predictions_and_labels=%d", removed, events, len(backups), profiles, replicas,
                 streamed)
    return {"snapshots_pruned": removed, "events_pruned": events,
            "backups_deleted": [str(b) for b in backups], "profiles_deleted": profiles,
            "replicas_forgotten": replicas, "predictions_and_labels_pruned": streamed}


def _prune_streams(ctx: Context, now: float) -> int:
    """Forget predictions and labels older than every window still to judge (a day's margin)."""
    from lifecycled.store.labels import prune_estimates_in, prune_labels_in, prune_predictions_in

    pruned = 0
    for ref in ctx.store.statuses():
        model = ctx.settings.models.get(ref.name)
        quality = model.quality if model is not None else None
        if quality is None or quality.predictions is None:
            continue
        cutoff = now - quality.maturity - quality.window - 86400.0
        with ctx.store.write() as conn:
            pruned += prune_predictions_in(conn, ref, older_than=cutoff)
            pruned += prune_labels_in(conn, ref.name, older_than=cutoff)
            prune_estimates_in(conn, ref, older_than=cutoff)
    return pruned
