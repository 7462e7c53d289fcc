"""Retirement against a real Triton: unloading, keeping other versions, an unreachable server."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from lifecycled.actions.retire import cancel, preview, retire
from lifecycled.config import parse_settings
from lifecycled.context import Context
from lifecycled.domain import ModelRef, Status
from lifecycled.errors import InputError
from lifecycled.store import open_store
from lifecycled.store.retirement import latest_plan
from lifecycled.store.serving import snapshots
from lifecycled.tasks.collect import run_collect
from lifecycled.tasks.deliver import run_deliver
from lifecycled.tasks.discovery import run_discovery

from devtools import triton
from devtools.receiver import Receiver
from tests.helpers import endpoint, wait_for

SECRET = "whsec_" + base64.b64encode(b"r" * 32).decode()
FRAUD = ModelRef("fraud_detection", "2")


def context(tmp_path: Path, endpoints: list[dict[str, Any]],
            environ: dict[str, str] | None = None, **extra: Any) -> Context:
    # the fleet here is in production, as a person would have promoted it after discovery
    settings = parse_settings({"sources": {"triton": endpoints}, "defaults": {
        "monitoring": {"initial_status": "production"}}, **extra})
    store = open_store("sqlite:///state.db", tmp_path)
    store.subscriptions = settings.subscriptions()
    return Context(settings, store, environ=environ or {})


def index(server: triton.TritonServer) -> dict[tuple[str, str], dict[str, Any]]:
    entries = requests.post(f"{server.url}/v2/repository/index", timeout=10).json()
    return {(e["name"], e.get("version", "")): e for e in entries}




def test_retiring_unloads_backs_up_and_notifies(triton_factory: Any, tmp_path: Path) -> None:
    server = triton_factory()
    receiver = Receiver(SECRET)
    try:
        ctx = context(tmp_path, [endpoint("local", server, allow_model_control=True)],
                      environ={"RET_SECRET": SECRET},
                      webhooks={"ops": {"url": receiver.url, "secret_env": "RET_SECRET",
                                        "events": ["model.retired"]}})
        run_discovery(ctx)
        run_collect(ctx)
        triton.infer(server.url, "fraud_detection", [[0.5, 0.5, 0.5, 0.5]])
        run_collect(ctx)
        assert snapshots(ctx.store, FRAUD)
        ctx.store.set_status(FRAUD, Status.DEPRECATED, actor="t", reason="replaced", now=ctx.clock())
        plan = retire(ctx, FRAUD, reason="replaced by the new fraud model", actor="alice")
        assert plan.state == "completed", plan.error
        assert plan.steps[0]["detail"] == "local: unloaded"
        wait_for(lambda: index(server)[("fraud_detection", "2")].get("state") == "UNAVAILABLE",
                 "unavailable")
        assert index(server)[("fraud_detection", "2")]["reason"] == "unloaded"
        assert index(server)[("credit_scoring", "1")]["state"] == "READY"  # others untouched
        backup = Path(plan.steps[1]["detail"])
        assert (backup / "manifest.json").exists()
        assert ctx.store.get(FRAUD).status == Status.RETIRED and snapshots(ctx.store, FRAUD) == []
        run_deliver(ctx)
        (event,) = receiver.unique().values()
        assert event.body["type"] == "model.retired" and event.body["data"]["model"] == \
            "fraud_detection"
    finally:
        receiver.stop()


def test_other_versions_keep_serving(triton_factory: Any, tmp_path: Path) -> None:
    models = (*triton.SEED_MODELS, triton.ModelSpec("credit_scoring", "2", 4, (0.5,) * 4))
    server = triton_factory(models=models)
    config = requests.get(f"{server.url}/v2/models/credit_scoring/config", timeout=10).json()
    config["version_policy"] = {"all": {}}  # serve both versions side by side
    requests.post(f"{server.url}/v2/repository/models/credit_scoring/load", timeout=120,
                  json={"parameters": {"config": json.dumps(config)}}).raise_for_status()
    wait_for(lambda: index(server).get(("credit_scoring", "2"), {}).get("state") == "READY"
             and index(server).get(("credit_scoring", "1"), {}).get("state") == "READY", "both")
    ctx = context(tmp_path, [endpoint("local", server, allow_model_control=True)])
    run_discovery(ctx)
    old = ModelRef("credit_scoring", "1")
    ctx.store.set_status(old, Status.DEPRECATED, actor="t", reason="r", now=ctx.clock())
    plan = retire(ctx, old, reason="superseded", actor="alice")
    assert plan.state == "completed", plan.error
    assert plan.steps[0]["detail"] == "local: reloaded with versions 2 only"
    wait_for(lambda: index(server)[("credit_scoring", "1")].get("state") != "READY", "v1 gone")
    assert index(server)[("credit_scoring", "2")]["state"] == "READY"


def test_unreachable_triton_stops_the_plan_visibly_and_retry_completes(
        triton_factory: Any, tmp_path: Path) -> None:
    server = triton_factory()
    ctx = context(tmp_path, [endpoint("local", server, allow_model_control=True)])
    run_discovery(ctx)
    ctx.store.set_status(FRAUD, Status.DEPRECATED, actor="t", reason="r", now=ctx.clock())
    ports = {"http_port": server.http_port, "grpc_port": server.grpc_port,
             "metrics_port": server.metrics_port}
    server.stop()
    failed = retire(ctx, FRAUD, reason="old", actor="alice")
    assert failed.state == "failed" and failed.steps[0]["state"] == "failed"
    assert "triton:local" in failed.error
    assert ctx.store.get(FRAUD).status == Status.DEPRECATED  # nothing after the failed step
    back = triton_factory("again", **ports)
    done = retire(ctx, FRAUD, reason="old", actor="alice")
    assert done.id == failed.id and done.state == "completed", done.error
    wait_for(lambda: index(back)[("fraud_detection", "2")].get("state") == "UNAVAILABLE",
             "unloaded")


def test_kill_9_after_the_unload_before_it_is_recorded_then_rerun(triton_factory: Any,
                                                                   tmp_path: Path) -> None:
    """The `retire` process dies (SIGKILL) once Triton has unloaded the version but before the
    step is recorded; the rerun finds it no longer served, records that and completes."""
    from tests.actions.test_retirement_kill import check_completed_once, retire_command
    from tests.helpers import write_config

    server = triton_factory()
    config = write_config(tmp_path / "cfg", {"sources": {"triton": [
        endpoint("local", server, allow_model_control=True)]}}, models_d=False)
    state = tmp_path / "cfg" / "state"
    state.mkdir(parents=True)
    store = open_store(f"sqlite:///{state / 'lifecycled.db'}", state)
    run_discovery(Context(parse_settings({"sources": {"triton": [
        endpoint("local", server, allow_model_control=True)]},
        "defaults": {"monitoring": {"initial_status": "production"}}}), store))
    store.set_status(FRAUD, Status.DEPRECATED, actor="t", reason="replaced", now=time.time())
    store.close()

    killed = retire_command(config, "stop_traffic", "before_record", ref=FRAUD)
    assert killed.returncode == -9, killed.stdout + killed.stderr
    wait_for(lambda: index(server)[("fraud_detection", "2")].get("state") == "UNAVAILABLE",
             "unloaded before the kill")
    rerun = retire_command(config, ref=FRAUD)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    check_completed_once(state, FRAUD)
    store = open_store(f"sqlite:///{state / 'lifecycled.db'}", state)
    try:
        plan = latest_plan(store, FRAUD)
        assert plan is not None and plan.steps[0]["detail"] == "local: not serving it"
    finally:
        store.close()
    assert index(server)[("credit_scoring", "1")]["state"] == "READY"


def test_a_requested_unload_waits_until_triton_stops_serving(triton_factory: Any,
                                                             tmp_path: Path) -> None:
    """Without model control the plan asks the owning pipeline (model.unload_requested) and
    waits; before, the CLI reported stop_traffic done while Triton still served the version."""
    server = triton_factory()
    receiver = Receiver(SECRET)
    try:
        ctx = context(tmp_path, [endpoint("local", server)],  # no model control
                      environ={"RET_SECRET": SECRET},
                      webhooks={"pipeline": {"url": receiver.url, "secret_env": "RET_SECRET",
                                             "events": ["model.unload_requested"]}})
        run_discovery(ctx)
        plan = retire(ctx, FRAUD, reason="replaced by the new fraud model", actor="alice")
        assert plan.state == "waiting_for_unload"
        assert plan.steps[0]["state"] == "waiting"
        assert "waiting until Triton no longer serves it" in plan.steps[0]["detail"]
        assert ctx.store.get(FRAUD).status == Status.PRODUCTION
        assert run_discovery(ctx).retirements == {}  # still served: still waiting
        assert retire(ctx, FRAUD, reason="again", actor="alice").state == "waiting_for_unload"
        run_deliver(ctx)
        asked = [e for e in receiver.unique().values()
                 if e.body["type"] == "model.unload_requested"]
        assert len(asked) == 1  # asked once, however often it is checked
        reply = requests.post(f"{server.url}/v2/repository/models/fraud_detection/unload",
                              timeout=60)  # the pipeline does as asked
        assert reply.status_code == 200, reply.text
        wait_for(lambda: index(server)[("fraud_detection", "2")].get("state") == "UNAVAILABLE",
                 "unloaded")
        assert run_discovery(ctx).retirements == {"fraud_detection:2": "completed"}
        assert ctx.store.get(FRAUD).status == Status.RETIRED
        assert latest_plan(ctx.store, FRAUD).steps[0]["detail"] == "local: not serving it"
    finally:
        receiver.stop()


def test_a_retirement_nobody_would_carry_out_is_refused_and_a_waiting_one_cancelled(
        triton_factory: Any, tmp_path: Path) -> None:
    """Before, with no webhook endpoint subscribed, `retire` said it had asked the owning
    pipeline and the plan waited forever; nor could a waiting plan be ended."""
    server = triton_factory()
    alone = context(tmp_path / "alone", [endpoint("local", server)])  # no control, no webhooks
    run_discovery(alone)
    with pytest.raises(InputError, match=r"no webhook endpoint subscribes to "
                                         r"model\.unload_requested"):
        retire(alone, FRAUD, reason="replaced", actor="alice")
    assert latest_plan(alone.store, FRAUD) is None  # refused before anything was recorded
    assert "refused where it serves the version" in str(preview(alone, FRAUD)["endpoints"])
    heard = context(tmp_path / "heard", [endpoint("local", server)], environ={"S": SECRET},
                    webhooks={"pipeline": {"url": "http://127.0.0.1:9/", "secret_env": "S",
                                           "events": ["model.unload_requested"]}})
    run_discovery(heard)
    assert retire(heard, FRAUD, reason="replaced", actor="alice").state == "waiting_for_unload"
    ended = cancel(heard, FRAUD, reason="the new model failed review", actor="bob")
    assert ended.state == "cancelled" and "cancelled by bob" in ended.to_json()["error"]
    assert heard.store.get(FRAUD).status == Status.PRODUCTION
    assert run_discovery(heard).retirements == {}  # a cancelled plan is not resumed
    with pytest.raises(InputError, match="no unfinished retirement"):
        cancel(heard, FRAUD, reason="again", actor="bob")
    again = retire(heard, FRAUD, reason="replaced after all", actor="alice")
    assert again.id != ended.id and again.state == "waiting_for_unload"
