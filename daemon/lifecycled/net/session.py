"""The requests session every outbound call goes through (webhooks, Prometheus, Triton's JSON
calls): its adapters build their connection pools from connection classes that report each socket
they open or reuse to the call running in this thread, so ``deadlines.deadline`` can end it,
without patching anything global. A ``Poster`` sends many webhook POSTs to one URL through the
same session, keeping only each reply's status and headers.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import MaxRetryError
from urllib3.util.retry import Retry

from lifecycled.net.deadlines import current_call, deadline


class _Reporting:
    """Reports each socket a connection opens or reuses to the call running in this thread."""

    sock: socket.socket | None

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        call = current_call()
        if call is not None:
            call.attach(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        call = current_call()
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
        call = current_call()
        if call is not None and call.ended:
            raise MaxRetryError(kwargs.get("_pool"), kwargs.get("url") or "",  # type: ignore[arg-type]
                                reason=kwargs.get("error"))
        return super().increment(*args, **kwargs)

    def sleep(self, response: Any = None) -> None:
        call = current_call()
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
        if current_call() is not None:  # a redirect: within the first deadline
            return super().send(request, **kwargs)
        with deadline(seconds, str(request.url)):
            return super().send(request, **kwargs)


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

