"""Label-free performance estimation for classifiers (confidence-based performance estimation,
CBPE).

From a labelled reference the scores are calibrated (isotonic regression, by pool-adjacent-
violators), so that a calibrated score is the probability that the label is positive. For a
window without labels, each prediction's label is then a Bernoulli draw with that probability:
the expected confusion matrix gives the estimates, and the interval joins the spread of the
metrics over draws of the labels (the sampling error of a window of that size) with the spread
over resamples of the reference (the calibration's own error).

A multiclass model's score of each class is calibrated against "the label is that class" (one
against the rest) and the calibrated scores of a prediction are scaled to sum to 1: the label is
then a draw from those class probabilities. Precision, recall and F1 are macro averages over
the classes and ROC AUC the macro one-against-the-rest average, as the realized metrics are.

The assumption: P(label | score) is the same in the window as in the reference (covariate shift
is allowed, concept drift is not), so a concept-drift finding marks the estimate untrusted; so do
the other rules ``estimate_window`` checks before it estimates (too small a reference,
predictions that are not what the scores say).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from lifecycled.core.quality import METRICS, OutcomeColumns, comparable, normalise, roc_auc

DRAWS = 200  # draws of the window's labels for the interval
BOOTSTRAPS = 40  # resamples of the reference for the calibration's part of the interval
MIN_REFERENCE = 100  # labelled predictions needed to calibrate
MIN_AGREEMENT = 0.99  # share of predictions the scores must reproduce (a threshold, the argmax)
DISTRUSTING_CONCEPT = ("medium", "high", "critical")  # concept drift that breaks the calibration


@dataclass(frozen=True)
class Estimate:
    """The estimated quality of the predictions in (window_start, window_end], made before their
    labels: ``values`` holds each metric with its ``_lower``/``_upper`` bounds, the interval's
    ``level`` and the ``reference`` size. An untrusted estimate says why (``reason``); thresholds
    and triggers judge only a trusted one."""

    window_start: float
    window_end: float
    method: str = "CBPE"  # or DLE: a regression model's errors
    trusted: bool = True
    reason: str | None = None
    n: int | None = None  # predictions estimated
    values: Mapping[str, Any] = field(default_factory=dict)

    def untrusted(self, reason: str) -> Estimate:
        return replace(self, trusted=False, reason=reason)

    def judged_with(self, concept: str | None) -> Estimate:
        """This estimate after the labelled window's concept drift (its severity): untrusted
        when P(label | score) changed, since the calibration no longer holds."""
        if self.trusted and concept in DISTRUSTING_CONCEPT:
            return self.untrusted(f"concept drift ({concept}) in the labelled window: "
                                  "P(label | score) changed, the calibration no longer holds")
        return self

    def value(self, metric: str) -> float | None:
        found = self.values.get(metric)
        return float(found) if isinstance(found, int | float) else None

    def to_json(self) -> dict[str, Any]:
        return {"window_start": self.window_start, "window_end": self.window_end,
                "method": self.method, "trusted": self.trusted,
                **({"reason": self.reason} if self.reason else {}),
                **({"n": self.n} if self.n is not None else {}), **self.values}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Estimate:
        fixed = ("window_start", "window_end", "method", "trusted", "reason", "n")
        return cls(float(data["window_start"]), float(data["window_end"]),
                   str(data.get("method", "CBPE")), bool(data.get("trusted", True)),
                   data.get("reason"), data.get("n"),
                   {k: v for k, v in data.items() if k not in fixed})


def estimate_window(reference: Mapping[str, np.ndarray], columns: OutcomeColumns,
                    positive: str | None, predicted: np.ndarray, scores: Sequence[Any], *,
                    window_start: float, window_end: float) -> Estimate:
    """CBPE of the newest predictions (``predicted`` with their stored ``scores``: a number, or
    class -> number) calibrated on a labelled reference (its ``columns``; ``positive``: the
    binary model's positive label, None for a multiclass one), or an untrusted estimate saying
    which rule the window breaks: a binary model is estimated from its score, a multiclass one
    from a score per class; the reference holds ``MIN_REFERENCE`` labels; the predictions are
    what the scores say (a threshold of the score, the class of the highest score) for
    ``MIN_AGREEMENT`` of the reference; every label and prediction has its class's score."""
    found = Estimate(window_start, window_end)
    classes = list(columns.class_scores or {})
    if positive is not None and columns.score is None:
        return found.untrusted("a binary model is estimated from its score (score_column)")
    if positive is None and not classes:
        return found.untrusted("a multiclass model is estimated from a score per class "
                               "(score_columns)")
    _, labels = normalise(reference[columns.prediction], reference[columns.label])
    if labels.size < MIN_REFERENCE:
        return found.untrusted(f"{labels.size} labelled predictions to calibrate on, fewer "
                               f"than {MIN_REFERENCE}")
    if positive is not None and columns.score is not None:
        score = reference[columns.score]
        agreement = threshold_agreement(score, comparable(reference[columns.prediction])
                                        == positive)
        if agreement < MIN_AGREEMENT:
            return found.untrusted(f"the predictions are not a threshold of the score (the "
                                   f"best threshold agrees with {agreement:.1%} of them): the "
                                   "estimate assumes they are")
        usable = [i for i, s in enumerate(scores) if isinstance(s, int | float)]
        values = np.array([float(scores[i]) for i in usable])
        flags = (comparable(predicted[usable]) == positive if usable
                 else np.zeros(0, dtype=bool))
        metrics = estimate(score, (labels == positive).astype(int), values, flags)
        return replace(found, n=int(metrics.pop("n")),
                       values={**metrics, "reference": int(labels.size)})
    unknown = sorted(set(labels.tolist()) - set(classes))
    if unknown:
        return found.untrusted(f"labels without a score column: {', '.join(unknown)}")
    matrix = np.column_stack([reference[column] for column in (columns.class_scores or {})
                              .values()])
    agreement = float(np.mean(comparable(reference[columns.prediction])
                              == np.array(classes, dtype=object)[matrix.argmax(axis=1)]))
    if agreement < MIN_AGREEMENT:
        return found.untrusted(f"the predictions are not the class of the highest score "
                               f"({agreement:.1%} of them are): the estimate assumes they are")
    index = {c: i for i, c in enumerate(classes)}
    usable = [i for i, d in enumerate(scores) if isinstance(d, dict)
              and all(isinstance(d.get(c), int | float) for c in classes)]
    chosen = comparable(predicted[usable]) if usable else np.zeros(0, dtype=object)
    outside = sorted({str(c) for c in chosen.tolist()} - set(classes))
    if outside:
        return found.untrusted(f"predictions of classes without a score column: "
                               f"{', '.join(outside)}")
    window = np.array([[float(scores[i][c]) for c in classes] for i in usable]).reshape(
        len(usable), len(classes))
    metrics = estimate_classes(matrix, np.array([index[c] for c in labels.tolist()]), window,
                               np.array([index[c] for c in chosen.tolist()], dtype=int))
    return replace(found, n=int(metrics.pop("n")),
                   values={**metrics, "reference": int(labels.size), "classes": classes})


def threshold_agreement(scores: np.ndarray, positive: np.ndarray) -> float:
    """The largest share of predictions that "positive when the score is at least t" gives
    right, over every t: 1.0 when the predictions are a threshold of the score."""
    order = np.argsort(scores, kind="stable")
    flags = positive[order].astype(bool)
    negatives_below = np.concatenate([[0], np.cumsum(~flags)])
    positives_from = flags.sum() - np.concatenate([[0], np.cumsum(flags)])
    return float(np.max(negatives_below + positives_from) / max(1, flags.size))


@dataclass(frozen=True)
class Calibration:
    """A non-decreasing map from score to P(positive): linear between the points ``x`` (each
    block's lowest and highest score) and their ``y``, constant beyond them."""

    x: np.ndarray
    y: np.ndarray

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return np.interp(scores, self.x, self.y)


def calibrate(scores: np.ndarray, labels: np.ndarray) -> Calibration:
    """Isotonic regression of the 0/1 ``labels`` on ``scores`` (pool-adjacent-violators on the
    scores' distinct values, weighted by their counts), as scikit-learn's
    ``IsotonicRegression(out_of_bounds="clip")`` fits and predicts it."""
    order = np.argsort(scores, kind="stable")
    s, y = scores[order], labels[order].astype(float)
    distinct, start = np.unique(s, return_index=True)
    sums = np.add.reduceat(y, start)
    weights = np.diff(np.append(start, s.size)).astype(float)
    means: list[float] = []  # a stack of blocks: mean, weight, first distinct index
    sizes: list[float] = []
    firsts: list[int] = []
    for i in range(distinct.size):
        mean, weight, first = sums[i] / weights[i], weights[i], i
        while means and means[-1] >= mean:
            previous, size = means.pop(), sizes.pop()
            first = firsts.pop()
            mean = (previous * size + mean * weight) / (size + weight)
            weight += size
        means.append(mean)
        sizes.append(weight)
        firsts.append(first)
    lasts = [*(f - 1 for f in firsts[1:]), distinct.size - 1]
    x = np.ravel([(distinct[f], distinct[last]) for f, last in zip(firsts, lasts, strict=True)])
    return Calibration(x, np.repeat(np.array(means), 2))


def _metrics(predicted: np.ndarray, positive: np.ndarray, scores: np.ndarray
             ) -> dict[str, float | None]:
    tp = float(np.sum(predicted & positive))
    fp = float(np.sum(predicted & ~positive))
    fn = float(np.sum(~predicted & positive))
    n = predicted.size
    return {"accuracy": (n - fp - fn) / n if n else None,
            "precision": tp / (tp + fp) if tp + fp else None,
            "recall": tp / (tp + fn) if tp + fn else None,
            "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None,
            "roc_auc": roc_auc(positive, scores)}


def _soft_auc(scores: np.ndarray, p: np.ndarray) -> float | None:
    """The expected ROC AUC when each label is positive with probability ``p``: pairs of a
    positive and a negative weighted by p_i (1 - p_j), ties counted half."""
    order = np.argsort(scores, kind="stable")
    s, q = scores[order], p[order]
    negative = 1 - q
    _, start = np.unique(s, return_index=True)
    pos_sum, neg_sum = np.add.reduceat(q, start), np.add.reduceat(negative, start)
    below = np.cumsum(neg_sum) - neg_sum  # negative weight strictly below each distinct score
    pairs = float(np.sum(pos_sum * below) + 0.5 * np.sum(pos_sum * neg_sum))
    pairs -= 0.5 * float(np.sum(q * negative))  # a prediction is not paired with itself
    total = float(q.sum() * negative.sum() - np.sum(q * negative))
    return pairs / total if total > 0 else None


def _point(p: np.ndarray, hits: np.ndarray, scores: np.ndarray) -> dict[str, float | None]:
    n = p.size
    tp, fp, fn = float(np.sum(p[hits])), float(np.sum(1 - p[hits])), float(np.sum(p[~hits]))
    return {"accuracy": (n - fp - fn) / n,
            "precision": tp / (tp + fp) if tp + fp > 0 else None,
            "recall": tp / (tp + fn) if tp + fn > 0 else None,
            "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn > 0 else None,
            "roc_auc": _soft_auc(scores, p)}


def estimate(reference_scores: np.ndarray, reference_labels: np.ndarray, scores: np.ndarray,
             predicted: np.ndarray, *, level: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """The estimated metrics of a binary model's window (``scores``: its raw scores,
    ``predicted``: its 0/1 predictions) from a labelled reference, with their ``level``
    interval; JSON form.

    The interval joins two sources of error in quadrature: the window's labels are a draw (the
    spread of the metrics over draws of labels with the calibrated probabilities), and so is the
    reference the calibration was fitted on (the spread of the estimates over bootstrap
    resamples of it)."""
    n = int(scores.size)
    if n == 0:
        return {"n": 0, "level": level, **{m: None for m in METRICS}}
    hits = predicted.astype(bool)
    p = calibrate(reference_scores, reference_labels)(scores)
    rng = np.random.default_rng(seed)
    sampled = [_metrics(hits, rng.random(n) < p, scores) for _ in range(DRAWS)]
    fitted = []
    for _ in range(BOOTSTRAPS):
        pick = rng.integers(0, reference_scores.size, reference_scores.size)
        fitted.append(_point(calibrate(reference_scores[pick], reference_labels[pick])(scores),
                             hits, scores))
    return _with_interval(n, level, _point(p, hits, scores), sampled, fitted)


def estimate_classes(reference_scores: np.ndarray, reference_labels: np.ndarray,
                     scores: np.ndarray, predicted: np.ndarray, *, level: float = 0.95,
                     seed: int = 0) -> dict[str, Any]:
    """The estimated metrics of a multiclass model's window: ``scores`` (n by k, one column per
    class), ``predicted`` (the class index of each prediction), from a labelled reference
    (``reference_labels``: class indexes), with their ``level`` interval as ``estimate`` gives
    it."""
    n, k = scores.shape
    if n == 0:
        return {"n": 0, "level": level, **{m: None for m in METRICS}}
    predicted = predicted.astype(int)
    p = _class_probabilities(reference_scores, reference_labels, scores)
    rng = np.random.default_rng(seed)
    cumulative = np.cumsum(p, axis=1)
    sampled = []
    for _ in range(DRAWS):
        drawn = np.minimum((rng.random((n, 1)) > cumulative).sum(axis=1), k - 1)
        sampled.append(_class_metrics(predicted, drawn, scores))
    fitted = []
    for _ in range(BOOTSTRAPS):
        pick = rng.integers(0, reference_labels.size, reference_labels.size)
        fitted.append(_class_point(_class_probabilities(
            reference_scores[pick], reference_labels[pick], scores), predicted, scores))
    return _with_interval(n, level, _class_point(p, predicted, scores), sampled, fitted)


def _class_probabilities(reference_scores: np.ndarray, reference_labels: np.ndarray,
                         scores: np.ndarray) -> np.ndarray:
    """Each class's score calibrated one against the rest, each row scaled to sum to 1 (a row
    calibrated to all zeros: every class equally likely)."""
    k = scores.shape[1]
    calibrated = np.column_stack([
        calibrate(reference_scores[:, j], (reference_labels == j).astype(int))(scores[:, j])
        for j in range(k)])
    total = calibrated.sum(axis=1, keepdims=True)
    return np.where(total > 0, calibrated / np.where(total > 0, total, 1), 1 / k)


def _macro(tp: np.ndarray, predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """Macro precision, recall and F1 from each class's (expected) true positives, predictions
    and labels; an empty denominator counts as 0, as in the realized metrics."""
    def ratio(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.mean(np.divide(a, b, out=np.zeros_like(a), where=b > 0)))
    return {"precision": ratio(tp, predicted), "recall": ratio(tp, actual),
            "f1": ratio(2 * tp, predicted + actual)}


def _mean_known(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def _class_point(p: np.ndarray, predicted: np.ndarray, scores: np.ndarray
                 ) -> dict[str, float | None]:
    n, k = p.shape
    tp = np.bincount(predicted, weights=p[np.arange(n), predicted], minlength=k)
    counts = np.bincount(predicted, minlength=k).astype(float)
    return {"accuracy": float(tp.sum() / n), **_macro(tp, counts, p.sum(axis=0)),
            "roc_auc": _mean_known([_soft_auc(scores[:, j], p[:, j]) for j in range(k)])}


def _class_metrics(predicted: np.ndarray, labels: np.ndarray, scores: np.ndarray
                   ) -> dict[str, float | None]:
    k = scores.shape[1]
    right = predicted == labels
    tp = np.bincount(predicted[right], minlength=k).astype(float)
    counts = np.bincount(predicted, minlength=k).astype(float)
    actual = np.bincount(labels, minlength=k).astype(float)
    return {"accuracy": float(right.mean()), **_macro(tp, counts, actual),
            "roc_auc": _mean_known([roc_auc(labels == j, scores[:, j]) for j in range(k)])}


def _with_interval(n: int, level: float, point: dict[str, float | None],
                   sampled: list[dict[str, float | None]], fitted: list[dict[str, float | None]]
                   ) -> dict[str, Any]:
    """The point estimates with their interval: the spread over the draws of labels and the
    spread over the calibrations refitted on resamples, joined in quadrature."""
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + level / 2))
    result: dict[str, Any] = {"n": n, "level": level}
    for name in METRICS:
        value = point[name]
        drawn = [v for d in sampled if (v := d[name]) is not None]
        refitted = [v for f in fitted if (v := f[name]) is not None]
        known = value is not None and len(drawn) > DRAWS // 2 and len(refitted) > BOOTSTRAPS // 2
        spread = float(np.hypot(np.std(drawn), np.std(refitted))) if known else 0.0
        result[name] = value
        result[f"{name}_lower"] = max(0.0, value - z * spread) if known and value is not None \
            else None
        result[f"{name}_upper"] = min(1.0, value + z * spread) if known and value is not None \
            else None
    return result
