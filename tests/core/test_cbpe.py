"""Label-free performance estimation (CBPE) against known answers: the calibration equals
scikit-learn's isotonic regression, and on synthetic data with a known P(label | score) under
covariate shift the interval covers the realized metrics in at least 90 % of windows (nominal
95 %), and the estimate follows a known drop before any label of it arrives."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifecycled.core.cbpe import calibrate, estimate, estimate_classes
from lifecycled.core.quality import METRICS
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


def coverage(found: list[dict[str, Any]], actual: list[dict[str, float]]) -> dict[str, float]:
    """Per metric, the share of windows whose estimated interval holds the realized value."""
    return {metric: float(np.mean([f[f"{metric}_lower"] <= a[metric] <= f[f"{metric}_upper"]
                                   for f, a in zip(found, actual, strict=True)]))
            for metric in METRICS}


@pytest.mark.slow
def test_the_interval_covers_the_realized_metrics_under_covariate_shift() -> None:
    rng = np.random.default_rng(11)
    reference = np.round(rng.uniform(0, 1, 5000), 3)
    reference_labels = (rng.random(reference.size) < truth(reference)).astype(int)
    windows = 120
    found, actual = [], []
    for window in range(windows):
        scores = rng.beta(2, 1 + window % 3, 1000)  # the score distribution shifts
        labels = (rng.random(scores.size) < truth(scores)).astype(int)  # P(y | score) holds
        predicted = (scores >= 0.7).astype(int)
        found.append(estimate(reference, reference_labels, scores, predicted, seed=window))
        actual.append(realized(labels, predicted, scores))
    share = coverage(found, actual)
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



CLASSES = 3


def class_truth(x: np.ndarray) -> np.ndarray:
    """P(class | x) of a three-class problem on one feature: softmax of (-2x, 0, 2x)."""
    logits = np.column_stack([-2 * x, np.zeros_like(x), 2 * x])
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def class_scores(x: np.ndarray) -> np.ndarray:
    """The model's scores: monotone in the true class probabilities but not them (sharpened and
    renormalised), so the estimate stands only if the calibration is right."""
    s = class_truth(x) ** 3
    return s / s.sum(axis=1, keepdims=True)


def draw_classes(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    return (rng.random(len(p))[:, None] > np.cumsum(p, axis=1)).sum(axis=1)


def realized_classes(labels: np.ndarray, predicted: np.ndarray, scores: np.ndarray
                     ) -> dict[str, float]:
    everything = list(range(CLASSES))
    return {"accuracy": accuracy_score(labels, predicted),
            "precision": precision_score(labels, predicted, average="macro", labels=everything,
                                         zero_division=0),
            "recall": recall_score(labels, predicted, average="macro", labels=everything,
                                   zero_division=0),
            "f1": f1_score(labels, predicted, average="macro", labels=everything,
                           zero_division=0),
            # scikit-learn's multi_class="ovr" macro average, without its check that the
            # (rounded) scores sum to 1
            "roc_auc": float(np.mean([roc_auc_score(labels == j, scores[:, j])
                                      for j in everything]))}


@pytest.mark.slow
def test_multiclass_intervals_cover_the_realized_metrics_under_covariate_shift() -> None:
    rng = np.random.default_rng(23)
    x = rng.normal(0, 1.2, 6000)
    reference_scores = np.round(class_scores(x), 4)
    reference_labels = draw_classes(rng, class_truth(x))
    windows = 100
    found, actual = [], []
    for window in range(windows):
        shifted = rng.normal(0.4 * (window % 4 - 1.5), 1.0, 1000)  # the feature shifts
        scores = np.round(class_scores(shifted), 4)
        labels = draw_classes(rng, class_truth(shifted))  # P(y | x) holds
        predicted = scores.argmax(axis=1)
        found.append(estimate_classes(reference_scores, reference_labels, scores, predicted,
                                      seed=window))
        actual.append(realized_classes(labels, predicted, scores))
    share = coverage(found, actual)
    print(f"\nmulticlass interval coverage over {windows} windows (nominal 95 %): {share}")
    assert min(share.values()) >= 0.9, share


@pytest.mark.slow
def test_the_multiclass_estimate_follows_a_known_drop() -> None:
    """The feature moves towards the boundaries between classes: accuracy falls, and the
    estimate, from the scores alone, falls with it."""
    rng = np.random.default_rng(8)
    x = rng.normal(0, 1.5, 6000)
    reference_scores, reference_labels = class_scores(x), draw_classes(rng, class_truth(x))
    estimated, actual = [], []
    for spread in (1.5, 0.8, 0.3):
        shifted = rng.normal(0, spread, 2000)
        scores = class_scores(shifted)
        labels = draw_classes(rng, class_truth(shifted))
        predicted = scores.argmax(axis=1)
        found = estimate_classes(reference_scores, reference_labels, scores, predicted)
        estimated.append(found["accuracy"])
        actual.append(accuracy_score(labels, predicted))
        assert found["accuracy_lower"] <= actual[-1] <= found["accuracy_upper"]
    assert estimated[0] > estimated[1] > estimated[2]
    assert estimated[0] - estimated[2] == pytest.approx(actual[0] - actual[2], abs=0.05)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(30, 300), st.sampled_from([2, 3]))
@pytest.mark.slow
def test_two_classes_estimate_as_the_binary_estimate_does(seed: int, n: int,
                                                          decimals: int) -> None:
    """A binary model given as two class scores (1 - s, s): the multiclass estimate's accuracy
    and ROC AUC are the binary estimate's (calibrating "class 0" on 1 - s is 1 minus
    calibrating "class 1" on s), and every interval holds its point."""
    rng = np.random.default_rng(seed)
    reference = np.round(rng.uniform(0, 1, 500), decimals)
    reference_labels = (rng.random(reference.size) < truth(reference)).astype(int)
    scores = np.round(rng.uniform(0, 1, n), decimals)
    predicted = (scores >= 0.5).astype(int)
    binary = estimate(reference, reference_labels, scores, predicted)
    both = estimate_classes(np.column_stack([1 - reference, reference]), reference_labels,
                            np.column_stack([1 - scores, scores]), predicted)
    assert both["accuracy"] == pytest.approx(binary["accuracy"], abs=1e-9)
    assert (both["roc_auc"] is None) == (binary["roc_auc"] is None)
    if binary["roc_auc"] is not None:
        assert both["roc_auc"] == pytest.approx(binary["roc_auc"], abs=1e-9)
    for metric in METRICS:
        if both[metric] is not None and both[f"{metric}_lower"] is not None:
            assert both[f"{metric}_lower"] <= both[metric] <= both[f"{metric}_upper"]
