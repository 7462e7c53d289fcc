"""Quality of predictions beside their labels: a classifier's accuracy, precision, recall, F1
and ROC AUC with their counts, and the judgement of one set of outcomes as a source's columns hold
them (``judge_outcomes``: the metrics its model type means, concept drift and the bounds its
thresholds are judged on, JSON form). Shared by the outcome files and the joined prediction log."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from lifecycled.core import columns as cols
from lifecycled.core.concept import SIGNIFICANCE, concept_drift, concept_to_json
from lifecycled.core.regression import REGRESSION_METRICS, judge_regression
from lifecycled.errors import InputError, SourceError

METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")  # a classifier's, by result name


@dataclass(frozen=True)
class OutcomeColumns:
    """The columns of a source that hold each prediction, its label and its scores."""

    prediction: str = "prediction"
    label: str = "label"
    score: str | None = None
    timestamp: str | None = None
    class_scores: Mapping[str, str] | None = None  # class label -> its score column (multiclass)


def metrics_of(model_type: str) -> tuple[str, ...]:
    """The metrics a model of ``model_type`` is judged by, by name in results."""
    return REGRESSION_METRICS if model_type == "regression" else METRICS


def judge_outcomes(where: str, data: Mapping[str, np.ndarray], columns: OutcomeColumns, *,
                   positive_label: str | None = None, min_samples: int = 100,
                   alpha: float = SIGNIFICANCE, model_type: str = "classification"
                   ) -> dict[str, Any]:
    """Quality metrics and concept drift (JSON form) of predictions beside their labels, in the
    order they were made, by the metrics ``model_type`` means; ``where`` names their source in
    errors. Concept drift's indicators and the bounds the thresholds judge (a classifier's
    ``accuracy_upper``, a regression model's ``judged_on``) are at ``alpha``."""
    if model_type == "regression":
        cols.require(where, data, (columns.prediction, columns.label))
        return judge_regression(cols.numbers(where, data[columns.prediction], columns.prediction),
                                cols.numbers(where, data[columns.label], columns.label),
                                min_samples=min_samples, alpha=alpha)
    cols.require(where, data, (columns.prediction, columns.label, columns.score,
                               *(columns.class_scores or {}).values()))
    labels = cols.classes(where, data[columns.label], columns.label)
    predictions = cols.label_text(data[columns.prediction])
    known = np.array([p is not None and t is not None for p, t in zip(predictions, labels,
                                                                       strict=True)], dtype=bool)
    scores = (cols.numeric(where, data[columns.score][known], columns.score)
              if columns.score else None)
    class_scores = {label: cols.numeric(where, data[column][known], column)
                    for label, column in (columns.class_scores or {}).items()}
    try:
        quality = evaluate_quality(predictions[known], labels[known], scores,
                                   positive_label=positive_label, class_scores=class_scores)
        pred, true = normalise(predictions[known], labels[known])
    except InputError as exc:
        raise SourceError(where, str(exc)) from exc
    correct = pred == true
    result: dict[str, Any] = quality_to_json(quality)
    result["unlabelled"] = int((~known).sum())
    result["concept"] = concept_to_json(concept_drift(correct, min_samples=min_samples,
                                                      alpha=alpha))
    result["accuracy_upper"] = accuracy_upper_bound(int(correct.sum()), int(correct.size), alpha)
    result["alpha"] = alpha
    return result


def accuracy_upper_bound(right: int, outcomes: int, alpha: float) -> float | None:
    """The one-sided upper confidence bound of an accuracy of ``right`` out of ``outcomes`` at
    level 1 - alpha (Clopper-Pearson, exact): a minimum accuracy is breached beyond chance only
    when even this bound is below it. None without outcomes."""
    if outcomes == 0:
        return None
    if right >= outcomes:
        return 1.0
    return float(stats.beta.ppf(1 - alpha, right + 1, outcomes - right))


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
    scored: int = 0  # outcomes with a finite score (ROC AUC is computed on these)


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


# How the two classes of a binary outcome may be written; each becomes "0" or "1".
_BINARY = {"0": "0", "1": "1", "0.0": "0", "1.0": "1", "false": "0", "true": "1"}


