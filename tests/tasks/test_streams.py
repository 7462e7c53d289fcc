"""Quality from a prediction log and late labels: the join by id, incremental reads, coverage and
label lag on known data, and metrics gated on coverage (unknown, never a verdict on a few
labels)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lifecycled.config import parse_settings
from lifecycled.context import Context
from lifecycled.domain import ModelRef, ModelSpec, Status
from lifecycled.errors import ConfigError
from lifecycled.store import StoreWrites
from lifecycled.store.labels import received
from lifecycled.store.results import latest_quality
from lifecycled.tasks.evaluate import run_evaluate
from lifecycled.tasks.quality import run_quality
from prometheus_client import CollectorRegistry, generate_latest

from tests.stores import open_test_store

pytestmark = pytest.mark.usefixtures("both_engines")
REF = ModelRef("credit_scoring", "1")
DAY = 86400.0
NOW = 1_000 * DAY


def write(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


class World:
    """2,000 predictions over 40 days; a label arrives lag days after its prediction, for the
    predictions the test says, and each label is right with a known probability."""

    def __init__(self, tmp_path: Path, seed: int = 7) -> None:
        rng = np.random.default_rng(seed)
        self.n = 2000
        self.at = NOW - 40 * DAY + np.sort(rng.uniform(0, 40 * DAY, self.n))
        self.score = rng.uniform(0, 1, self.n)
        self.truth = (rng.uniform(0, 1, self.n) < self.score).astype(int)  # calibrated scores
        self.predicted = (self.score >= 0.5).astype(int)
        self.lag = rng.uniform(5 * DAY, 25 * DAY, self.n)
        self.folder = tmp_path / "streams"
        (self.folder / "predictions").mkdir(parents=True)
        (self.folder / "labels").mkdir()

    def predictions(self, name: str, rows: np.ndarray) -> None:
        write(self.folder / "predictions" / name, ["id", "timestamp", "prediction", "score"],
              [[f"p{i}", self.at[i], self.predicted[i], self.score[i]] for i in rows])

    def labels(self, name: str, rows: np.ndarray) -> None:
        write(self.folder / "labels" / name, ["id", "label", "labelled_at"],
              [[f"p{i}", self.truth[i], self.at[i] + self.lag[i]] for i in rows])

    def context(self, tmp_path: Path, drift: dict[str, Any] | None = None,
                **quality: Any) -> Context:
        settings = parse_settings({
            "schedule": {"quality": "1h"},
            "models": {REF.name: {"drift": drift or {}, "thresholds": {"min_accuracy": 0.99},
                                  "quality": {
                "predictions": {"path": str(self.folder / "predictions" / "*.csv")},
                "labels": {"path": str(self.folder / "labels" / "*.csv"),
                           "timestamp_column": "labelled_at"},
                "score_column": "score", "maturity": "10d", "window": "20d", **quality}}}})
        store = open_test_store(tmp_path)
        store.register(ModelSpec(REF, owner_team="t", business_domain="d",
                                 thresholds={"min_accuracy": 0.99}), Status.PRODUCTION,
                       actor="test", reason="r", now=NOW - 50 * DAY)
        return Context(settings, store, clock=lambda: NOW, environ={})


def window_rows(world: World, labelled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows of the matured window (made 30 to 10 days ago) and which of them are labelled."""
    inside = (world.at > NOW - 30 * DAY) & (world.at <= NOW - 10 * DAY)
    return inside, inside & labelled


