"""Drift checks: read the samples, reuse the cached reference profile, judge every feature."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifecycled.context import Context
from lifecycled.core.drift import DriftResult, compare, result_to_json
from lifecycled.core.profile import ReferenceProfile, build_profile
from lifecycled.domain import DriftPolicy, ModelRef, Status
from lifecycled.errors import InputError
from lifecycled.sources.files import DEFAULT_TIMEOUT, expand
from lifecycled.sources.profiles import PROFILE_DIR, cached_profile
from lifecycled.sources.samples import read_sample, select
from lifecycled.store.results import add_drift_result

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class DriftInputs:
    """Where the samples are and which columns to judge."""

    reference: str
    current: str
    features: Sequence[str] | None = None
    categorical: Sequence[str] = ()
    timestamp_column: str | None = None
    window: float | None = None
    newest_rows: int | None = None
    exclude: Sequence[str] = ()
    timeout: float = DEFAULT_TIMEOUT  # each file operation on an object store


@dataclass(frozen=True)
class DriftCheck:
    result: DriftResult
    reference_files: tuple[str, ...]
    current_files: tuple[str, ...]
    current_rows: int
    profile_cached: bool


def check_drift(inputs: DriftInputs, settings: DriftPolicy, *, cache_dir: Path | None,
                now: float, progress: Progress | None = None) -> DriftCheck:
    """Run one drift check; raises SourceError when a sample cannot be read."""
    reference_files = expand(inputs.reference, timeout=inputs.timeout)
    exclude = [inputs.timestamp_column] if inputs.timestamp_column else []

    def build() -> ReferenceProfile:
        columns = read_sample(inputs.reference, timeout=inputs.timeout).columns
        return build_profile(select(columns, exclude), inputs.categorical, bins=settings.bins)

    profile, cached = cached_profile(cache_dir, reference_files, settings.bins,
                                     inputs.categorical, build)
    current = read_sample(inputs.current, timestamp_column=inputs.timestamp_column,
                          window=inputs.window, newest_rows=inputs.newest_rows, now=now,
                          timeout=inputs.timeout)
    result = compare(profile, select(current.columns, exclude), settings,
                     features=inputs.features, categorical=inputs.categorical, progress=progress,
                     exclude=inputs.exclude)
    return DriftCheck(result, tuple(str(f) for f in reference_files), current.files, current.rows,
                      cached)


def run_model_drift(ctx: Context, ref: ModelRef, *, now: float,
                    progress: Progress | None = None) -> tuple[DriftCheck, dict[str, Any]]:
    """Run the configured drift check of ``ref`` and store its result."""
    ctx.store.get(ref)
    config = ctx.settings.drift_config(ref.name)
    if not config.reference or not config.current:
        raise InputError(f"{ref}: no drift check configured (set models.{ref.name}.drift.reference "
                         "and .current)")
    inputs = DriftInputs(reference=config.reference, current=config.current,
                         features=config.features, categorical=config.categorical or (),
                         timestamp_column=config.timestamp_column, window=config.window,
                         newest_rows=config.newest_rows, exclude=config.exclude or (),
                         timeout=ctx.settings.sources.files.timeout)
    settings = ctx.settings.drift_policy(ref.name)
    check = check_drift(inputs, settings, cache_dir=ctx.state_dir / PROFILE_DIR,
                        now=now, progress=progress)
    record = check_to_json(check, now=now)
    events = []
    if check.result.severity >= settings.alert_severity:
        worst = sorted((f for f in record["features"] if f["judged"]),
                       key=lambda f: -(f["score"] or 0))[:5]
        events.append(("model.drift_detected", {
            "severity": record["severity"], "drifted_share": record["drifted_share"],
            "alert_severity": settings.alert_severity.label,
            "worst_features": [{k: f[k] for k in ("feature", "score", "severity", "statistic",
                                                  "js", "psi")} for f in worst],
            "recommendations": record["recommendations"]}))
    add_drift_result(ctx.store, ref, record, now=now, events=events)
    return check, record


def run_drift(ctx: Context) -> dict[str, Any]:
    """The scheduled drift job: every production model with a configured check (among
    replicas, the models this replica claims: ``Context.share``).

    A model whose samples cannot be read is reported (and its source marked down); the others
    are still checked.
    """
    now = ctx.clock()
    done: dict[str, Any] = {}
    due = [ref for ref, status in sorted(ctx.store.statuses().items())
           if status == Status.PRODUCTION and ref.name in ctx.settings.models
           and ctx.settings.models[ref.name].drift.reference]
    for ref in ctx.share("drift", due, hold=0.9 * ctx.settings.schedule.drift):
        with ctx.source(f"samples:{ref.name}") as call:
            _, record = run_model_drift(ctx, ref, now=now)
        done[str(ref)] = {"error": call.error} if call.failed else {"severity": record["severity"]}
    return done


def check_to_json(check: DriftCheck, *, now: float) -> dict[str, Any]:
    """The stored/printed form of a drift check: the result plus where it came from."""
    return {**result_to_json(check.result), "checked_at": now,
            "reference_files": list(check.reference_files),
            "current_files": list(check.current_files), "current_rows": check.current_rows,
            "profile_cached": check.profile_cached}
