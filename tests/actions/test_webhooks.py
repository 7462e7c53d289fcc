"""Webhook signing and the outbox, delivered to a real local receiver that verifies each
delivery with the standardwebhooks reference library."""

from __future__ import annotations

import base64
import json
import random
import threading
import time
from typing import Any

import pytest
import requests
from lifecycled.actions.webhooks import backoff, deliver_once, headers, retry_after, secret_key, sign
from lifecycled.domain import ModelRef, ModelSpec, Status
from lifecycled.secrets import read_secret
from lifecycled.settings import WebhookEndpoint
from lifecycled.store import Store
from lifecycled.store.events import emit_in
from lifecycled.store.outbox import DEAD, deliveries, enable_endpoint, endpoint_summaries, redeliver
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from devtools.receiver import Receiver
from tests.helpers import Clock

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
ENV = {"HOOK_SECRET": SECRET}
REF = ModelRef("credit_scoring", "1")

pytestmark = pytest.mark.usefixtures("both_engines")
# the clocks start at real time: the receiver checks timestamps within 5 min of its own clock,
# as a real receiver does, so every step a test advances must stay small


def endpoint(url: str, **kw: object) -> WebhookEndpoint:
    return WebhookEndpoint(url=url, secret_env="HOOK_SECRET", backoff_initial=1,
                           backoff_max=60, **kw)  # type: ignore[arg-type]

STEP = 61  # past any backoff


@pytest.fixture
def store(store: Store) -> Store:
    store.subscriptions = {"ci": ("model.registered", "model.status_changed", "model.retired")}
    store.register(ModelSpec(REF, owner_team="t", business_domain="d"), Status.PRODUCTION,
                   actor="test", reason="r", now=time.time() - 1)
    return store


def deliver(store: Store, ep: WebhookEndpoint, clock: Clock) -> object:
    return deliver_once(store, {"ci": ep}, requests.Session(), clock=clock,
                        key_for=keys(ENV), jitter_source=random.Random(0))


def keys(environ: dict[str, str]) -> Any:
    """Reads each endpoint's key from ``environ``, as the context does from the daemon's."""
    return lambda name, ep: secret_key(read_secret(ep.secret_file, ep.secret_env, environ,
                                                   what=f"webhooks.{name}.secret"))


def test_signature_matches_the_reference_library_and_tampering_is_rejected() -> None:
    body = json.dumps({"type": "model.retired", "timestamp": "2026-01-01T00:00:00Z",
                       "data": {"model": "m"}})
    import time
    now = int(time.time())
    sent = headers(secret_key(SECRET), "msg_1", now, body)
    assert Webhook(SECRET).verify(body, sent)["type"] == "model.retired"
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body.replace("model.retired", "model.registered"), sent)
    assert sign(secret_key(SECRET), "msg_1", now, body) == sent["webhook-signature"]


@pytest.mark.slow
def test_delivered_signed_and_verified(store: Store) -> None:
    receiver = Receiver(SECRET)
    clock = Clock(time.time())
    try:
        report = deliver(store, endpoint(receiver.url), clock)
        assert report.delivered == 1  # type: ignore[attr-defined]
        (event,) = receiver.unique().values()
        assert event.body["type"] == "model.registered"
        assert event.body["data"]["model"] == "credit_scoring"
        assert event.body["data"]["links"]["model"] == "/api/v1/models/credit_scoring/1"
        assert event.id.startswith("msg_") and not receiver.rejected
        assert deliver(store, endpoint(receiver.url), clock).delivered == 0  # type: ignore[attr-defined]
    finally:
        receiver.stop()


@pytest.mark.slow
def test_failures_then_success_arrive_exactly_once_with_a_stable_id(store: Store) -> None:
    receiver = Receiver(SECRET, respond=lambda n, h: (500, {}) if n <= 3 else (200, {}))
    clock = Clock(time.time())
    ep = endpoint(receiver.url)
    try:
        for _ in range(4):
            deliver(store, ep, clock)
            clock.now += STEP
        assert len(receiver.attempts) == 4
        assert len({h["webhook-id"] for h in receiver.attempts}) == 1
        assert len({h["webhook-timestamp"] for h in receiver.attempts}) == 4  # a fresh signature
        assert len(receiver.unique()) == 1
        (summary,) = endpoint_summaries(store, ["ci"])
        assert (summary.pending, summary.delivered, summary.dead) == (0, 1, 0)
    finally:
        receiver.stop()


@pytest.mark.slow
def test_retry_after_is_honoured(store: Store) -> None:
    receiver = Receiver(SECRET, respond=lambda n, h: (503, {"Retry-After": "120"}) if n == 1
                        else (200, {}))
    clock = Clock(time.time())
    ep = endpoint(receiver.url)
    try:
        deliver(store, ep, clock)
        (pending,) = deliveries(store)
        assert pending.next_attempt_at >= clock.now + 120
        clock.now += 119
        deliver(store, ep, clock)
        assert len(receiver.attempts) == 1  # not before Retry-After
        clock.now += 2
        deliver(store, ep, clock)
        assert len(receiver.unique()) == 1
    finally:
        receiver.stop()


