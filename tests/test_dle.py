"""The regression estimate before labels (DLE) on data whose error is known: the error grows with
a feature, the newest predictions move to where it is larger (covariate shift), and the estimate
follows the realized MAE and RMSE where the reference's would not."""

from __future__ import annotations

import numpy as np
import pytest
from lifecycled import dle


def world(rng: np.random.Generator, n: int, high: float) -> tuple[np.ndarray, np.ndarray,
                                                                  np.ndarray]:
    """x in [0, 1] (skewed towards 1 by ``high``); the label is 10 x plus noise whose spread
    grows with x (1 + 4 x); the model predicts 10 x, so its error is the noise."""
    x = rng.beta(1 + high, 1, n)
    label = 10 * x + rng.normal(0, 1 + 4 * x)
    return x, 10 * x, label


def test_the_estimate_follows_a_shift_and_its_interval_holds_the_realized_value() -> None:
    rng = np.random.default_rng(1)
    x, prediction, label = world(rng, 3000, 0.0)
    reference_mae = float(np.mean(np.abs(prediction - label)))
    held = {"mae": 0, "rmse": 0}
    gaps, stale = [], []
    nanny = dle.fit({"x": x}, prediction, label)  # as estimate_errors does at each pass
    for shift in np.linspace(0, 3, 40):
        new_x, new_prediction, new_label = world(rng, 400, float(shift))
        found = nanny.estimate({"x": new_x}, new_prediction)
        assert found["trusted"] and found["method"] == "DLE" and found["n"] == 400
        realized = {"mae": float(np.mean(np.abs(new_prediction - new_label))),
                    "rmse": float(np.sqrt(np.mean((new_prediction - new_label) ** 2)))}
        for metric in held:
            held[metric] += found[f"{metric}_lower"] <= realized[metric] <= found[f"{metric}_upper"]
        gaps.append(abs(found["mae"] - realized["mae"]))
        stale.append(abs(reference_mae - realized["mae"]))
    assert held["mae"] >= 36 and held["rmse"] >= 36  # at least 90 % of 40 windows
    assert np.mean(gaps) < 0.3 * np.mean(stale)  # it follows the shift the reference misses


def test_too_few_labels_or_missing_features_are_untrusted_with_the_reason() -> None:
    rng = np.random.default_rng(2)
    x, prediction, label = world(rng, 60, 0.0)
    few = dle.estimate_errors({"x": x}, prediction, label, {"x": x}, prediction)
    assert few["trusted"] is False and "60 labelled predictions" in few["reason"]
    x, prediction, label = world(rng, 500, 0.0)
    gone = dle.estimate_errors({"x": x}, prediction, label, {}, prediction)
    assert gone["trusted"] is False and "features missing" in gone["reason"]
    whole = dle.estimate_errors({"x": x}, prediction, label, {"x": x}, prediction)
    assert whole["trusted"] and whole["mae"] > 0 and whole["mae_lower"] < whole["mae_upper"]


def test_stored_features_become_columns() -> None:
    columns = dle.columns_of([{"x": 1.5, "y": None}, {"x": 2.0, "y": 3.0}], ["x", "y"])
    assert columns["x"].tolist() == [1.5, 2.0]
    assert np.isnan(columns["y"][0]) and columns["y"][1] == 3.0
    assert dle.columns_of([{"x": 1}, None], ["x"]) == {}


@pytest.mark.parametrize("available", [False])
def test_without_scikit_learn_it_says_what_to_install(monkeypatch: pytest.MonkeyPatch,
                                                      available: bool) -> None:
    """scikit-learn is the estimate extra; this test hides it (it is installed for the tests)."""
    monkeypatch.setattr(dle, "available", lambda: available)
    rng = np.random.default_rng(3)
    x, prediction, label = world(rng, 500, 0.0)
    found = dle.estimate_errors({"x": x}, prediction, label, {"x": x}, prediction)
    assert found["trusted"] is False and "lifecycled[estimate]" in found["reason"]
