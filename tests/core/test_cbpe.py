"""Label-free performance estimation (CBPE) against known answers: the calibration equals
scikit-learn's isotonic regression, and on synthetic data with a known P(label | score) under
covariate shift the interval covers the realized metrics in at least 90 % of windows (nominal
95 %), and the estimate follows a known drop before any label of it arrives."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifecycled.core.cbpe import METRICS, calibrate, estimate
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score


def truth(scores: np.ndarray) -> np.ndarray:
    return scores ** 2  # the raw score is not a probability: P(positive | score) = score²


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(5, 400), st.sampled_from([2, 3, 10]))
def test_the_calibration_is_sklearns_isotonic_regression(seed: int, n: int,
                                                        decimals: int) -> None:
    rng = np.random.default_rng(seed)
    scores = np.round(rng.uniform(0, 1, n), decimals)  # ties, too
    labels = (rng.random(n) < truth(scores)).astype(int)
    fitted = calibrate(scores, labels)
    reference = IsotonicRegression(out_of_bounds="clip").fit(scores, labels)
    probe = np.concatenate([scores, rng.uniform(-0.2, 1.2, 50)])
    assert np.allclose(fitted(probe), reference.predict(probe), atol=1e-12)


def realized(labels: np.ndarray, predicted: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    return {"accuracy": accuracy_score(labels, predicted),
            "precision": precision_score(labels, predicted),
            "recall": recall_score(labels, predicted), "f1": f1_score(labels, predicted),
            "roc_auc": roc_auc_score(labels, scores)}


def test_the_interval_covers_the_realized_metrics_under_covariate_shift() -> None:
    rng = np.random.default_rng(11)
    reference = np.round(rng.uniform(0, 1, 5000), 3)
    reference_labels = (rng.random(reference.size) < truth(reference)).astype(int)
    covered = dict.fromkeys(METRICS, 0)
    windows = 120
    for window in range(windows):
        scores = rng.beta(2, 1 + window % 3, 1000)  # the score distribution shifts
        labels = (rng.random(scores.size) < truth(scores)).astype(int)  # P(y | score) holds
        predicted = (scores >= 0.7).astype(int)
        found = estimate(reference, reference_labels, scores, predicted, seed=window)
        for metric, value in realized(labels, predicted, scores).items():
            covered[metric] += found[f"{metric}_lower"] <= value <= found[f"{metric}_upper"]
    share = {metric: count / windows for metric, count in covered.items()}
    print(f"\ninterval coverage over {windows} windows (nominal 95 %): {share}")
    assert min(share.values()) >= 0.9, share


def test_the_estimate_follows_a_known_drop_before_the_labels_arrive() -> None:
    """The model's scores drift towards the uncertain middle: its accuracy falls, and the
    estimate, from scores alone, falls with it."""
    rng = np.random.default_rng(5)
    reference = rng.uniform(0, 1, 5000)
    reference_labels = (rng.random(reference.size) < reference).astype(int)
    estimated, actual = [], []
    for spread in (0.5, 0.3, 0.1):  # scores 0.5 ± spread
        scores = np.clip(0.5 + rng.uniform(-spread, spread, 2000), 0, 1)
        labels = (rng.random(scores.size) < scores).astype(int)
        predicted = (scores >= 0.5).astype(int)
        found = estimate(reference, reference_labels, scores, predicted)
        estimated.append(found["accuracy"])
        actual.append(accuracy_score(labels, predicted))
        assert found["accuracy_lower"] <= actual[-1] <= found["accuracy_upper"]
    assert estimated[0] > estimated[1] > estimated[2]
    assert estimated[0] - estimated[2] == pytest.approx(actual[0] - actual[2], abs=0.05)


def test_an_empty_window_estimates_nothing() -> None:
    found = estimate(np.array([0.1, 0.9] * 100), np.array([0, 1] * 100), np.zeros(0),
                     np.zeros(0))
    assert found["n"] == 0 and all(found[m] is None for m in METRICS)

