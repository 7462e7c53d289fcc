"""The listener: the ASGI application over routes and the exposition, readiness, limits,
and the uvicorn server it runs in."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote

import uvicorn
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from lifecycled.errors import LifecycledError
from lifecycled.http.exposition import Exposition, render_locally
from lifecycled.http.protocol import REQUEST_TIMEOUT, DeadlineProtocol
from lifecycled.http.routes import (
    Api,
    Reply,
    Request,
    bearer_matches,
    is_push,
    json_reply,
    reply_for,
)
from lifecycled.webconfig import PLAIN, BasicAuth, WebConfig

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024  # bytes of a request body
DROP_LIMIT = 16 * 2**20  # bytes of a refused body read (and dropped) so that the 413 arrives
MAX_HEAD = 16 * 1024  # bytes of a request line and headers
KEEP_ALIVE = 5  # seconds an idle keep-alive connection is kept
MAX_CONNECTIONS = 1024  # open connections before new ones get a 503
WORKERS = 8  # threads that answer API requests and render /metrics
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
            listener, http=DeadlineProtocol, lifespan="off", log_config=None, access_log=False,
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

