"""Housekeeping: retention of snapshots (age and count per model version)."""

from __future__ import annotations

import logging
from typing import Any

from daemon.jobs.context import JobContext
from daemon.store.serving import prune_snapshots

log = logging.getLogger(__name__)


def run_housekeeping(ctx: JobContext) -> dict[str, Any]:
    monitoring = ctx.settings.defaults.monitoring
    removed = prune_snapshots(ctx.store, older_than=ctx.clock() - monitoring.snapshot_retention,
                              keep=monitoring.max_snapshots)
    if removed:
        log.info("pruned snapshots count=%d", removed)
    return {"snapshots_pruned": removed}
