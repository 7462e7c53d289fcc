"""Standard Webhooks v1 signing and delivery of the outbox, with backoff, jitter, Retry-After,
410 Gone and dead letters. Secrets are read at each pass (rotation needs no restart) and never
logged.

Each endpoint gets up to ``concurrency`` requests at a time; their answers are recorded in one
transaction per few rounds of requests. Delivery is at least once: a crash between a receiver's
2xx and that commit sends the event again with the same ``webhook-id`` (receivers de-duplicate on
it), and nothing is ever lost."""

from __future__ import annotations

import base64
import contextlib
import email.utils
import hashlib
import hmac
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

from lifecycled import __version__
from lifecycled.context import Context
from lifecycled.errors import ConfigError, InputError
from lifecycled.net import Poster, Reply, describe
from lifecycled.settings import WebhookEndpoint
from lifecycled.store import Store
from lifecycled.store.outbox import Attempt, Delivery, Outcome, claim_due, due, record_attempts

log = logging.getLogger(__name__)
MAX_RETRY_AFTER = 86400.0


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret: the base64-decoded bytes after the prefix."""
    if not secret.startswith("whsec_"):
        raise InputError("webhook secrets must start with whsec_")
    try:
        return base64.b64decode(secret[len("whsec_"):], validate=True)
    except ValueError as exc:
        raise InputError("webhook secret is not valid base64 after whsec_") from exc


def sign(key: bytes, message_id: str, timestamp: int, body: str) -> str:
    """``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``."""
    digest = hmac.new(key, f"{message_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(key: bytes, message_id: str, timestamp: int, body: str) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": f"lifecycled/{__version__}",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(key, message_id, timestamp, body),
    }


def backoff(attempts: int, endpoint: WebhookEndpoint, jitter: float) -> float:
    """Seconds before the next attempt after ``attempts`` failures; ``jitter`` in [0, 1)."""
    delay = min(endpoint.backoff_max, endpoint.backoff_initial * 2 ** max(0, attempts - 1))
    return delay * (0.5 + 0.5 * jitter)


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return min(max(0.0, when - now), MAX_RETRY_AFTER)


@dataclass
class DeliverOutcome:
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    disabled: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # endpoint -> why nothing was sent
    taken_over: int = 0  # deliveries claimed by another replica whose claim had run out

    def to_json(self) -> dict[str, object]:
        return {"delivered": self.delivered, "retried": self.retried, "dead": self.dead,
                "disabled": self.disabled, "skipped": self.skipped,
                "taken_over": self.taken_over}


def send(poster: Poster, endpoint: WebhookEndpoint, key: bytes, message_id: str, body: str,
         now: float) -> Reply:
    """POST one signed event to the endpoint (redirects are not followed)."""
    return poster.post(body.encode(), headers(key, message_id, int(now), body), endpoint.timeout)


KeyReader = Callable[[str, WebhookEndpoint], bytes]


def endpoint_key(ctx: Context, name: str, endpoint: WebhookEndpoint) -> bytes:
    """The HMAC key of endpoint ``name``, read from its secret file or variable now (so a
    rotated secret needs no restart)."""
    return secret_key(ctx.secret(endpoint.secret_file, endpoint.secret_env,
                                 what=f"webhooks.{name}.secret"))


def deliver_once(store: Store, endpoints: Mapping[str, WebhookEndpoint],
                 session: requests.Session, *, key_for: KeyReader,
                 clock: Callable[[], float] = time.time, jitter_source: random.Random,
                 batch: int = 200, budget_seconds: float = 60.0,
                 claim_as: str | None = None) -> DeliverOutcome:
    """Send due deliveries until none is due or the time budget is spent. ``key_for(name,
    endpoint)`` returns an endpoint's HMAC key (ConfigError or InputError when it cannot).
    With ``claim_as`` (several replicas), each batch is claimed under that name first, so no two
    replicas send a delivery at once; a claim lasts long enough for the batch to be sent."""
    report = DeliverOutcome()
    keys: dict[str, bytes] = {}
    posters: dict[str, Poster] = {}
    started = time.monotonic()
    workers = max((e.concurrency for e in endpoints.values()), default=1)
    slowest = max((e.timeout for e in endpoints.values()), default=10.0)
    # the pool, whose threads use the posters' handles, ends (waiting for them) before those close
    with contextlib.ExitStack() as open_posters, \
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deliver") as pool:
        while time.monotonic() - started < budget_seconds:
            if claim_as is None:
                batch_rows = due(store, clock(), batch)
            else:
                claimed = claim_due(store, claim_as, clock(), batch,
                                    ttl=2 * budget_seconds + 2 * slowest)
                batch_rows = claimed.deliveries
                report.taken_over += claimed.taken_over
            rows = [d for d in batch_rows if d.endpoint not in report.skipped]
            if not rows:
                break
            by_endpoint: dict[str, list[Delivery]] = {}
            for delivery in rows:
                by_endpoint.setdefault(delivery.endpoint, []).append(delivery)
            for name, items in by_endpoint.items():
                endpoint = endpoints.get(name)
                if endpoint is None:
                    report.skipped[name] = "endpoint no longer configured"
                    continue
                if name not in keys:
                    try:
                        keys[name] = key_for(name, endpoint)
                    except (ConfigError, InputError) as exc:
                        report.skipped[name] = str(exc)
                        log.error("webhook endpoint skipped endpoint=%s error=%s", name, exc)
                        continue
                if name not in posters:
                    try:
                        posters[name] = open_posters.enter_context(Poster(session, endpoint.url))
                    except requests.RequestException as exc:  # a URL requests cannot send to
                        report.skipped[name] = describe(exc, endpoint.url)
                        log.error("webhook endpoint skipped endpoint=%s error=%s", name, exc)
                        continue
                _deliver_batch(store, pool, posters[name], endpoint, keys[name], items, clock,
                               jitter_source, report)
                if name in report.disabled:
                    report.skipped[name] = "disabled (410 Gone)"
    return report


@dataclass(frozen=True)
class _Answer:
    delivery: Delivery
    sent_at: float
    status: int | None
    error: str
    wait: float | None  # Retry-After, seconds


def _deliver_batch(store: Store, pool: ThreadPoolExecutor, poster: Poster,
                   endpoint: WebhookEndpoint, key: bytes, items: Sequence[Delivery],
                   clock: Callable[[], float], jitter_source: random.Random,
                   report: DeliverOutcome) -> None:
    """Send ``items`` to one endpoint, ``endpoint.concurrency`` at a time; after a 410 nothing
    more is sent (only requests already in flight answer). The answers are recorded a few rounds
    of requests at a time, so a crash repeats at most that many deliveries."""
    gone = threading.Event()
    rounds = 4 * endpoint.concurrency
    for start in range(0, len(items), rounds):
        chunk = items[start:start + rounds]
        pending = iter(chunk)
        taking = threading.Lock()

        def sender(pending: Iterator[Delivery] = pending,
                   taking: threading.Lock = taking) -> list[_Answer]:
            """One of the endpoint's ``concurrency`` senders: takes the round's next delivery
            until none is left or the endpoint is gone (one thread hand-off per sender, not
            per request)."""
            answers = []
            while not gone.is_set():  # after a 410 the rest stays pending, untouched
                with taking:
                    delivery = next(pending, None)
                if delivery is None:
                    break
                answer = _send(poster, endpoint, key, delivery, clock())
                if answer.status == 410:
                    gone.set()
                answers.append(answer)
            return answers

        senders = [pool.submit(sender) for _ in range(min(endpoint.concurrency, len(chunk)))]
        answers = [answer for future in senders for answer in future.result()]
        record_attempts(store, [_judge(endpoint, a, jitter_source, report) for a in answers])
        if gone.is_set():
            return


def _send(poster: Poster, endpoint: WebhookEndpoint, key: bytes, delivery: Delivery,
          now: float) -> _Answer:
    try:
        response = send(poster, endpoint, key, delivery.event_id, delivery.body, now)
    except requests.RequestException as exc:
        return _Answer(delivery, now, None, describe(exc, endpoint.url), None)
    status = response.status
    wait = retry_after(response.headers.get("Retry-After"), now)
    return _Answer(delivery, now, status, "" if 200 <= status < 300 else f"HTTP {status}", wait)


def ping(session: requests.Session, name: str, endpoint: WebhookEndpoint, key: bytes,
         now: float) -> tuple[int | None, str]:
    """Send a signed ``ping`` event to one endpoint now (not through the outbox): the HTTP
    status (None when nothing answered) and the error text."""
    body = json.dumps({"type": "ping", "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                  time.gmtime(now)),
                       "data": {"endpoint": name}}, separators=(",", ":"))
    try:
        with Poster(session, endpoint.url) as poster:
            response = send(poster, endpoint, key, f"msg_ping_{int(now * 1000)}", body, now)
    except requests.RequestException as exc:
        return None, describe(exc, endpoint.url)
    ok = 200 <= response.status < 300
    return response.status, "" if ok else f"HTTP {response.status}"


def _judge(endpoint: WebhookEndpoint, answer: _Answer, jitter_source: random.Random,
           report: DeliverOutcome) -> Attempt:
    """What an answer means for its delivery: delivered, disabled (410), dead, or a retry after
    the backoff (or the receiver's Retry-After, when longer)."""
    delivery, now, status, error = answer.delivery, answer.sent_at, answer.status, answer.error
    attempts = delivery.attempts + 1
    if status is not None and 200 <= status < 300:
        report.delivered += 1
        return Attempt(delivery, now, status, "", Outcome.DELIVERED)
    if status == 410:
        reason = f"410 Gone at {delivery.event_id}"
        if delivery.endpoint not in report.disabled:
            report.disabled.append(delivery.endpoint)
            log.error("webhook endpoint disabled endpoint=%s reason=%s", delivery.endpoint,
                      reason)
        return Attempt(delivery, now, status, error, Outcome.DISABLED, disable_reason=reason)
    if attempts >= endpoint.max_attempts:
        report.dead += 1
        log.error("webhook dead letter endpoint=%s event=%s attempts=%d error=%s",
                  delivery.endpoint, delivery.event_id, attempts, error)
        return Attempt(delivery, now, status, error, Outcome.DEAD)
    delay = max(backoff(attempts, endpoint, jitter_source.random()), answer.wait or 0.0)
    report.retried += 1
    log.warning("webhook attempt failed endpoint=%s event=%s attempt=%d error=%s retry_in=%.1fs",
                delivery.endpoint, delivery.event_id, attempts, error, delay)
    return Attempt(delivery, now, status, error, Outcome.RETRY, next_attempt_at=now + delay)
