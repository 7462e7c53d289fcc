"""Update triggers and the job decision."""

from __future__ import annotations

import pytest
from lifecycled.core.triggers import Trigger, decide, drift_trigger, performance_triggers

LIMITS = {"min_accuracy": 0.85, "max_latency_p99_seconds": 0.1}
AUTO = {"performance_degradation": True, "drift_detection": True, "scheduled": False}


def snaps(accuracy: list[float | None], p99: float | None = 0.05) -> list[dict[str, float | None]]:
    return [{"accuracy": a, "latency_p99_seconds": p99} for a in accuracy]


def test_mean_accuracy_below_the_minimum_over_the_last_ten() -> None:
    (trigger,) = performance_triggers(snaps([0.80] * 10), LIMITS)
    assert trigger.type == "performance_degradation"
    assert trigger.detail["threshold"] == "min_accuracy"
    assert trigger.detail["current"] == pytest.approx(0.80)
    assert trigger.detail["severity"] == "medium"  # 0.80 >= 0.9 * 0.85
    (high,) = performance_triggers(snaps([0.70] * 6), LIMITS)
    assert high.detail["severity"] == "high"


def test_needs_five_values_and_uses_only_the_newest_ten() -> None:
    assert performance_triggers(snaps([0.5] * 4 + [None] * 6), LIMITS) == []
    assert performance_triggers(snaps([0.95] * 10 + [0.1] * 10), LIMITS) == []  # newest first


def test_p99_above_the_maximum() -> None:
    (trigger,) = performance_triggers(snaps([0.9] * 6, p99=0.2), LIMITS)
    assert (trigger.detail["threshold"], trigger.detail["severity"]) == (
        "max_latency_p99_seconds", "high")


def test_drift_trigger_threshold() -> None:
    assert drift_trigger("medium", "high", 1.0) is None
    assert drift_trigger("critical", "high", 1.0) == Trigger(
        "drift_detection", {"severity": "critical", "at_least": "high", "checked_at": 1.0})
    assert drift_trigger(None, "low", None) is None


def test_policy_decisions() -> None:
    perf = Trigger("performance_degradation", {"severity": "medium"})
    drift = Trigger("drift_detection", {"severity": "critical"})
    sched = Trigger("scheduled", {})
    made = decide([perf, drift, sched], auto=AUTO, active=False, last_created=None,
                  cooldown=3600, now=10_000)
    assert made.create == drift and made.attach == (perf,)  # the most severe leads
    busy = decide([perf], auto=AUTO, active=True, last_created=9_000, cooldown=3600, now=10_000)
    assert busy.create is None and busy.attach == (perf,)
    cooling = decide([perf], auto=AUTO, active=False, last_created=9_000, cooldown=3600,
                     now=10_000)
    assert cooling.create is None and cooling.suppressed.startswith("cooldown")
    assert decide([perf], auto=AUTO, active=False, last_created=9_000, cooldown=3600,
                  now=12_601).create == perf
    off = decide([sched], auto=AUTO, active=False, last_created=None, cooldown=0, now=0)
    assert off.create is None and off.suppressed == "no enabled trigger"
