"""Outbound HTTP with a total deadline.

``requests`` timeouts bound each socket operation, not the call: a server that sends one byte a
second holds a call (and the task making it) forever, and urllib3's retries multiply the timeout.
Here every call made through a ``DeadlineSession`` has one deadline, its ``timeout``, for the whole
of it: connecting, TLS, headers, body, every retry and every redirect. At the deadline (or when
the daemon stops, ``interrupt_all``) the call's sockets are shut down, which ends any read in
progress, and the call raises ``DeadlineExceeded`` (a ``requests.Timeout``).

The sockets are found without patching anything global: the session's adapters build their
connection pools from connection classes that report each socket they open or reuse to the call
running in this thread. A ``Poster`` (many webhook POSTs to one URL) sends through libcurl
instead, under the same deadline and ``interrupt_all``.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import itertools
import math
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import pycurl
import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import MaxRetryError
from urllib3.util.retry import Retry


class DeadlineExceeded(requests.Timeout):
    """The whole call took longer than its deadline (or the daemon is stopping)."""


class _Timer:
    """One thread running callbacks at their due time (a heap), for every call in the process.
    Scheduling wakes the thread only when the new callback is due before every other (calls
    with the same timeout never do), and a cancelled entry keeps only its time until popped."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int]] = []
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._ids = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def schedule(self, due: float, callback: Callable[[], None]) -> int:
        with self._wake:
            handle = next(self._ids)
            heapq.heappush(self._heap, (due, handle))
            self._callbacks[handle] = callback
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="deadlines", daemon=True)
                self._thread.start()
            if self._heap[0][1] == handle:
                self._wake.notify()
            return handle

    def cancel(self, handle: int) -> None:
        with self._wake:
            self._callbacks.pop(handle, None)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap:
                    self._wake.wait()
                due, handle = self._heap[0]
                if handle not in self._callbacks:
                    heapq.heappop(self._heap)
                    continue
                delay = due - time.monotonic()
                if delay > 0:
                    self._wake.wait(delay)
                    continue
                heapq.heappop(self._heap)
                callback = self._callbacks.pop(handle)
            callback()


_TIMER = _Timer()
_LOCAL = threading.local()
_IN_FLIGHT: set[_Call] = set()
_IN_FLIGHT_LOCK = threading.Lock()


