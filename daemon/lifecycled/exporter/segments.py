"""Segments (``segment_by``): the drift, coverage, quality and estimate of each segment of a
model, with a ``segment`` label (``channel=web``; the rest of a column's values ``channel=other``).
Their own families, so the model-level series, rules and dashboards keep their meaning."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client.core import Metric

from lifecycled.core.quality import METRICS
from lifecycled.core.regression import REGRESSION_METRICS
from lifecycled.domain import SEVERITY_STATES
from lifecycled.exporter.catalogue import SEGMENT_COUNTS
from lifecycled.exporter.families import gauge
from lifecycled.store.views import DriftView, QualityView


def drift(results: Sequence[DriftView]) -> Iterator[Metric]:
    severity = gauge("lifecycled_model_segment_drift_severity")
    share = gauge("lifecycled_model_segment_drifted_features_ratio")
    rows = gauge("lifecycled_model_segment_current_rows")
    for result in results:
        for segment in result.segments:
            labels = [result.ref.name, result.ref.version, str(segment["segment"])]
            for level in SEVERITY_STATES:
                severity.add_metric([*labels, level], 1 if level == segment["severity"] else 0)
            if isinstance(segment.get("drifted_share"), (int, float)):
                share.add_metric(labels, float(segment["drifted_share"]))
            if isinstance(segment.get("current_rows"), int):
                rows.add_metric(labels, segment["current_rows"])
    yield from (severity, share, rows)



def quality(views: Sequence[QualityView]) -> Iterator[Metric]:
    counts = {key: gauge(name) for key, name in SEGMENT_COUNTS}
    judged = gauge("lifecycled_model_segment_quality_judged")
    metrics = gauge("lifecycled_model_segment_quality_ratio")
    errors = gauge("lifecycled_model_segment_regression_metric")
    estimated = gauge("lifecycled_model_segment_estimated_ratio")
    trusted = gauge("lifecycled_model_segment_estimate_trusted")
    for view in views:
        for segment in view.segments:
            labels = [view.ref.name, view.ref.version, str(segment["segment"])]
            for key, family in counts.items():
                value = segment.get(key)
                if isinstance(value, (int, float)):
                    family.add_metric(labels, float(value))
            if "error" in segment:
                continue
            judged.add_metric(labels, 1.0 if segment.get("judged") else 0.0)
            for metric in METRICS:
                value = segment.get(metric)
                if segment.get("judged") and isinstance(value, (int, float)):
                    metrics.add_metric([*labels, metric], float(value))
            for metric in REGRESSION_METRICS:
                value = segment.get(metric)
                if segment.get("judged") and isinstance(value, (int, float)):
                    errors.add_metric([*labels, metric], float(value))
            estimate = segment.get("estimate")
            if estimate is None:
                continue
            trusted.add_metric(labels, 1.0 if estimate.get("trusted") else 0.0)
            for metric in METRICS:
                for bound in ("", "_lower", "_upper"):
                    value = estimate.get(metric + bound)
                    if isinstance(value, (int, float)):
                        estimated.add_metric([*labels, metric, bound.lstrip("_") or "estimate"],
                                             float(value))
    yield from counts.values()
    yield from (judged, metrics, errors, estimated, trusted)
