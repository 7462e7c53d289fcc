"""The update flow end to end with a real Triton, a real webhook receiver playing the CI
pipeline, and the daemon's real HTTP API."""

from __future__ import annotations

import base64
import threading
from pathlib import Path
from typing import Any

import requests
from lifecycled.actions.updates import apply_job_event
from lifecycled.api import JobEvent, job_events_handler
from lifecycled.config import parse_settings
from lifecycled.context import Context
from lifecycled.domain import HistoryKind, ModelRef, Status
from lifecycled.http import Api, HttpServer
from lifecycled.store import open_store
from lifecycled.store.updates import get, list_jobs
from lifecycled.tasks.collect import run_collect
from lifecycled.tasks.deliver import run_deliver
from lifecycled.tasks.discovery import run_discovery
from lifecycled.tasks.quality import run_quality
from lifecycled.tasks.updates import run_updates
from prometheus_client import CollectorRegistry

from devtools import triton
from devtools.receiver import Received, Receiver
from tests.helpers import endpoint, wait_for, write_outcomes

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
TOKEN = "pipeline-token"
V1, V2 = ModelRef("credit_scoring", "1"), ModelRef("credit_scoring", "2")






def test_degraded_model_is_retrained_validated_promoted(triton_factory: Any,
                                                        tmp_path: Path) -> None:
    server = triton_factory()
    write_outcomes(tmp_path / "outcomes.csv", accuracy=0.70)
    (tmp_path / "token").write_text(TOKEN)
    pipeline_errors: list[str] = []

    def pipeline(event: Received) -> None:
        """The CI system: train, write version 2 into Triton's repository, load it, report."""
        if event.body["type"] != "model.update_requested":
            return
        data = event.body["data"]

        def work() -> None:
            url, auth = data["callback_url"], {"Authorization": f"Bearer {TOKEN}"}
            try:
                for body in ({"state": "training", "progress": 20, "log": "fitting"},
                             {"state": "validating", "progress": 70,
                              "validation_metrics": {"accuracy": 0.93}}):
                    requests.post(url, json=body, headers=auth, timeout=30).raise_for_status()
                triton.write_model(server.repository, triton.ModelSpec(
                    "credit_scoring", data["target_version"], 4, (0.7, -0.4, 0.3, 0.2), -0.1))
                requests.post(f"{server.url}/v2/repository/models/credit_scoring/load",
                              timeout=120).raise_for_status()
                requests.post(url, json={"state": "deploying", "progress": 90,
                                         "log": "loaded in Triton"}, headers=auth,
                              timeout=30).raise_for_status()
            except requests.RequestException as exc:
                pipeline_errors.append(str(exc))

        threading.Thread(target=work, daemon=True).start()

    receiver = Receiver(SECRET, on_event=pipeline)
    port = triton.free_port()
    settings = parse_settings({
        "daemon": {"api_token_file": str(tmp_path / "token"),
                   "public_url": f"http://127.0.0.1:{port}"},
        "sources": {"triton": [endpoint("local", server)]},
        "defaults": {"monitoring": {"initial_status": "production"}},  # version 1 is in production
        "models": {"credit_scoring": {"owner_team": "risk_ml", "business_domain": "credit_risk",
                                      "quality": {"outcomes": str(tmp_path / "outcomes.csv")}}},
        "webhooks": {"ci": {"url": receiver.url, "secret_env": "CI_SECRET",
                            "events": ["model.update_requested", "model.update_completed"]}},
    })
    store = open_store("sqlite:///state.db", tmp_path)
    store.subscriptions = settings.subscriptions()
    ctx = Context(settings, store, environ={"CI_SECRET": SECRET})
    api = Api(store, CollectorRegistry(), lambda: (True, {}), lambda: TOKEN,
              posts={"jobs": job_events_handler(
                  lambda job_id, event: apply_job_event(ctx, job_id, event))})
    http = HttpServer(api, "127.0.0.1", port)
    http.start()
    try:
        run_discovery(ctx)
        for _ in range(6):  # quality from outcomes in every snapshot: accuracy 0.70 < 0.85
            run_quality(ctx)
            run_collect(ctx)
        (job_id,) = run_updates(ctx)["created"]
        assert get(store, job_id).trigger["threshold"] == "min_accuracy"
        assert run_deliver(ctx)["delivered"] == 1
        wait_for(lambda: get(store, job_id).state == "deploying" or pipeline_errors, "pipeline")
        assert not pipeline_errors
        wait_for(lambda: any(s == "READY" for s in [e.get("state") for e in requests.post(
            f"{server.url}/v2/repository/index", timeout=10).json() if e.get("version") == "2"]),
            "version 2 READY")
        found = run_discovery(ctx)
        assert "credit_scoring:2" not in found.registered  # the gate registers it, not discovery
        finished = run_updates(ctx)
        assert finished["finished"] == ["completed"]
        assert store.get(V2).status == Status.PRODUCTION
        assert store.get(V1).status == Status.DEPRECATED
        job = get(store, job_id)
        assert job.state == "completed" and job.validation == {"accuracy": 0.93}
        lines = " | ".join(line for _, line in job.log)
        assert "pipeline: fitting" in lines and "discovery saw the target READY" in lines
        history = [(h.ref.version, h.kind, h.to_status, h.actor) for h in
                   store.history(V1)[1:] + store.history(V2)]
        assert history == [
            ("1", HistoryKind.STATUS_CHANGED, Status.DEPRECATED, "updates"),
            ("2", HistoryKind.REGISTERED, Status.STAGING, "updates"),
            ("2", HistoryKind.STATUS_CHANGED, Status.PRODUCTION, "updates"),
        ]
        run_deliver(ctx)
        types = [e.body["type"] for e in receiver.unique().values()]
        assert types == ["model.update_requested", "model.update_completed"]
        assert not receiver.rejected
        assert [j.state for j in list_jobs(store)] == ["completed"]
    finally:
        http.stop()
        receiver.stop()
        store.close()


def test_a_target_that_failed_validation_never_becomes_production(triton_factory: Any,
                                                                  tmp_path: Path) -> None:
    from lifecycled.actions.updates import manual_job

    server = triton_factory()
    settings = parse_settings({"sources": {"triton": [endpoint("local", server)]},
                               "defaults": {"monitoring": {"initial_status": "production"}},
                               # a pipeline hears of the job (none runs here)
                               "webhooks": {"ci": {"url": "http://127.0.0.1:9/hook",
                                                   "secret_env": "CI_SECRET",
                                                   "events": ["model.update_requested"]}}})
    store = open_store("sqlite:///state.db", tmp_path)
    store.subscriptions = settings.subscriptions()
    ctx = Context(settings, store)
    try:
        run_discovery(ctx)
        job_id = manual_job(ctx, V1, "retrain", "alice")
        assert apply_job_event(ctx, job_id, JobEvent(state="completed", validation_metrics={
            "accuracy": 0.5})).state == "failed"
        triton.write_model(server.repository, triton.ModelSpec("credit_scoring", "2", 4,
                                                               (0.1,) * 4))
        requests.post(f"{server.url}/v2/repository/models/credit_scoring/load",
                      timeout=120).raise_for_status()
        wait_for(lambda: any(e.get("version") == "2" and e.get("state") == "READY"
                             for e in requests.post(f"{server.url}/v2/repository/index",
                                                    timeout=10).json()), "v2 READY")
        found = run_discovery(ctx)
        assert found.registered == ["credit_scoring:2"]
        assert store.get(V2).status == Status.FAILED
        assert job_id in store.history(V2)[0].reason
        assert store.get(V1).status == Status.PRODUCTION
    finally:
        store.close()
