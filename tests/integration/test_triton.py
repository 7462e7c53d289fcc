"""Discovery and collection against real Triton servers."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from lifecycled.config import parse_settings
from lifecycled.context import Context
from lifecycled.domain import HistoryKind, ModelRef, Status
from lifecycled.store import open_store
from lifecycled.store.serving import serving_states, snapshots, source_health
from lifecycled.tasks.collect import run_collect
from lifecycled.tasks.discovery import run_discovery

from devtools import triton
from tests.helpers import ROOT, endpoint, wait_for

CREDIT = ModelRef("credit_scoring", "1")


def make_context(tmp_path: Path, endpoints: list[dict[str, Any]], **extra: Any) -> Context:
    import yaml

    models = {}
    for file in (ROOT / "config" / "models.d").glob("*.yaml"):
        data = yaml.safe_load(file.read_text())
        models[data.pop("name")] = data
    settings = parse_settings({"sources": {"triton": endpoints}, "models": models, **extra})
    return Context(settings, open_store("sqlite:///state.db", tmp_path))


def stats(server: triton.TritonServer, model: str) -> dict[str, Any]:
    payload = requests.get(f"{server.url}/v2/models/{model}/stats", timeout=10).json()
    (stat,) = payload["model_stats"]
    return stat["inference_stats"]




def test_discovery_registers_the_seed_models_once(triton_factory: Any, tmp_path: Path) -> None:
    server = triton_factory()
    ctx = make_context(tmp_path, [endpoint("local", server)])
    report = run_discovery(ctx)
    assert report.endpoints == {"local": "up"}
    assert sorted(report.registered) == ["credit_scoring:1", "fraud_detection:2",
                                         "risk_assessment:3"]
    record = ctx.store.get(CREDIT)
    assert record.status == Status.STAGING  # never production until a person says so
    assert (record.spec.owner_team, record.spec.business_domain) == ("risk_ml", "credit_risk")
    assert record.spec.framework == "python"
    assert record.spec.deployment["max_batch_size"] == 64
    assert "auto_discovered" in record.spec.tags
    assert record.spec.thresholds["max_latency_p99_seconds"] == pytest.approx(0.1)
    assert {s.state for s in serving_states(ctx.store)} == {"ready"}
    again = run_discovery(ctx)
    assert (again.registered, again.changed, again.failed) == ([], [], [])
    assert len(ctx.store.history(CREDIT)) == 1
    assert again.mismatches == []


def test_unconfigured_model_gets_auto_discovery_metadata(triton_factory: Any,
                                                          tmp_path: Path) -> None:
    server = triton_factory(models=(triton.ModelSpec("shadow_model", "7", 4, (0.1,) * 4),))
    ctx = make_context(tmp_path, [endpoint("local", server)])
    assert run_discovery(ctx).registered == ["shadow_model:7"]
    spec = ctx.store.get(ModelRef("shadow_model", "7")).spec
    assert (spec.owner_team, spec.business_domain, spec.tags) == (
        "auto_discovery", "unassigned", ("auto_discovered",))


def test_a_name_the_registry_refuses_is_skipped_and_exported_not_fatal(
        triton_factory: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Triton serves `_shadow` (legal there); the registry cannot hold the name. Before, collect
    failed for the whole fleet on every pass."""
    from lifecycled.exporter import LifecycleCollector
    from prometheus_client import CollectorRegistry, generate_latest

    server = triton_factory(models=(triton.SEED_MODELS[0],
                                    triton.ModelSpec("_shadow", "1", 4, (0.1,) * 4)))
    triton.infer(server.url, "_shadow", [[0.1, 0.2, 0.3, 0.4]])  # it serves
    ctx = make_context(tmp_path, [endpoint("local", server)])
    first = run_discovery(ctx)
    assert first.registered == ["credit_scoring:1"] and first.unmanaged == ["local: _shadow:1"]
    assert sum("not managing a model" in r.message for r in caplog.records) == 1
    run_discovery(ctx)
    assert sum("not managing a model" in r.message for r in caplog.records) == 1  # once per name
    run_collect(ctx)
    report = run_collect(ctx)
    assert report.endpoints == {"local": "up"} and "credit_scoring:1" in report.snapshots
    registry = CollectorRegistry()
    registry.register(LifecycleCollector(ctx.store))
    text = generate_latest(registry).decode()
    assert 'lifecycled_unmanaged_model{endpoint="local",model="_shadow",' in text


