"""Regression quality against scikit-learn on the same data (property-tested), and the rules for
what scikit-learn answers with a number that misleads (zero labels in MAPE, constant labels)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from lifecycled.core.concept import ErrorTrend, error_drift
from lifecycled.core.quality import OutcomeColumns, judge_outcomes
from lifecycled.core.regression import evaluate_regression
from lifecycled.domain import Severity
from lifecycled.errors import SourceError
from sklearn.metrics import (
    mean_absolute_error,
    mean_absolute_percentage_error,
    r2_score,
    root_mean_squared_error,
)

# amounts to the millionth: no value so small that its square underflows (where R² would be 0/0)
values = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False).map(lambda x: round(x, 6))


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 200).flatmap(lambda n: st.tuples(
    arrays(np.float64, n, elements=values), arrays(np.float64, n, elements=values))))
def test_the_metrics_equal_scikit_learns(pair: tuple[np.ndarray, np.ndarray]) -> None:
    predictions, labels = pair
    result = evaluate_regression(predictions, labels)
    scale = max(1.0, float(np.max(np.abs(np.concatenate([predictions, labels])))))
    assert result.mae == pytest.approx(mean_absolute_error(labels, predictions),
                                       rel=1e-12, abs=1e-12 * scale)
    assert result.rmse == pytest.approx(root_mean_squared_error(labels, predictions),
                                        rel=1e-12, abs=1e-12 * scale)
    assert result.mean_error == pytest.approx(float(np.mean(predictions - labels)),
                                              rel=1e-12, abs=1e-12 * scale)
    nonzero = np.abs(labels) >= np.finfo(np.float64).eps
    if nonzero.any():
        assert result.mape == pytest.approx(
            mean_absolute_percentage_error(labels[nonzero], predictions[nonzero]), rel=1e-12)
    if np.ptp(labels) > 0:
        assert result.r2 == pytest.approx(r2_score(labels, predictions), rel=1e-9, abs=1e-9)
    else:
        assert result.r2 is None and any("R² is undefined" in n for n in result.notes)


def test_zero_labels_are_left_out_of_mape_and_counted() -> None:
    """scikit-learn divides by a tiny epsilon where a label is 0 (a MAPE of about 10^15); the
    rows are left out here, and said so."""
    labels = np.array([0.0, 100.0, 200.0, 0.0])
    predictions = np.array([5.0, 110.0, 180.0, 1.0])
    result = evaluate_regression(predictions, labels)
    assert result.mape == pytest.approx((0.1 + 0.1) / 2) and result.mape_excluded == 2
    assert mean_absolute_percentage_error(labels, predictions) > 1e14
    only_zero = evaluate_regression(np.array([1.0, 2.0]), np.zeros(2))
    assert only_zero.mape is None and "undefined" in only_zero.notes[0]


def test_nothing_labelled_gives_no_numbers() -> None:
    result = evaluate_regression(np.array([]), np.array([]))
    assert (result.samples, result.mae, result.rmse, result.r2) == (0, None, None, None)


def test_outcomes_of_a_regression_model_are_judged_by_its_metrics() -> None:
    """Numeric predictions beside numeric labels: the regression metrics (equal to
    scikit-learn's), the outcomes without a label counted apart, concept drift on the error."""
    rng = np.random.default_rng(2)
    labels = rng.lognormal(8, 1, 1000)
    predictions = labels * rng.normal(1, 0.1, 1000)
    labels_with_gaps = labels.copy()
    labels_with_gaps[:10] = np.nan
    result = judge_outcomes("loss.csv", {"prediction": predictions, "label": labels_with_gaps},
                        OutcomeColumns(), model_type="regression")
    assert result["model_type"] == "regression" and result["samples"] == 990
    assert result["unlabelled"] == 10
    assert result["mae"] == pytest.approx(mean_absolute_error(labels[10:], predictions[10:]))
    assert result["concept"]["severity"] == "low" and "accuracy" not in result


def test_outcomes_that_do_not_fit_the_model_type_name_the_column() -> None:
    """Words as a regression's labels, fractions as a classifier's: one line naming the column."""
    with pytest.raises(SourceError, match=r"column 'label' holds 'yes', not a number"):
        judge_outcomes("o.csv", {"prediction": np.array([1.0, 2.0]),
                             "label": np.array(["yes", "no"], dtype=object)},
                   OutcomeColumns(), model_type="regression")
    with pytest.raises(SourceError, match=r"column 'label' holds continuous values \(such as "
                                          r"0.37\).*model_type: regression"):
        judge_outcomes("o.csv", {"prediction": np.array([0, 1, 1]),
                             "label": np.array([1.0, 0.37, 0.0])}, OutcomeColumns())


def test_a_rising_error_is_concept_drift_and_a_steady_one_is_not() -> None:
    """At the budget's alpha (a pass every 5 minutes): a steady error is low in 200 samples; an
    error 40 % larger in the second half is found, by the trend and Page-Hinkley."""
    rng = np.random.default_rng(4)
    alpha = 1 / 8640
    steady = [error_drift(np.abs(rng.normal(0, 1, 600)), alpha=alpha).severity
              for _ in range(200)]
    assert all(s == Severity.LOW for s in steady)
    rising = np.abs(np.concatenate([rng.normal(0, 1, 300), rng.normal(0, 1.4, 300)]))
    found = error_drift(rising, alpha=alpha)
    assert found.severity is not None and found.severity >= Severity.MEDIUM
    assert isinstance(found.trend, ErrorTrend) and "error_increase" in found.trend.indicators


def test_a_regression_breach_is_judged_on_its_bound_under_the_budget() -> None:
    """At the budget's alpha (a pass every 5 minutes): an MAE of about 12 against a maximum of
    10 is noise on 30 outcomes and a breach on 3,000; a bias of about 4.5 against a band of 3
    likewise. The bounds are checked against the normal-approximation formula."""
    from lifecycled.core.regression import regression_bounds
    from lifecycled.core.thresholds import evaluate
    from scipy import stats

    alpha = 1 / 8640
    limits = {"max_mae": 10.0, "max_abs_mean_error": 3.0, "min_r_squared": 0.0}
    rng = np.random.default_rng(8)
    for n, breached in ((30, False), (3000, True)):
        label = rng.normal(100, 40, n)
        prediction = label + 4.5 + rng.normal(0, 14, n)
        result = judge_outcomes("o.csv", {"prediction": prediction, "label": label},
                            OutcomeColumns(), model_type="regression", alpha=alpha)
        bounds = result["judged_on"]
        error = prediction - label
        z = stats.norm.isf(alpha)
        assert bounds["mae"] == pytest.approx(
            np.mean(np.abs(error)) - z * np.std(np.abs(error), ddof=1) / np.sqrt(n))
        assert bounds == regression_bounds(prediction, label, result, alpha)
        values = {"mae": result["mae"], "mean_error": result["mean_error"],
                  "r_squared": result["r2"]}
        found = {b.threshold for b in evaluate(values, limits, bounds).breaches}
        assert found == ({"max_mae", "max_abs_mean_error"} if breached else set()), n
        assert {b.threshold for b in evaluate(values, limits).breaches} >= {"max_mae"}
