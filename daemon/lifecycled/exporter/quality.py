"""Quality: the latest quality result's metrics (``domain.QUALITY_METRICS``) and its concept-drift
severity."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric

from lifecycled.domain import QUALITY_METRICS, SEVERITIES, ModelRef
from lifecycled.exporter.families import MV, gauge
from lifecycled.store import Store
from lifecycled.store.results import Decoded
from lifecycled.store.views import quality_views


def collect(store: Store, live: set[ModelRef], cache: Decoded) -> Iterator[Metric]:
    families = {m.name: gauge(m.metric, m.help, MV) for m in QUALITY_METRICS}
    concept = gauge("lifecycled_model_concept_drift_severity",
                    "1 for the concept-drift severity of the latest labelled outcomes.",
                    [*MV, "level"])
    for view in quality_views(store, cache):
        if view.ref not in live:
            continue
        mv = [view.ref.name, view.ref.version]
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
