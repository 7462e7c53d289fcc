"""Quality metrics from labelled outcomes: accuracy, precision, recall, F1, ROC AUC, with counts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class ClassCounts:
    label: str
    true_positive: int
    false_positive: int
    false_negative: int
    support: int  # how many labels are this class


@dataclass(frozen=True)
class Quality:
    samples: int
    accuracy: float | None
    precision: float | None
    recall: float | None
    f1: float | None
    roc_auc: float | None
    average: str  # binary or macro
    positive_label: str | None
    classes: tuple[ClassCounts, ...]
    notes: tuple[str, ...] = ()


def _ratio(numerator: float, denominator: float) -> float:
    """A ratio whose empty denominator counts as 0 (the usual zero_division=0 convention)."""
    return numerator / denominator if denominator else 0.0


def roc_auc(is_positive: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney, ties averaged); None with a single class."""
    positives = int(is_positive.sum())
    negatives = int(is_positive.size - positives)
    if positives == 0 or negatives == 0:
        return None
    ranks = stats.rankdata(scores)
    return float((ranks[is_positive].sum() - positives * (positives + 1) / 2)
                 / (positives * negatives))


def _binary_positive(classes: list[str]) -> str | None:
    if len(classes) != 2:
        return None
    for candidate in ("1", "1.0", "true", "True", "yes", "positive"):
        if candidate in classes:
            return candidate
    return sorted(classes)[-1]


def evaluate_quality(predictions: np.ndarray, labels: np.ndarray, scores: np.ndarray | None = None,
                     *, positive_label: str | None = None) -> Quality:
    """Binary metrics when exactly two classes appear (positive: ``positive_label``, else 1/true,
    else the larger label); otherwise macro averages over every class seen in labels or predictions.
    """
    pred = np.asarray(predictions).astype(str)
    true = np.asarray(labels).astype(str)
    n = int(true.size)
    if n == 0:
        return Quality(0, None, None, None, None, None, "binary", None, (), ("no outcomes",))
    classes = sorted(set(true.tolist()) | set(pred.tolist()))
    counts = tuple(ClassCounts(c, int(np.sum((pred == c) & (true == c))),
                               int(np.sum((pred == c) & (true != c))),
                               int(np.sum((pred != c) & (true == c))), int(np.sum(true == c)))
                   for c in classes)
    accuracy = float(np.mean(pred == true))
    positive = positive_label if positive_label is not None else _binary_positive(classes)
    notes: list[str] = []
    if positive is not None and len(classes) <= 2:
        chosen = [c for c in counts if c.label == positive]
        tp, fp, fn = (chosen[0].true_positive, chosen[0].false_positive,
                      chosen[0].false_negative) if chosen else (0, 0, 0)
        precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        average = "binary"
    else:
        precision = float(np.mean([_ratio(c.true_positive, c.true_positive + c.false_positive)
                                   for c in counts]))
        recall = float(np.mean([_ratio(c.true_positive, c.true_positive + c.false_negative)
                                for c in counts]))
        average = "macro"
        positive = None
    if average == "binary":
        f1 = _ratio(2 * precision * recall, precision + recall)
    else:
        f1 = float(np.mean([_ratio(2 * c.true_positive,
                                     2 * c.true_positive + c.false_positive + c.false_negative)
                            for c in counts]))
    auc = None
    if scores is not None and average == "binary":
        auc = roc_auc(true == positive, np.asarray(scores, dtype=float))
        if auc is None:
            notes.append("roc_auc needs both classes among the labels")
    elif scores is not None:
        notes.append("roc_auc is only computed for binary outcomes")
    absent = [c.label for c in counts if c.support == 0]
    if absent:
        notes.append(f"classes never in the labels: {', '.join(absent)}")
    return Quality(n, accuracy, precision, recall, f1, auc, average, positive, counts, tuple(notes))



def quality_to_json(quality: Quality) -> dict[str, object]:
    """Stable JSON form of a quality result."""
    return {
        "samples": quality.samples, "accuracy": quality.accuracy, "precision": quality.precision,
        "recall": quality.recall, "f1": quality.f1, "roc_auc": quality.roc_auc,
        "average": quality.average, "positive_label": quality.positive_label,
        "classes": [{"label": c.label, "true_positive": c.true_positive,
                     "false_positive": c.false_positive, "false_negative": c.false_negative,
                     "support": c.support} for c in quality.classes],
        "notes": list(quality.notes),
    }
