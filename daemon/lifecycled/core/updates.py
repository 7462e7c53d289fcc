"""Update jobs, the pure part: the validation gate and how a trigger is described in a job log."""

from __future__ import annotations

from collections.abc import Mapping

from lifecycled.core.triggers import Trigger


def gate(validation: Mapping[str, float], minimums: Mapping[str, float]) -> list[str]:
    """Problems that stop a promotion (empty when the gate passes)."""
    problems = []
    for metric, minimum in sorted(minimums.items()):
        value = validation.get(metric)
        if value is None:
            problems.append(f"no validation {metric} reported (minimum {minimum:g})")
        elif value < minimum:
            problems.append(f"validation {metric} {value:.4g} below minimum {minimum:g}")
    return problems


def describe(trigger: Trigger) -> str:
    """One line for the job log saying what fired."""
    d = trigger.detail
    if trigger.type == "performance_degradation":
        return (f"{d['threshold']} mean {d['current']:.4g} against {d['limit']:.4g} "
                f"({d['severity']}, {d['snapshots']} snapshots)")
    if trigger.type == "drift_detection":
        return f"drift severity {d['severity']} (at least {d['at_least']})"
    return str(d.get("reason", "")) or trigger.type
