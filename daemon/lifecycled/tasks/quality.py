"""Quality: every configured model's labelled outcomes (or the PromQL its config gives) become
quality metrics and concept drift, stored as a quality result; collect puts the fresh result into
the model's next snapshot. A source that cannot be read is marked down and yields no result."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from lifecycled.context import Context
from lifecycled.core.concept import SIGNIFICANCE
from lifecycled.core.outcomes import OutcomeColumns, quality_of
from lifecycled.core.segments import OTHER, label, masks, text, top_values
from lifecycled.domain import QUALITY_METRICS, ModelRef, Status
from lifecycled.errors import SourceError
from lifecycled.settings import ModelSettings, QualitySettings
from lifecycled.sources.files import DEFAULT_TIMEOUT
from lifecycled.sources.samples import read_sample
from lifecycled.store.labels import pushed_versions
from lifecycled.store.results import add_quality_result
from lifecycled.tasks.streams import ingest, judge


def run_quality(ctx: Context) -> dict[str, Any]:
    """One quality pass: {model: "ok" or the error} for each model version with a quality source
    (among replicas, those this replica claims: ``Context.share``)."""
    done: dict[str, Any] = {}
    now = ctx.clock()
    pushed = pushed_versions(ctx.store)
    due = [ref for ref, status in sorted(ctx.store.statuses().items())
           if status != Status.RETIRED and _due(ctx.settings.model_settings(ref.name).quality,
                                                 ref, status, ref in pushed)]
    for ref in ctx.share("quality", due, hold=0.9 * ctx.settings.schedule.quality):
        model = ctx.settings.model_settings(ref.name)
        settings = model.quality
        source = (f"outcomes:{ref.name}" if settings.outcomes else
                  "prometheus" if settings.promql else f"predictions:{ref.name}")
        # a verdict repeated at each pass: judged within the model's false-alarm budget
        significance = ctx.settings.significance(ref.name, ctx.settings.schedule.quality)
        kind = model_type_of(ctx, ref, model)
        with ctx.source(source) as call:
            if settings.outcomes:
                result = _from_outcomes(model, ref, ctx.settings.sources.files.timeout,
                                        significance.alpha, kind)
            elif settings.promql:
                result = _from_promql(ctx, ref, dict(settings.promql.items()))
            else:  # a prediction log: files, pushes, or both, judged alike
                ingest(ctx, ref, model, now)
                result = judge(ctx, ref, model, now, significance.alpha, kind)
            if "alpha" in result:
                result["alpha_basis"] = significance.basis
            if result.get("estimated"):  # the estimate's breach: judged on its interval
                result["accuracy_upper"] = (result.get("estimate") or {}).get("accuracy_upper")
            add_quality_result(ctx.store, ref, result, now=now)
        done[str(ref)] = call.error or "ok"
    return done


def _due(settings: QualitySettings, ref: ModelRef, status: Status, pushed: bool) -> bool:
    """One outcome file (or query, or prediction log file) per model describes its production
    version, unless it names ``{version}``: then every version has its own. A version whose
    predictions were pushed is judged on them, with or without a file."""
    if pushed and not (settings.outcomes or settings.promql):
        return True
    texts = ([settings.outcomes] if settings.outcomes else
             [settings.predictions.path or ""] if settings.predictions else
             list(settings.promql.values()))
    if not any(texts):
        return False
    return status == Status.PRODUCTION or any("{version}" in text for text in texts)


def model_type_of(ctx: Context, ref: ModelRef, model: ModelSettings) -> str:
    """``regression`` when the model's configuration (else its registration) says its
    model_type is regression: its metrics are errors, not accuracy; else ``classification``."""
    declared = model.model_type or ctx.store.get(ref).spec.model_type
    return "regression" if (declared or "").strip().lower() == "regression" else "classification"


def _from_outcomes(model: ModelSettings, ref: ModelRef, timeout: float, alpha: float,
                   model_type: str) -> dict[str, Any]:
    settings = model.quality
    assert settings.outcomes is not None
    columns = OutcomeColumns(settings.prediction_column, settings.label_column,
                             settings.score_column, settings.timestamp_column,
                             dict(settings.score_columns) or None)
    return check_quality(settings.outcomes.replace("{version}", ref.version), columns,
                         timeout=timeout, segment_by=model.segment_by,
                         segment_top=model.segment_top, alpha=alpha, model_type=model_type)


def _from_promql(ctx: Context, ref: ModelRef, queries: Mapping[str, str]) -> dict[str, Any]:
    """Quality metrics from the PromQL the user wrote for the model ({model}, {version})."""
    result: dict[str, Any] = {"samples": 0, "source": "promql"}
    with ctx.prometheus() as source:
        for metric in QUALITY_METRICS:
            if metric.name in queries:
                expr = queries[metric.name].replace("{model}", ref.name).replace(
                    "{version}", ref.version)
                result[metric.name] = source.scalar(expr)
    return result


def check_quality(pattern: str, columns: OutcomeColumns, *, positive_label: str | None = None,
                  min_samples: int = 100, timeout: float = DEFAULT_TIMEOUT,
                  segment_by: Sequence[str] = (), segment_top: int = 10,
                  alpha: float = SIGNIFICANCE, model_type: str = "classification"
                  ) -> dict[str, Any]:
    """Return quality metrics and concept drift (JSON form) for an outcomes file, URL or glob,
    and per segment of the ``segment_by`` columns (``core.segments``)."""
    sample = read_sample(pattern, timestamp_column=columns.timestamp, timeout=timeout)
    result = quality_of(pattern, sample.columns, columns, positive_label=positive_label,
                        min_samples=min_samples, alpha=alpha, model_type=model_type)
    result["files"] = list(sample.files)
    if segment_by:
        result["segments"] = list(_segments(pattern, sample.columns, columns, segment_by,
                                            segment_top, positive_label, min_samples, alpha,
                                            model_type))
    return result


def _segments(pattern: str, data: Mapping[str, np.ndarray], columns: OutcomeColumns,
              segment_by: Sequence[str], top: int, positive_label: str | None,
              min_samples: int, alpha: float, model_type: str) -> Iterator[dict[str, Any]]:
    for column in segment_by:
        if column not in data:
            yield {"segment": label(column, OTHER), "column": column, "value": OTHER,
                   "error": f"no column {column!r} in {pattern}"}
            continue
        values = text(data[column])
        for value, rows in masks(values, top_values(values, top)).items():
            entry: dict[str, Any] = {"segment": label(column, value), "column": column,
                                     "value": value, "predictions": int(rows.sum())}
            if not rows.any():  # "other" when the chosen values cover every row
                yield {**entry, "labelled": 0, "samples": 0, "judged": False}
                continue
            try:
                found = quality_of(f"{pattern}, segment {label(column, value)}",
                                   {k: v[rows] for k, v in data.items()}, columns,
                                   positive_label=positive_label, min_samples=min_samples,
                                   alpha=alpha, model_type=model_type)
            except SourceError as exc:  # e.g. a segment whose labels share nothing
                yield {**entry, "error": str(exc)}
                continue
            labelled = int(rows.sum()) - int(found["unlabelled"])
            yield {**entry, "labelled": labelled, "samples": labelled, "judged": labelled > 0,
                   **{m.name: found.get(m.name) for m in QUALITY_METRICS}}
