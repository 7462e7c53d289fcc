"""The one HTTP listener: /metrics, /healthz, /readyz and the JSON API under /api/v1."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hmac
import json
import logging
import math
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import uvicorn
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from uvicorn.protocols.http.h11_impl import H11Protocol

from lifecycled.domain import ModelRef
from lifecycled.errors import InputError, LifecycledError, NotFoundError, TransitionError
from lifecycled.render import finite_json
from lifecycled.store import Store
from lifecycled.webconfig import PLAIN, BasicAuth, WebConfig

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024  # bytes of a request body
DROP_LIMIT = 16 * 2**20  # bytes of a refused body read (and dropped) so that the 413 arrives
MAX_HEAD = 16 * 1024  # bytes of a request line and headers
REQUEST_TIMEOUT = 10.0  # seconds to send a whole request head, and again its body
KEEP_ALIVE = 5  # seconds an idle keep-alive connection is kept
MAX_CONNECTIONS = 1024  # open connections before new ones get a 503
WORKERS = 8  # threads that answer API requests and render /metrics
EXPOSITION_MAX_AGE = 15.0  # seconds a rendered /metrics body is served without a state change
FRESH_WAIT = 0.1  # seconds a scrape waits for a render in flight before serving the previous one

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


def render_locally(registry: CollectorRegistry) -> Callable[[], tuple[bytes, bytes]]:
    """Render ``registry`` in this process: (plain, gzip)."""
    def render() -> tuple[bytes, bytes]:
        plain = text_exposition(registry)
        return plain, gzip.compress(plain, 6)
    return render


_TYPES = {"counter": ("_total", "counter"), "info": ("_info", "gauge"), "stateset": ("", "gauge"),
          "gaugehistogram": ("", "histogram"), "unknown": ("", "untyped")}
_OPENMETRICS_ONLY = ("_created", "_gsum", "_gcount")  # moved to gauges of their own


def _label_value(value: str) -> str:
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"')
    return value


def text_exposition(registry: CollectorRegistry) -> bytes:
    """``generate_latest(registry)``, byte for byte (tested), at a fraction of its cost: a
    fleet's exposition is hundreds of thousands of samples, and prometheus_client validates and
    escapes every label name of every sample one character at a time. Here each label name and
    metric name is checked once per render (and escaped the library's way if it must be), label
    values are escaped only when they hold a character that needs it, and a float's text is
    worked out once per distinct value."""
    from prometheus_client.openmetrics import exposition as openmetrics
    from prometheus_client.utils import floatToGoString

    labels_seen: dict[str, str] = {}
    metrics_seen: dict[str, str] = {}
    numbers: dict[float, str] = {}

    def label_name(label: str) -> str:
        found = labels_seen.get(label)
        if found is None:
            found = labels_seen[label] = openmetrics.escape_label_name(label)
        return found

    def metric_name(name: str) -> str:
        found = metrics_seen.get(name)
        if found is None:
            found = metrics_seen[name] = openmetrics.escape_metric_name(name)
        return found

    def number(value: float) -> str:
        found = numbers.get(value)
        if found is None:
            found = floatToGoString(value)
            if value == value and value != 0:  # not NaN (never equal to itself), not ±0
                numbers[value] = found
        return found

    def line(sample: Any) -> str:
        name = metric_name(sample.name)
        if sample.labels:
            labels = ",".join([f'{label_name(k)}="{_label_value(v)}"'
                               for k, v in sorted(sample.labels.items())])
            name = f"{name}{{{labels}}}"
        stamp = "" if sample.timestamp is None else f" {int(float(sample.timestamp) * 1000):d}"
        return f"{name} {number(sample.value)}{stamp}\n"

    output: list[str] = []
    for metric in registry.collect():
        suffix, kind = _TYPES.get(metric.type, ("", metric.type))
        shown = metric_name(metric.name + suffix)
        doc = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
        output.append(f"# HELP {shown} {doc}\n# TYPE {shown} {kind}\n")
        moved: dict[str, list[str]] = {}
        special = {metric.name + s: s for s in _OPENMETRICS_ONLY}
        for sample in metric.samples:
            extra = special.get(sample.name)
            if extra is None:
                output.append(line(sample))
            else:
                moved.setdefault(extra, []).append(line(sample))
        for extra, lines in sorted(moved.items()):
            gauge = metric_name(metric.name + extra)
            output.append(f"# HELP {gauge} {doc}\n# TYPE {gauge} gauge\n")
            output.extend(lines)
    return "".join(output).encode("utf-8")


class Exposition:
    """The /metrics body, shared by every scraper.

    A scrape that finds it out of date (a state change announced by ``invalidate``, or older than
    ``max_age`` seconds) starts one render in the background and waits for it at most
    ``fresh_wait`` seconds, then serves the newest bytes there are; scrapes meanwhile are served
    the previous render at once. So the cost of scraping does not grow with the number of
    scrapers, a small fleet always sees the state of the moment, and a fleet whose render takes
    seconds never holds a scrape for long. Only a scrape with nothing rendered yet, or after a
    failed render, waits for the whole render (and a failure is a 500).

    A render starts no sooner after the previous one ended than that one took, so rendering
    takes at most half of a CPU however often the state changes: a fleet that renders in 10 ms
    is rendered afresh 10 ms after a change, one that takes 4 s is at most 8 s behind.
    """

    def __init__(self, render: Callable[[], tuple[bytes, bytes]],
                 max_age: float = EXPOSITION_MAX_AGE, fresh_wait: float = FRESH_WAIT,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.render = render
        self.max_age = max_age
        self.fresh_wait = fresh_wait
        self.monotonic = monotonic
        self.renders = 0  # renders finished, successful or not
        self._changed = threading.Condition()
        self._bodies: tuple[bytes, bytes] | None = None
        self._error = "no exposition rendered yet"
        self._dirty = True
        self._rendering = False
        self._at = -math.inf
        self._next = -math.inf  # when the next render may start

    def invalidate(self) -> None:
        with self._changed:
            self._dirty = True

    def _stale(self) -> bool:
        return self._dirty or self.monotonic() - self._at > self.max_age

    def ready(self) -> tuple[bytes, bytes] | None:
        """The bodies to serve without waiting: up to date, or the previous ones while another
        scrape's render is in flight or the next may not start yet. None when this scrape must
        call ``bodies``."""
        with self._changed:
            if self._bodies is not None and (self._rendering or not self._stale()
                                             or self._next - self.monotonic() > self.fresh_wait):
                return self._bodies
            return None

    def bodies(self) -> tuple[bytes, bytes]:
        """(plain, gzip) exposition; LifecycledError when the last render failed."""
        with self._changed:
            pause = self._next - self.monotonic()
            if not self._rendering and self._stale() and self._bodies is not None and pause > 0:
                if pause > self.fresh_wait:  # too soon after the last render: serve that one
                    return self._bodies
                self._changed.wait(pause)
            if not self._rendering and self._stale():
                self._rendering, self._dirty = True, False  # a change meanwhile: dirty again
                threading.Thread(target=self._render, name="exposition", daemon=True).start()
            if self._rendering:
                done = self.renders + 1
                self._changed.wait_for(lambda: self.renders >= done,
                                       None if self._bodies is None else self.fresh_wait)
            if self._bodies is None:
                raise LifecycledError(self._error)
            return self._bodies

    def _render(self) -> None:
        bodies: tuple[bytes, bytes] | None = None
        started = self.monotonic()
        try:
            bodies = self.render()
        except LifecycledError as exc:
            error = str(exc)
        except Exception as exc:  # a collector bug: logged with its traceback, a 500 until fixed
            log.exception("rendering /metrics failed")
            error = f"{type(exc).__name__}: {exc}"
        with self._changed:
            self._rendering = False
            self.renders += 1
            ended = self.monotonic()
            self._next = ended + (ended - started)
            if bodies is None:
                self._bodies, self._error, self._dirty = None, error, True
            else:
                self._bodies, self._at = bodies, self.monotonic()
            self._changed.notify_all()


Reply = tuple[int, bytes, str, dict[str, str]]


def json_reply(status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
    body = json.dumps(finite_json(payload), sort_keys=True, allow_nan=False).encode()
    return status, body, "application/json", headers or {}


class _Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a deadline for each request: a connection that has not
    sent a complete request head within ``REQUEST_TIMEOUT`` seconds of opening (or of its last
    reply) is closed, however slowly it drips bytes. Idle connections hold no thread."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(REQUEST_TIMEOUT, self._expire, self.cycle)

    def _expire(self, waiting_since: object) -> None:
        if self.cycle is waiting_since and not self.transport.is_closing():
            log.debug("http request head not complete within %ss; closing", REQUEST_TIMEOUT)
            self.transport.close()


READY_STALE = 10.0  # seconds without a readiness report after which the listener says 503


class Readiness:
    """The daemon's latest readiness, as it reports it every second: /readyz is answered from
    here by the listener, so a daemon busy with a push, a report and the API never makes a
    readiness probe wait. A report older than ``READY_STALE`` is itself the answer: not ready."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._latest: tuple[float, bool, dict[str, Any]] | None = None

    def update(self, ok: bool, detail: dict[str, Any]) -> None:
        self._latest = (self.clock(), ok, detail)

    def reply(self) -> Reply:
        latest = self._latest
        if latest is None:
            return json_reply(503, {"ready": False, "daemon": "no readiness reported yet"})
        at, ok, detail = latest
        age = self.clock() - at
        if age > READY_STALE:
            return json_reply(503, {"ready": False,
                                    "daemon": f"no readiness report for {age:.0f} s"})
        return json_reply(200 if ok else 503, {"ready": ok, **detail})


class Listener:
    """The ASGI application: /metrics from the shared exposition, everything else through
    ``route`` (``reply_for`` an Api, or a call to the process that has one) in a small thread
    pool, so a slow store query never blocks the event loop."""

    def __init__(self, route: Callable[[Request], Reply], exposition: Exposition,
                 push_limit: int = MAX_BODY, users: Mapping[str, str] | None = None,
                 token: Callable[[], str | None] | None = None,
                 readiness: Readiness | None = None) -> None:
        self.route = route
        self.readiness = readiness  # None: /readyz goes to ``route`` like the API
        self.exposition = exposition
        self.basic_auth = BasicAuth(users or {})  # readers must log in when users are given
        # the API token, checked here before a POST's body is read (None: the route checks it)
        self.token = token
        self.push_limit = push_limit  # the body limit of a prediction or label push
        self.pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="http")

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Any],
                       send: Callable[[dict[str, Any]], Any]) -> None:
        if scope["type"] != "http":
            return
        method = scope["method"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        reply = await self._reply(method, raw_path.partition("?")[0], headers, receive)
        status, body, content_type, extra = reply
        out = [(b"server", b"lifecycled"), (b"content-type", content_type.encode()),
               (b"content-length", str(len(body)).encode())]
        out += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})

    async def _reply(self, method: str, path: str, headers: dict[str, str],
                     receive: Callable[[], Any]) -> Reply:
        if method not in ("GET", "HEAD", "POST"):
            return json_reply(405, {"error": f"method {method} not allowed"},
                               {"Allow": "GET, HEAD, POST", "Connection": "close"})
        if path == "/healthz" and method != "POST":  # liveness waits on nothing
            return json_reply(200, {"status": "alive"})
        if self.basic_auth and method != "POST" and path != "/healthz" and not await \
                asyncio.get_running_loop().run_in_executor(
                    self.pool, self.basic_auth.allows, headers.get("authorization", "")):
            # reads need a user of the web configuration; liveness never does, and a POST
            # (a state change) is judged by its bearer token instead
            return json_reply(401, {"error": "authentication required"},
                              {"WWW-Authenticate": 'Basic realm="lifecycled"'})
        if method == "POST" and self.token is not None and not bearer_matches(
                self.token(), headers.get("authorization", "")):
            # refused before a byte of the body is read: a client that asked `Expect:
            # 100-continue` is never told to go on, and the others' bodies are dropped unread
            if "expect" not in headers:
                await self._drop(receive)
            return json_reply(401, {"error": "a valid bearer token is required"},
                              {"Connection": "close"})
        length = headers.get("content-length", "0")
        if not length.strip().isdigit():
            return json_reply(400, {"error": "Content-Length must be a non-negative integer"},
                               {"Connection": "close"})
        limit = self.push_limit if method == "POST" and is_push(path) else MAX_BODY
        too_large = json_reply(413, {"error": f"body larger than {limit} bytes"},
                               {"Connection": "close"})
        if int(length) > limit:
            await self._drop(receive)
            return too_large
        try:
            body = await asyncio.wait_for(self._body(receive, limit), REQUEST_TIMEOUT)
        except TooLarge:
            await self._drop(receive)
            return too_large
        except TimeoutError:
            return json_reply(408, {"error": f"body not received within {REQUEST_TIMEOUT} s"},
                               {"Connection": "close"})
        loop = asyncio.get_running_loop()
        if path == "/readyz" and method != "POST" and self.readiness is not None:
            return self.readiness.reply()
        if path == "/metrics" and method in ("GET", "HEAD"):
            ready = self.exposition.ready()
            if ready is not None:  # the common case: answered here, no thread involved
                return self._metrics(headers, ready)
            return await loop.run_in_executor(self.pool, self._metrics, headers)
        request = Request("GET" if method == "HEAD" else method, unquote(path),
                          [unquote(p) for p in path.strip("/").split("/") if p], body, headers)
        return await loop.run_in_executor(self.pool, self._route, request)

    @staticmethod
    async def _drop(receive: Callable[[], Any]) -> None:
        """Read and drop the rest of a refused body (up to DROP_LIMIT bytes, within the request
        timeout) before the 413: closing with the client's bytes unread makes the kernel reset
        the connection, which can destroy the reply on its way."""
        async def drain() -> None:
            size = 0
            while size <= DROP_LIMIT:
                message = await receive()
                size += len(message.get("body", b""))
                if message["type"] == "http.disconnect" or not message.get("more_body"):
                    return
        with contextlib.suppress(TimeoutError):  # a sender that stalls gets the 413 now
            await asyncio.wait_for(drain(), REQUEST_TIMEOUT)

    @staticmethod
    async def _body(receive: Callable[[], Any], limit: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b""
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise TooLarge
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    def _metrics(self, headers: dict[str, str],
                 bodies: tuple[bytes, bytes] | None = None) -> Reply:
        try:
            plain, zipped = bodies or self.exposition.bodies()
        except LifecycledError as exc:  # a failed scrape is a 500
            log.error("metrics scrape failed error=%s", exc)
            return json_reply(500, {"error": str(exc)})
        if "gzip" in headers.get("accept-encoding", ""):
            return 200, zipped, CONTENT_TYPE_LATEST, {"Vary": "Accept-Encoding",
                                                      "Content-Encoding": "gzip"}
        return 200, plain, CONTENT_TYPE_LATEST, {"Vary": "Accept-Encoding"}

    def _route(self, request: Request) -> Reply:
        reply = self.route(request)
        if request.method == "POST" and reply[0] < 400:
            self.exposition.invalidate()  # a state change: the next scrape renders afresh
        return reply


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


class TooLarge(Exception):
    """A request body past MAX_BODY."""


def bind(host: str, port: int) -> socket.socket:
    """The listening socket; OSError when the address is busy or not on this host."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class Uvicorn:
    """uvicorn (HTTP/1.1, optional TLS, the limits above) serving ``listener`` on ``sock`` in a
    background thread."""

    def __init__(self, listener: Listener, sock: socket.socket,
                 web: WebConfig = PLAIN) -> None:
        self.listener = listener
        self.socket = sock
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)  # no start/stop chatter
        requests_of_clients = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL,
                               "required": ssl.CERT_REQUIRED}[web.client_auth]
        config = uvicorn.Config(
            listener, http=_Protocol, lifespan="off", log_config=None, access_log=False,
            server_header=False, timeout_keep_alive=KEEP_ALIVE, limit_concurrency=MAX_CONNECTIONS,
            timeout_graceful_shutdown=2, h11_max_incomplete_event_size=MAX_HEAD,
            ssl_certfile=web.cert_file, ssl_keyfile=web.key_file,
            ssl_ca_certs=web.client_ca_file, ssl_cert_reqs=requests_of_clients)
        if web.tls:
            config.load()  # builds the TLS context now: a bad certificate fails at start
            assert config.ssl is not None
            config.ssl.minimum_version = ssl.TLSVersion.TLSv1_3 if web.min_version == "TLS13" \
                else ssl.TLSVersion.TLSv1_2
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]},
                                       name="http", daemon=True)

    def start(self, timeout: float = 10.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise LifecycledError("the HTTP listener did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.listener.pool.shutdown(wait=False, cancel_futures=True)
        self.socket.close()


class HttpServer:
    """The listener in this process (tests, tools): ``api``'s routes and its registry's
    exposition. The daemon runs it in a child process instead (``lifecycled.listener``). The
    socket is bound in the constructor, so a busy port is an OSError there."""

    def __init__(self, api: Api, host: str, port: int, *, web: WebConfig = PLAIN,
                 exposition: Exposition | None = None, push_limit: int = 64 * 2**20) -> None:
        self.exposition = exposition or Exposition(render_locally(api.registry))
        listener = Listener(lambda request: reply_for(api, request), self.exposition, push_limit,
                            web.users, api.token)
        self.socket = bind(host, port)
        try:
            self.uvicorn = Uvicorn(listener, self.socket, web)
        except BaseException:
            self.socket.close()
            raise

    @property
    def port(self) -> int:
        return int(self.socket.getsockname()[1])

    def start(self) -> None:
        self.uvicorn.start()

    def stop(self) -> None:
        self.uvicorn.stop()


def split_listen(listen: str) -> tuple[str, int]:
    """'127.0.0.1:9877' or '[::1]:9877' -> (host, port)."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)
