"""The quality task: labelled outcomes become a stored quality result and a source health row;
collect carries the latest result into snapshots only while it is fresh."""

from __future__ import annotations

from pathlib import Path

import pytest
from lifecycled.config import parse_settings
from lifecycled.context import Context
from lifecycled.core.quality import accuracy_upper_bound
from lifecycled.domain import ModelRef, ModelSpec, Status
from lifecycled.store.results import latest_evaluation, latest_quality
from lifecycled.store.serving import latest_snapshots, source_health
from lifecycled.tasks.collect import run_collect
from lifecycled.tasks.evaluate import run_evaluate
from lifecycled.tasks.quality import run_quality

from tests.helpers import Clock, write_outcomes
from tests.stores import open_test_store

REF = ModelRef("credit_scoring", "1")

pytestmark = pytest.mark.usefixtures("both_engines")


def context(tmp_path: Path, outcomes: Path, clock: Clock) -> Context:
    settings = parse_settings({
        "schedule": {"quality": "5m"},
        "models": {REF.name: {"quality": {"outcomes": str(outcomes)}}}})
    store = open_test_store(tmp_path)
    store.register(ModelSpec(REF, owner_team="t", business_domain="d",
                             thresholds=settings.thresholds_for(REF.name)), Status.PRODUCTION,
                   actor="test", reason="r", now=clock())
    return Context(settings, store, clock=clock, environ={})


def test_outcomes_become_a_result_and_fresh_snapshots(tmp_path: Path) -> None:
    outcomes, clock = tmp_path / "outcomes.csv", Clock()
    write_outcomes(outcomes, accuracy=0.75)
    ctx = context(tmp_path, outcomes, clock)
    assert run_quality(ctx) == {str(REF): "ok"}
    (stored,) = latest_quality(ctx.store)
    assert stored.result["accuracy"] == 0.75
    # a verdict repeated every 5 minutes, within 1 false alarm in 30 days
    assert stored.result["alpha"] == pytest.approx(1 / 8640)
    assert stored.result["alpha_basis"] == ("from a budget of 1 false alarm per 30d at one "
                                            "check every 5m")
    assert stored.result["accuracy_upper"] == pytest.approx(
        accuracy_upper_bound(300, 400, 1 / 8640))
    assert [(h.source, h.up) for h in source_health(ctx.store)] == [("outcomes:credit_scoring",
                                                                      True)]
    run_collect(ctx)  # no Triton configured: a snapshot of quality only
    assert latest_snapshots(ctx.store)[REF].values["accuracy"] == 0.75
    run_evaluate(ctx)
    (evaluation,) = latest_evaluation(ctx.store)  # 0.75 on 400 labels: below 0.85 beyond chance
    (breach,) = evaluation.result["breaches"]
    assert breach["threshold"] == "min_accuracy" and breach["bound"] < 0.85
    clock.now += 9 * 60  # within two quality intervals (10 min): still current
    run_collect(ctx)
    assert latest_snapshots(ctx.store)[REF].values["accuracy"] == 0.75
    clock.now += 2 * 60  # 11 min old: the quality task has not renewed it
    before = latest_snapshots(ctx.store)[REF].at
    run_collect(ctx)
    assert latest_snapshots(ctx.store)[REF].at == before  # nothing current to record


def test_unreadable_outcomes_mark_the_source_down_and_store_nothing(tmp_path: Path) -> None:
    clock = Clock()
    ctx = context(tmp_path, tmp_path / "missing.csv", clock)
    (error,) = run_quality(ctx).values()
    assert "missing.csv" in error
    assert latest_quality(ctx.store) == []
    (health,) = source_health(ctx.store)
    assert (health.source, health.up) == ("outcomes:credit_scoring", False)


def test_a_regression_model_is_judged_by_its_errors(tmp_path: Path) -> None:
    """model_type: regression (here from the registration): the quality pass stores MAE, RMSE,
    MAPE, R² and the mean error, collect carries them into the snapshot, nothing says accuracy."""
    import csv

    clock = Clock()
    outcomes = tmp_path / "losses.csv"
    with outcomes.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prediction", "label"])
        writer.writerows([[110.0 + i % 7, 100.0 + i % 5] for i in range(300)])
    settings = parse_settings({"models": {REF.name: {"quality": {"outcomes": str(outcomes)}}}})
    store = open_test_store(tmp_path)
    store.register(ModelSpec(REF, owner_team="t", business_domain="d", model_type="regression",
                             thresholds=settings.thresholds_for(REF.name)), Status.PRODUCTION,
                   actor="test", reason="r", now=clock())
    ctx = Context(settings, store, clock=clock, environ={})
    assert run_quality(ctx) == {str(REF): "ok"}
    (stored,) = latest_quality(ctx.store)
    errors = [110.0 + i % 7 - (100.0 + i % 5) for i in range(300)]
    assert stored.result["model_type"] == "regression"
    assert stored.result["mae"] == pytest.approx(sum(abs(e) for e in errors) / 300)
    assert stored.result["mean_error"] == pytest.approx(sum(errors) / 300)
    assert "accuracy" not in stored.result
    run_collect(ctx)
    values = latest_snapshots(ctx.store)[REF].values
    assert values["mae"] == pytest.approx(stored.result["mae"]) and values["accuracy"] is None
