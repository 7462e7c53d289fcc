"""Update triggers from snapshots and drift results, and the decision to create a job
(auto-trigger policy, cooldown, one active job per model)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lifecycled.domain import THRESHOLD_BY_KEY, Severity

WINDOW, MINIMUM = 10, 5  # the seed's rule: the last 10 snapshots, at least 5 with the value


@dataclass(frozen=True)
class Trigger:
    type: str  # performance_degradation, drift_detection, scheduled, manual
    detail: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, **self.detail}


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def performance_triggers(recent: Sequence[Mapping[str, float | None]],
                         thresholds: Mapping[str, float]) -> list[Trigger]:
    """Mean accuracy below the minimum (high below 90 % of it) or mean p99 above the maximum,
    over the newest 10 snapshots when at least 5 of them have the value."""
    found = []
    window = list(recent)[:WINDOW]
    for threshold in (THRESHOLD_BY_KEY["min_accuracy"], THRESHOLD_BY_KEY["max_latency_p99_seconds"]):
        key = threshold.key
        values = [v for s in window if (v := s.get(threshold.field)) is not None]
        if key not in thresholds or len(values) < MINIMUM:
            continue
        mean, limit = _mean(values), thresholds[key]
        if not threshold.breached(mean, limit):
            continue
        far = mean < 0.9 * limit if threshold.direction == "min" else mean > 1.5 * limit
        severity = "high" if far else "medium"
        found.append(Trigger("performance_degradation", {
            "threshold": key, "current": mean, "limit": limit, "severity": severity,
            "snapshots": len(values)}))
    return found


def drift_trigger(severity: str | None, at_least: str, checked_at: float | None) -> Trigger | None:
    """A stored drift result at or above the configured severity."""
    if severity is None or Severity.parse(severity) < Severity.parse(at_least):
        return None
    return Trigger("drift_detection", {"severity": severity, "at_least": at_least,
                                       "checked_at": checked_at})


@dataclass(frozen=True)
class Decision:
    create: Trigger | None = None  # make a new job for this trigger
    attach: tuple[Trigger, ...] = ()  # record these on the active job
    suppressed: str = ""  # why nothing was created


def decide(triggers: Sequence[Trigger], *, auto: Mapping[str, bool], active: bool,
           last_created: float | None, cooldown: float, now: float) -> Decision:
    """Apply the policy: only auto-enabled types; one active job; a cooldown between jobs."""
    enabled = [t for t in triggers if auto.get(t.type, False)]
    if not enabled:
        return Decision(suppressed="no enabled trigger" if triggers else "")
    if active:
        return Decision(attach=tuple(enabled), suppressed="a job is already active")
    if last_created is not None and now - last_created < cooldown:
        return Decision(suppressed=f"cooldown: last job {now - last_created:.0f}s ago")
    ranked = sorted(enabled, key=lambda t: Severity.parse(str(t.detail.get("severity", "medium"))),
                    reverse=True)
    return Decision(create=ranked[0], attach=tuple(ranked[1:]))
