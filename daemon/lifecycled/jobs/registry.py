"""The jobs, by name, in the order ``run --once`` runs them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lifecycled.errors import SourceError
from lifecycled.jobs.collect import run_collect
from lifecycled.jobs.context import JobContext
from lifecycled.jobs.discovery import run_discovery
from lifecycled.jobs.evaluate import run_evaluate
from lifecycled.jobs.housekeeping import run_housekeeping

Job = Callable[[JobContext], Any]


def discovery(ctx: JobContext) -> Any:
    """Discovery; fails when no Triton endpoint answered (so /readyz shows it stale)."""
    return _require_an_endpoint(run_discovery(ctx).endpoints)


def collect(ctx: JobContext) -> Any:
    """Collect; fails when no Triton endpoint answered."""
    return _require_an_endpoint(run_collect(ctx).endpoints)


def _require_an_endpoint(endpoints: dict[str, str]) -> dict[str, str]:
    if endpoints and all(state != "up" for state in endpoints.values()):
        raise SourceError("triton", f"no Triton endpoint answered ({len(endpoints)} configured)")
    return endpoints


def drift(ctx: JobContext) -> Any:
    """Drift checks (numpy, scipy and pyarrow are loaded only when a check runs)."""
    from lifecycled.jobs.drift import run_drift

    return run_drift(ctx)


def updates(ctx: JobContext) -> Any:
    from lifecycled.jobs.updates import run_updates

    return run_updates(ctx)


def retirement(ctx: JobContext) -> Any:
    from lifecycled.jobs.retirement import run_retirement

    return run_retirement(ctx)


def deliver(ctx: JobContext) -> Any:
    from lifecycled.jobs.deliver import run_deliver

    return run_deliver(ctx)


JOBS: dict[str, Job] = {
    "discovery": discovery,
    "collect": collect,
    "evaluate": run_evaluate,
    "drift": drift,
    "updates": updates,
    "retirement": retirement,
    "deliver": deliver,
    "housekeeping": run_housekeeping,
}
