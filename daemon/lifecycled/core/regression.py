"""Quality of a regression model from its predictions beside their labels: the mean absolute
error, the root mean squared error, the mean absolute percentage error, R² and the mean error
(bias), each equal to scikit-learn's where scikit-learn defines it (tested).

Two rules where the metric itself is undefined, said in the result's notes instead of a number
that misleads: MAPE leaves out the rows whose label is 0 (a percentage of nothing; a label
smaller in size than the float epsilon, 2.2e-16, counts as 0, where scikit-learn divides by the
epsilon), counted as ``mape_excluded`` (None when every label is 0); R² is None when the
labels are constant (its denominator is 0; scikit-learn answers 1.0 or 0.0 there)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

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
