"""The API's routes: each request to a reply (JSON, or an HTML report), answered from the
store by the process that owns it."""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from lifecycled.domain import ModelRef
from lifecycled.errors import InputError, LifecycledError, NotFoundError, TransitionError
from lifecycled.render import finite_json
from lifecycled.store import Store

log = logging.getLogger(__name__)


Handler = Callable[["Request"], tuple[int, Any]]


@dataclass
class Request:
    method: str
    path: str
    parts: list[str]
    body: bytes
    headers: dict[str, str]


@dataclass
class Api:
    """Routes and what they need; ``ready`` returns (ok, details) for /readyz."""

    store: Store
    registry: CollectorRegistry
    ready: Callable[[], tuple[bool, dict[str, Any]]]
    token: Callable[[], str | None] = lambda: None
    posts: dict[str, Handler] = field(default_factory=dict)  # first path part after /api/v1
    reports: Reports = field(default_factory=lambda: Reports())

    def authorised(self, request: Request) -> bool:
        return bearer_matches(self.token(), request.headers.get("authorization", ""))


def bearer_matches(expected: str | None, given: str) -> bool:
    """``given`` (an Authorization header) is ``Bearer <expected>``; never without a token."""
    return bool(expected) and hmac.compare_digest(given.encode(), f"Bearer {expected}".encode())


def model_detail(store: Store, ref: ModelRef) -> dict[str, Any]:
    """Everything known about one model version, as the API returns it."""
    from lifecycled.store.results import latest_drift, latest_evaluation, latest_quality
    from lifecycled.store.serving import serving_states, snapshots

    record = store.get(ref)
    latest = snapshots(store, ref, limit=1)

    def newest(results: list[Any]) -> Any:
        return {"at": results[0].at, **results[0].result} if results else None

    return {
        "model": record.to_json(),
        "history": [h.to_json() for h in store.history(ref)],
        "serving": [s.to_json() for s in serving_states(store, ref)],
        "latest_snapshot": latest[0].to_json() if latest else None,
        "latest_evaluation": newest(latest_evaluation(store, ref)),
        "latest_drift": newest(latest_drift(store, ref)),
        "latest_quality": newest(latest_quality(store, ref)),
    }


@dataclass(frozen=True)
class Busy:
    """A route's reply while what it needs is in use: a 503 with Retry-After."""

    reason: str


@dataclass(frozen=True)
class HtmlPage:
    """A route's reply that is a page for people rather than JSON."""

    text: str


class Reports:
    """Rendered drift reports, kept by the drift check they show (a check never changes), and
    one render at a time: a report of hundreds of features takes a minute, and a second
    request meanwhile gets a 503 with Retry-After instead of a second render."""

    KEPT = 16

    def __init__(self) -> None:
        self.pages: OrderedDict[tuple[ModelRef, float], str] = OrderedDict()
        self.lock = threading.Lock()
        self.rendering = threading.Lock()

    def page(self, ref: ModelRef, at: float, render: Callable[[], str]) -> str | None:
        """The page of check ``(ref, at)``, rendered now if needed; None while another renders."""
        with self.lock:
            if (ref, at) in self.pages:
                self.pages.move_to_end((ref, at))
                return self.pages[(ref, at)]
        if not self.rendering.acquire(blocking=False):
            return None
        try:
            text = render()
        finally:
            self.rendering.release()
        with self.lock:
            self.pages[(ref, at)] = text
            while len(self.pages) > self.KEPT:
                self.pages.popitem(last=False)
        return text


def drift_report_page(api: Api, ref: ModelRef) -> tuple[int, Any]:
    """GET /api/v1/models/{name}/{version}/drift/report.html: the latest stored drift check."""
    from lifecycled.drift_report import ReportUnavailable, render
    from lifecycled.store.results import latest_drift

    api.store.get(ref)
    found = latest_drift(api.store, ref)
    if not found:
        raise NotFoundError(f"no drift check stored for {ref}")
    check = found[0]
    try:
        text = api.reports.page(ref, check.at,
                                lambda: render(check.result, f"Drift report: {ref}"))
    except ReportUnavailable as exc:
        return 501, {"error": str(exc)}
    if text is None:
        return 503, Busy("another drift report is being rendered; try again shortly")
    return 200, HtmlPage(text)


def is_push(path: str) -> bool:
    """POST /api/v1/models/{name}/{version}/predictions or …/labels: a batch of rows."""
    parts = path.strip("/").split("/")
    return len(parts) == 6 and parts[:3] == ["api", "v1", "models"] \
        and parts[5] in ("predictions", "labels")


LANDING = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>lifecycled</title></head>
<body><h1>lifecycled</h1>
<p>Lifecycle daemon for ML models served by NVIDIA Triton.</p>
<ul>
<li><a href="/metrics">/metrics</a>: Prometheus metrics</li>
<li><a href="/healthz">/healthz</a>: liveness</li>
<li><a href="/readyz">/readyz</a>: readiness, with what is not ready</li>
<li><a href="/api/v1/models">/api/v1/models</a>: the model registry (JSON)</li>
</ul></body></html>
"""


def route(api: Api, request: Request) -> tuple[int, Any]:
    """Return (status, JSON body) for an API or health request."""
    parts = request.parts
    if request.method == "GET":
        if parts == []:
            return 200, HtmlPage(LANDING)
        if parts == ["healthz"]:
            return 200, {"status": "alive"}
        if parts == ["readyz"]:
            ok, detail = api.ready()
            return (200 if ok else 503), {"ready": ok, **detail}
        if parts == ["api", "v1", "models"]:
            return 200, {"models": [r.to_json() for r in api.store.list_models()]}
        if len(parts) == 5 and parts[:3] == ["api", "v1", "models"]:
            return 200, model_detail(api.store, ModelRef(parts[3], parts[4]))
        if len(parts) == 7 and parts[:3] == ["api", "v1", "models"] \
                and parts[5:] == ["drift", "report.html"]:
            return drift_report_page(api, ModelRef(parts[3], parts[4]))
    if request.method == "POST" and parts[:2] == ["api", "v1"] and len(parts) > 2:
        handler = api.posts.get(parts[2])
        if handler is not None:
            if not api.authorised(request):
                return 401, {"error": "a valid bearer token is required"}
            return handler(request)
    return 404, {"error": f"no route for {request.method} {request.path}"}


Reply = tuple[int, bytes, str, dict[str, str]]


def json_reply(status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
    body = json.dumps(finite_json(payload), sort_keys=True, allow_nan=False).encode()
    return status, body, "application/json", headers or {}


def reply_for(api: Api, request: Request) -> Reply:
    """The reply to one API or health request; errors become their status codes."""
    try:
        status, payload = route(api, request)
    except NotFoundError as exc:
        status, payload = 404, {"error": str(exc)}
    except InputError as exc:
        status, payload = 400, {"error": str(exc)}
    except TransitionError as exc:
        status, payload = 409, {"error": str(exc)}
    except LifecycledError as exc:
        log.error("api request failed path=%s error=%s", request.path, exc)
        status, payload = 500, {"error": str(exc)}
    if isinstance(payload, HtmlPage):
        return status, payload.text.encode(), "text/html; charset=utf-8", {}
    if isinstance(payload, Busy):
        return json_reply(status, {"error": payload.reason}, {"Retry-After": "10"})
    return json_reply(status, payload)

