"""The performance summary of a model version over a period (the seed's report)."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

# report key -> (threshold key, "min" or "max", unit words)
MEASURES = {
    "accuracy": ("min_accuracy", "min"),
    "latency_p99_seconds": ("max_latency_p99_seconds", "max"),
    "requests_per_second": ("min_throughput_rps", "min"),
    "error_ratio": ("max_error_ratio", "max"),
}


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
    for name, (key, kind) in MEASURES.items():
        mean = stats[name]["mean"]
        if mean is None or key not in thresholds:
            continue
        limit = thresholds[key]
        if (kind == "min" and mean < limit) or (kind == "max" and mean > limit):
            word = "below minimum" if kind == "min" else "above maximum"
            issues.append(f"{name} mean {mean:.4g} {word} {limit:.4g}")
    return {"measures": stats, "issues": issues,
            "measurements": max((s["count"] for s in stats.values()), default=0)}
