"""Direct loss estimation (DLE): a regression model's MAE and RMSE on predictions whose labels
are not in yet, from what its labelled predictions show.

Two nanny models are fitted on the labelled reference (the matured window): one learns each
prediction's absolute error, the other its squared error, from the prediction and the model's
features (``quality.estimate_features``). Applied to the newest predictions, the mean of the
first is the estimated MAE and the square root of the mean of the second the estimated RMSE.
The 95 % interval is the sampling error of the window (``Nanny.estimate``). The nanny models are
scikit-learn's ``HistGradientBoostingRegressor``: well kept, fast on tens of thousands of rows, no extra
native library (NannyML uses LightGBM), and tolerant of missing values; scikit-learn is the
``estimate`` extra, and without it the estimate says what to install.

The method assumes that the error given the inputs stays what it was (no concept drift): a
concept-drift finding in the labelled window marks the estimate untrusted, as do too few labels
to learn from and features missing from the predictions."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

MIN_REFERENCE = 100  # labelled predictions needed to learn the errors
Z95 = 1.959963984540054


def available() -> bool:
    return importlib.util.find_spec("sklearn") is not None


class Nanny:
    """The two nanny models fitted on a labelled reference."""

    def __init__(self, columns: list[str], absolute: Any, squared: Any, reference: int,
                 spread: tuple[float, float]) -> None:
        self.columns, self.absolute, self.squared, self.reference = (columns, absolute, squared,
                                                                     reference)
        self.spread = spread  # the reference's standard deviation of |error| and of error²

    def estimate(self, newest: Mapping[str, np.ndarray], prediction: np.ndarray
                 ) -> dict[str, Any]:
        """The estimated MAE and RMSE of ``prediction`` with their 95 % intervals: the sampling
        error of a window of its size, from the larger of two spreads of the errors: the
        reference's realized ones (as NannyML's DLE), and what the nannies expect for this
        window's predictions (each prediction's expected absolute error a and squared error s
        give s - a² for the absolute error, 2 s² for the squared one as if it were normal), so
        a window moved to where the errors are larger gets a wider interval."""
        n = int(prediction.size)
        x = np.column_stack([prediction, *(newest[c] for c in self.columns)])
        absolute = np.clip(self.absolute.predict(x), 0.0, None)
        squared = np.maximum(np.clip(self.squared.predict(x), 0.0, None), absolute ** 2)
        mae, mse = float(absolute.mean()), float(squared.mean())
        abs_sd = max(self.spread[0], math.sqrt(float(np.mean(squared - absolute ** 2))))
        sq_sd = max(self.spread[1], math.sqrt(float(np.mean(2 * squared ** 2))))
        mae_half, mse_half = Z95 * abs_sd / math.sqrt(n), Z95 * sq_sd / math.sqrt(n)
        return {"method": "DLE", "n": n, "reference": self.reference, "trusted": True,
                "mae": mae, "mae_lower": max(0.0, mae - mae_half), "mae_upper": mae + mae_half,
                "rmse": math.sqrt(mse), "rmse_lower": math.sqrt(max(0.0, mse - mse_half)),
                "rmse_upper": math.sqrt(mse + mse_half)}


def fit(reference: Mapping[str, np.ndarray], prediction: np.ndarray, label: np.ndarray, *,
        seed: int = 0) -> Nanny:
    """Nanny models of the absolute and the squared error on the labelled reference."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    columns = sorted(reference)
    x = np.column_stack([prediction, *(reference[c] for c in columns)])
    error = prediction - label
    models = []
    for target in (np.abs(error), error ** 2):
        # errors are noisy: each leaf averages at least 0.5 % of the reference (20 rows at
        # least); no early stopping, which held out a tenth and stopped short on 60,000 rows
        nanny = HistGradientBoostingRegressor(
            random_state=seed, max_iter=100, early_stopping=False,
            min_samples_leaf=max(20, prediction.size // 200))
        nanny.fit(x, target)
        models.append(nanny)
    spread = (float(np.std(np.abs(error), ddof=1)), float(np.std(error ** 2, ddof=1)))
    return Nanny(columns, models[0], models[1], int(prediction.size), spread)


def estimate_errors(reference: Mapping[str, np.ndarray], reference_prediction: np.ndarray,
                    reference_label: np.ndarray, newest: Mapping[str, np.ndarray],
                    newest_prediction: np.ndarray, *, seed: int = 0) -> dict[str, Any]:
    """The estimated MAE and RMSE (with ``_lower``/``_upper``) of ``newest_prediction``, and
    ``n``, ``reference``, ``trusted`` and its ``reason`` when not."""
    n, size = int(newest_prediction.size), int(reference_prediction.size)
    found: dict[str, Any] = {"method": "DLE", "n": n, "reference": size, "trusted": True,
                             "mae": None, "rmse": None}
    reason = _untrusted(reference, newest, size)
    if reason:
        return {**found, "trusted": False, "reason": reason}
    if n == 0:
        return {**found, "trusted": False, "reason": "no predictions newer than the window"}
    nanny = fit(reference, reference_prediction, reference_label, seed=seed)
    return nanny.estimate(newest, newest_prediction)


def _untrusted(reference: Mapping[str, np.ndarray], newest: Mapping[str, np.ndarray],
               size: int) -> str | None:
    if not available():
        return "the estimate needs scikit-learn: pip install 'lifecycled[estimate]'"
    if size < MIN_REFERENCE:
        return f"{size} labelled predictions to learn the errors from, need {MIN_REFERENCE}"
    gaps = [c for c in reference if c not in newest or not np.isfinite(reference[c]).any()]
    if gaps:
        return f"features missing from the newest predictions: {', '.join(sorted(gaps))}"
    return None


def columns_of(features: Sequence[Mapping[str, float | None] | None], names: Sequence[str]
               ) -> dict[str, np.ndarray]:
    """Stored per-prediction features (column -> number) as one float column per name (NaN where
    a value is missing); ``{}`` when a prediction has none stored."""
    if not names or any(f is None for f in features):
        return {}
    return {name: np.array([np.nan if (v := (f or {}).get(name)) is None else float(v)
                            for f in features], dtype=float) for name in names}
