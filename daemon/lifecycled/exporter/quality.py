"""Quality: the latest quality result's metrics (``domain.QUALITY_METRICS``) and its concept-drift
severity."""

from __future__ import annotations

import math
from collections.abc import Iterator

from prometheus_client.core import Metric

from lifecycled.domain import QUALITY_METRICS, SEVERITIES, ModelRef
from lifecycled.exporter.families import MV, gauge
from lifecycled.store import Store
from lifecycled.store.results import Decoded, latest_quality


def collect(store: Store, live: set[ModelRef], cache: Decoded) -> Iterator[Metric]:
    families = {m.name: gauge(m.metric, m.help, MV) for m in QUALITY_METRICS}
    concept = gauge("lifecycled_model_concept_drift_severity",
                    "1 for the concept-drift severity of the latest labelled outcomes.",
                    [*MV, "severity"])
    for stored in latest_quality(store, cache=cache):
        if stored.ref not in live:
            continue
        mv = [stored.ref.name, stored.ref.version]
        for name, family in families.items():
            value = stored.result.get(name)
            if isinstance(value, int | float) and math.isfinite(value):  # unknown: absent
                family.add_metric(mv, value)
        severity = (stored.result.get("concept") or {}).get("severity")
        if severity:
            for level in SEVERITIES:
                concept.add_metric([*mv, level], 1 if level == severity else 0)
    yield from families.values()
    yield concept