def test_the_join_measures_coverage_lag_and_quality_of_the_matured_window(
        tmp_path: Path) -> None:
    world = World(tmp_path)
    everything = np.arange(world.n)
    arrived = world.at + world.lag <= NOW  # the labels known by now
    world.predictions("day1.csv", everything[: world.n // 2])
    world.predictions("day2.csv", everything[world.n // 2:])
    world.labels("batch1.csv", everything[arrived])
    ctx = world.context(tmp_path, min_coverage=0.5)
    assert run_quality(ctx) == {str(REF): "ok"}
    (stored,) = latest_quality(ctx.store)
    inside, judged = window_rows(world, arrived)
    labels = stored.result["labels"]
    assert labels["predictions"] == int(inside.sum())
    assert labels["labelled"] == int(judged.sum())
    assert labels["coverage"] == pytest.approx(judged.sum() / inside.sum(), abs=1e-12)
    assert labels["lag_p50_seconds"] == pytest.approx(np.percentile(world.lag[judged], 50))
    assert labels["lag_p95_seconds"] == pytest.approx(np.percentile(world.lag[judged], 95))
    assert labels["judged"] is True
    from sklearn.metrics import accuracy_score, roc_auc_score
    assert stored.result["samples"] == int(judged.sum())
    assert stored.result["accuracy"] == pytest.approx(
        accuracy_score(world.truth[judged], world.predicted[judged]), abs=1e-12)
    assert stored.result["roc_auc"] == pytest.approx(
        roc_auc_score(world.truth[judged], world.score[judged]), abs=1e-9)
    assert {(r[0], r[2]): r[3] for r in received(ctx.store)} == {
        (REF.name, "labels"): int(arrived.sum()), (REF.name, "predictions"): world.n}


def test_each_pass_reads_only_new_files_and_a_resent_batch_changes_nothing(
        tmp_path: Path) -> None:
    world = World(tmp_path)
    first = np.arange(0, 1000)
    world.predictions("day1.csv", first)
    world.labels("batch1.csv", first[::2])
    ctx = world.context(tmp_path, min_coverage=0.1)
    from lifecycled.tasks.streams import ingest
    model = ctx.settings.models[REF.name]
    assert ingest(ctx, REF, model, NOW) == {"predictions": 1000, "labels": 500}
    assert ingest(ctx, REF, model, NOW) == {"predictions": 0, "labels": 0}  # nothing new
    world.predictions("day1-again.csv", first)  # the same batch sent twice: same ids
    world.labels("batch1-again.csv", first[::2])
    world.labels("batch2.csv", first[1::2][:100])
    assert ingest(ctx, REF, model, NOW) == {"predictions": 0, "labels": 100}
    counts = {(r[0], r[2]): r[3] for r in received(ctx.store)}
    assert counts == {(REF.name, "predictions"): 1000, (REF.name, "labels"): 600}


def test_labels_that_arrive_before_their_predictions_join_when_these_come(
        tmp_path: Path) -> None:
    world = World(tmp_path)
    rows = np.arange(world.n)
    world.labels("early.csv", rows)
    ctx = world.context(tmp_path, min_coverage=0.9)
    run_quality(ctx)
    (first,) = latest_quality(ctx.store)
    assert first.result["labels"]["predictions"] == 0
    assert first.result["labels"]["judged"] is False
    assert first.result.get("accuracy") is None
    world.predictions("late.csv", rows)
    run_quality(ctx)
    second = latest_quality(ctx.store)[0]
    assert second.result["labels"]["coverage"] == 1.0 and second.result["labels"]["judged"]


def render(ctx: Context) -> str:
    from lifecycled.exporter import LifecycleCollector

    registry = CollectorRegistry()
    registry.register(LifecycleCollector(ctx.store, lambda: [], lambda: {},
                                         lambda: StoreWrites(True, 0), lambda: None))
    return generate_latest(registry).decode()


def test_below_min_coverage_the_metrics_are_provisional_and_the_threshold_unknown(
        tmp_path: Path) -> None:
    world = World(tmp_path)
    rows = np.arange(world.n)
    world.predictions("all.csv", rows)
    world.labels("few.csv", rows[::20])  # 5 % labelled
    ctx = world.context(tmp_path, min_coverage=0.8)
    run_quality(ctx)
    (stored,) = latest_quality(ctx.store)
    labels = stored.result["labels"]
    assert labels["judged"] is False and labels["coverage"] < 0.1
    assert "below min_coverage 80%" in labels["reason"]
    assert stored.result.get("accuracy") is None  # unknown, never a verdict on 5 %
    assert labels["provisional"]["accuracy"] is not None
    text = render(ctx)
    assert f'lifecycled_model_label_coverage_ratio{{model="{REF.name}",version="1"}}' in text
    assert 'lifecycled_model_quality_judged{model="credit_scoring",version="1"} 0.0' in text
    assert "lifecycled_model_accuracy_ratio{" not in text
    from lifecycled.tasks.collect import run_collect
    run_collect(ctx)
    run_evaluate(ctx)
    text = render(ctx)
    assert 'lifecycled_model_threshold_limit{model="credit_scoring",threshold="min_accuracy"' \
        in text  # the threshold is configured, and not judged: unknown, no breached series
    assert 'lifecycled_model_threshold_breached{model="credit_scoring",threshold="min_accuracy"' \
        not in text


def test_predictions_without_labels_is_a_clear_config_error() -> None:
    with pytest.raises(ConfigError, match="predictions and labels go together"):
        parse_settings({"models": {"m": {"quality": {"predictions": {"path": "p.csv"}}}}})
    with pytest.raises(ConfigError, match="not both"):
        parse_settings({"models": {"m": {"quality": {
            "outcomes": "o.csv", "predictions": {"path": "p.csv"},
            "labels": {"path": "l.csv"}}}}})


def test_housekeeping_forgets_predictions_no_window_will_judge(tmp_path: Path) -> None:
    from lifecycled.tasks.housekeeping import run_housekeeping

    world = World(tmp_path)
    rows = np.arange(world.n)
    world.predictions("all.csv", rows)
    world.labels("all.csv", rows)
    ctx = world.context(tmp_path, min_coverage=0.5)
    run_quality(ctx)
    # the oldest window still to judge begins maturity + window ago (10 + 20 days), less a day
    cutoff = NOW - 10 * DAY - 20 * DAY - DAY
    old = int((world.at < cutoff).sum())
    old_labels = int((world.at + world.lag < cutoff).sum())
    assert old and old_labels
    assert run_housekeeping(ctx)["predictions_and_labels_pruned"] == old + old_labels
    assert run_housekeeping(ctx)["predictions_and_labels_pruned"] == 0
    run_quality(ctx)  # the window judged is unchanged
    inside, _ = window_rows(world, np.ones(world.n, dtype=bool))
    assert latest_quality(ctx.store)[0].result["labels"]["predictions"] == int(inside.sum())


def test_the_newest_predictions_get_an_estimate_before_their_labels(tmp_path: Path) -> None:
    """CBPE on the predictions newer than the matured window, calibrated on the labelled ones:
    its interval holds the accuracy their labels will show."""
    world = World(tmp_path)
    rows = np.arange(world.n)
    world.predictions("all.csv", rows)
    matured_rows = world.at <= NOW - 10 * DAY
    world.labels("matured.csv", rows[matured_rows])  # the newest have no label yet
    ctx = world.context(tmp_path, min_coverage=0.5)
    run_quality(ctx)
    (stored,) = latest_quality(ctx.store)
    found = stored.result["estimate"]
    newest = ~matured_rows
    assert found["n"] == int(newest.sum()) and found["trusted"] is True
    actual = float(np.mean(world.predicted[newest] == world.truth[newest]))
    assert found["accuracy_lower"] <= actual <= found["accuracy_upper"], (found, actual)
    assert found["reference"] == stored.result["labels"]["labelled"]
    text = render(ctx)
    assert ('lifecycled_model_estimated_accuracy_ratio{bound="estimate",model="credit_scoring",'
            'version="1"}') in text
    assert 'lifecycled_model_estimate_trusted{model="credit_scoring",version="1"} 1.0' in text


def test_a_multiclass_model_is_estimated_from_its_score_per_class(tmp_path: Path) -> None:
    """Three classes, a score column per class (calibrated: each label is a draw from the
    scores): the estimate of the predictions newer than the matured window holds the macro
    metrics their labels will show."""
    from sklearn.metrics import accuracy_score, f1_score

    world = World(tmp_path)
    rng = np.random.default_rng(3)
    classes = ["low", "mid", "high"]
    scores = rng.dirichlet([0.3, 0.3, 0.3], world.n)  # confident: accuracy about 0.85
    truth = (rng.random(world.n)[:, None] > np.cumsum(scores, axis=1)).sum(axis=1)
    predicted = scores.argmax(axis=1)
    rows = np.arange(world.n)
    write(world.folder / "predictions" / "all.csv",
          ["id", "timestamp", "prediction", *(f"score_{c}" for c in classes)],
          [[f"p{i}", world.at[i], classes[predicted[i]], *scores[i]] for i in rows])
    matured_rows = world.at <= NOW - 10 * DAY
    write(world.folder / "labels" / "matured.csv", ["id", "label", "labelled_at"],
          [[f"p{i}", classes[truth[i]], world.at[i] + world.lag[i]] for i in rows[matured_rows]])
    ctx = world.context(tmp_path, min_coverage=0.5, score_column=None,
                        score_columns={c: f"score_{c}" for c in classes})
    assert run_quality(ctx) == {str(REF): "ok"}
    found = latest_quality(ctx.store)[0].result["estimate"]
    newest = ~matured_rows
    assert found["trusted"] is True and found["n"] == int(newest.sum()), found.get("reason")
    assert found["classes"] == classes
    actual = {"accuracy": accuracy_score(truth[newest], predicted[newest]),
              "f1": f1_score(truth[newest], predicted[newest], average="macro")}
    for metric, value in actual.items():
        assert found[f"{metric}_lower"] <= value <= found[f"{metric}_upper"], (metric, found)
    text = render(ctx)
    assert ('lifecycled_model_estimated_f1_ratio{bound="estimate",model="credit_scoring",'
            'version="1"}') in text


def test_concept_drift_in_the_labelled_window_marks_the_estimate_untrusted(
        tmp_path: Path) -> None:
    world = World(tmp_path)
    order = np.argsort(world.at)
    decay = np.linspace(0.95, 0.3, world.n)  # P(correct) falls through the log
    correct = np.random.default_rng(1).random(world.n) < decay
    world.truth[order] = np.where(correct, world.predicted[order], 1 - world.predicted[order])
    rows = np.arange(world.n)
    world.predictions("all.csv", rows)
    world.labels("all.csv", rows[world.at <= NOW - 10 * DAY])
    ctx = world.context(tmp_path, min_coverage=0.5)
    run_quality(ctx)
    (stored,) = latest_quality(ctx.store)
    assert stored.result["concept"]["severity"] in ("medium", "high", "critical")
    assert stored.result["estimate"]["trusted"] is False
    assert "concept drift" in stored.result["estimate"]["reason"]
    assert 'lifecycled_model_estimate_trusted{model="credit_scoring",version="1"} 0.0' in \
        render(ctx)


def test_when_the_labels_of_an_estimated_window_arrive_the_error_is_stored(
        tmp_path: Path) -> None:
    world = World(tmp_path)
    rows = np.arange(world.n)
    world.predictions("all.csv", rows)
    estimated_rows = world.at > NOW - 10 * DAY  # no label yet at NOW
    world.labels("old.csv", rows[~estimated_rows])
    ctx = world.context(tmp_path, min_coverage=0.5)
    run_quality(ctx)
    (first,) = latest_quality(ctx.store)
    estimate = first.result["estimate"]
    assert "estimation" not in first.result  # nothing to compare yet
    world.labels("new.csv", rows[estimated_rows])  # their labels come in
    later = Context(ctx.settings, ctx.store, clock=lambda: NOW + 11 * DAY, environ={})
    run_quality(later)
    stored = latest_quality(ctx.store)[0].result["estimation"]
    actual = float(np.mean(world.predicted[estimated_rows] == world.truth[estimated_rows]))
    assert stored["window_end"] == estimate["window_end"] == NOW
    assert stored["realized"]["accuracy"] == pytest.approx(actual, abs=1e-12)
    assert stored["error"]["accuracy"] == pytest.approx(actual - estimate["accuracy"], abs=1e-12)
    assert 'lifecycled_model_estimation_error_ratio{metric="accuracy",model="credit_scoring"' \
        in render(later)


def test_predictions_not_made_from_the_score_mark_the_estimate_untrusted(
        tmp_path: Path) -> None:
    world = World(tmp_path)
    flip = np.random.default_rng(2).random(world.n) < 0.1  # a tenth decided otherwise
    world.predicted = np.where(flip, 1 - world.predicted, world.predicted)
    rows = np.arange(world.n)
    world.predictions("all.csv", rows)
    world.labels("all.csv", rows[world.at <= NOW - 10 * DAY])
    ctx = world.context(tmp_path, min_coverage=0.5)
    run_quality(ctx)
    found = latest_quality(ctx.store)[0].result["estimate"]
    assert found["trusted"] is False and "not a threshold of the score" in found["reason"]


def test_the_newest_matured_estimate_is_compared_and_older_ones_are_superseded(
        tmp_path: Path) -> None:
    from lifecycled.core.cbpe import Estimate
    from lifecycled.store.labels import (
        add_estimate_in,
        latest_realized,
        pending_estimate,
        realize_in,
    )

    store = open_test_store(tmp_path)
    with store.write() as conn:
        for end in (10.0, 20.0, 30.0):
            add_estimate_in(conn, REF, Estimate(end - 10, end, n=5,
                                                values={"accuracy": end / 100}), end)
    assert pending_estimate(store, REF, matured_by=5.0) is None
    newest = pending_estimate(store, REF, matured_by=25.0)
    assert newest is not None and newest.window_end == 20.0
    assert newest.estimate == Estimate(10.0, 20.0, n=5, values={"accuracy": 0.2})  # as stored
    with store.write() as conn:
        realize_in(conn, newest.id, {"accuracy": 0.25}, 40.0, supersede_before=20.0)
    found = latest_realized(store, REF)
    assert found is not None and (found.window_end, found.realized) == (20.0, {"accuracy": 0.25})
    assert pending_estimate(store, REF, matured_by=25.0) is None  # the older one superseded
    later = pending_estimate(store, REF, matured_by=35.0)
    assert later is not None and later.window_end == 30.0
    store.close()


def test_with_use_estimate_the_thresholds_and_triggers_judge_the_estimate_and_say_so(
        tmp_path: Path) -> None:
    from lifecycled.tasks.collect import run_collect
    from lifecycled.tasks.updates import _triggers

    world = World(tmp_path)
    rows = np.arange(world.n)
    world.predictions("all.csv", rows)
    world.labels("some.csv", rows[(world.at <= NOW - 10 * DAY) & (rows % 6 == 0)])  # ~17 %
    ctx = world.context(tmp_path, min_coverage=0.8, use_estimate=True)
    run_quality(ctx)
    (stored,) = latest_quality(ctx.store)
    estimate = stored.result["estimate"]
    assert stored.result["labels"]["judged"] is False and estimate["trusted"] is True
    assert stored.result["estimated"] is True
    assert stored.result["accuracy"] == estimate["accuracy"]
    for minute in range(5):  # the triggers look at five snapshots or more
        run_collect(Context(ctx.settings, ctx.store, clock=lambda m=minute: NOW + 60 * m,
                            environ={}))
    run_evaluate(ctx)
    assert ('lifecycled_model_threshold_breached{model="credit_scoring",threshold="min_accuracy",'
            'version="1"} 1.0') in render(ctx)  # judged on the estimate, not unknown
    record = ctx.store.get(REF)
    (trigger,) = [t for t in _triggers(ctx, REF, {"min_accuracy": 0.99}, record.registered_at,
                                       None, NOW) if t.type == "performance_degradation"]
    assert trigger.detail["accuracy_estimated"] is True


def test_the_prediction_log_feeds_data_drift(tmp_path: Path) -> None:
    """A model with a prediction log and only a drift reference: drift judges the log's feature
    columns (not its id, prediction or score) over the last drift window by the log's time;
    rows older than the window, however different, count for nothing."""
    from lifecycled.store.results import latest_drift
    from lifecycled.tasks.drift import run_drift

    world = World(tmp_path)
    rng = np.random.default_rng(4)
    write(tmp_path / "reference.csv", ["income", "age"],
          [[rng.normal(50, 10), rng.normal(40, 10)] for _ in range(2000)])
    rows = []
    for i in range(world.n):
        recent = world.at[i] > NOW - 7 * DAY
        income = rng.normal(80 if recent else 50, 10)  # income shifted in the last week only
        rows.append([f"p{i}", world.at[i], world.predicted[i], world.score[i], income,
                     rng.normal(40, 10) + (0 if recent else 100)])  # age: old rows way off
    write(world.folder / "predictions" / "log.csv",
          ["id", "timestamp", "prediction", "score", "income", "age"], rows)
    ctx = world.context(tmp_path, drift={"reference": str(tmp_path / "reference.csv"),
                                         "window": "7d"})
    assert run_drift(ctx) == {str(REF): {"severity": "critical"}}
    (stored,) = latest_drift(ctx.store, REF)
    features = {f["feature"]: f for f in stored.result["features"]}
    assert set(features) == {"income", "age"}
    assert features["income"]["severity"] == "critical" and features["age"]["severity"] == "low"
    assert stored.result["current_rows"] == int(np.sum(world.at > NOW - 7 * DAY))


def test_drift_from_the_log_judges_only_the_rows_of_its_version(tmp_path: Path) -> None:
    """A log shared by versions (version_column): version 1's drift check judges version 1's
    rows; version 2's rows, far off, count for nothing."""
    from lifecycled.store.results import latest_drift
    from lifecycled.tasks.drift import run_drift

    world = World(tmp_path)
    rng = np.random.default_rng(5)
    write(tmp_path / "reference.csv", ["income"], [[rng.normal(50, 10)] for _ in range(2000)])
    version = np.where(np.arange(world.n) % 3 == 0, "2", "1")
    write(world.folder / "predictions" / "log.csv",
          ["id", "timestamp", "prediction", "score", "model_version", "income"],
          [[f"p{i}", world.at[i], world.predicted[i], world.score[i], version[i],
            rng.normal(50 if version[i] == "1" else 90, 10)] for i in range(world.n)])
    ctx = world.context(tmp_path, drift={"reference": str(tmp_path / "reference.csv"),
                                         "window": "20d"},
                        predictions={"path": str(world.folder / "predictions" / "*.csv"),
                                     "version_column": "model_version"})
    assert run_drift(ctx) == {str(REF): {"severity": "low"}}
    (stored,) = latest_drift(ctx.store, REF)
    inside = world.at > NOW - 20 * DAY
    assert stored.result["current_rows"] == int(np.sum(inside & (version == "1")))
    assert [f["feature"] for f in stored.result["features"]] == ["income"]


def test_a_regression_models_log_is_judged_by_its_errors(tmp_path: Path) -> None:
    """A regression model's prediction log joined with its late labels: coverage, lag and the
    regression metrics of the matured window (as scikit-learn computes them on the labelled
    rows), provisional while too few labels are in; no accuracy, no classifier's estimate."""
    from sklearn.metrics import mean_absolute_error

    rng = np.random.default_rng(11)
    n = 600
    at = NOW - 40 * DAY + np.sort(rng.uniform(0, 40 * DAY, n))
    loss = rng.lognormal(6, 0.6, n)
    predicted = loss * rng.normal(1.0, 0.15, n)
    folder = tmp_path / "losses"
    (folder / "predictions").mkdir(parents=True)
    (folder / "labels").mkdir()
    write(folder / "predictions" / "a.csv", ["id", "timestamp", "prediction"],
          [[f"p{i}", at[i], predicted[i]] for i in range(n)])
    labelled = [i for i in range(n) if i % 10 != 0]  # 90 % of the labels are in
    write(folder / "labels" / "a.csv", ["id", "label", "labelled_at"],
          [[f"p{i}", loss[i], at[i] + 5 * DAY] for i in labelled])
    settings = parse_settings({"schedule": {"quality": "1h"}, "models": {REF.name: {
        "model_type": "regression", "thresholds": {"max_mae": 1e6},
        "quality": {"predictions": {"path": str(folder / "predictions" / "*.csv")},
                    "labels": {"path": str(folder / "labels" / "*.csv"),
                               "timestamp_column": "labelled_at"},
                    "maturity": "10d", "window": "20d"}}}})
    store = open_test_store(tmp_path)
    store.register(ModelSpec(REF, owner_team="t", business_domain="d",
                             thresholds=settings.thresholds_for(REF.name)), Status.PRODUCTION,
                   actor="test", reason="r", now=NOW - 50 * DAY)
    ctx = Context(settings, store, clock=lambda: NOW, environ={})
    assert run_quality(ctx) == {str(REF): "ok"}
    (stored,) = latest_quality(ctx.store)
    result = stored.result
    window = [i for i in range(n) if NOW - 30 * DAY <= at[i] < NOW - 10 * DAY]
    judged = [i for i in window if i in set(labelled)]
    assert result["labels"]["predictions"] == len(window) and result["labels"]["judged"]
    assert result["model_type"] == "regression" and "accuracy" not in result
    assert result["mae"] == pytest.approx(mean_absolute_error(loss[judged], predicted[judged]))
    # the newest predictions (younger than the maturity): estimated before their labels (DLE),
    # here from the prediction alone (no estimate_features)
    estimate = result["estimate"]
    newest = [i for i in range(n) if at[i] >= NOW - 10 * DAY]
    assert estimate["method"] == "DLE" and estimate["n"] == len(newest)
    assert estimate["trusted"] and estimate["reference"] == len(judged)
    assert estimate["mae_lower"] <= estimate["mae"] <= estimate["mae_upper"]


def test_a_regression_estimate_learns_from_the_logs_feature_columns(tmp_path: Path) -> None:
    """quality.estimate_features: the named columns of the log are stored with each prediction
    and the estimate learns the error from them; a log that lacks one is refused naming it."""
    rng = np.random.default_rng(12)
    n = 900
    at = NOW - 40 * DAY + np.sort(rng.uniform(0, 40 * DAY, n))
    x = rng.uniform(0, 1, n)
    label = 10 * x + rng.normal(0, 1 + 4 * x)
    folder = tmp_path / "log"
    (folder / "predictions").mkdir(parents=True)
    (folder / "labels").mkdir()
    write(folder / "predictions" / "a.csv", ["id", "timestamp", "prediction", "x"],
          [[f"p{i}", at[i], 10 * x[i], x[i]] for i in range(n)])
    write(folder / "labels" / "a.csv", ["id", "label", "labelled_at"],
          [[f"p{i}", label[i], at[i] + DAY] for i in range(n)])
    quality = {"predictions": {"path": str(folder / "predictions" / "*.csv")},
               "labels": {"path": str(folder / "labels" / "*.csv"),
                          "timestamp_column": "labelled_at"},
               "maturity": "10d", "window": "25d", "estimate_features": ["x"]}
    settings = parse_settings({"models": {REF.name: {"model_type": "regression",
                                                     "quality": quality}}})
    store = open_test_store(tmp_path)
    store.register(ModelSpec(REF, owner_team="t", business_domain="d", model_type="regression"),
                   Status.PRODUCTION, actor="test", reason="r", now=NOW - 50 * DAY)
    ctx = Context(settings, store, clock=lambda: NOW, environ={})
    assert run_quality(ctx) == {str(REF): "ok"}
    estimate = latest_quality(ctx.store)[0].result["estimate"]
    newest = at >= NOW - 10 * DAY
    realized = float(np.mean(np.abs(10 * x[newest] - label[newest])))
    assert estimate["trusted"] and estimate["n"] == int(newest.sum())
    assert estimate["mae_lower"] <= realized <= estimate["mae_upper"]
    more = parse_settings({"models": {REF.name: {"model_type": "regression", "quality": {
        **quality, "estimate_features": ["x", "income"]}}}})
    ctx = Context(more, store, clock=lambda: NOW, environ={})
    # the predictions stored before hold no income: not an estimate to trust
    later = latest_quality(ctx.store)
    run_quality(ctx)
    estimate = latest_quality(ctx.store)[0].result["estimate"]
    assert len(later) == 1 and estimate["trusted"] is False
    assert "features missing" in estimate["reason"] and "income" in estimate["reason"]
    write(folder / "predictions" / "b.csv", ["id", "timestamp", "prediction", "x"],
          [["q1", NOW - DAY, 5.0, 0.5]])  # a new file without the column: refused by name
    assert "missing column(s) income" in run_quality(ctx)[str(REF)]
