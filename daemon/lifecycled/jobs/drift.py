"""Drift checks: read the samples, reuse the cached reference profile, judge every feature."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifecycled.config import drift_settings_for
from lifecycled.core.drift import DriftResult, DriftSettings, Severity, compare, result_to_json
from lifecycled.core.profile import ReferenceProfile, build_profile
from lifecycled.domain import ModelRef, Status
from lifecycled.errors import InputError, SourceError
from lifecycled.jobs.context import JobContext
from lifecycled.settings import DriftSettings as ConfigDrift
from lifecycled.settings import DriftWeights as ConfigWeights
from lifecycled.sources.profiles import PROFILE_DIR, cached_profile
from lifecycled.sources.samples import expand, read_sample, select
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


@dataclass(frozen=True)
class DriftCheck:
    result: DriftResult
    reference_files: tuple[str, ...]
    current_files: tuple[str, ...]
    current_rows: int
    profile_cached: bool


def check_drift(inputs: DriftInputs, settings: DriftSettings, *, cache_dir: Path | None,
                now: float, progress: Progress | None = None) -> DriftCheck:
    """Run one drift check; raises SourceError when a sample cannot be read."""
    reference_files = expand(inputs.reference)
    exclude = [inputs.timestamp_column] if inputs.timestamp_column else []

    def build() -> ReferenceProfile:
        columns = read_sample(inputs.reference).columns
        return build_profile(select(columns, exclude), inputs.categorical, bins=settings.bins)

    profile, cached = cached_profile(cache_dir, reference_files, settings.bins,
                                     inputs.categorical, build)
    current = read_sample(inputs.current, timestamp_column=inputs.timestamp_column,
                          window=inputs.window, newest_rows=inputs.newest_rows, now=now)
    result = compare(profile, select(current.columns, exclude), settings,
                     features=inputs.features, categorical=inputs.categorical, progress=progress)
    return DriftCheck(result, tuple(str(f) for f in reference_files), current.files, current.rows,
                      cached)


def core_settings(config: ConfigDrift) -> DriftSettings:
    """Translate the configured drift settings into the core's value type."""
    weights = config.weights or ConfigWeights()
    return DriftSettings(
        bins=config.bins or 10,
        min_samples=config.min_samples or 100,
        weights=(weights.ks, weights.js, weights.psi),
        alert_severity=Severity.parse(config.alert_severity or "medium"),
        correction=config.correction or "none",
    )


def run_model_drift(ctx: JobContext, ref: ModelRef, *, now: float,
                    progress: Progress | None = None) -> tuple[DriftCheck, dict[str, Any]]:
    """Run the configured drift check of ``ref`` and store its result."""
    ctx.store.get(ref)
    config = drift_settings_for(ctx.settings, ref.name)
    if not config.reference or not config.current:
        raise InputError(f"{ref}: no drift check configured (set models.{ref.name}.drift.reference "
                         "and .current)")
    inputs = DriftInputs(reference=config.reference, current=config.current,
                         features=config.features, categorical=config.categorical or (),
                         timestamp_column=config.timestamp_column, window=config.window,
                         newest_rows=config.newest_rows)
    settings = core_settings(config)
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


def run_drift(ctx: JobContext) -> dict[str, Any]:
    """The scheduled drift job: every production model with a configured check.

    A model whose samples cannot be read is reported (and its source marked down); the others
    are still checked.
    """
    from lifecycled.store.serving import record_source

    now = ctx.clock()
    done: dict[str, Any] = {}
    for ref, status in sorted(ctx.store.statuses().items()):
        config = ctx.settings.models.get(ref.name)
        if status != Status.PRODUCTION or config is None or not config.drift.reference:
            continue
        source = f"samples:{ref.name}"
        try:
            _, record = run_model_drift(ctx, ref, now=now)
        except SourceError as exc:
            done[str(ref)] = {"error": ctx.source_down(source, exc, now)}
            continue
        with ctx.store.write() as conn:
            record_source(conn, source, ok=True, now=now)
        done[str(ref)] = {"severity": record["severity"]}
    return done


def check_to_json(check: DriftCheck, *, now: float) -> dict[str, Any]:
    """The stored/printed form of a drift check: the result plus where it came from."""
    return {**result_to_json(check.result), "checked_at": now,
            "reference_files": list(check.reference_files),
            "current_files": list(check.current_files), "current_rows": check.current_rows,
            "profile_cached": check.profile_cached}
