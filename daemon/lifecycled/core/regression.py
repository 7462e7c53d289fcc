"""Quality of a regression model from its predictions beside their labels: the mean absolute
error, the root mean squared error, the mean absolute percentage error, R² and the mean error
(bias), each equal to scikit-learn's where scikit-learn defines it (tested).

Two rules where the metric itself is undefined, said in the result's notes instead of a number
that misleads: MAPE leaves out the rows whose label is 0 (a percentage of nothing; a label
smaller in size than the float epsilon, 2.2e-16, counts as 0, where scikit-learn divides by the
epsilon), counted as ``mape_excluded`` (None when every label is 0); R² is None when the
labels are constant (its denominator is 0; scikit-learn answers 1.0 or 0.0 there)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from lifecycled.core.concept import SIGNIFICANCE, concept_to_json, error_drift

MODEL_TYPES = ("classification", "regression")
# the regression metrics by name in results, with the sense of a good value
REGRESSION_METRICS = ("mae", "rmse", "mape", "r2", "mean_error")
EPSILON = float(np.finfo(np.float64).eps)  # a label smaller than this counts as 0 in MAPE


@dataclass(frozen=True)
class Regression:
    samples: int
    mae: float | None
    rmse: float | None
    mape: float | None  # a ratio (0.05 = 5 %), over the rows whose label is not 0
    mape_excluded: int  # rows left out of MAPE: their label is 0
    r2: float | None
    mean_error: float | None  # mean of prediction - label: above 0, the model over-predicts
    notes: tuple[str, ...] = ()


def evaluate_regression(predictions: np.ndarray, labels: np.ndarray) -> Regression:
    """Regression metrics of finite predictions beside finite labels (the caller drops the
    rest); empty input gives no numbers, never 0."""
    pred = np.asarray(predictions, dtype=float)
    true = np.asarray(labels, dtype=float)
    n = int(true.size)
    if n == 0:
        return Regression(0, None, None, None, 0, None, None, ("no labelled outcomes",))
    error = pred - true
    notes = []
    nonzero = np.abs(true) >= EPSILON
    excluded = int(n - nonzero.sum())
    mape = (float(np.mean(np.abs(error[nonzero]) / np.abs(true[nonzero])))
            if nonzero.any() else None)
    if excluded:
        notes.append(f"MAPE leaves out {excluded} outcome(s) whose label is 0"
                     + ("" if mape is not None else ": every label is 0, so it is undefined"))
    spread = float(np.sum((true - true.mean()) ** 2)) if np.ptp(true) > 0 else 0.0
    r2 = 1.0 - float(np.sum(error ** 2)) / spread if spread > 0 else None
    if r2 is None:
        notes.append("R² is undefined: every label is the same")
    return Regression(n, float(np.mean(np.abs(error))), float(np.sqrt(np.mean(error ** 2))), mape,
                      excluded, r2, float(np.mean(error)), tuple(notes))


def regression_to_json(result: Regression) -> dict[str, Any]:
    return {"model_type": "regression", "samples": result.samples, "mae": result.mae,
            "rmse": result.rmse, "mape": result.mape, "mape_excluded": result.mape_excluded,
            "r2": result.r2, "mean_error": result.mean_error, "notes": list(result.notes)}


def judge_regression(pred: np.ndarray, true: np.ndarray, *, min_samples: int = 100,
                     alpha: float = SIGNIFICANCE) -> dict[str, Any]:
    """Regression metrics, concept drift (on the absolute error) and each metric's confidence
    bound at ``alpha`` (``judged_on``) of predictions beside labels in the order they were made
    (JSON form). A row without a finite label (or prediction) is left out, counted as
    ``unlabelled``."""
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
