"""Outbound HTTP with a total deadline.

``requests`` timeouts bound each socket operation, not the call: a server that sends one byte a
second holds a call (and the task making it) forever, and urllib3's retries multiply the timeout.
Here every call made through a ``DeadlineSession`` has one deadline, its ``timeout``, for the whole
of it: connecting, TLS, headers, body, every retry and every redirect. At the deadline (or when
the daemon stops, ``interrupt_all``) the call's sockets are shut down, which ends any read in
progress, and the call raises ``DeadlineExceeded`` (a ``requests.Timeout``).

The sockets are found without patching anything global: the session's adapters build their
connection pools from connection classes that report each socket they open or reuse to the call
running in this thread. A ``Poster`` sends many webhook POSTs to one URL through the same
session, keeping only each reply's status and headers.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

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


class Poster:
    """Many POSTs to one URL, each the request ``session.post(url, data=body, headers=headers,
    timeout=timeout, allow_redirects=False)`` would send (the session's default headers and auth,
    the URL's or netrc's, the environment's proxies, ``no_proxy`` and CA bundle, worked out once
    here), the whole call bounded by ``timeout`` through the session's ``DeadlineAdapter``s and
    ended by ``interrupt_all``. Only the status and headers of a reply are kept: the body is read
    (so the connection is kept alive) while the deadline lasts, and a body cut by it leaves the
    status standing; a 2xx status is the answer, for a delivery as for ``webhooks test``."""

    def __init__(self, session: requests.Session, url: str) -> None:
        self._session = session
        self._template = session.prepare_request(requests.Request("POST", url))
        assert self._template.url is not None
        self._url = self._template.url
        settings = session.merge_environment_settings(url, {}, True, None, None)
        self._send: dict[str, Any] = {**settings, "stream": True, "allow_redirects": False}

    def post(self, body: bytes, headers: Mapping[str, str], timeout: float) -> Reply:
        request = self._template.copy()
        request.prepare_body(body, None)
        for name, value in headers.items():
            requests.utils.check_header_validity((name, value))  # no header smuggled in
            request.headers[name] = value
        answer: Reply | None = None
        try:
            with deadline(timeout, self._url):
                # the plain Session's send: a DeadlineSession's would read the body as part of
                # the call, and a 2xx followed by a slow body would be a failure
                response = requests.Session.send(self._session, request, timeout=timeout,
                                                 **self._send)
                answer = Reply(response.status_code, response.headers)
                with contextlib.closing(response):
                    for _ in response.iter_content(1 << 16):
                        pass
        except requests.RequestException:
            if answer is None:
                raise
        return answer

    def close(self) -> None:
        """Nothing of its own to close (the session's pools are the session's)."""

    def __enter__(self) -> Poster:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _without_auth(url: str) -> str:
    return str(urllib3.util.parse_url(url)._replace(auth=None).url)


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