def normalise(predictions: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predictions and labels as comparable text: booleans, 0/1, "0"/"1", 1.0 and "true"/"false"
    are one vocabulary ("0", "1") when a column uses only those. Value sets that share nothing
    are a window where every prediction is wrong when they are of one kind (binary, numbers, or
    words with a single value on a side: all 0 against all 1, "cat" against "dog"), and an
    InputError when they are two vocabularies (0/1 against yes/no, Y/N against yes/no)."""
    pred, true = _text(predictions), _text(labels)
    pred_set, true_set = set(pred.tolist()), set(true.tolist())
    if pred_set and true_set and not pred_set & true_set and _vocabularies(pred_set, true_set):
        def show(values: set[str]) -> str:
            return ", ".join(sorted(values)[:10]) + (" ..." if len(values) > 10 else "")
        raise InputError(f"predictions ({show(pred_set)}) and labels ({show(true_set)}) share "
                         "no value: they cannot be compared")
    return pred, true


def _kind(values: set[str]) -> str:
    if values <= {"0", "1"}:
        return "binary"
    try:
        [float(v) for v in values]
    except ValueError:
        return "words"
    return "numbers"


def _vocabularies(pred_set: set[str], true_set: set[str]) -> bool:
    """Whether two disjoint value sets are two vocabularies rather than all-wrong outcomes."""
    kinds = {_kind(pred_set), _kind(true_set)}
    if len(kinds) > 1 and kinds != {"binary", "numbers"}:
        return True
    return kinds == {"words"} and len(pred_set) > 1 and len(true_set) > 1


def comparable(values: np.ndarray) -> np.ndarray:
    """One column as ``normalise`` makes it comparable (the binary vocabulary as "0"/"1")."""
    return _text(values)


def _text(values: np.ndarray) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind == "b":
        return np.where(array, "1", "0").astype(object)
    text = np.array([str(v) for v in array.tolist()], dtype=object)
    lowered = [v.strip().lower() for v in text.tolist()]
    if lowered and all(v in _BINARY for v in lowered):
        return np.array([_BINARY[v] for v in lowered], dtype=object)
    return text


def _binary_positive(classes: list[str]) -> str | None:
    if set(classes) <= {"0", "1"}:  # binary, possibly with one class absent
        return "1"
    if len(classes) != 2:
        return None
    for candidate in ("1", "1.0", "true", "True", "yes", "positive"):
        if candidate in classes:
            return candidate
    return sorted(classes)[-1]


SHOWN_CLASSES = 20  # labels a note names before "and N more"


def evaluate_quality(predictions: np.ndarray, labels: np.ndarray, scores: np.ndarray | None = None,
                     *, positive_label: str | None = None,
                     class_scores: Mapping[str, np.ndarray] | None = None) -> Quality:
    """Binary metrics when exactly two classes appear (positive: ``positive_label``, else 1/true,
    else the larger label); otherwise macro averages over every class seen in labels or predictions.
    ROC AUC: binary from ``scores``; multiclass one-vs-rest macro from ``class_scores`` (class ->
    scores). Outcomes without a finite score are left out of ROC AUC and counted (``scored``).
    """
    pred, true = normalise(np.asarray(predictions), np.asarray(labels))
    if positive_label is not None:
        positive_label = _text(np.array([positive_label]))[0] if set(true.tolist()) <= {
            "0", "1"} else positive_label
    n = int(true.size)
    if n == 0:
        return Quality(0, None, None, None, None, None, "binary", None, (), ("no outcomes",))
    counts = class_counts(pred, true)
    classes = [c.label for c in counts]
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
    auc, scored = None, 0
    if scores is not None and average == "binary":
        values = np.asarray(scores, dtype=float)
        keep = np.isfinite(values)
        scored = int(keep.sum())
        auc = roc_auc((true == positive)[keep], values[keep])
        if scored < n:
            notes.append(f"{n - scored} outcome(s) without a finite score left out of roc_auc")
        if auc is None:
            notes.append("roc_auc needs both classes among the scored labels")
    elif class_scores:
        auc, scored = _one_vs_rest(true, class_scores, notes)
    elif scores is not None:
        notes.append("roc_auc of multiclass outcomes needs one score column per class")
    shown: tuple[float | None, float | None, float | None] = (precision, recall, f1)
    if average == "binary":
        shown = _defined(counts, positive, precision, recall, f1, notes)
    absent = [c.label for c in counts if c.support == 0]
    if absent:
        more = f" and {len(absent) - SHOWN_CLASSES} more" if len(absent) > SHOWN_CLASSES else ""
        notes.append(f"classes never in the labels: {', '.join(absent[:SHOWN_CLASSES])}{more}")
    return Quality(n, accuracy, *shown, auc, average, positive, counts, tuple(notes), scored)


def class_counts(pred: np.ndarray, true: np.ndarray) -> tuple[ClassCounts, ...]:
    """Each class's true and false positives, false negatives and support, in label order: one
    sort and three bincounts (a comparison per class was quadratic: 20,000 classes took minutes)."""
    labels, codes = np.unique(np.concatenate([pred, true]), return_inverse=True)
    predicted, actual = codes[:pred.size], codes[pred.size:]
    k = labels.size
    hits = np.bincount(actual[predicted == actual], minlength=k)
    per_prediction = np.bincount(predicted, minlength=k)
    support = np.bincount(actual, minlength=k)
    return tuple(ClassCounts(str(label), int(tp), int(p - tp), int(s - tp), int(s))
                 for label, tp, p, s in zip(labels.tolist(), hits, per_prediction, support,
                                            strict=True))


def _defined(counts: tuple[ClassCounts, ...], positive: str | None, precision: float,
             recall: float, f1: float, notes: list[str]
             ) -> tuple[float | None, float | None, float | None]:
    """Binary precision and recall are undefined (None, with a note) when their denominator is 0:
    no positive prediction, or no positive label (a single-class outcome set)."""
    chosen = [c for c in counts if c.label == positive]
    tp, fp, fn = ((chosen[0].true_positive, chosen[0].false_positive, chosen[0].false_negative)
                  if chosen else (0, 0, 0))
    out_p: float | None = precision
    out_r: float | None = recall
    if tp + fp == 0:
        out_p = None
        notes.append(f"precision undefined: no prediction of the positive class {positive}")
    if tp + fn == 0:
        out_r = None
        notes.append(f"recall undefined: no label of the positive class {positive}")
    return out_p, out_r, f1 if out_p is not None and out_r is not None else None


def _one_vs_rest(true: np.ndarray, class_scores: Mapping[str, np.ndarray], notes: list[str]
                 ) -> tuple[float | None, int]:
    """Macro average of each class's ROC AUC against the rest (scikit-learn's multi_class="ovr")
    over the outcomes whose every class score is finite."""
    matrix = np.column_stack([np.asarray(v, dtype=float) for v in class_scores.values()])
    keep = np.isfinite(matrix).all(axis=1)
    scored = int(keep.sum())
    if scored < true.size:
        notes.append(f"{true.size - scored} outcome(s) without finite class scores left out of "
                     "roc_auc")
    missing = sorted(set(true[keep].tolist()) - set(class_scores))
    if missing:
        notes.append(f"roc_auc needs a score column for every class; none for {', '.join(missing)}")
        return None, scored
    areas = [roc_auc(true[keep] == label, matrix[keep, i])
             for i, label in enumerate(class_scores)]
    known = [a for a in areas if a is not None]
    if len(known) < len(areas):
        notes.append("roc_auc: a class without both positives and negatives among the labels is "
                     "left out of the average")
    return (float(np.mean(known)) if known else None), scored



def quality_to_json(quality: Quality) -> dict[str, object]:
    """Stable JSON form of a quality result."""
    return {
        "samples": quality.samples, "accuracy": quality.accuracy, "precision": quality.precision,
        "recall": quality.recall, "f1": quality.f1, "roc_auc": quality.roc_auc,
        "average": quality.average, "positive_label": quality.positive_label,
        "scored": quality.scored,
        "classes": [{"label": c.label, "true_positive": c.true_positive,
                     "false_positive": c.false_positive, "false_negative": c.false_negative,
                     "support": c.support} for c in quality.classes],
        "notes": list(quality.notes),
    }
