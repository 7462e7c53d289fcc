"""Segments (``segment_by``): the drift, coverage, quality and estimate of each segment of a
model, with a ``segment`` label (``channel=web``; the rest of a column's values ``channel=other``).
Their own families, so the model-level series, rules and dashboards keep their meaning."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client.core import Metric

from lifecycled.core.cbpe import METRICS
from lifecycled.domain import SEVERITY_STATES
from lifecycled.exporter.families import MV, gauge
from lifecycled.store.views import DriftView, QualityView

MVS = [*MV, "segment"]


def drift(results: Sequence[DriftView]) -> Iterator[Metric]:
    severity = gauge("lifecycled_model_segment_drift_severity",
                     "1 for the data-drift severity of a segment in the latest check (unknown: "
                     "nothing could be judged, e.g. too few rows).", [*MVS, "level"])
    share = gauge("lifecycled_model_segment_drifted_features_ratio",
                  "Share of a segment's judged features at or above the alert severity (0-1).",
                  MVS)
    rows = gauge("lifecycled_model_segment_current_rows",
                 "Rows of a segment in the latest drift check's current sample.", MVS)
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


COUNTS = (("coverage", "lifecycled_model_segment_label_coverage_ratio",
           "Labelled share of a segment's predictions in the matured window."),
          ("predictions", "lifecycled_model_segment_matured_predictions",
           "A segment's predictions in the matured window."),
          ("labelled", "lifecycled_model_segment_labelled_predictions",
           "A segment's predictions in the matured window that have their label."))


def quality(views: Sequence[QualityView]) -> Iterator[Metric]:
    counts = {key: gauge(name, doc, MVS) for key, name, doc in COUNTS}
    judged = gauge("lifecycled_model_segment_quality_judged",
                   "1 when a segment's quality metrics count (its coverage at least "
                   "min_coverage), 0 while they are provisional.", MVS)
    metrics = gauge("lifecycled_model_segment_quality_ratio",
                    "A segment's quality metric (accuracy, precision, recall, f1, roc_auc) from "
                    "its labelled matured predictions; absent until judged.", [*MVS, "metric"])
    estimated = gauge("lifecycled_model_segment_estimated_ratio",
                      "A segment's estimated metric for its predictions newer than the matured "
                      "window (CBPE), with its 95 % interval (bound: estimate, lower, upper).",
                      [*MVS, "metric", "bound"])
    trusted = gauge("lifecycled_model_segment_estimate_trusted",
                    "1 when a segment's performance estimate's assumption holds.", MVS)
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
    yield from (judged, metrics, estimated, trusted)
