"""Retirement score and reasons (the seed's weights, every limit a policy setting)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lifecycled.domain import RetirementPolicy

WEIGHTS = {"age": 0.3, "performance": 0.4, "usage": 0.2, "status": 0.1}
FULL_AGE_DAYS = 365.0
FULL_SHORTFALL = 0.2  # the performance part is full at 20 % below the minimum accuracy


@dataclass(frozen=True)
class Usage:
    """What is known about a model version for retirement; None = unknown."""

    age_days: float
    status: str
    mean_accuracy: float | None = None
    requests_7d: float | None = None
    requests_30d: float | None = None


@dataclass(frozen=True)
class RetirementScore:
    score: float
    candidate: bool
    components: dict[str, float] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"score": self.score, "candidate": self.candidate,
                "components": dict(self.components), "reasons": list(self.reasons)}


def retirement_score(usage: Usage, policy: RetirementPolicy) -> RetirementScore | None:
    """Score 0-1 and reasons; None for a retired model (never a candidate). Unknown inputs add
    nothing: lifecycled does not count a missing number as evidence."""
    if usage.status == "retired":
        return None
    parts: dict[str, float] = {"age": min(1.0, max(0.0, usage.age_days) / FULL_AGE_DAYS)}
    reasons: list[str] = []
    if usage.age_days > policy.max_age_days:
        reasons.append(f"too old: {usage.age_days:.0f} days (maximum {policy.max_age_days:g})")
    if usage.mean_accuracy is not None and usage.mean_accuracy < policy.min_accuracy:
        shortfall = (policy.min_accuracy - usage.mean_accuracy) / policy.min_accuracy
        parts["performance"] = min(1.0, shortfall / FULL_SHORTFALL)
        reasons.append(f"below accuracy: mean {usage.mean_accuracy:.3f} over the last snapshots "
                       f"(minimum {policy.min_accuracy:g})")
    if usage.requests_7d is not None:
        parts["usage"] = 1.0 - min(1.0, usage.requests_7d / policy.normal_weekly_requests)
    if usage.requests_30d is not None and usage.requests_30d < policy.min_requests_per_month:
        reasons.append(f"too little use: {usage.requests_30d:.0f} requests in 30 days "
                       f"(minimum {policy.min_requests_per_month:g})")
    if usage.status in ("deprecated", "failed"):
        parts["status"] = 1.0
        reasons.append(usage.status)
    score = sum(WEIGHTS[k] * v for k, v in parts.items())
    return RetirementScore(round(score, 6), score > policy.candidate_score,
                           {k: WEIGHTS[k] * v for k, v in parts.items()}, tuple(reasons))
