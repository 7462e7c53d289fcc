"""Update jobs through the real HTTP API (in-process listener on 127.0.0.1): policy rules,
pipeline reports, the validation gate and promotion."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from lifecycled.actions.updates import apply_job_event, cancel_job, manual_job
from lifecycled.api import job_events_handler
from lifecycled.config import parse_settings
from lifecycled.context import Context
from lifecycled.domain import HistoryKind, ModelRef, ModelSpec, Status
from lifecycled.http import Api, HttpServer
from lifecycled.store.outbox import deliveries, event_body
from lifecycled.store.serving import add_snapshot
from lifecycled.store.updates import get, list_jobs
from lifecycled.tasks.updates import run_updates
from prometheus_client import CollectorRegistry

from tests.helpers import Clock
from tests.stores import open_test_store

REF = ModelRef("credit_scoring", "1")
TOKEN = "s3cret-token"

pytestmark = pytest.mark.usefixtures("both_engines")


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, Any]]:
    (tmp_path / "token").write_text(TOKEN + "\n")
    settings = parse_settings({
        "daemon": {"api_token_file": str(tmp_path / "token")},
        "webhooks": {"ci": {"url": "http://127.0.0.1:9/hook", "secret_env": "X"}},
        "policies": {"updates": {"cooldown": "1h", "job_timeout": "2h"}}})
    store = open_test_store(tmp_path)
    store.subscriptions = {"ci": ("model.update_requested", "model.update_completed",
                                  "model.update_failed")}
    clock = Clock()
    store.register(ModelSpec(REF, owner_team="risk_ml", business_domain="credit_risk",
                             tags=("tier1",), thresholds={"min_accuracy": 0.85}),
                   Status.PRODUCTION, actor="test", reason="r", now=clock.now)
    ctx = Context(settings, store, clock=clock)
    api = Api(store, CollectorRegistry(), lambda: (True, {}), lambda: TOKEN,
              posts={"jobs": job_events_handler(
                  lambda job_id, event: apply_job_event(ctx, job_id, event))})
    server = HttpServer(api, "127.0.0.1", 0)
    server.start()
    yield {"ctx": ctx, "store": store, "clock": clock,
           "url": f"http://127.0.0.1:{server.port}"}
    server.stop()
    store.close()


def post(env: dict[str, Any], job_id: str, body: Any, token: str | None = TOKEN,
         raw: bytes | None = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = raw if raw is not None else json.dumps(body).encode()
    return requests.post(f"{env['url']}/api/v1/jobs/{job_id}/events", data=data,
                         headers=headers, timeout=10)


def degrade(env: dict[str, Any], accuracy: float = 0.7, count: int = 6) -> None:
    with env["store"].write() as conn:
        for _ in range(count):
            add_snapshot(conn, REF, env["clock"].now, {"accuracy": accuracy}, {})


def test_degradation_creates_and_dispatches_one_job(env: dict[str, Any]) -> None:
    degrade(env)
    report = run_updates(env["ctx"])
    (job_id,) = report["created"]
    job = get(env["store"], job_id)
    assert (job.state, job.target_version, job.trigger_type) == ("dispatched", "2",
                                                                 "performance_degradation")
    assert job.trigger["threshold"] == "min_accuracy" and job.trigger["severity"] == "high"
    (delivery,) = deliveries(env["store"])
    body = event_body(env["store"], delivery.event_id)
    assert body["type"] == "model.update_requested"
    assert body["data"]["job_id"] == job_id
    assert body["data"]["callback_url"].endswith(f"/api/v1/jobs/{job_id}/events")
    again = run_updates(env["ctx"])  # still degraded, job active: recorded, not a new job
    assert again["created"] == [] and len(list_jobs(env["store"])) == 1


def test_a_degradation_nobody_would_act_on_creates_no_job(env: dict[str, Any]) -> None:
    """With no endpoint subscribed to model.update_requested, a job would wait for nobody."""
    env["store"].subscriptions = {"ci": ("model.update_completed",)}
    degrade(env)
    report = run_updates(env["ctx"])
    assert report["created"] == [] and report["not_created"] == [str(REF)]
    assert list_jobs(env["store"]) == [] and deliveries(env["store"]) == []


def test_cooldown_and_one_active_job(env: dict[str, Any]) -> None:
    degrade(env)
    (first,) = run_updates(env["ctx"])["created"]
    with pytest.raises(Exception, match="already has an active update job"):
        manual_job(env["ctx"], REF, "retrain", "alice")
    cancel_job(env["ctx"], first, "alice")
    env["clock"].now += 600
    assert run_updates(env["ctx"])["created"] == []  # cooldown of 1h
    env["clock"].now += 3600
    assert len(run_updates(env["ctx"])["created"]) == 1


def test_cancel_only_while_pending_or_dispatched(env: dict[str, Any]) -> None:
    job_id = manual_job(env["ctx"], REF, "retrain", "alice")
    assert post(env, job_id, {"state": "training", "progress": 10}).status_code == 200
    with pytest.raises(Exception, match="only pending or dispatched"):
        cancel_job(env["ctx"], job_id, "alice")


def test_bad_reports_are_rejected_and_change_nothing(env: dict[str, Any]) -> None:
    job_id = manual_job(env["ctx"], REF, "retrain", "alice")
    assert post(env, job_id, {"state": "training"}, token=None).status_code == 401
    assert post(env, job_id, {"state": "training"}, token="wrong").status_code == 401
    assert post(env, "job_nope", {"state": "training"}).status_code == 404
    assert post(env, job_id, None, raw=b"{not json").status_code == 400
    assert post(env, job_id, {"colour": "red"}).status_code == 400
    assert post(env, job_id, {"progress": 140}).status_code == 400
    assert post(env, job_id, {"state": "exploded"}).status_code == 400
    assert post(env, job_id, {"validation_metrics": {"accuracy": "high"}}).status_code == 400
    assert post(env, job_id, None, raw=b"x" * 70_000).status_code == 413
    assert post(env, job_id, {"state": "validating", "progress": 50}).status_code == 200
    assert post(env, job_id, {"state": "training"}).status_code == 409  # backwards
    assert post(env, job_id, {"progress": 20}).status_code == 409  # progress went down
    job = get(env["store"], job_id)
    assert (job.state, job.progress) == ("validating", 50)


def test_pipeline_completion_passes_the_gate_and_promotes(env: dict[str, Any]) -> None:
    job_id = manual_job(env["ctx"], REF, "quarterly retrain", "alice")
    assert post(env, job_id, {"state": "training", "progress": 30,
                              "log": ["epoch 1", "epoch 2"]}).status_code == 200
    done = post(env, job_id, {"state": "completed", "progress": 100,
                              "validation_metrics": {"accuracy": 0.91, "f1": 0.88}})
    assert done.status_code == 200 and done.json()["state"] == "completed"
    new = env["store"].get(ModelRef("credit_scoring", "2"))
    assert new.status == Status.PRODUCTION
    assert new.spec.owner_team == "risk_ml" and set(new.spec.tags) == {"tier1", "auto_updated"}
    assert env["store"].get(REF).status == Status.DEPRECATED
    old_last = env["store"].history(REF)[-1]
    assert (old_last.actor, old_last.reason) == ("updates", "superseded by 2")
    steps = [(h.kind, h.to_status, h.actor) for h in env["store"].history(new.ref)]
    assert steps == [(HistoryKind.REGISTERED, Status.STAGING, "updates"),
                     (HistoryKind.STATUS_CHANGED, Status.PRODUCTION, "updates")]
    types = [event_body(env["store"], d.event_id)["type"] for d in deliveries(env["store"])]
    assert types == ["model.update_requested", "model.update_completed"]
    assert post(env, job_id, {"progress": 100}).status_code == 409  # the job is over


def test_failed_validation_keeps_the_old_version(env: dict[str, Any]) -> None:
    job_id = manual_job(env["ctx"], REF, "retrain", "alice")
    post(env, job_id, {"state": "completed", "validation_metrics": {"accuracy": 0.72}})
    job = get(env["store"], job_id)
    assert job.state == "failed"
    assert job.reason == "validation accuracy 0.72 below minimum 0.8"
    assert env["store"].get(REF).status == Status.PRODUCTION
    types = [event_body(env["store"], d.event_id)["type"] for d in deliveries(env["store"])]
    assert types[-1] == "model.update_failed"


def test_a_job_without_progress_times_out(env: dict[str, Any]) -> None:
    job_id = manual_job(env["ctx"], REF, "retrain", "alice")
    env["clock"].now += 2 * 3600 + 1
    assert run_updates(env["ctx"])["timed_out"] == [job_id]
    assert get(env["store"], job_id).reason.startswith("no progress for")


def test_completion_reported_to_two_replicas_at_once_promotes_once(
        env: dict[str, Any], tmp_path: Path) -> None:
    """The pipeline's report reaches two replicas (each its own store connection) at the same
    moment, as a retried callback behind a load balancer would: the job is completed and the
    new version promoted once; the other report is answered as the job's end or refused."""
    import threading

    from lifecycled.api import JobEvent
    from lifecycled.errors import TransitionError

    job_id = manual_job(env["ctx"], REF, "retrain", "alice")
    other = open_test_store(tmp_path)  # a second replica's own connections
    other.subscriptions = env["store"].subscriptions  # the same webhooks configured
    replicas = [env["ctx"], Context(env["ctx"].settings, other, clock=env["clock"])]
    event = JobEvent(state="completed", progress=100.0, validation_metrics={"accuracy": 0.93})
    start = threading.Barrier(len(replicas))
    answers: list[str] = []

    def report(ctx: Context) -> None:
        start.wait()
        try:
            answers.append(apply_job_event(ctx, job_id, event).state)
        except TransitionError as exc:
            answers.append(f"refused: {exc}")
    threads = [threading.Thread(target=report, args=(ctx,)) for ctx in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(answers) == 2 and "completed" in answers, answers
    target = ModelRef("credit_scoring", "2")
    promoted = [h for h in env["store"].history(target) if h.to_status == Status.PRODUCTION]
    assert len(promoted) == 1
    assert [h.to_status for h in env["store"].history(REF)][-1] == Status.DEPRECATED
    assert len([h for h in env["store"].history(REF) if h.to_status == Status.DEPRECATED]) == 1
    types = [event_body(env["store"], d.event_id)["type"] for d in deliveries(env["store"])]
    assert types.count("model.update_completed") == 1
    other.close()


def test_a_second_trigger_is_attached_once_whatever_the_log_says(env: dict[str, Any]) -> None:
    """A trigger firing while a job is active is attached to it once. Which triggers a job has
    was found by searching its log's text: a pipeline line that happened to say "also triggered
    by drift_detection" stopped the real drift trigger from being recorded."""
    from lifecycled.store.results import add_drift_result

    degrade(env)
    (job_id,) = run_updates(env["ctx"])["created"]
    assert post(env, job_id, {"state": "training",
                              "log": ["also triggered by drift_detection? no: ours"]}).ok
    env["clock"].now += 60
    drifted = {"severity": "critical", "features": [], "judged": 1}
    add_drift_result(env["store"], REF, drifted, now=env["clock"].now)
    assert run_updates(env["ctx"])["attached"] == ["drift_detection", "performance_degradation"]
    lines = [line for _, line in get(env["store"], job_id).log]
    assert len([line for line in lines if line.startswith("also triggered by drift")]) == 1
    env["clock"].now += 60
    run_updates(env["ctx"])  # the same triggers again: nothing more in the log
    assert [line for _, line in get(env["store"], job_id).log] == lines
