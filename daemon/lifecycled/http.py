"""The one HTTP listener: /metrics, /healthz, /readyz and the JSON API under /api/v1."""

from __future__ import annotations

import gzip
import hmac
import json
import logging
import sqlite3
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from lifecycled.domain import ModelRef
from lifecycled.errors import InputError, LifecycledError, NotFoundError, TransitionError
from lifecycled.render import finite_json
from lifecycled.store import Store

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024

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

    def authorised(self, request: Request) -> bool:
        expected = self.token()
        given = request.headers.get("authorization", "")
        return bool(expected) and hmac.compare_digest(given.encode(),
                                                      f"Bearer {expected}".encode())


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
class HtmlPage:
    """A route's reply that is a page for people rather than JSON."""

    text: str


def drift_report_page(store: Store, ref: ModelRef) -> tuple[int, Any]:
    """GET /api/v1/models/{name}/{version}/drift/report.html: the latest stored drift check."""
    from lifecycled.drift_report import ReportUnavailable, render
    from lifecycled.store.results import latest_drift

    store.get(ref)
    found = latest_drift(store, ref)
    if not found:
        raise NotFoundError(f"no drift check stored for {ref}")
    try:
        return 200, HtmlPage(render(found[0].result, f"Drift report: {ref}"))
    except ReportUnavailable as exc:
        return 501, {"error": str(exc)}


def route(api: Api, request: Request) -> tuple[int, Any]:
    """Return (status, JSON body) for an API or health request."""
    parts = request.parts
    if request.method == "GET":
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
            return drift_report_page(api.store, ModelRef(parts[3], parts[4]))
    if request.method == "POST" and parts[:2] == ["api", "v1"] and len(parts) > 2:
        handler = api.posts.get(parts[2])
        if handler is not None:
            if not api.authorised(request):
                return 401, {"error": "a valid bearer token is required"}
            return handler(request)
    return 404, {"error": f"no route for {request.method} {request.path}"}


def make_handler(api: Api) -> type[BaseHTTPRequestHandler]:
    class RequestHandler(BaseHTTPRequestHandler):
        server_version = "lifecycled"
        protocol_version = "HTTP/1.1"

        def version_string(self) -> str:
            return self.server_version  # no Python version in the Server header

        def log_message(self, fmt: str, *args: Any) -> None:
            log.debug("http %s", fmt % args)

        def _reply(self, status: int, body: bytes, content_type: str,
                   headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _length(self) -> int | None:
            """The body's declared length; None (after a 400 reply) when it is not a
            non-negative integer or exceeds the limit (413)."""
            text = self.headers.get("Content-Length") or "0"
            if not text.strip().isdigit():
                self.close_connection = True
                self._json(400, {"error": "Content-Length must be a non-negative integer"})
                return None
            length = int(text)
            if length > MAX_BODY:
                self.close_connection = True
                self._json(413, {"error": f"body larger than {MAX_BODY} bytes"})
                return None
            return length

        def _json(self, status: int, payload: Any) -> None:
            body = json.dumps(finite_json(payload), sort_keys=True, allow_nan=False)
            self._reply(status, body.encode(), "application/json")

        def _handle(self, method: str) -> None:
            path = urlsplit(self.path).path
            length = self._length()
            if length is None:
                return
            body = self.rfile.read(length) if length else b""
            if method == "GET" and path == "/metrics":
                try:
                    output = generate_latest(api.registry)
                except (LifecycledError, sqlite3.Error) as exc:  # a failed scrape is a 500
                    log.error("metrics scrape failed error=%s", exc)
                    self._json(500, {"error": str(exc)})
                    return
                headers = {"Vary": "Accept-Encoding"}
                if "gzip" in self.headers.get("Accept-Encoding", ""):
                    output, headers["Content-Encoding"] = gzip.compress(output, 6), "gzip"
                self._reply(200, output, CONTENT_TYPE_LATEST, headers)
                return
            parts = [unquote(p) for p in path.strip("/").split("/") if p]
            request = Request(method, path, parts, body,
                              {k.lower(): v for k, v in self.headers.items()})
            try:
                status, payload = route(api, request)
            except NotFoundError as exc:
                status, payload = 404, {"error": str(exc)}
            except InputError as exc:
                status, payload = 400, {"error": str(exc)}
            except TransitionError as exc:
                status, payload = 409, {"error": str(exc)}
            except (LifecycledError, sqlite3.Error) as exc:
                log.error("api request failed path=%s error=%s", path, exc)
                status, payload = 500, {"error": str(exc)}
            if isinstance(payload, HtmlPage):
                self._reply(status, payload.text.encode(), "text/html; charset=utf-8")
                return
            self._json(status, payload)

        def do_GET(self) -> None:
            self._handle("GET")

        def do_HEAD(self) -> None:
            self._handle("GET")  # the same reply; _reply leaves out the body

        def do_POST(self) -> None:
            self._handle("POST")

        def _not_allowed(self) -> None:
            self.close_connection = True
            self._reply(405, json.dumps({"error": f"method {self.command} not allowed"}).encode(),
                        "application/json", {"Allow": "GET, HEAD, POST"})

        do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _not_allowed

    return RequestHandler


class HttpServer:
    """The listener in a background thread."""

    def __init__(self, api: Api, host: str, port: int, *, cert_file: str | None = None,
                 key_file: str | None = None) -> None:
        self.server = ThreadingHTTPServer((host, port), make_handler(api))
        self.server.daemon_threads = True
        if cert_file and key_file:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(cert_file, key_file)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, name="http", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def split_listen(listen: str) -> tuple[str, int]:
    """'127.0.0.1:9877' or '[::1]:9877' -> (host, port)."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)
