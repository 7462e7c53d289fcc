"""Threshold breaches and the performance score and level of a snapshot (DESIGN.md section 6)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lifecycled.domain import THRESHOLDS, Level

# a model's quality is its accuracy (a classifier) or its error against its limit (a regression
# model): one of the two, at the same weight
WEIGHTS = {"accuracy": 0.4, "regression": 0.4, "latency": 0.2, "throughput": 0.2, "errors": 0.2}
# a regression model's error against its limit, the first of these that is known
REGRESSION_COMPONENT = (("rmse", "max_rmse"), ("mae", "max_mae"), ("mape_ratio", "max_mape_ratio"))


@dataclass(frozen=True)
class Breach:
    threshold: str
    value: float
    limit: float
    bound: float | None = None  # the confidence bound judged instead of the value, if any

    def to_json(self) -> dict[str, Any]:
        found = {"threshold": self.threshold, "value": self.value, "limit": self.limit}
        return found if self.bound is None else {**found, "bound": self.bound}


@dataclass(frozen=True)
class Evaluation:
    breaches: tuple[Breach, ...]
    checked: tuple[str, ...]  # thresholds with a known value (breached or not)
    unknown: tuple[str, ...]  # thresholds whose value is unknown: neither breached nor passed
    components: Mapping[str, float]
    score: float | None
    level: Level


def find_breaches(values: Mapping[str, float | None], thresholds: Mapping[str, float],
                  bounds: Mapping[str, float | None] | None = None
                  ) -> tuple[list[Breach], list[str], list[str]]:
    """Breached, checked and unknown thresholds. A value that comes with a confidence bound on
    the side of its breach (``bounds``, by field: quality from labels) is judged on the bound:
    a minimum is breached only when even the upper bound is below it, a maximum when even the
    lower bound is above it, a band when even the bound nearer 0 is outside it. A low accuracy
    on few labels is noise, not a breach."""
    breaches, checked, unknown = [], [], []
    for threshold in THRESHOLDS:
        key = threshold.key
        if key not in thresholds:
            continue
        value = values.get(threshold.field)
        if value is None:
            unknown.append(key)
            continue
        checked.append(key)
        bound = (bounds or {}).get(threshold.field)
        if threshold.breached(value if bound is None else bound, thresholds[key]):
            breaches.append(Breach(key, value, thresholds[key], bound))
    return breaches, checked, unknown


def score_components(values: Mapping[str, float | None], thresholds: Mapping[str, float]
                     ) -> dict[str, float]:
    """Component scores 0-100 for the values that are known.

    accuracy: 100 x accuracy; regression: 100 - 50 x error / its maximum (50 at the limit; RMSE,
    else MAE, else MAPE, the first with a value and a limit); latency: 100 - 50 x p99 / max p99
    (50 at the limit);
    throughput: 50 x requests/s / min throughput, capped at 100 (50 at the limit);
    errors: 100 - 1000 x error ratio (90 at 1 %).
    """
    components: dict[str, float] = {}
    accuracy = values.get("accuracy")
    if accuracy is not None:
        components["accuracy"] = 100.0 * accuracy
    for field, key in REGRESSION_COMPONENT:
        error, limit = values.get(field), thresholds.get(key)
        if error is not None and limit:
            components["regression"] = 100.0 - 50.0 * error / limit
            break
    p99, max_p99 = values.get("latency_p99_seconds"), thresholds.get("max_latency_p99_seconds")
    if p99 is not None and max_p99:
        components["latency"] = 100.0 - 50.0 * p99 / max_p99
    rps, min_rps = values.get("requests_per_second"), thresholds.get("min_throughput_rps")
    if rps is not None and min_rps:
        components["throughput"] = 50.0 * rps / min_rps
    errors = values.get("error_ratio")
    if errors is not None:
        components["errors"] = 100.0 - 1000.0 * errors
    return {k: min(100.0, max(0.0, v)) for k, v in components.items()}


def level_of(score: float | None) -> Level:
    if score is None:
        return Level.UNKNOWN
    for limit, level in ((90, Level.EXCELLENT), (80, Level.GOOD), (70, Level.ACCEPTABLE),
                         (50, Level.POOR)):
        if score >= limit:
            return level
    return Level.CRITICAL


def evaluate(values: Mapping[str, float | None], thresholds: Mapping[str, float],
             bounds: Mapping[str, float | None] | None = None) -> Evaluation:
    """Breaches of the thresholds (judged on ``bounds`` where given) and the
    weighted score, renormalised over known parts."""
    breaches, checked, unknown = find_breaches(values, thresholds, bounds)
    components = score_components(values, thresholds)
    total = sum(WEIGHTS[k] for k in components)
    score = sum(WEIGHTS[k] * v for k, v in components.items()) / total if total else None
    return Evaluation(tuple(breaches), tuple(checked), tuple(unknown), components, score,
                      level_of(score))


def evaluation_to_json(result: Evaluation) -> dict[str, Any]:
    return {"breaches": [b.to_json() for b in result.breaches], "checked": list(result.checked),
            "unknown": list(result.unknown), "components": dict(result.components),
            "score": result.score, "level": result.level.value}
