"""The performance summary of a model version over a period (the seed's report)."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from lifecycled.domain import THRESHOLD_BY_KEY

# The thresholds whose snapshot fields the summary describes (keyed by the field).
MEASURES = {t.field: t for t in (THRESHOLD_BY_KEY[key] for key in (
    "min_accuracy", "max_latency_p99_seconds", "min_throughput_rps", "max_error_ratio"))}


def describe(values: Sequence[float]) -> dict[str, Any]:
    """mean, std (sample), min, max and count; None for an empty series."""
    if not values:
        return {"count": 0, "mean": None, "std": None, "min": None, "max": None}
    return {"count": len(values), "mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values)}


def summarise(series: Mapping[str, Sequence[float]], thresholds: Mapping[str, float]
              ) -> dict[str, Any]:
    """Statistics per measure and the health issues of the means against the thresholds."""
    stats = {name: describe(list(series.get(name, ()))) for name in MEASURES}
    issues = []
    for name, threshold in MEASURES.items():
        mean = stats[name]["mean"]
        if mean is None or threshold.key not in thresholds:
            continue
        limit = thresholds[threshold.key]
        if threshold.breached(mean, limit):
            word = "below minimum" if threshold.direction == "min" else "above maximum"
            issues.append(f"{name} mean {mean:.4g} {word} {limit:.4g}")
    return {"measures": stats, "issues": issues,
            "measurements": max((s["count"] for s in stats.values()), default=0)}