def test_collected_rates_agree_with_tritons_statistics(triton_factory: Any, tmp_path: Path) -> None:
    server = triton_factory()
    ctx = make_context(tmp_path, [endpoint("local", server)],  # evaluate checks production
                       defaults={"monitoring": {"initial_status": "production"}})
    run_discovery(ctx)
    before = stats(server, "credit_scoring")
    first = run_collect(ctx)
    assert first.snapshots == {}  # the first scrape only sets the base
    for _ in range(30):
        assert triton.infer(server.url, "credit_scoring", [[0.1, 0.2, 0.3, 0.4]] * 2).ok
    for _ in range(6):
        assert not triton.infer(server.url, "credit_scoring", [[5e6, 0, 0, 0]]).ok
    second = run_collect(ctx)
    after = stats(server, "credit_scoring")
    ok = after["success"]["count"] - before["success"]["count"]
    failed = after["fail"]["count"] - before["fail"]["count"]
    assert (ok, failed) == (30, 6)
    (snap,) = snapshots(ctx.store, CREDIT)
    assert snap.detail["requests"] == ok + failed
    assert snap.values["error_ratio"] == pytest.approx(failed / (ok + failed))
    interval = snap.values["interval_seconds"]
    assert snap.values["requests_per_second"] == pytest.approx((ok + failed) / interval)
    assert snap.values["inferences_per_second"] == pytest.approx(2 * ok / interval)
    mean_ns = (after["success"]["ns"] - before["success"]["ns"]) / ok
    # /metrics counts whole microseconds per request, the statistics API nanoseconds
    assert snap.values["latency_mean_seconds"] == pytest.approx(mean_ns * 1e-9, abs=2e-6)
    assert snap.values["latency_p99_seconds"] is not None
    assert snap.values["accuracy"] is None  # quality comes from outcomes, not configured here
    assert str(CREDIT) in second.snapshots
    # the breach is fresh: collect checked the thresholds of what it measured (before, only the
    # hourly evaluate task did, so an error burst could alert ~70 minutes late)
    from lifecycled.store.results import latest_evaluation

    assert str(CREDIT) in second.evaluated
    (evaluation,) = latest_evaluation(ctx.store, CREDIT)
    assert evaluation.at == snap.at
    assert "max_error_ratio" in {b["threshold"] for b in evaluation.result["breaches"]}


def test_unloaded_model_fails_after_the_grace_period(triton_factory: Any, tmp_path: Path) -> None:
    server = triton_factory()
    ctx = make_context(tmp_path, [endpoint("local", server)],
                       defaults={"monitoring": {"unavailable_grace_passes": 2,
                                                "initial_status": "production"}})
    run_discovery(ctx)
    ref = ModelRef("fraud_detection", "2")
    assert requests.post(f"{server.url}/v2/repository/models/fraud_detection/unload",
                         timeout=30).ok
    wait_for(lambda: any(e.get("state") == "UNAVAILABLE" for e in requests.post(
        f"{server.url}/v2/repository/index", timeout=10).json()), what="unload")
    first = run_discovery(ctx)
    assert first.changed == [{"model": "fraud_detection:2", "endpoint": "local", "from": "ready",
                              "to": "unavailable", "reason": "unloaded"}]
    assert first.failed == [] and ctx.store.get(ref).status == Status.PRODUCTION
    assert any(m.kind == "production_not_loaded" for m in first.mismatches)
    second = run_discovery(ctx)
    assert second.failed == ["fraud_detection:2"]
    last = ctx.store.history(ref)[-1]
    assert (last.kind, last.to_status, last.actor) == (HistoryKind.STATUS_CHANGED, Status.FAILED,
                                                       "discovery")
    assert "unloaded" in last.reason and last.evidence["endpoints"]["local"]["reason"] == "unloaded"
    assert requests.post(f"{server.url}/v2/repository/models/fraud_detection/load", timeout=60).ok
    back = run_discovery(ctx)
    assert back.changed == [{"model": "fraud_detection:2", "endpoint": "local",
                             "from": "unavailable", "to": "ready", "reason": ""}]
    assert ctx.store.get(ref).status == Status.FAILED  # a person decides what happens next