class _Call:
    """One call in flight: its sockets, and whether its deadline ended it."""

    def __init__(self, due: float) -> None:
        self.due = due  # time.monotonic() of the deadline
        self.sockets: list[socket.socket] = []
        self.ended: str | None = None
        self._lock = threading.Lock()

    def attach(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self.sockets.append(sock)
            ended = self.ended
        if ended:
            _shut(sock)

    def end(self, why: str) -> None:
        with self._lock:
            if self.ended:
                return
            self.ended = why
            sockets = list(self.sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)


def interrupt_all(why: str = "the daemon is stopping") -> int:
    """End every call in flight now (shutdown); return how many there were."""
    with _IN_FLIGHT_LOCK:
        calls = list(_IN_FLIGHT)
    for call in calls:
        call.end(why)
    return len(calls)


class _Reporting:
    """Reports each socket a connection opens or reuses to the call running in this thread."""

    sock: socket.socket | None

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        call = getattr(_LOCAL, "call", None)
        if call is not None:
            call.attach(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        call = getattr(_LOCAL, "call", None)
        if call is not None and self.sock is not None:  # a kept-alive connection
            call.attach(self.sock)
        super().request(*args, **kwargs)  # type: ignore[misc]


class _Connection(_Reporting, HTTPConnection):
    pass


class _TLSConnection(_Reporting, HTTPSConnection):
    pass


class _Pool(HTTPConnectionPool):
    ConnectionCls = _Connection


class _TLSPool(HTTPSConnectionPool):
    ConnectionCls = _TLSConnection


class _BoundedRetry(Retry):
    """urllib3's Retry that gives up once the call's deadline has passed and never sleeps (backs
    off) past it."""

    def increment(self, *args: Any, **kwargs: Any) -> Retry:  # type: ignore[override]
        call = getattr(_LOCAL, "call", None)
        if call is not None and call.ended:
            raise MaxRetryError(kwargs.get("_pool"), kwargs.get("url") or "",  # type: ignore[arg-type]
                                reason=kwargs.get("error"))
        return super().increment(*args, **kwargs)

    def sleep(self, response: Any = None) -> None:
        call = getattr(_LOCAL, "call", None)
        if call is None:
            super().sleep(response)
            return
        backoff = self.get_backoff_time()
        if response is not None and self.respect_retry_after_header:
            backoff = max(backoff, self.get_retry_after(response) or 0.0)
        time.sleep(max(0.0, min(backoff, call.due - time.monotonic())))


def _bounded(retry: Retry) -> _BoundedRetry:
    bounded = object.__new__(_BoundedRetry)
    bounded.__dict__.update(retry.__dict__)
    return bounded


class DeadlineAdapter(HTTPAdapter):
    """An HTTPAdapter (retries as given, bounded by the call's deadline) whose connections
    report their sockets."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_retries = _bounded(self.max_retries)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _Pool, "https": _TLSPool}


def _seconds(timeout: Any) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, tuple):
        return float(sum(t for t in timeout if t is not None))
    return float(timeout)


class DeadlineSession(requests.Session):
    """A Session whose ``timeout`` bounds each whole call (see the module docstring). A call
    without a timeout gets ``default_timeout``."""

    def __init__(self, default_timeout: float = 30.0,
                 adapters: Mapping[str, HTTPAdapter] | None = None) -> None:
        super().__init__()
        self.default_timeout = default_timeout
        for prefix in ("http://", "https://"):
            self.mount(prefix, DeadlineAdapter())
        for prefix, adapter in (adapters or {}).items():
            self.mount(prefix, adapter)

    def request(self, method: str | bytes, url: str | bytes,
                *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["timeout"] = _seconds(kwargs.get("timeout")) or self.default_timeout
        return super().request(method, url, *args, **kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        seconds = _seconds(kwargs.get("timeout")) or self.default_timeout
        kwargs["timeout"] = seconds  # no socket operation may wait longer than the whole call
        kwargs["stream"] = False  # the body is read inside the deadline
        if getattr(_LOCAL, "call", None) is not None:  # a redirect: within the first deadline
            return super().send(request, **kwargs)
        with deadline(seconds, str(request.url)):
            return super().send(request, **kwargs)


@contextlib.contextmanager
def deadline(seconds: float, url: str) -> Iterator[None]:
    """Bound the HTTP call made in this block, in this thread, through a DeadlineAdapter's
    connections, to ``seconds`` in all (DeadlineExceeded after)."""
    call = _Call(time.monotonic() + seconds)
    outer = getattr(_LOCAL, "call", None)
    _LOCAL.call = call
    with _IN_FLIGHT_LOCK:
        _IN_FLIGHT.add(call)
    handle = _TIMER.schedule(call.due, lambda: call.end(f"no complete reply within {seconds:g} s"))
    try:
        yield
    except requests.RequestException as exc:
        if call.ended:
            raise DeadlineExceeded(f"{url}: {call.ended}") from exc
        raise
    finally:
        _TIMER.cancel(handle)
        with _IN_FLIGHT_LOCK:
            _IN_FLIGHT.discard(call)
        _LOCAL.call = outer
    if call.ended:  # the reply was complete just as the deadline passed: still too late
        raise DeadlineExceeded(f"{url}: {call.ended}")


class Reply(NamedTuple):
    status: int
    headers: Mapping[str, str]


_TLS_ERRORS = frozenset({pycurl.E_SSL_CONNECT_ERROR, pycurl.E_PEER_FAILED_VERIFICATION,
                         pycurl.E_SSL_CERTPROBLEM, pycurl.E_SSL_CIPHER, pycurl.E_SSL_CACERT_BADFILE,
                         pycurl.E_SSL_ENGINE_NOTFOUND, pycurl.E_SSL_ENGINE_SETFAILED,
                         pycurl.E_SSL_CRL_BADFILE, pycurl.E_SSL_ISSUER_ERROR,
                         pycurl.E_SSL_SHUTDOWN_FAILED, pycurl.E_USE_SSL_FAILED})
_PROXY_ERRORS = frozenset({pycurl.E_COULDNT_RESOLVE_PROXY, pycurl.E_COULDNT_CONNECT, 97})  # 97: PROXY


class Poster:
    """Many POSTs to one URL, each the request ``session.post(url, data=body, headers=headers,
    timeout=timeout, allow_redirects=False)`` would send: the session's default headers and auth
    (the URL's or netrc's), the environment's proxies and ``no_proxy`` and CA bundle, as requests
    works them out (once, here), the whole call bounded by ``timeout`` as a DeadlineSession
    bounds it, ended by ``interrupt_all``, and requests' exceptions. Only the status and headers
    of a reply are kept.

    The requests are sent by libcurl (pycurl), one handle, and so one kept-alive connection, per
    thread that posts: libcurl lets go of the interpreter for the whole exchange, so concurrent
    senders really run at once, where with requests or urllib3 they take turns (four fifths of
    a webhook's time was their Python, parsing each reply's headers with the ``email`` package
    alone a fifth). The session's adapters are not used. ``close`` (or ``with``) ends the
    handles; make a new Poster to see a changed environment."""

    def __init__(self, session: requests.Session, url: str) -> None:
        template = session.prepare_request(requests.Request("POST", url))
        settings = session.merge_environment_settings(url, {}, False, None, None)
        assert template.url is not None
        # user and password travel in the Authorization header requests made of them, and
        # never into a message
        self._target = _without_auth(template.url)
        self._headers = {name.lower(): f"{name}: {value}"
                         for name, value in (template.headers or {}).items()
                         if name.lower() != "content-length"}  # libcurl sets it from the body
        self._proxy = requests.utils.select_proxy(url, settings["proxies"]) or ""
        self._verify, self._cert = settings["verify"], settings["cert"]
        self._local = threading.local()
        self._handles: list[pycurl.Curl] = []
        self._lock = threading.Lock()

    def _handle(self) -> pycurl.Curl:
        handle: pycurl.Curl | None = getattr(self._local, "handle", None)
        if handle is not None:
            return handle
        handle = pycurl.Curl()
        handle.setopt(pycurl.URL, self._target)
        handle.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        handle.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)  # as requests
        handle.setopt(pycurl.PROXY, self._proxy)  # "": none, whatever libcurl would read
        handle.setopt(pycurl.NOPROXY, "")  # requests has applied no_proxy already
        handle.setopt(pycurl.NOSIGNAL, 1)
        handle.setopt(pycurl.WRITEFUNCTION, len)  # the body is read and dropped
        sockets: dict[int, socket.socket] = {}  # libcurl's descriptor: a duplicate to shut down
        handle.setopt(pycurl.SOCKOPTFUNCTION, functools.partial(self._opened, sockets))
        handle.setopt(pycurl.CLOSESOCKETFUNCTION, functools.partial(_closing, sockets))
        self._local.sockets = sockets
        if self._verify is False:
            handle.setopt(pycurl.SSL_VERIFYPEER, 0)
            handle.setopt(pycurl.SSL_VERIFYHOST, 0)
        else:
            bundle = str(requests.utils.extract_zipped_paths(requests.utils.DEFAULT_CA_BUNDLE_PATH)
                         if self._verify is True else self._verify)
            handle.setopt(pycurl.CAPATH if os.path.isdir(bundle) else pycurl.CAINFO, bundle)
        if self._cert:
            cert, key = self._cert if isinstance(self._cert, tuple) else (self._cert, None)
            handle.setopt(pycurl.SSLCERT, cert)
            if key:
                handle.setopt(pycurl.SSLKEY, key)
        with self._lock:
            self._handles.append(handle)
        self._local.handle = handle
        return handle

    def _opened(self, sockets: dict[int, socket.socket], descriptor: int, _purpose: int) -> int:
        """libcurl opened a socket for this thread's handle: keep a duplicate of it, which the
        call's deadline or ``interrupt_all`` shuts down (that ends any wait in libcurl at once,
        where a progress callback, in Python several times per request, would cost each request
        a trip through the interpreter)."""
        duplicate = sockets[descriptor] = socket.socket(fileno=os.dup(descriptor))
        call: _Call | None = getattr(self._local, "call", None)
        if call is not None:
            call.attach(duplicate)
        return 0  # CURL_SOCKOPT_OK

    def post(self, body: bytes, headers: Mapping[str, str], timeout: float) -> Reply:
        handle = self._handle()
        lines = dict(self._headers)
        for name, value in headers.items():
            line = lines[name.lower()] = f"{name}: {value}"
            if "\r" in line or "\n" in line:  # as requests refuses it: no header smuggled in
                raise requests.exceptions.InvalidHeader(f"header {name!r}: a line break in it")
        lines.setdefault("content-type", "Content-Type:")  # none, as requests (not a form's)
        lines["expect"] = "Expect:"  # requests never waits for 100 Continue
        received: list[bytes] = []
        handle.setopt(pycurl.HTTPHEADER, list(lines.values()))
        handle.setopt(pycurl.HEADERFUNCTION, received.append)
        handle.setopt(pycurl.POSTFIELDS, body)
        milliseconds = max(1, math.ceil(timeout * 1000))
        handle.setopt(pycurl.TIMEOUT_MS, milliseconds)
        handle.setopt(pycurl.CONNECTTIMEOUT_MS, milliseconds)
        call = self._local.call = _Call(time.monotonic() + timeout)
        for duplicate in self._local.sockets.values():  # a kept-alive connection
            call.attach(duplicate)
        with _IN_FLIGHT_LOCK:
            _IN_FLIGHT.add(call)
        try:
            handle.perform()
        except pycurl.error as exc:
            raise self._error(exc, call, timeout) from exc
        finally:
            with _IN_FLIGHT_LOCK:
                _IN_FLIGHT.discard(call)
            self._local.call = None
        return Reply(int(handle.getinfo(pycurl.RESPONSE_CODE)), _reply_headers(received))

    def _error(self, exc: pycurl.error, call: _Call, timeout: float) -> requests.RequestException:
        """The exception requests raises for what libcurl reports."""
        code, message = exc.args[0], exc.args[1] if len(exc.args) > 1 else ""
        url = self._target
        if call.ended:
            return DeadlineExceeded(f"{url}: {call.ended}")
        if code == pycurl.E_OPERATION_TIMEDOUT:
            return DeadlineExceeded(f"{url}: no complete reply within {timeout:g} s")
        if self._proxy and code in _PROXY_ERRORS:
            return requests.exceptions.ProxyError(f"proxy {_without_auth(self._proxy)}: {message}")
        if code in _TLS_ERRORS:
            return requests.exceptions.SSLError(f"{url}: {message}")
        return requests.ConnectionError(f"{url}: {message}")

    def close(self) -> None:
        with self._lock:
            handles, self._handles = self._handles, []
        for handle in handles:
            handle.close()

    def __enter__(self) -> Poster:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _without_auth(url: str) -> str:
    return str(urllib3.util.parse_url(url)._replace(auth=None).url)


def _closing(sockets: dict[int, socket.socket], descriptor: int) -> int:
    """libcurl closes one of its sockets: close it and its duplicate."""
    duplicate = sockets.pop(descriptor, None)
    if duplicate is not None:
        duplicate.close()
    os.close(descriptor)
    return 0


def _reply_headers(lines: list[bytes]) -> requests.structures.CaseInsensitiveDict[str]:
    """The final reply's headers from the raw lines libcurl passes on (those of a 100 Continue
    before it are dropped; a repeated header's values are joined with commas, as urllib3 does)."""
    final = max((i for i, raw in enumerate(lines) if raw.startswith(b"HTTP/")), default=-1)
    joined: dict[str, tuple[str, str]] = {}
    for raw in lines[final + 1:]:
        name, colon, value = (part.strip() for part in raw.decode("iso-8859-1").partition(":"))
        if colon:
            key = name.lower()
            joined[key] = (name, f"{joined[key][1]}, {value}" if key in joined else value)
    return requests.structures.CaseInsensitiveDict(dict(joined.values()))


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps (causes, contexts, urllib3's ``reason``, args)."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = [current.__cause__, current.__context__, getattr(current, "reason", None),
                   *current.args]
        todo.extend(e for e in wrapped if isinstance(e, BaseException))


def describe(exc: BaseException, url: str) -> str:
    """One line for people saying why a call to ``url`` failed, naming no library's classes:
    what was refused, unreachable, too slow or not trusted, or the HTTP status."""
    import ssl

    url = _without_auth(url)
    chain = list(_causes(exc))
    response = getattr(exc, "response", None)
    if response is not None and getattr(response, "status_code", None):
        return f"{url} answered HTTP {response.status_code}"
    if isinstance(exc, DeadlineExceeded):
        return str(exc)
    def found(kind: type[BaseException] | tuple[type[BaseException], ...]) -> Any:
        return next((cause for cause in chain if isinstance(cause, kind)), None)

    if (cert := found(ssl.SSLCertVerificationError)) is not None:
        return f"{url}: the TLS certificate is not trusted ({cert.verify_message})"
    if (tls := found(ssl.SSLError)) is not None:
        return f"{url}: TLS failed ({tls.reason or tls.strerror or 'handshake'})"
    if found(socket.gaierror) is not None:
        return f"{url}: cannot resolve the host name"
    if found(ConnectionRefusedError) is not None:
        return f"{url}: connection refused (nothing listens there)"
    if found((TimeoutError, requests.Timeout)) is not None:
        return f"{url}: no reply within the timeout"
    for cause in chain:
        if isinstance(cause, OSError) and cause.strerror:
            return f"{url}: {cause.strerror.lower()}"
    text = str(chain[-1]).splitlines()[0] if str(chain[-1]) else ""
    if not text or re.search(r"[A-Z_]\w*\(|<\w", text):  # a library's repr, not words
        text = "the request failed"
    return f"{url}: {text[:200]}"
