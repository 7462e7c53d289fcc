"""The performance summary of one model version over the last days (``report --model``): from
Prometheus range queries when Prometheus is configured, otherwise from stored snapshots."""

from __future__ import annotations

from typing import Any

from lifecycled.context import Context
from lifecycled.core.summary import MEASURES, summarise
from lifecycled.domain import ModelRef
from lifecycled.store.results import latest_evaluation
from lifecycled.store.serving import snapshots

MAX_POINTS = 500


def _from_prometheus(ctx: Context, ref: ModelRef, start: float, end: float
                     ) -> dict[str, list[float]]:
    from lifecycled.sources.prometheus import parse_matrix

    step = max(60.0, (end - start) / MAX_POINTS)
    series: dict[str, list[float]] = {}
    with ctx.prometheus() as source:
        for name in MEASURES:
            if name == "accuracy":
                promql = ctx.settings.model_settings(ref.name).quality.promql.get("accuracy")
                expr = (promql.replace("{model}", ref.name).replace("{version}", ref.version)
                        if promql else f'lifecycled_model_accuracy_ratio{{model="{ref.name}",'
                                       f'version="{ref.version}"}}')
                result = source.query_range(expr, start, end, step)
                points = [v for item in result if isinstance(item, dict)
                          for v in _values(item)]
            else:
                matrix = parse_matrix(source.query_range(source.template(name, step), start,
                                                         end, step))
                points = [v for _, v in matrix.get((ref.name, ref.version), [])]
            series[name] = points
    return series


def _values(item: dict[str, Any]) -> list[float]:
    from lifecycled.sources.prometheus import sample_value

    return [v for _, raw in item.get("values", []) if (v := sample_value(raw)) is not None]


def performance_summary(ctx: Context, ref: ModelRef, days: float) -> dict[str, Any]:
    record = ctx.store.get(ref)
    end = ctx.clock()
    start = end - days * 86400
    if ctx.settings.sources.prometheus is not None:
        series = _from_prometheus(ctx, ref, start, end)
        source = "prometheus"
    else:
        rows = snapshots(ctx.store, ref, since=start)
        series = {name: [v for s in rows if (v := s.values.get(name)) is not None]
                  for name in MEASURES}
        source = "snapshots"
    summary = summarise(series, record.spec.thresholds)
    evaluation = latest_evaluation(ctx.store, ref)
    return {"model": ref.name, "version": ref.version, "status": record.status.value,
            "days": days, "from": start, "to": end, "source": source,
            "latest_level": evaluation[0].result["level"] if evaluation else "unknown",
            "thresholds": dict(record.spec.thresholds), **summary}