def test_triton_down_then_restarted(triton_factory: Any, tmp_path: Path) -> None:
    server = triton_factory()
    ctx = make_context(tmp_path, [endpoint("local", server)])
    run_discovery(ctx)
    run_collect(ctx)
    for _ in range(10):
        triton.infer(server.url, "credit_scoring", [[0.1, 0.2, 0.3, 0.4]])
    run_collect(ctx)
    assert len(snapshots(ctx.store, CREDIT)) == 1
    server.stop()
    down = run_collect(ctx)
    assert "local" in down.endpoints and down.endpoints["local"] != "up"
    assert down.snapshots == {}
    assert len(snapshots(ctx.store, CREDIT)) == 1  # nothing invented
    assert not run_discovery(ctx).registered
    assert [h.up for h in source_health(ctx.store)] == [False]
    assert ctx.store.get(CREDIT).status == Status.STAGING  # no flapping on an outage
    restarted = triton_factory("t2", http_port=server.http_port, grpc_port=server.grpc_port,
                               metrics_port=server.metrics_port)
    for _ in range(3):
        triton.infer(restarted.url, "credit_scoring", [[0.1, 0.2, 0.3, 0.4]])
    reset = run_collect(ctx)  # counters restarted below the stored scrape (3 < 10)
    assert reset.skipped[str(CREDIT)] == "local: counter_reset"
    for _ in range(4):
        triton.infer(restarted.url, "credit_scoring", [[0.1, 0.2, 0.3, 0.4]])
    resumed = run_collect(ctx)
    assert resumed.snapshots[str(CREDIT)]["requests"] == 4
    assert [h.up for h in source_health(ctx.store)] == [True]


def test_two_endpoints_aggregate(triton_factory: Any, tmp_path: Path) -> None:
    east, west = triton_factory("east"), triton_factory("west")
    ctx = make_context(tmp_path, [endpoint("east", east), endpoint("west", west)])
    run_discovery(ctx)
    assert len(serving_states(ctx.store, CREDIT)) == 2
    run_collect(ctx)
    for _ in range(10):
        triton.infer(east.url, "credit_scoring", [[0.1, 0.2, 0.3, 0.4]])
    for _ in range(5):
        triton.infer(west.url, "credit_scoring", [[0.1, 0.2, 0.3, 0.4]])
    for _ in range(5):
        triton.infer(west.url, "credit_scoring", [[9e6, 0, 0, 0]])
    report = run_collect(ctx)
    snap = report.snapshots[str(CREDIT)]
    assert snap["requests"] == 20
    assert snap["error_ratio"] == pytest.approx(5 / 20)
    assert sorted(snap["endpoints"]) == ["east", "west"]
    text = {name: requests.get(s.metrics_url, timeout=10).text for name, s in
            (("east", east), ("west", west))}
    from lifecycled.sources.triton import parse_metrics
    p99 = [parse_metrics(t, 0).models[("credit_scoring", "1")].quantiles_us["0.99"] * 1e-6
           for t in text.values()]
    assert snap["latency_p99_seconds"] == pytest.approx(max(p99))


def test_triton_serves_with_a_virtualenv_first_on_path(
        triton_factory: Callable[..., triton.TritonServer], monkeypatch: pytest.MonkeyPatch) -> None:
    """The Python backend stub finds its prefix through PATH: with a virtualenv activated (its
    python first on PATH) models reported READY but every inference was HTTP 500. The helper
    now starts tritonserver with an environment of its own, and checks an inference itself."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    monkeypatch.setenv("VIRTUAL_ENV", sys.prefix)
    server = triton_factory()
    reply = triton.infer(server.url, "credit_scoring", [[0.1, 0.2, 0.3, 0.4]])
    assert reply.status_code == 200, reply.text
