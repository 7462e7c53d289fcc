"""Serving numbers from two cumulative scrapes: rates, error ratio, latencies (microseconds from
Triton become seconds), counter resets; and the fleet aggregate across endpoints."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from lifecycled.domain import ModelCounters

US = 1e-6
QUANTILES = {"p50": "0.5", "p95": "0.95", "p99": "0.99"}


@dataclass(frozen=True)
class ServingSample:
    """One model version on one endpoint over one interval; None means unknown, never 0."""

    interval_seconds: float
    requests: float  # counted in the interval (success + failure)
    successes: float
    failures: float
    inferences: float
    duration_us: float | None
    queue_us: float | None
    requests_per_second: float
    inferences_per_second: float
    error_ratio: float | None
    failures_per_second_by_reason: Mapping[str, float]
    latency_mean_seconds: float | None
    queue_mean_seconds: float | None
    latency_seconds: Mapping[str, float | None]  # p50/p95/p99 from Triton's summaries
    summaries: bool
    pending_requests: float | None


@dataclass(frozen=True)
class RateProblem:
    """Why no rate could be computed."""

    reason: str  # first_scrape, counter_reset, no_time


def _delta(now: float | None, before: float | None) -> float | None:
    if now is None or before is None:
        return None
    return now - before


def serving_sample(before: ModelCounters | None, now: ModelCounters, interval: float
                   ) -> ServingSample | RateProblem:
    """Rates between two scrapes of one model version; a reset or first scrape gives no rate."""
    if before is None:
        return RateProblem("first_scrape")
    if interval <= 0:
        return RateProblem("no_time")
    pairs = [(now.success, before.success), (now.inferences, before.inferences),
             (now.failures, before.failures), (now.request_duration_us, before.request_duration_us)]
    pairs += [(now.failure.get(r, 0.0), v) for r, v in before.failure.items()]
    if any(a is not None and b is not None and a < b for a, b in pairs):
        return RateProblem("counter_reset")
    successes = now.success - before.success
    failures = now.failures - before.failures
    requests = successes + failures
    duration = _delta(now.request_duration_us, before.request_duration_us)
    queue = _delta(now.queue_duration_us, before.queue_duration_us)
    latencies: dict[str, float | None] = {
        name: (now.quantiles_us[q] * US if q in now.quantiles_us else None)
        for name, q in QUANTILES.items()
    }
    return ServingSample(
        interval_seconds=interval,
        requests=requests,
        successes=successes,
        failures=failures,
        inferences=now.inferences - before.inferences,
        duration_us=duration,
        queue_us=queue,
        requests_per_second=requests / interval,
        inferences_per_second=(now.inferences - before.inferences) / interval,
        error_ratio=failures / requests if requests > 0 else None,
        failures_per_second_by_reason={
            reason: (value - before.failure.get(reason, 0.0)) / interval
            for reason, value in now.failure.items()},
        # Triton adds to the duration counters only on success.
        latency_mean_seconds=duration / successes * US if duration is not None and successes > 0
        else None,
        queue_mean_seconds=queue / successes * US if queue is not None and successes > 0 else None,
        latency_seconds=latencies,
        summaries=now.summaries,
        pending_requests=now.pending,
    )


@dataclass(frozen=True)
class FleetServing:
    """A model version's numbers across every endpoint that serves it."""

    endpoints: tuple[str, ...]
    requests_per_second: float
    inferences_per_second: float
    error_ratio: float | None
    latency_mean_seconds: float | None
    queue_mean_seconds: float | None
    latency_seconds: Mapping[str, float | None]
    pending_requests: float | None
    failures_per_second_by_reason: Mapping[str, float] = field(default_factory=dict)
    summaries: bool = True


def _worst(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def aggregate(samples: Mapping[str, ServingSample]) -> FleetServing:
    """Sum rates, pool ratios and means over their denominators, take the worst quantile."""
    items = list(samples.values())
    requests = sum(s.requests for s in items)
    failures = sum(s.failures for s in items)
    successes = sum(s.successes for s in items)
    durations = [s.duration_us for s in items]
    queues = [s.queue_us for s in items]
    reasons: dict[str, float] = {}
    for s in items:
        for reason, rate in s.failures_per_second_by_reason.items():
            reasons[reason] = reasons.get(reason, 0.0) + rate
    pending = [s.pending_requests for s in items if s.pending_requests is not None]
    return FleetServing(
        endpoints=tuple(samples),
        requests_per_second=sum(s.requests_per_second for s in items),
        inferences_per_second=sum(s.inferences_per_second for s in items),
        error_ratio=failures / requests if requests > 0 else None,
        latency_mean_seconds=(sum(d for d in durations if d is not None) / successes * US
                              if successes > 0 and all(d is not None for d in durations) else None),
        queue_mean_seconds=(sum(q for q in queues if q is not None) / successes * US
                            if successes > 0 and all(q is not None for q in queues) else None),
        latency_seconds={name: _worst([s.latency_seconds.get(name) for s in items])
                         for name in QUANTILES},
        pending_requests=sum(pending) if pending else None,
        failures_per_second_by_reason=reasons,
        summaries=all(s.summaries for s in items),
    )
