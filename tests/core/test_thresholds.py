"""Threshold breaches, the performance score and level (DESIGN.md section 6), against values
worked out by hand from the documented formulas."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lifecycled.core.thresholds import evaluate, level_of, score_components
from lifecycled.domain import REGRESSION_THRESHOLDS, THRESHOLDS, Level

LIMITS = {"min_accuracy": 0.85, "max_latency_p99_seconds": 0.1, "min_throughput_rps": 10.0,
          "max_error_ratio": 0.01, "max_memory_bytes": 2.0**31, "max_cpu_ratio": 0.8}
HEALTHY = {"accuracy": 0.95, "latency_p99_seconds": 0.05, "requests_per_second": 20.0,
           "error_ratio": 0.0, "memory_bytes": 2.0**30, "cpu_utilization_ratio": 0.5}


def test_a_healthy_snapshot_breaches_nothing_and_checks_everything() -> None:
    result = evaluate(HEALTHY, LIMITS)
    assert result.breaches == ()
    assert set(result.checked) == {t.key for t in THRESHOLDS} - REGRESSION_THRESHOLDS
    assert result.unknown == ()


@pytest.mark.parametrize(("field", "value", "key"), [
    ("accuracy", 0.84, "min_accuracy"),
    ("latency_p99_seconds", 0.11, "max_latency_p99_seconds"),
    ("requests_per_second", 9.0, "min_throughput_rps"),
    ("error_ratio", 0.02, "max_error_ratio"),
    ("memory_bytes", 2.0**32, "max_memory_bytes"),
])
def test_each_threshold_breaches_on_its_own_side(field: str, value: float, key: str) -> None:
    (breach,) = evaluate({**HEALTHY, field: value}, LIMITS).breaches
    assert (breach.threshold, breach.value, breach.limit) == (key, value, LIMITS[key])


def test_a_value_at_the_limit_is_not_a_breach() -> None:
    at_limit = {"accuracy": 0.85, "latency_p99_seconds": 0.1, "requests_per_second": 10.0,
                "error_ratio": 0.01, "memory_bytes": 2.0**31, "cpu_utilization_ratio": 0.8}
    assert evaluate(at_limit, LIMITS).breaches == ()


def test_an_unknown_value_is_neither_breached_nor_passed() -> None:
    result = evaluate({**HEALTHY, "accuracy": None, "memory_bytes": None}, LIMITS)
    assert set(result.unknown) == {"min_accuracy", "max_memory_bytes"}
    assert "min_accuracy" not in result.checked
    assert result.breaches == ()


def test_a_threshold_that_is_not_set_is_not_checked() -> None:
    result = evaluate({**HEALTHY, "error_ratio": 0.5}, {"min_accuracy": 0.85})
    assert result.checked == ("min_accuracy",)
    assert result.breaches == ()


def test_components_follow_the_documented_formulas() -> None:
    values = {"accuracy": 0.9, "latency_p99_seconds": 0.05, "requests_per_second": 15.0,
              "error_ratio": 0.005}
    assert score_components(values, LIMITS) == pytest.approx(
        {"accuracy": 90.0, "latency": 75.0, "throughput": 75.0, "errors": 95.0})
    capped = score_components({"requests_per_second": 100.0, "error_ratio": 0.5,
                               "latency_p99_seconds": 1.0}, LIMITS)
    assert capped == {"throughput": 100.0, "errors": 0.0, "latency": 0.0}


def test_the_score_is_weighted_and_renormalised_over_known_components() -> None:
    values = {"accuracy": 0.9, "latency_p99_seconds": 0.05, "requests_per_second": 15.0,
              "error_ratio": 0.005}
    full = evaluate(values, LIMITS)
    assert full.score == pytest.approx(0.4 * 90 + 0.2 * 75 + 0.2 * 75 + 0.2 * 95)  # 85
    assert full.level == Level.GOOD
    serving_only = evaluate({k: v for k, v in values.items() if k != "accuracy"}, LIMITS)
    assert serving_only.score == pytest.approx((75 + 75 + 95) / 3)  # weights 0.2 each
    assert serving_only.level == Level.GOOD


def test_nothing_known_is_unknown_never_a_level() -> None:
    result = evaluate({}, LIMITS)
    assert result.score is None
    assert result.level == Level.UNKNOWN


@pytest.mark.parametrize(("score", "level"), [
    (100.0, Level.EXCELLENT), (90.0, Level.EXCELLENT), (89.999, Level.GOOD), (80.0, Level.GOOD),
    (79.9, Level.ACCEPTABLE), (70.0, Level.ACCEPTABLE), (69.9, Level.POOR), (50.0, Level.POOR),
    (49.9, Level.CRITICAL), (0.0, Level.CRITICAL), (None, Level.UNKNOWN),
])
def test_level_cut_points(score: float | None, level: Level) -> None:
    assert level_of(score) == level


finite = st.floats(min_value=0.0, max_value=1e6, allow_nan=False)


@given(accuracy=st.floats(0.0, 1.0), p99=finite, rps=finite, errors=st.floats(0.0, 1.0))
def test_the_score_is_always_between_0_and_100(accuracy: float, p99: float, rps: float,
                                               errors: float) -> None:
    result = evaluate({"accuracy": accuracy, "latency_p99_seconds": p99,
                       "requests_per_second": rps, "error_ratio": errors}, LIMITS)
    assert result.score is not None and 0.0 <= result.score <= 100.0
    assert result.level != Level.UNKNOWN


def test_a_minimum_with_a_confidence_bound_is_breached_only_beyond_chance() -> None:
    """Accuracy 0.80 on few labels (upper bound 0.88) is noise against a minimum of 0.85; on
    many labels (upper bound 0.83) it is a breach, and the breach says what was judged."""
    noisy = evaluate({**HEALTHY, "accuracy": 0.80}, LIMITS, {"accuracy": 0.88})
    assert noisy.breaches == () and "min_accuracy" in noisy.checked
    (breach,) = evaluate({**HEALTHY, "accuracy": 0.80}, LIMITS, {"accuracy": 0.83}).breaches
    assert breach.to_json() == {"threshold": "min_accuracy", "value": 0.80, "limit": 0.85,
                                "bound": 0.83}
    unbounded = evaluate({**HEALTHY, "accuracy": 0.80}, LIMITS, {"accuracy": None})
    assert [b.threshold for b in unbounded.breaches] == ["min_accuracy"]


def test_a_regression_models_thresholds_and_score() -> None:
    """Errors above their maximum, R² below its minimum and a bias beyond its band either way
    are breaches; the quality part of the score is the error against its limit (50 at it)."""
    limits = {"max_mae": 10.0, "max_rmse": 20.0, "max_mape_ratio": 0.2, "min_r_squared": 0.5,
              "max_abs_mean_error": 3.0, "max_latency_p99_seconds": 0.1}
    fine = {"mae": 8.0, "rmse": 15.0, "mape_ratio": 0.1, "r_squared": 0.8, "mean_error": -2.5,
            "latency_p99_seconds": 0.05}
    result = evaluate(fine, limits)
    assert result.breaches == () and set(result.checked) == set(limits)
    assert result.components["regression"] == pytest.approx(100 - 50 * 15 / 20)
    assert result.score == pytest.approx((0.4 * 62.5 + 0.2 * 75) / 0.6)
    bad = evaluate({**fine, "mae": 12.0, "r_squared": 0.3, "mean_error": -3.5}, limits)
    assert sorted(b.threshold for b in bad.breaches) == ["max_abs_mean_error", "max_mae",
                                                         "min_r_squared"]
    over = evaluate({**fine, "mean_error": 3.5}, limits)
    assert [b.threshold for b in over.breaches] == ["max_abs_mean_error"]