@pytest.mark.slow
def test_410_gone_disables_the_endpoint(store: Store) -> None:
    receiver = Receiver(SECRET, respond=lambda n, h: (410, {}))
    clock = Clock(time.time())
    try:
        report = deliver(store, endpoint(receiver.url), clock)
        assert report.disabled == ["ci"]  # type: ignore[attr-defined]
        store.set_status(REF, Status.DEPRECATED, actor="t", reason="r", now=clock.now)
        clock.now += STEP
        deliver(store, endpoint(receiver.url), clock)
        assert len(receiver.attempts) == 1  # nothing more is sent to a disabled endpoint
        (summary,) = endpoint_summaries(store, ["ci"])
        assert summary.disabled and "410" in summary.disabled_reason and summary.pending == 2
        enable_endpoint(store, "ci")  # `lifecycled webhooks enable ci`
        (summary,) = endpoint_summaries(store, ["ci"])
        assert not summary.disabled and summary.pending == 2
    finally:
        receiver.stop()


@pytest.mark.slow
def test_dead_letter_after_max_attempts_then_redelivery(store: Store) -> None:
    failing = True
    receiver = Receiver(SECRET, respond=lambda n, h: (500, {}) if failing else (200, {}))
    clock = Clock(time.time())
    ep = endpoint(receiver.url, max_attempts=3)
    try:
        for _ in range(3):
            deliver(store, ep, clock)
            clock.now += STEP
        deliver(store, ep, clock)  # a dead letter is not tried again
        assert len(receiver.attempts) == 3
        (dead,) = deliveries(store, state=DEAD)
        assert dead.attempts == 3 and dead.last_error == "HTTP 500"
        failing = False
        assert redeliver(store, event_id=dead.event_id, all_dead=False, now=clock.now) == 1
        deliver(store, ep, clock)
        assert len(receiver.unique()) == 1 and deliveries(store, state=DEAD) == []
    finally:
        receiver.stop()


def test_unreachable_receiver_and_missing_secret_keep_events_pending(store: Store) -> None:
    clock = Clock(time.time())
    report = deliver(store, endpoint("http://127.0.0.1:9/hook", timeout=1), clock)
    assert report.retried == 1  # type: ignore[attr-defined]
    missing = WebhookEndpoint(url="http://127.0.0.1:9/", secret_env="NOT_SET")
    clock.now += 3600  # nothing is sent here: no receiver checks this timestamp
    skipped = deliver_once(store, {"ci": missing}, requests.Session(), clock=clock,
                           key_for=keys({}), jitter_source=random.Random(0))
    assert "NOT_SET is not set" in skipped.skipped["ci"]
    assert SECRET not in json.dumps(skipped.to_json())
    (pending,) = deliveries(store)
    assert pending.state == "pending"


def test_a_rolled_back_change_writes_no_event(store: Store) -> None:
    before = len(deliveries(store))
    with pytest.raises(RuntimeError), store.write() as conn:
        store.set_status_in(conn, REF, Status.DEPRECATED, actor="t", reason="r", now=1.0)
        raise RuntimeError("crash before commit")
    assert len(deliveries(store)) == before
    assert store.get(REF).status == Status.PRODUCTION


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    ep = WebhookEndpoint(url="http://x", secret_env="S", backoff_initial=10, backoff_max=600)
    assert backoff(1, ep, 0.0) == 5 and backoff(1, ep, 0.999) < 10
    assert backoff(3, ep, 0.0) == 20
    assert backoff(30, ep, 0.999) <= 600
    assert retry_after("30", 0) == 30
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480 - 60) == 60
    assert retry_after("soon", 0) is None


class Overlap:
    """A receiver's answer that takes 50 ms and counts the requests in flight at once."""

    def __init__(self, status: int) -> None:
        self.status, self.now, self.most = status, 0, 0
        self.lock = threading.Lock()

    def __call__(self, _n: int, _headers: dict[str, str]) -> tuple[int, dict[str, str]]:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(0.05)
        with self.lock:
            self.now -= 1
        return self.status, {}


def queue(store: Store, count: int, now: float) -> None:
    with store.write() as conn:
        for i in range(count):
            emit_in(conn, store.subscriptions, "model.status_changed",
                    {"model": "m", "version": str(i)}, now)


@pytest.mark.slow
def test_deliveries_go_out_side_by_side_up_to_the_endpoint_concurrency(store: Store) -> None:
    """One request at a time gave a receiver 50 ms away 20 events a second; now up to
    ``concurrency`` are in flight to an endpoint, never more, and each event arrives once."""
    overlap = Overlap(200)
    receiver = Receiver(SECRET, respond=overlap)
    clock = Clock(time.time())
    queue(store, 23, clock.now)
    try:
        report = deliver(store, endpoint(receiver.url, concurrency=4), clock)
        assert report.delivered == 24  # type: ignore[attr-defined]  # with the registration
        assert 2 <= overlap.most <= 4
        assert len(receiver.unique()) == len(receiver.attempts) == 24
        (summary,) = endpoint_summaries(store, ["ci"])
        assert (summary.pending, summary.delivered) == (0, 24)
    finally:
        receiver.stop()


@pytest.mark.slow
def test_after_a_410_only_the_requests_already_in_flight_are_answered(store: Store) -> None:
    overlap = Overlap(410)
    receiver = Receiver(SECRET, respond=overlap)
    clock = Clock(time.time())
    queue(store, 23, clock.now)
    try:
        report = deliver(store, endpoint(receiver.url, concurrency=4), clock)
        assert report.disabled == ["ci"]  # type: ignore[attr-defined]
        assert 1 <= len(receiver.attempts) <= 4  # those in flight when the first 410 came
        (summary,) = endpoint_summaries(store, ["ci"])
        assert summary.disabled and summary.pending == 24  # nothing lost, nothing dead
        tried = [d for d in deliveries(store) if d.attempts]
        assert len(tried) == len(receiver.attempts)  # every answer recorded, the rest untouched
    finally:
        receiver.stop()
