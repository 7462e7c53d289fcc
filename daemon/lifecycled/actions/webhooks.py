"""Standard Webhooks v1 signing and delivery of the outbox, with backoff, jitter, Retry-After,
410 Gone and dead letters. Secrets are read at each pass (rotation needs no restart) and never
logged."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import requests

from lifecycled import __version__
from lifecycled.context import Context
from lifecycled.errors import ConfigError, InputError
from lifecycled.settings import WebhookEndpoint
from lifecycled.store import Store
from lifecycled.store.outbox import Delivery, due, record_attempt

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

    def to_json(self) -> dict[str, object]:
        return {"delivered": self.delivered, "retried": self.retried, "dead": self.dead,
                "disabled": self.disabled, "skipped": self.skipped}


def send(session: requests.Session, endpoint: WebhookEndpoint, key: bytes, message_id: str,
         body: str, now: float) -> requests.Response:
    return session.post(endpoint.url, data=body.encode(),
                        headers=headers(key, message_id, int(now), body),
                        timeout=endpoint.timeout, allow_redirects=False)


KeyReader = Callable[[str, WebhookEndpoint], bytes]


def endpoint_key(ctx: Context, name: str, endpoint: WebhookEndpoint) -> bytes:
    """The HMAC key of endpoint ``name``, read from its secret file or variable now (so a
    rotated secret needs no restart)."""
    return secret_key(ctx.secret(endpoint.secret_file, endpoint.secret_env,
                                 what=f"webhooks.{name}.secret"))


def deliver_once(store: Store, endpoints: Mapping[str, WebhookEndpoint],
                 session: requests.Session, *, key_for: KeyReader,
                 clock: Callable[[], float] = time.time, jitter_source: random.Random,
                 batch: int = 200, budget_seconds: float = 60.0) -> DeliverOutcome:
    """Send due deliveries until none is due or the time budget is spent. ``key_for(name,
    endpoint)`` returns an endpoint's HMAC key (ConfigError or InputError when it cannot)."""
    now_fn = clock
    report = DeliverOutcome()
    keys: dict[str, bytes] = {}
    started = time.monotonic()
    while time.monotonic() - started < budget_seconds:
        batch_rows = [d for d in due(store, now_fn(), batch) if d.endpoint not in report.skipped]
        if not batch_rows:
            break
        for delivery in batch_rows:
            endpoint = endpoints.get(delivery.endpoint)
            if endpoint is None:
                report.skipped[delivery.endpoint] = "endpoint no longer configured"
                continue
            if delivery.endpoint not in keys:
                try:
                    keys[delivery.endpoint] = key_for(delivery.endpoint, endpoint)
                except (ConfigError, InputError) as exc:
                    report.skipped[delivery.endpoint] = str(exc)
                    log.error("webhook endpoint skipped endpoint=%s error=%s",
                              delivery.endpoint, exc)
                    continue
            _attempt(store, endpoint, keys[delivery.endpoint], delivery, session, now_fn(),
                     jitter_source, report)
            if delivery.endpoint in report.disabled:
                report.skipped[delivery.endpoint] = "disabled (410 Gone)"
    return report


def ping(session: requests.Session, name: str, endpoint: WebhookEndpoint, key: bytes,
         now: float) -> tuple[int | None, str]:
    """Send a signed ``ping`` event to one endpoint now (not through the outbox): the HTTP
    status (None when nothing answered) and the error text."""
    body = json.dumps({"type": "ping", "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                  time.gmtime(now)),
                       "data": {"endpoint": name}}, separators=(",", ":"))
    try:
        response = send(session, endpoint, key, f"msg_ping_{int(now * 1000)}", body, now)
    except requests.RequestException as exc:
        return None, f"{type(exc).__name__}: {exc}"
    response.close()
    ok = 200 <= response.status_code < 300
    return response.status_code, "" if ok else f"HTTP {response.status_code}"


def _attempt(store: Store, endpoint: WebhookEndpoint, key: bytes, delivery: Delivery,
             session: requests.Session, now: float, jitter_source: random.Random,
             report: DeliverOutcome) -> None:
    status: int | None = None
    wait: float | None = None
    try:
        response = send(session, endpoint, key, delivery.event_id, delivery.body, now)
        status = response.status_code
        error = "" if 200 <= status < 300 else f"HTTP {status}"
        wait = retry_after(response.headers.get("Retry-After"), now)
        response.close()
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {exc}"
    attempts = delivery.attempts + 1
    if status is not None and 200 <= status < 300:
        record_attempt(store, delivery, now=now, status=status, error="", outcome="delivered")
        report.delivered += 1
        return
    if status == 410:
        reason = f"410 Gone at {delivery.event_id}"
        record_attempt(store, delivery, now=now, status=status, error=error, outcome="disabled",
                       disable_reason=reason)
        report.disabled.append(delivery.endpoint)
        log.error("webhook endpoint disabled endpoint=%s reason=%s", delivery.endpoint, reason)
        return
    if attempts >= endpoint.max_attempts:
        record_attempt(store, delivery, now=now, status=status, error=error, outcome="dead")
        report.dead += 1
        log.error("webhook dead letter endpoint=%s event=%s attempts=%d error=%s",
                  delivery.endpoint, delivery.event_id, attempts, error)
        return
    delay = max(backoff(attempts, endpoint, jitter_source.random()), wait or 0.0)
    record_attempt(store, delivery, now=now, status=status, error=error, outcome="retry",
                   next_attempt_at=now + delay)
    report.retried += 1
    log.warning("webhook attempt failed endpoint=%s event=%s attempt=%d error=%s retry_in=%.1fs",
                delivery.endpoint, delivery.event_id, attempts, error, delay)
