"""Events from checks: a new threshold breach and a drift result at the alert severity."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from lifecycled.config import parse_settings
from lifecycled.context import Context
from lifecycled.domain import ModelRef, ModelSpec, Status
from lifecycled.store.outbox import deliveries, event_body
from lifecycled.store.serving import add_snapshot
from lifecycled.tasks.drift import run_model_drift
from lifecycled.tasks.evaluate import run_evaluate

from tests.stores import open_test_store

REF = ModelRef("credit_scoring", "1")

pytestmark = pytest.mark.usefixtures("both_engines")


def context(tmp_path: Path, **config: object) -> Context:
    store = open_test_store(tmp_path)
    store.subscriptions = {"ci": ("model.threshold_breached", "model.drift_detected")}
    store.register(ModelSpec(REF, owner_team="t", business_domain="d", thresholds={
        "min_accuracy": 0.85, "max_error_ratio": 0.01}), Status.PRODUCTION, actor="t",
        reason="r", now=1.0)
    return Context(parse_settings(config), store, clock=lambda: 100.0)


def events(ctx: Context) -> list[dict[str, object]]:
    return [event_body(ctx.store, d.event_id) for d in deliveries(ctx.store)]


def test_threshold_breached_once_per_new_breach(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    with ctx.store.write() as conn:
        add_snapshot(conn, REF, 50.0, {"accuracy": 0.7, "error_ratio": 0.0}, {})
    run_evaluate(ctx)
    run_evaluate(ctx)  # the same breach again: no second event
    (event,) = events(ctx)
    assert event["type"] == "model.threshold_breached"
    (breach,) = event["data"]["breaches"]
    assert breach == {"threshold": "min_accuracy", "value": 0.7, "limit": 0.85}
    with ctx.store.write() as conn:
        add_snapshot(conn, REF, 60.0, {"accuracy": 0.7, "error_ratio": 0.2}, {})
    run_evaluate(ctx)
    assert [b["threshold"] for b in events(ctx)[-1]["data"]["breaches"]] == ["max_error_ratio"]


def write(path: Path, values: np.ndarray) -> str:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["x"])
        writer.writerows([[v] for v in values])
    return str(path)


def test_drift_detected_at_the_alert_severity(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    reference = write(tmp_path / "ref.csv", rng.normal(0, 1, 1000))
    stable = write(tmp_path / "stable.csv", rng.normal(0, 1, 1000))
    shifted = write(tmp_path / "shifted.csv", rng.normal(2, 1, 1000))
    for current, expected in ((stable, 0), (shifted, 1)):
        ctx = context(tmp_path / current[-11:-4], models={"credit_scoring": {"drift": {
            "reference": reference, "current": current}}})
        run_model_drift(ctx, REF, now=100.0)
        found = [e for e in events(ctx) if e["type"] == "model.drift_detected"]
        assert len(found) == expected
        if found:
            assert found[0]["data"]["severity"] == "critical"
            assert found[0]["data"]["worst_features"][0]["feature"] == "x"
