"""Quality: the latest quality result's metrics (``domain.QUALITY_METRICS``) and its concept-drift
severity; for a prediction log with late labels, its coverage, label lag and rows received."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric

from lifecycled.domain import QUALITY_METRICS, SEVERITIES, ModelRef
from lifecycled.exporter import segments
from lifecycled.exporter.catalogue import ESTIMATED, ESTIMATED_ERRORS, LABEL_GAUGES
from lifecycled.exporter.families import counter, gauge
from lifecycled.exporter.scrape import Scrape
from lifecycled.store import Store
from lifecycled.store.labels import received
from lifecycled.store.views import quality_views


def collect(scrape: Scrape) -> Iterator[Metric]:
    store, live = scrape.store, scrape.live
    families = {m.name: gauge(m.metric) for m in QUALITY_METRICS}
    concept = gauge("lifecycled_model_concept_drift_severity")
    streams = {key: gauge(name) for key, name in LABEL_GAUGES}
    estimated = {m: gauge(f"lifecycled_model_estimated_{m}_ratio") for m in ESTIMATED}
    estimated.update({m: gauge(name) for m, name in ESTIMATED_ERRORS})
    trusted = gauge("lifecycled_model_estimate_trusted")
    error = gauge("lifecycled_model_estimation_error_ratio")
    judged = gauge("lifecycled_model_quality_judged")
    views = [v for v in quality_views(store, scrape.decodings.quality) if v.ref in live]
    for view in views:
        mv = [view.ref.name, view.ref.version]
        if view.labels is not None:
            for key, family in streams.items():
                value = view.labels.get(key)
                if isinstance(value, (int, float)):
                    family.add_metric(mv, float(value))
            judged.add_metric(mv, 1.0 if view.labels.get("judged") else 0.0)
        if view.estimate is not None:
            for name, family in estimated.items():
                for bound in ("", "_lower", "_upper"):
                    value = view.estimate.get(name + bound)
                    if isinstance(value, (int, float)):
                        family.add_metric([*mv, bound.lstrip("_") or "estimate"], float(value))
            trusted.add_metric(mv, 1.0 if view.estimate.get("trusted") else 0.0)
        if view.estimation is not None:
            for metric, value in sorted((view.estimation.get("error") or {}).items()):
                error.add_metric([*mv, metric], float(value))
        for name, family in families.items():
            value = view.metrics.get(name)
            if value is not None:  # unknown: absent, never NaN
                family.add_metric(mv, value)
        severity = view.concept_severity
        if severity:
            for level in SEVERITIES:
                concept.add_metric([*mv, level], 1 if level == severity else 0)
    yield from families.values()
    yield concept
    yield from streams.values()
    yield judged
    yield from estimated.values()
    yield trusted
    yield error
    yield from segments.quality(views)
    yield from _received(store, live)



def _received(store: Store, live: set[ModelRef]) -> Iterator[Metric]:
    predictions = counter("lifecycled_model_predictions_received")
    labels = counter("lifecycled_model_labels_received")
    unmatched = counter("lifecycled_model_labels_without_prediction")
    names = {ref.name for ref in live}
    for name, version, kind, count in received(store):
        if kind == "predictions" and ModelRef(name, version) in live:
            predictions.add_metric([name, version], count)
        elif kind == "labels" and name in names:
            labels.add_metric([name], count)
        elif kind == "labels_without_prediction" and name in names:
            unmatched.add_metric([name], count)
    yield predictions
    yield labels
    yield unmatched
