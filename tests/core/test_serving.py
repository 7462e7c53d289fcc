"""Rates from two scrapes: units, counter resets, first scrape, fleet aggregation."""

from __future__ import annotations

import pytest
from lifecycled.core.serving import RateProblem, aggregate, serving_sample
from lifecycled.domain import ModelCounters


def counters(success: float, failed: float = 0.0, duration_us: float = 0.0,
             inferences: float | None = None, p99_us: float | None = None) -> ModelCounters:
    return ModelCounters(
        success=success, failure={"BACKEND": failed}, inferences=inferences or success,
        executions=success, request_duration_us=duration_us, queue_duration_us=duration_us / 10,
        pending=0.0, quantiles_us={"0.99": p99_us} if p99_us is not None else {},
        summaries=p99_us is not None)


def test_rates_units_and_ratios() -> None:
    sample = serving_sample(counters(100, 0, 1_000_000), counters(300, 50, 3_000_000, 500, 20_000),
                            interval=10.0)
    assert not isinstance(sample, RateProblem)
    assert sample.requests_per_second == pytest.approx(25.0)  # (200 + 50) / 10
    assert sample.inferences_per_second == pytest.approx(40.0)  # (500 - 100) / 10
    assert sample.error_ratio == pytest.approx(50 / 250)
    assert sample.latency_mean_seconds == pytest.approx(2_000_000 / 200 * 1e-6)  # 10 ms
    assert sample.latency_seconds["p99"] == pytest.approx(0.02)
    assert sample.latency_seconds["p50"] is None  # not exported: unknown, never the mean
    assert sample.failures_per_second_by_reason == {"BACKEND": 5.0}


def test_no_traffic_gives_unknown_ratios_not_zero() -> None:
    sample = serving_sample(counters(10, 1, 100), counters(10, 1, 100), interval=5.0)
    assert not isinstance(sample, RateProblem)
    assert sample.requests_per_second == 0.0
    assert sample.error_ratio is None and sample.latency_mean_seconds is None


@pytest.mark.parametrize(("before", "after", "interval", "reason"), [
    (None, counters(5), 10.0, "first_scrape"),
    (counters(500), counters(20), 10.0, "counter_reset"),
    (counters(5, failed=9), counters(6, failed=1), 10.0, "counter_reset"),
    (counters(5), counters(6), 0.0, "no_time"),
])
def test_no_rate(before: ModelCounters | None, after: ModelCounters, interval: float,
                 reason: str) -> None:
    assert serving_sample(before, after, interval) == RateProblem(reason)


def test_fleet_sums_rates_pools_ratios_and_takes_the_worst_quantile() -> None:
    a = serving_sample(counters(0, 0, 0), counters(100, 0, 1_000_000, p99_us=5_000), 10.0)
    b = serving_sample(counters(0, 0, 0), counters(300, 100, 9_000_000, p99_us=80_000), 10.0)
    fleet = aggregate({"east": a, "west": b})  # type: ignore[dict-item]
    assert fleet.requests_per_second == pytest.approx(50.0)
    assert fleet.error_ratio == pytest.approx(100 / 500)
    assert fleet.latency_mean_seconds == pytest.approx(10_000_000 / 400 * 1e-6)
    assert fleet.latency_seconds["p99"] == pytest.approx(0.08)
    assert fleet.endpoints == ("east", "west")
