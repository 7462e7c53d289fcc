"""Drift with no data pipeline: a real Triton started with the documented trace flags samples
the requests of the models lifecycled watches; their inputs and outputs become the current
window, the reference is frozen from the first rows, a shifted input distribution is found from
the traces alone, and the trace settings are put back when a model is no longer watched."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from lifecycled.config import parse_settings
from lifecycled.context import Context
from lifecycled.domain import HistoryKind, ModelRef
from lifecycled.store import open_store
from lifecycled.store.traces import frozen_reference, trace_states, traced_rows, watches
from lifecycled.tasks.discovery import run_discovery
from lifecycled.tasks.drift import DriftInputs, check_drift, run_model_drift
from lifecycled.tasks.traces import run_traces, stop_tracing

from devtools import triton
from tests.helpers import endpoint, wait_for

CREDIT = ModelRef("credit_scoring", "1")
FEATURES = ["INPUT_0", "INPUT_1", "INPUT_2", "INPUT_3"]


def settings(server: triton.TritonServer, trace_file: Path, **drift: Any) -> dict[str, Any]:
    return {"sources": {"triton": [endpoint("local", server, trace_file=str(trace_file),
                                            trace_log_frequency=5)]},
            "models": {"credit_scoring": {"drift": {"source": "triton", "trace_rate": 1,
                                                    "reference_rows": 400, "window": "1h",
                                                    "min_samples": 50, **drift}}}}


def context(tmp_path: Path, config: dict[str, Any]) -> Context:
    return Context(parse_settings(config), open_store("sqlite:///state.db", tmp_path))


def model_trace(server: triton.TritonServer, model: str | None = None) -> dict[str, Any]:
    path = f"/v2/models/{model}/trace/setting" if model else "/v2/trace/setting"
    reply: dict[str, Any] = requests.get(server.url + path, timeout=10).json()
    return reply


def send(server: triton.TritonServer, values: np.ndarray, model: str = "credit_scoring") -> None:
    for start in range(0, len(values), 8):
        reply = triton.infer(server.url, model, values[start:start + 8].tolist())
        assert reply.status_code == 200, reply.text


def read_until(ctx: Context, ref: ModelRef, rows: int, since: float = 0.0) -> None:
    """Run the traces pass until ``rows`` rows of ``ref`` sampled at or after ``since`` are in
    the store (Triton writes a file every 5 traces, the last one when it has 5)."""
    def enough() -> bool:
        run_traces(ctx)
        return traced_rows(ctx.store, ref, since=since)[1] >= rows
    wait_for(enough, f"{rows} traced rows of {ref}", timeout=60)


def printed(values: np.ndarray) -> np.ndarray:
    """The values as a trace prints them: float32, six significant digits."""
    return np.array([float(f"{v:.6g}") for v in values.astype(np.float32).ravel()]) \
        .reshape(values.shape)


def test_a_shift_in_the_inputs_is_found_from_the_traces_alone(
        triton_factory: Any, tmp_path: Path) -> None:
    trace_file = tmp_path / "traces" / "trace.json"
    trace_file.parent.mkdir()
    server = triton_factory(trace_file=trace_file)
    ctx = context(tmp_path, settings(server, trace_file))
    assert run_discovery(ctx).endpoints == {"local": "up"}
    before = model_trace(server, "fraud_detection")

    run_traces(ctx)
    traced = model_trace(server, "credit_scoring")
    assert sorted(traced["trace_level"]) == ["TENSORS", "TIMESTAMPS"]
    assert (traced["trace_rate"], traced["log_frequency"]) == ("1", "5")
    assert model_trace(server, "fraud_detection") == before  # not watched: untouched

    rng = np.random.default_rng(7)
    stable = rng.normal(0.0, 1.0, (400, 4))
    send(server, stable)
    send(server, rng.normal(0.0, 1.0, (40, 4)), model="fraud_detection")  # not watched
    read_until(ctx, CREDIT, 400)
    frozen = frozen_reference(ctx.store, CREDIT)
    assert frozen is not None and frozen.rows == 400
    assert sorted(frozen.columns) == [*FEATURES, "OUTPUT"]
    assert sorted(np.sort(frozen.columns["INPUT_0"])) == pytest.approx(
        np.sort(printed(stable)[:, 0]), abs=0)
    history = ctx.store.history(CREDIT)
    assert history[-1].kind == HistoryKind.REFERENCE_FROZEN
    assert history[-1].evidence["rows"] == 400
    assert traced_rows(ctx.store, ModelRef("fraud_detection", "2"))[1] == 0

    frozen_at = ctx.clock()
    shifted = rng.normal(0.0, 1.0, (400, 4))
    shifted[:, 0] += 1.0  # the first feature moves by one standard deviation
    send(server, shifted)
    read_until(ctx, CREDIT, 400, since=frozen_at)
    # the check at frozen_at + 1 h judges the rows of its last hour: the shifted ones
    check, record = run_model_drift(ctx, CREDIT, now=frozen_at + 3600)
    assert check is not None and record["source"] == "triton"
    assert record["reference"]["rows"] == 400
    by_name = {f["feature"]: f for f in record["features"]}
    assert by_name["INPUT_0"]["severity"] in ("high", "critical")
    assert by_name["OUTPUT"]["severity"] in ("medium", "high", "critical")  # output drift
    assert all(by_name[f]["severity"] == "low" for f in FEATURES[1:])
    assert record["severity"] in ("high", "critical")

    # the same numbers as the same values (as printed) written to files and judged as files
    current_rows, _ = traced_rows(ctx.store, CREDIT, since=frozen_at)
    assert current_rows["INPUT_0"].size == 400
    for name, values in (("reference.csv", printed(stable)), ("current.csv", printed(shifted))):
        with (tmp_path / name).open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(FEATURES)
            writer.writerows(values.tolist())
    files = check_drift(DriftInputs(str(tmp_path / "reference.csv"),
                                    str(tmp_path / "current.csv"), features=FEATURES),
                        ctx.settings.drift_policy("credit_scoring"), cache_dir=None, now=0.0)
    for feature in files.result.features:
        traced_feature = by_name[feature.feature]
        for key in ("statistic", "p_value", "js", "psi"):
            assert traced_feature[key] == pytest.approx(getattr(feature, key), rel=1e-12), key

    # no longer watched: the model's trace settings are Triton's global ones again
    ctx.settings = parse_settings(settings(server, trace_file, source="files",
                                           trace_rate=None, reference_rows=None, window=None,
                                           min_samples=None))
    run_traces(ctx)
    assert model_trace(server, "credit_scoring") == model_trace(server)
    assert watches(ctx.store) == []
    (state,) = trace_states(ctx.store)
    # 100 requests of 8 rows, 5 traces a file; fraud_detection's never traced
    assert (state.requests_total, state.files_total, state.problems_total) == (100, 20, 0)
    assert (state.backlog_files, state.backlog_bytes) == (0, 0)
    assert list(trace_file.parent.glob("trace.json.*")) == []  # every file read was deleted


def test_stopping_puts_a_models_own_trace_settings_back(triton_factory: Any,
                                                        tmp_path: Path) -> None:
    trace_file = tmp_path / "trace.json"
    server = triton_factory(trace_file=trace_file)
    own = {"trace_level": ["TIMESTAMPS"], "trace_rate": "7", "log_frequency": "3"}
    assert requests.post(f"{server.url}/v2/models/credit_scoring/trace/setting", json=own,
                         timeout=10).ok
    ctx = context(tmp_path, settings(server, trace_file))
    run_discovery(ctx)
    run_traces(ctx)
    assert model_trace(server, "credit_scoring")["trace_rate"] == "1"
    (watch,) = watches(ctx.store)
    assert watch.previous == own

    restarted = context(tmp_path, settings(server, trace_file))  # the state survives a restart
    stop_tracing(restarted)
    now = model_trace(server, "credit_scoring")
    assert {k: now[k] for k in own} == own
    assert watches(restarted.store) == []


def test_the_daemon_watches_every_discovered_model_and_restores_them_when_it_stops(
        triton_factory: Any, tmp_path: Path) -> None:
    """``defaults.drift.source: triton`` (the opt-in default): every model discovery finds is
    traced with no configuration of its own, judged from its own frozen reference, and each
    model's trace settings are Triton's global ones again after SIGTERM."""
    from tests.integration.test_daemon import FAST, Daemon, daemon_config

    trace_file = tmp_path / "trace.json"
    shadow = triton.ModelSpec("shadow_scoring", "1", 4, (0.2, 0.1, -0.3, 0.4))
    server = triton_factory(models=(*triton.SEED_MODELS, shadow), trace_file=trace_file)
    config = daemon_config(
        tmp_path / "cfg", schedule={**FAST, "traces": "1s"},
        sources={"triton": [endpoint("local", server, trace_file=str(trace_file),
                                     trace_log_frequency=2)]},
        defaults={"monitoring": {"initial_status": "staging"},
                  "drift": {"source": "triton", "trace_rate": 1, "reference_rows": 40,
                            "min_samples": 20}})
    daemon = Daemon(config, dict(os.environ), tmp_path / "daemon.log")
    try:
        daemon.wait_until(daemon.ready, "readyz")
        names = ("credit_scoring", "fraud_detection", "risk_assessment", "shadow_scoring")

        def traced() -> bool:
            text = requests.get(daemon.url("/metrics"), timeout=5).text
            return all(f'lifecycled_trace_watched{{endpoint="local",model="{n}"}} 1.0' in text
                       for n in names)
        daemon.wait_until(traced, "every discovered model traced")
        rng = np.random.default_rng(3)

        def judged() -> Any:
            send(server, rng.normal(0, 1, (16, 4)), model="shadow_scoring")
            result = requests.get(daemon.url("/api/v1/models/shadow_scoring/1"),
                                  timeout=5).json().get("latest_drift") or {}
            return result if result.get("judged") else None
        result = daemon.wait_until(judged, "a drift check of shadow_scoring from its traces")
        assert result["source"] == "triton" and result["reference"]["rows"] == 40
        assert {f["feature"] for f in result["features"]} == {
            "INPUT_0", "INPUT_1", "INPUT_2", "INPUT_3", "OUTPUT"}
    finally:
        assert daemon.stop() == 0, daemon.log()[-3000:]
    for name in names:
        assert model_trace(server, name) == model_trace(server), name
    assert "trace settings restored endpoint=local model=shadow_scoring" in daemon.log()


def test_an_unloaded_model_gets_its_settings_back_once_it_is_loaded_again(
        triton_factory: Any, tmp_path: Path) -> None:
    """Triton keeps a model's trace settings by name while it is unloaded and refuses to change
    them then ("unknown model"): the watch is kept, the pass goes on, and the settings are put
    back when the model is loaded again."""
    trace_file = tmp_path / "trace.json"
    server = triton_factory(trace_file=trace_file)
    ctx = context(tmp_path, settings(server, trace_file))
    run_discovery(ctx)
    run_traces(ctx)
    assert requests.post(f"{server.url}/v2/repository/models/credit_scoring/unload",
                         timeout=30).ok
    ctx.settings = parse_settings(settings(server, trace_file, source="files", trace_rate=None,
                                           reference_rows=None, window=None, min_samples=None))
    assert run_traces(ctx) == {"local": {"watched": [], "restored": [], "files": 0,
                                         "requests": 0, "rejected": 0, "problems": 0,
                                         "waiting": 0}}
    assert [w.name for w in watches(ctx.store)] == ["credit_scoring"]
    assert requests.post(f"{server.url}/v2/repository/models/credit_scoring/load",
                         timeout=60).ok
    assert run_traces(ctx)["local"]["restored"] == ["credit_scoring"]
    assert model_trace(server, "credit_scoring") == model_trace(server)
