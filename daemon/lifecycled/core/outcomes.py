"""Quality of predictions beside their labels, as a source's columns hold them: the columns
that name prediction, label and scores, and the judgement of one set of outcomes (metrics and
concept drift, JSON form). Shared by the outcome files and the joined prediction log."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from lifecycled.core.concept import SIGNIFICANCE, concept_drift, concept_to_json, error_drift
from lifecycled.core.quality import evaluate_quality, normalise, quality_to_json
from lifecycled.core.regression import EPSILON, evaluate_regression, regression_to_json
from lifecycled.core.segments import label_text
from lifecycled.errors import InputError, SourceError


@dataclass(frozen=True)
class OutcomeColumns:
    prediction: str = "prediction"
    label: str = "label"
    score: str | None = None
    timestamp: str | None = None
    class_scores: Mapping[str, str] | None = None  # class label -> its score column (multiclass)


def quality_of(where: str, data: Mapping[str, np.ndarray], columns: OutcomeColumns, *,
               positive_label: str | None = None, min_samples: int = 100,
               alpha: float = SIGNIFICANCE, model_type: str = "classification"
               ) -> dict[str, Any]:
    """Quality metrics and concept drift (JSON form) of predictions beside their labels, in the
    order they were made, by the metrics ``model_type`` means; ``where`` names their source in
    errors. Concept drift's indicators and the accuracy's upper confidence bound
    (``accuracy_upper``) are at ``alpha``."""
    if model_type == "regression":
        return regression_of(where, data, columns, min_samples=min_samples, alpha=alpha)
    pattern = where
    needed = [c for c in (columns.prediction, columns.label, columns.score) if c]
    needed += list((columns.class_scores or {}).values())
    missing = [c for c in needed if c not in data]
    if missing:
        raise SourceError(pattern, f"missing column(s) {', '.join(missing)}; "
                                   f"found {', '.join(data) or 'none'}")
    _not_continuous(pattern, data[columns.label], columns.label)
    predictions, labels = label_text(data[columns.prediction]), label_text(data[columns.label])
    known = np.array([p is not None and t is not None for p, t in zip(predictions, labels,
                                                                       strict=True)], dtype=bool)
    scores = _numeric(pattern, data, columns.score, known) if columns.score else None
    class_scores = {label: _numeric(pattern, data, column, known)
                    for label, column in (columns.class_scores or {}).items()}
    try:
        quality = evaluate_quality(predictions[known], labels[known], scores,
                                   positive_label=positive_label, class_scores=class_scores)
        pred, true = normalise(predictions[known], labels[known])
    except InputError as exc:
        raise SourceError(pattern, str(exc)) from exc
    correct = pred == true
    result = quality_to_json(quality)
    result["unlabelled"] = int((~known).sum())
    result["concept"] = concept_to_json(concept_drift(correct, min_samples=min_samples,
                                                      alpha=alpha))
    result["accuracy_upper"] = accuracy_upper_bound(int(correct.sum()), int(correct.size), alpha)
    result["alpha"] = alpha
    return result


def _not_continuous(where: str, values: np.ndarray, column: str) -> None:
    """A classifier's labels are classes: fractional numbers are a regression's outcomes."""
    if values.dtype.kind == "f":
        finite = values[np.isfinite(values)]
        if finite.size and not np.all(finite == np.round(finite)):
            raise SourceError(where, f"column {column!r} holds continuous values (such as "
                                     f"{finite[finite != np.round(finite)][0]:g}): a "
                                     "regression model's outcomes; set its model_type: "
                                     "regression")


def regression_of(where: str, data: Mapping[str, np.ndarray], columns: OutcomeColumns, *,
                  min_samples: int = 100, alpha: float = SIGNIFICANCE) -> dict[str, Any]:
    """Regression metrics and concept drift (on the absolute error) of numeric predictions
    beside numeric labels, in the order they were made. An outcome without a finite label (or
    prediction) is left out and counted as ``unlabelled``."""
    missing = [c for c in (columns.prediction, columns.label) if c not in data]
    if missing:
        raise SourceError(where, f"missing column(s) {', '.join(missing)}; "
                                 f"found {', '.join(data) or 'none'}")
    pred = numbers(where, data[columns.prediction], columns.prediction)
    true = numbers(where, data[columns.label], columns.label)
    known = np.isfinite(pred) & np.isfinite(true)
    result = regression_to_json(evaluate_regression(pred[known], true[known]))
    result["unlabelled"] = int((~known).sum())
    error = np.abs(pred[known] - true[known])
    result["concept"] = concept_to_json(error_drift(error, min_samples=min_samples, alpha=alpha))
    result["judged_on"] = regression_bounds(pred[known], true[known], result, alpha)
    result["alpha"] = alpha
    return result


def regression_bounds(pred: np.ndarray, true: np.ndarray, metrics: Mapping[str, Any],
                      alpha: float) -> dict[str, float]:
    """Each regression metric's one-sided confidence bound at 1 - alpha on the side of its
    breach (normal approximation over the outcomes), by snapshot field: a maximum error is
    breached only when even the lower bound is above it, a minimum R² when even the upper bound
    is below it, the bias band when even the bound nearer 0 is outside it."""
    n = int(pred.size)
    if n < 2:
        return {}
    z = float(stats.norm.isf(alpha))

    def half(values: np.ndarray) -> float:
        return z * float(np.std(values, ddof=1)) / math.sqrt(values.size)

    error = pred - true
    mse_lower = max(0.0, float(np.mean(error ** 2)) - half(error ** 2))
    mean = float(metrics["mean_error"])
    found = {"mae": max(0.0, float(metrics["mae"]) - half(np.abs(error))),
             "rmse": math.sqrt(mse_lower),
             "mean_error": math.copysign(max(0.0, abs(mean) - half(error)), mean)}
    nonzero = np.abs(true) >= EPSILON
    if metrics.get("mape") is not None and int(nonzero.sum()) >= 2:
        found["mape_ratio"] = max(0.0, float(metrics["mape"]) - half(
            np.abs(error[nonzero]) / np.abs(true[nonzero])))
    if metrics.get("r2") is not None:
        spread = float(np.mean((true - true.mean()) ** 2))
        found["r_squared"] = 1.0 - mse_lower / spread
    return found


def numbers(where: str, values: np.ndarray, column: str) -> np.ndarray:
    """A column of numbers as floats (None: NaN); anything else names the column."""
    if values.dtype.kind in "iuf":
        return values.astype(float)
    if values.dtype.kind == "b":
        raise SourceError(where, f"column {column!r} holds true/false values: a classifier's "
                                 "outcomes, not a regression model's")
    out = np.full(values.size, np.nan)
    for i, value in enumerate(values.tolist()):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            continue
        number = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):  # a stored prediction log holds its values as text
            try:
                number = float(value)
            except ValueError:
                number = None
        if number is None:
            raise SourceError(where, f"column {column!r} holds {value!r}, not a number: a "
                                     "regression model's outcomes are numbers")
        out[i] = number
    return out


def accuracy_upper_bound(right: int, outcomes: int, alpha: float) -> float | None:
    """The one-sided upper confidence bound of an accuracy of ``right`` out of ``outcomes`` at
    level 1 - alpha (Clopper-Pearson, exact): a minimum accuracy is breached beyond chance only
    when even this bound is below it. None without outcomes."""
    if outcomes == 0:
        return None
    if right >= outcomes:
        return 1.0
    return float(stats.beta.ppf(1 - alpha, right + 1, outcomes - right))


def _numeric(pattern: str, data: Mapping[str, np.ndarray], column: str, known: np.ndarray
             ) -> np.ndarray:
    values = data[column][known]
    if values.dtype.kind not in "iuf":
        raise SourceError(pattern, f"score column {column!r} is not numeric")
    return values.astype(float)
