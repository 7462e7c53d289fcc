"""Segments (``segment_by``): drift, quality, coverage and the estimate per value of a segment
column, against known answers: a shift in one channel only, labels of one channel only, and
the statistics of each segment equal to scipy's and scikit-learn's on that segment's rows."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from lifecycled.config import parse_settings
from lifecycled.context import Context
from lifecycled.core.columns import text
from lifecycled.core.segments import OTHER, masks, top_of, top_values
from lifecycled.domain import ModelSpec, Status
from lifecycled.errors import ConfigError
from lifecycled.store.outbox import deliveries, event_body
from lifecycled.store.results import latest_drift, latest_quality
from scipy import stats

from tests.stores import open_test_store
from tests.tasks.test_streams import DAY, NOW, REF, World, render, write

pytestmark = pytest.mark.usefixtures("both_engines")


@given(st.lists(st.sampled_from(["web", "app", "branch", "other", "", None]), max_size=60),
       st.integers(min_value=1, max_value=4))
def test_segments_split_every_row_once_and_keep_the_most_frequent_values(
        values: list[str | None], top: int) -> None:
    column = text(np.array(values, dtype=object))
    chosen = top_values(column, top)
    counts = Counter(v for v in column.tolist() if v is not None and v != OTHER)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    assert chosen == [v for v, _ in ranked[:top]]
    split = masks(column, chosen)
    assert list(split) == [*chosen, OTHER]
    assert (np.sum([m.astype(int) for m in split.values()], axis=0) == 1).all() or not values
    for value in chosen:
        assert all(column[split[value]] == value)
    rest = column[split[OTHER]].tolist()
    assert all(v is None or v == OTHER or v not in chosen for v in rest)
    assert top_of({None: 5, OTHER: 9, "b": 2, "a": 2}, 1) == ["a"]  # ties by value


def drift_context(tmp_path: Path, segment: dict[str, Any], current: dict[str, np.ndarray],
                  reference: dict[str, np.ndarray]) -> Context:
    paths = {}
    for name, data in (("reference", reference), ("current", current)):
        columns = list(data)
        paths[name] = str(write(tmp_path / f"{name}.csv", columns,
                                [list(row) for row in zip(*data.values(), strict=True)]))
    settings = parse_settings({"models": {REF.name: {
        "drift": {"reference": paths["reference"], "current": paths["current"]}, **segment}}})
    store = open_test_store(tmp_path)
    store.subscriptions = {"ci": ("model.drift_detected",)}
    store.register(ModelSpec(REF, owner_team="t", business_domain="d"), Status.PRODUCTION,
                   actor="test", reason="r", now=NOW - DAY)
    return Context(settings, store, clock=lambda: NOW, environ={})


def channel_sample(rng: np.random.Generator, n: int, shift_app: float,
                   kiosk: int = 0) -> dict[str, np.ndarray]:
    channel = rng.choice(["web", "app", "branch"], size=n, p=[0.5, 0.3, 0.2]).astype(object)
    channel = np.concatenate([channel, np.array(["kiosk"] * kiosk, dtype=object)])
    income = rng.normal(50, 10, n + kiosk) + np.where(channel == "app", shift_app, 0.0)
    return {"channel": channel, "income": income, "age": rng.normal(40, 10, n + kiosk)}


@pytest.mark.slow
def test_drift_in_one_channel_is_found_in_its_segment_and_each_equals_scipy(
        tmp_path: Path) -> None:
    """Income shifted for the app channel only: channel=app is critical, web and branch low;
    each segment's KS equals scipy's ks_2samp on that channel's rows; a channel of 10 rows
    cannot be judged (unknown, never low); the event names the drifted segment."""
    from lifecycled.tasks.drift import run_drift

    rng = np.random.default_rng(3)
    reference, current = channel_sample(rng, 4000, 0.0), channel_sample(rng, 4000, 15.0, kiosk=10)
    ctx = drift_context(tmp_path, {"segment_by": ["channel"], "segment_top": 4}, current,
                        reference)
    run_drift(ctx)
    (stored,) = latest_drift(ctx.store, REF)
    segments = {s["segment"]: s for s in stored.result["segments"]}
    assert list(segments) == ["channel=web", "channel=app", "channel=branch", "channel=kiosk",
                              "channel=other"]
    assert segments["channel=app"]["severity"] == "critical"
    assert segments["channel=web"]["severity"] == "low"
    assert segments["channel=branch"]["severity"] == "low"
    assert segments["channel=kiosk"]["severity"] == "unknown"  # 10 rows: too few to judge
    assert segments["channel=other"]["severity"] == "unknown" and \
        segments["channel=other"]["current_rows"] == 0
    for value in ("web", "app", "branch"):
        entry = segments[f"channel={value}"]
        now, then = current["channel"] == value, reference["channel"] == value
        assert (entry["current_rows"], entry["reference_rows"]) == (int(now.sum()),
                                                                    int(then.sum()))
        expected = stats.ks_2samp(reference["income"][then], current["income"][now])
        found = next(f for f in entry["worst_features"] if f["feature"] == "income")
        assert found["p_value"] == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    assert {f["feature"] for f in segments["channel=app"]["worst_features"]} == \
        {"income", "age"}  # the segment column itself is not a feature of its segment
    assert {f["feature"]: f["severity"] for f in segments["channel=web"]["worst_features"]} \
        == {"income": "low", "age": "low"}
    (event,) = [event_body(ctx.store, d.event_id) for d in deliveries(ctx.store)]
    assert event is not None and event["type"] == "model.drift_detected"
    assert [s["segment"] for s in event["data"]["segments"]] == ["channel=app"]
    metrics = render(ctx)
    assert ('lifecycled_model_segment_drift_severity{level="critical",model="credit_scoring",'
            'segment="channel=app",version="1"} 1.0') in metrics
    assert ('lifecycled_model_segment_drift_severity{level="unknown",model="credit_scoring",'
            'segment="channel=kiosk",version="1"} 1.0') in metrics


def test_the_rest_of_a_columns_values_is_one_other_segment(tmp_path: Path) -> None:
    """segment_top 1: web alone, app and branch together as channel=other, judged on the
    reference rows of those same channels (so app's shift shows there)."""
    from lifecycled.tasks.drift import run_drift

    rng = np.random.default_rng(5)
    reference, current = channel_sample(rng, 4000, 0.0), channel_sample(rng, 4000, 8.0)
    ctx = drift_context(tmp_path, {"segment_by": ["channel"], "segment_top": 1}, current,
                        reference)
    run_drift(ctx)
    (stored,) = latest_drift(ctx.store, REF)
    segments = {s["segment"]: s for s in stored.result["segments"]}
    assert list(segments) == ["channel=web", "channel=other"]
    rest = reference["channel"] != "web"
    assert segments["channel=other"]["reference_rows"] == int(rest.sum())
    assert segments["channel=other"]["severity"] in ("high", "critical")
    assert segments["channel=web"]["severity"] == "low"


def test_a_segment_column_missing_from_a_sample_is_reported_not_fatal(tmp_path: Path) -> None:
    from lifecycled.tasks.drift import run_drift

    rng = np.random.default_rng(6)
    reference, current = channel_sample(rng, 1000, 0.0), channel_sample(rng, 1000, 0.0)
    ctx = drift_context(tmp_path, {"segment_by": ["region", "channel"]}, current, reference)
    assert run_drift(ctx) == {str(REF): {"severity": "low"}}
    (stored,) = latest_drift(ctx.store, REF)
    region = stored.result["segments"][0]
    assert region["severity"] == "unknown"
    assert region["error"] == "no column 'region' in the reference and current sample"
    assert stored.result["segments"][1]["segment"] == "channel=web"


def test_config_refuses_a_segment_column_named_twice() -> None:
    with pytest.raises(ConfigError, match=r"models\.m\.segment_by.*named twice: a"):
        parse_settings({"models": {"m": {"segment_by": ["a", "b", "a"]}}})
    with pytest.raises(ConfigError, match=r"models\.m\.segment_top"):
        parse_settings({"models": {"m": {"segment_by": ["a"], "segment_top": 0}}})


class ChannelWorld(World):
    """The World's predictions with a channel: web for even ids, app for odd ones."""

    def predictions(self, name: str, rows: np.ndarray) -> None:
        write(self.folder / "predictions" / name,
              ["id", "timestamp", "prediction", "score", "channel"],
              [[f"p{i}", self.at[i], self.predicted[i], self.score[i],
                "web" if i % 2 == 0 else "app"] for i in rows])


def test_coverage_quality_and_the_estimate_per_channel(tmp_path: Path) -> None:
    """Every web prediction gets its label, 1 in 20 app ones: web is judged, with the accuracy
    and ROC AUC of its own rows; app is provisional (coverage below min_coverage); each has its
    own coverage, and web its own estimate of the newest predictions."""
    from lifecycled.tasks.quality import run_quality
    from sklearn.metrics import accuracy_score, roc_auc_score

    world = ChannelWorld(tmp_path)
    rows = np.arange(world.n)
    world.predictions("all.csv", rows)
    labelled = (rows % 2 == 0) | (rows % 40 == 1)
    world.labels("labels.csv", rows[labelled & (world.at <= NOW - 10 * DAY)])
    ctx = world.context(tmp_path, min_coverage=0.5)
    model = ctx.settings.models[REF.name].model_copy(update={"segment_by": ("channel",)})
    ctx = Context(ctx.settings.model_copy(update={"models": {REF.name: model}}), ctx.store,
                  clock=lambda: NOW, environ={})
    run_quality(ctx)
    (stored,) = latest_quality(ctx.store)
    segments = {s["segment"]: s for s in stored.result["segments"]}
    assert set(segments) == {"channel=web", "channel=app", "channel=other"}
    window = (world.at > NOW - 30 * DAY) & (world.at <= NOW - 10 * DAY)
    for value, parity in (("web", 0), ("app", 1)):
        entry = segments[f"channel={value}"]
        mine = window & (rows % 2 == parity)
        judged = mine & labelled
        assert entry["predictions"] == int(mine.sum())
        assert entry["labelled"] == int(judged.sum())
        assert entry["coverage"] == pytest.approx(judged.sum() / mine.sum(), abs=1e-12)
    web = segments["channel=web"]
    judged = window & (rows % 2 == 0)
    assert web["judged"] is True
    assert web["accuracy"] == pytest.approx(
        accuracy_score(world.truth[judged], world.predicted[judged]), abs=1e-12)
    assert web["roc_auc"] == pytest.approx(
        roc_auc_score(world.truth[judged], world.score[judged]), abs=1e-9)
    newest = (world.at > NOW - 10 * DAY) & (rows % 2 == 0)
    assert web["estimate"]["trusted"] is True and web["estimate"]["n"] == int(newest.sum())
    app = segments["channel=app"]
    assert app["judged"] is False and "below min_coverage 50%" in app["reason"]
    assert "accuracy" not in app
    assert app["estimate"]["trusted"] is False  # too few labels to calibrate on
    assert segments["channel=other"]["predictions"] == 0
    metrics = render(ctx)
    assert ('lifecycled_model_segment_quality_ratio{metric="accuracy",model="credit_scoring",'
            'segment="channel=web",version="1"}') in metrics
    assert 'segment="channel=app",version="1"} ' not in metrics.split(
        "lifecycled_model_segment_quality_ratio", 2)[-1].split("# HELP")[0]
    assert ('lifecycled_model_segment_label_coverage_ratio{model="credit_scoring",'
            'segment="channel=app",version="1"}') in metrics
    assert ('lifecycled_model_segment_estimated_ratio{bound="lower",metric="accuracy",'
            'model="credit_scoring",segment="channel=web",version="1"}') in metrics


def test_a_prediction_log_without_the_segment_column_is_refused_by_name(
        tmp_path: Path) -> None:
    from lifecycled.tasks.quality import run_quality

    world = World(tmp_path)  # no channel column
    world.predictions("all.csv", np.arange(world.n))
    world.labels("labels.csv", np.arange(world.n))
    ctx = world.context(tmp_path)
    model = ctx.settings.models[REF.name].model_copy(update={"segment_by": ("channel",)})
    ctx = Context(ctx.settings.model_copy(update={"models": {REF.name: model}}), ctx.store,
                  clock=lambda: NOW, environ={})
    done = run_quality(ctx)
    assert "missing column(s) channel" in str(done[str(REF)])
    assert latest_quality(ctx.store) == []


def test_outcomes_quality_per_segment_equals_scikit_learn(tmp_path: Path) -> None:
    from lifecycled.tasks.outcomes import check_quality
    from sklearn.metrics import accuracy_score

    rng = np.random.default_rng(8)
    n = 3000
    region = rng.choice(["eu", "us", "apac"], size=n)
    label = rng.integers(0, 2, n)
    right = rng.uniform(size=n) < np.where(region == "eu", 0.95, 0.7)
    prediction = np.where(right, label, 1 - label)
    path = write(tmp_path / "outcomes.csv", ["prediction", "label", "region"],
                 [[p, t, r] for p, t, r in zip(prediction, label, region, strict=True)])
    from lifecycled.core.quality import OutcomeColumns
    result = check_quality(str(path), OutcomeColumns(), segment_by=["region"], segment_top=2)
    segments = {s["segment"]: s for s in result["segments"]}
    counts = Counter(region.tolist())
    top = sorted(counts, key=lambda v: (-counts[v], v))[:2]
    assert list(segments) == [f"region={v}" for v in top] + ["region=other"]
    for value in top:
        mine = region == value
        assert segments[f"region={value}"]["accuracy"] == pytest.approx(
            accuracy_score(label[mine], prediction[mine]), abs=1e-12)
    rest = ~np.isin(region, top)
    assert segments["region=other"]["samples"] == int(rest.sum())
    every = check_quality(str(path), OutcomeColumns(), segment_by=["region"], segment_top=3)
    empty = next(s for s in every["segments"] if s["segment"] == "region=other")
    assert empty == {"segment": "region=other", "column": "region", "value": "other",
                     "predictions": 0, "labelled": 0, "samples": 0, "judged": False}
    assert segments["region=other"]["accuracy"] == pytest.approx(
        accuracy_score(label[rest], prediction[rest]), abs=1e-12)


def test_pushed_predictions_carry_their_segments_and_a_batch_without_them_is_refused(
        tmp_path: Path) -> None:
    from lifecycled.api import read_body
    from lifecycled.errors import InputError
    from lifecycled.store.labels import recent
    from lifecycled.tasks.streams import push

    world = World(tmp_path)
    ctx = world.context(tmp_path)
    model = ctx.settings.models[REF.name].model_copy(update={"segment_by": ("channel",)})
    ctx = Context(ctx.settings.model_copy(update={"models": {REF.name: model}}), ctx.store,
                  clock=lambda: NOW, environ={})
    lines = [{"id": f"x{i}", "timestamp": NOW - 10, "prediction": 1, "score": 0.9,
              **({"channel": ["web", "app"][i % 2]} if i < 4 else {})} for i in range(5)]

    def body(rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        return read_body("POST", "\n".join(json.dumps(r) for r in rows).encode(),
                         "application/x-ndjson")

    with pytest.raises(InputError, match=r"missing column\(s\) channel"):
        push(ctx, REF, "predictions", body([{k: v for k, v in r.items() if k != "channel"}
                                            for r in lines]))
    assert push(ctx, REF, "predictions", body(lines))["new"] == 5
    stored = recent(ctx.store, REF, since=NOW - 20, until=NOW)
    assert [(s or {}).get("channel") for s in stored.segments] == \
        ["web", "app", "web", "app", None]  # the row without a value: None, in "other"


def test_the_drift_command_lists_the_segments(tmp_path: Path) -> None:
    from lifecycled.cli.checks import _drift_text
    from lifecycled.tasks.drift import run_model_drift

    rng = np.random.default_rng(9)
    reference, current = channel_sample(rng, 3000, 0.0), channel_sample(rng, 3000, 15.0)
    ctx = drift_context(tmp_path, {"segment_by": ["channel"]}, current, reference)
    _, record = run_model_drift(ctx, REF, now=NOW)
    lines = _drift_text({**record, "model": str(REF)}).splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("SEGMENT"))
    app = next(line for line in lines[header:] if line.startswith("channel=app"))
    assert "critical" in app and "income (critical)" in app
    assert next(line for line in lines[header:] if line.startswith("channel=web")).split()[4] \
        == "low"
