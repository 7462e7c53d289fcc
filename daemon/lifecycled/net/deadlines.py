"""A total deadline for each outbound HTTP call.

``requests`` timeouts bound each socket operation, not the call: a server that sends one byte a
second holds a call (and the task making it) forever, and urllib3's retries multiply the timeout.
``deadline(seconds, url)`` gives the call made in its block one deadline for the whole of it:
connecting, TLS, headers, body, every retry and every redirect. At the deadline (or when the
daemon stops, ``interrupt_all``) the call's sockets are shut down, which ends any read in
progress, and the call raises ``DeadlineExceeded`` (a ``requests.Timeout``). The sockets are
reported to the call by the connections of ``session.DeadlineAdapter`` (``current_call``).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator

import requests


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


def current_call() -> _Call | None:
    """The call in flight in this thread (None outside a ``deadline`` block)."""
    return getattr(_LOCAL, "call", None)


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

