"""The scheduled tasks, by name, in the order ``run --once`` runs them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lifecycled.context import Context
from lifecycled.errors import SourceError
from lifecycled.tasks.collect import run_collect
from lifecycled.tasks.discovery import run_discovery
from lifecycled.tasks.evaluate import run_evaluate
from lifecycled.tasks.housekeeping import run_housekeeping

Task = Callable[[Context], Any]


def discovery(ctx: Context) -> Any:
    """Discovery; fails when no Triton endpoint answered (so /readyz shows it stale)."""
    return _require_a_source(run_discovery(ctx).endpoints)


def collect(ctx: Context) -> Any:
    """Collect; fails when no source (Prometheus or a Triton endpoint) answered."""
    return _require_a_source(run_collect(ctx).endpoints)


def _require_a_source(sources: dict[str, str]) -> dict[str, str]:
    if sources and all(state != "up" for state in sources.values()):
        raise SourceError("sources", "no source answered: " + "; ".join(
            f"{name}: {state}" for name, state in sorted(sources.items())))
    return sources


def quality(ctx: Context) -> Any:
    """Quality from labelled outcomes or PromQL (numpy and scipy are loaded only here)."""
    from lifecycled.tasks.quality import run_quality

    return run_quality(ctx)


def drift(ctx: Context) -> Any:
    """Drift checks (numpy, scipy and pyarrow are loaded only when a check runs)."""
    from lifecycled.tasks.drift import run_drift

    return run_drift(ctx)


def traces(ctx: Context) -> Any:
    """Triton's trace samples of the models whose drift reads them (numpy loaded only here)."""
    from lifecycled.tasks.traces import run_traces

    return run_traces(ctx)


def compare(ctx: Context) -> Any:
    """Champion and challenger comparisons (on the leader)."""
    from lifecycled.tasks.compare import run_compare

    return run_compare(ctx)


def updates(ctx: Context) -> Any:
    from lifecycled.tasks.updates import run_updates

    return run_updates(ctx)


def retirement(ctx: Context) -> Any:
    from lifecycled.tasks.retirement import run_retirement

    return run_retirement(ctx)


def deliver(ctx: Context) -> Any:
    from lifecycled.tasks.deliver import run_deliver

    return run_deliver(ctx)


TASKS: dict[str, Task] = {
    "discovery": discovery,
    "traces": traces,
    "compare": compare,  # early: a comparison's decision should not wait for slower tasks
    "quality": quality,
    "collect": collect,
    "evaluate": run_evaluate,
    "drift": drift,
    "updates": updates,
    "retirement": retirement,
    "deliver": deliver,
    "housekeeping": run_housekeeping,
}
