"""Quality: every configured model's labelled outcomes (or the PromQL its config gives) become
quality metrics and concept drift, stored as a quality result; collect puts the fresh result into
the model's next snapshot. A source that cannot be read is marked down and yields no result.

This module picks each version's source and stores what it gives: an outcome file
(``tasks.outcomes``), a prediction log with late labels (``tasks.streams``), or PromQL."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lifecycled.context import Context
from lifecycled.domain import QUALITY_METRICS, ModelRef, Status
from lifecycled.settings import ModelSettings, QualitySettings
from lifecycled.store.labels import pushed_versions
from lifecycled.store.results import add_quality_result
from lifecycled.tasks.outcomes import judge_file
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
                result = judge_file(model, ref, ctx.settings.sources.files.timeout,
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
