"""The daemon's listener in child processes.

Rendering a big fleet's exposition is seconds of pure Python (3,000 models with 20 drift features
each are about 460,000 lines), and answering scrapes is Python too. In the daemon's own process
both would hold the interpreter lock away from the scheduled tasks, and in one process together
a render would hold it away from the scrapes being answered. So two child processes: the
listener owns the socket, answers scrapes with the bytes of the last render, /healthz at once and
/readyz from the readiness the daemon reports every second; the renderer, niced where the
sandbox allows it so that it yields the CPU to the tasks, holds its own connection to the state
store and renders /metrics when the listener asks (after a state change, or when the last render
is old). Every other request (the API) is handed to the daemon
over a pipe and answered there by ``http.reply_for``. Both children exit as soon as the daemon
closes its pipes or dies, which frees the port; a listener whose renderer died exits too, and the
daemon starts both again.

Messages, daemon -> listener (control pipe): ("invalidate", webhook endpoints, task intervals,
its store writes (``StoreWrites``), this replica's state or None), ("ready", ok, detail),
("stop",).
Listener -> daemon (control pipe): ("started",) or ("failed", reason). Request pipe: the listener
sends a ``Request`` and receives its ``Reply``. Render pipe: the renderer first says ("started",)
or ("failed", reason); then the listener sends ("render", endpoints, intervals, writes,
replica) and receives ("ok",) and the plain and gzip bodies as two byte messages, or
("error", reason).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import itertools
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from lifecycled import logs
from lifecycled.errors import ConfigError, LifecycledError
from lifecycled.http import (
    Api,
    Exposition,
    Listener,
    Readiness,
    Reply,
    Request,
    Uvicorn,
    bind,
    json_reply,
    render_locally,
    reply_for,
)
from lifecycled.secrets import read_secret
from lifecycled.store import StoreWrites
from lifecycled.webconfig import PLAIN, WebConfig

log = logging.getLogger(__name__)
NICE = 10  # the renderer's niceness: rendering metrics gives way to the tasks
READY_EVERY = 1.0  # seconds between the daemon's readiness reports to the listener
PR_SET_PDEATHSIG = 1  # prctl(2)
START_TIMEOUT = 60.0
API_WORKERS = 8  # daemon threads answering the listener's requests at once


def _renderer(render: Connection, state_url: str, base_dir: str, state_password: str | None,
              log_level: str, log_format: str, daemon_pid: int) -> None:
    _die_with_parent()
    from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector

    from lifecycled.exporter import LifecycleCollector
    from lifecycled.store import open_store

    state: list[Any] = [[], {}, None, None]  # endpoints, intervals, store writes, replica
    try:
        logs.configure(log_level, log_format)
        _give_way()
        store = open_store(state_url, Path(base_dir), password=state_password, pool_size=2)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(LifecycleCollector(store, lambda: state[0], lambda: state[1],
                                             lambda: state[2], lambda: state[3]))
        # the daemon's own process_* series (CPU, memory, descriptors) and python_info
        ProcessCollector(pid=lambda: daemon_pid, registry=registry)
        PlatformCollector(registry=registry)
        rendering = render_locally(registry)
    except Exception as exc:  # reported to the listener, which tells the daemon
        _tell(render, ("failed", f"{type(exc).__name__}: {exc}"))
        return
    _tell(render, ("started",))
    while True:
        try:
            message = render.recv()
        except (EOFError, OSError):
            os._exit(0)  # the listener is gone
        state[:] = message[1:]
        try:
            plain, zipped = rendering()
        except LifecycledError as exc:
            _tell(render, ("error", str(exc)))
            continue
        except Exception as exc:  # a collector bug: logged with its traceback, a 500 until fixed
            log.exception("rendering /metrics failed")
            _tell(render, ("error", f"{type(exc).__name__}: {exc}"))
            continue
        try:
            render.send(("ok",))
            render.send_bytes(plain)
            render.send_bytes(zipped)
        except (EOFError, OSError):
            os._exit(0)


def _child(sock: Any, requests: Connection, control: Connection, render: Connection,
           web: WebConfig, token_source: tuple[str | None, str | None], log_level: str,
           log_format: str,
           push_limit: int) -> None:
    _die_with_parent()
    try:
        # at the daemon's priority (the renderer gives way): liveness and readiness are answered
        # here, and a niced listener answered them 180 ms late (p99) beside a busy daemon
        logs.configure(log_level, log_format)
        state: list[Any] = [[], {}, None, None]  # endpoints, intervals, store writes, replica
        readiness = Readiness()
        word = render.recv() if render.poll(START_TIMEOUT) \
            else ("failed", f"no word from the renderer within {START_TIMEOUT:.0f} s")
        if word[0] != "started":
            raise LifecycledError(f"the metrics renderer did not start: {word[1]}")
        forward = Forwarder(requests)

        def rendered() -> tuple[bytes, bytes]:
            try:
                render.send(("render", *state))
                answer = render.recv()
                if answer[0] != "ok":
                    raise LifecycledError(answer[1])
                return render.recv_bytes(), render.recv_bytes()
            except (EOFError, OSError):
                log.error("the metrics renderer exited; the listener exits to be started again")
                os._exit(1)

        exposition = Exposition(rendered)
        server = Uvicorn(Listener(forward, exposition, push_limit, web.users,
                                  token_reader(*token_source), readiness), sock, web)
        server.start()
    except Exception as exc:  # reported to the daemon, which says it in one line
        _tell(control, ("failed", f"{type(exc).__name__}: {exc}"))
        return
    _tell(control, ("started",))
    while True:
        try:
            message = control.recv()
        except (EOFError, OSError):
            os._exit(0)  # the daemon died: free the port at once
        if message[0] == "invalidate":
            state[:] = message[1:]
            exposition.invalidate()
        elif message[0] == "ready":
            readiness.update(message[1], message[2])
        elif message[0] == "stop":
            server.stop()
            return


class Forwarder:
    """Requests handed to the daemon over one pipe, many in flight: each goes with an id and its
    reply is matched by that id, so one slow route (a report, a large push) holds up no other."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._ids = itertools.count()
        self._send = threading.Lock()
        self._lock = threading.Lock()
        self._waiting: dict[int, Future[Reply]] = {}
        self._gone = False
        threading.Thread(target=self._read, name="replies", daemon=True).start()

    def __call__(self, request: Request) -> Reply:
        future: Future[Reply] = Future()
        with self._lock:
            if self._gone:
                return STOPPING
            key = next(self._ids)
            self._waiting[key] = future
        try:
            with self._send:
                self.conn.send((key, request))
        except (EOFError, OSError):
            with self._lock:
                del self._waiting[key]
            return STOPPING
        return future.result()

    def _read(self) -> None:
        while True:
            try:
                key, reply = self.conn.recv()
            except (EOFError, OSError):
                with self._lock:
                    self._gone = True
                    waiting, self._waiting = self._waiting, {}
                for future in waiting.values():
                    future.set_result(STOPPING)
                return
            with self._lock:
                waiter = self._waiting.pop(key, None)
            if waiter is not None:
                waiter.set_result(reply)


STOPPING = json_reply(503, {"error": "the daemon is stopping"})


def _tell(control: Connection, message: tuple[Any, ...]) -> None:
    try:
        control.send(message)
    except (EOFError, OSError):
        os._exit(0)  # the daemon died while this process started: free the port at once


def token_reader(file: str | None, env: str | None) -> Callable[[], str | None]:
    """The API token from its file (read at each call: a rotated token needs no restart) or
    variable, as the daemon reads it; None while there is none (every POST is then refused)."""
    def read() -> str | None:
        if not (file or env):
            return None
        try:
            return read_secret(file, env, os.environ, what="daemon.api_token")
        except ConfigError:
            return None  # the daemon logs why, once, when it reads it
    return read


def _give_way() -> None:
    """Lower this child's priority so that it yields the CPU to the tasks; where a sandbox refuses
    it (systemd's ``SystemCallFilter=~@resources`` denies setpriority), say so once and go on."""
    try:
        os.nice(NICE)
    except OSError as exc:
        log.info("running at the daemon's own priority: lowering it was refused (%s) pid=%s",
                 exc.strerror or exc, os.getpid())


def _die_with_parent() -> None:
    """Have the kernel end this process when the daemon dies (Linux ``PR_SET_PDEATHSIG``), so
    that a daemon killed with -9 frees its port at once for the one that replaces it."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the pipe's end still stops the process
        return
    if os.getppid() != parent:  # the daemon died before the signal was asked for
        os._exit(0)


class ListenerProcess:
    """Binds in the constructor (a busy port is an OSError there), serves from a child process
    after ``start``; ``invalidate`` after each state change; ``stop`` at shutdown."""

    def __init__(self, api: Api, host: str, port: int, *, state_url: str, base_dir: Path,
                 state_password: str | None = None, web: WebConfig = PLAIN,
                 token_source: tuple[str | None, str | None] = (None, None),
                 endpoints: Callable[[], Iterable[str]] = lambda: (),
                 intervals: Callable[[], dict[str, float]] = dict,
                 store_writes: Callable[[], StoreWrites | None] = lambda: None,
                 replica: Callable[[], dict[str, Any] | None] = lambda: None,
                 log_level: str = "INFO", log_format: str = "text",
                 push_limit: int = 64 * 2**20) -> None:
        self.api = api
        self.host = host
        self.socket = bind(host, port)
        self.store_options = (state_url, str(base_dir), state_password, log_level, log_format,
                              os.getpid())
        self.options = (web, token_source, log_level, log_format, push_limit)
        self.endpoints = endpoints
        self.intervals = intervals
        self.store_writes = store_writes
        self.replica = replica
        self._send_lock = threading.Lock()
        self._reply_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=API_WORKERS, thread_name_prefix="api")
        self._process: Any = None
        self._renderer: Any = None
        self._control: Connection | None = None
        self._requests: Connection | None = None
        self._stopping = False

    @property
    def port(self) -> int:
        return int(self.socket.getsockname()[1])

    def start(self) -> None:
        self._spawn()
        threading.Thread(target=self._answer, name="api", daemon=True).start()
        threading.Thread(target=self._report_readiness, name="readiness", daemon=True).start()

    def _report_readiness(self) -> None:
        """Tell the listener the daemon's readiness every ``READY_EVERY`` seconds (it answers
        /readyz from the latest, and says 503 when none came for a while)."""
        while not self._stopping:
            try:
                ok, detail = self.api.ready()
            except Exception as exc:  # a bug: logged, and said as not ready
                log.exception("readiness failed")
                ok, detail = False, {"error": f"{type(exc).__name__}: {exc}"}
            self._send(("ready", ok, detail))
            time.sleep(READY_EVERY)

    def _spawn(self) -> None:
        context = multiprocessing.get_context("spawn")  # no copy of the daemon's threads
        if self._renderer is not None:  # the renderer of a listener that died
            self._renderer.kill()
            self._renderer.join(5)
        self._requests, requests = context.Pipe()
        self._control, control = context.Pipe()
        render, rendering = context.Pipe()
        self._renderer = context.Process(
            target=_renderer, name="lifecycled-renderer", args=(rendering, *self.store_options),
            daemon=True)
        self._renderer.start()
        self._process = context.Process(
            target=_child, name="lifecycled-listener",
            args=(self.socket, requests, control, render, *self.options), daemon=True)
        self._process.start()
        for end in (requests, control, render, rendering):
            end.close()
        try:
            message = self._control.recv() if self._control.poll(START_TIMEOUT) \
                else ("failed", f"no word within {START_TIMEOUT:.0f} s")
        except (EOFError, OSError):
            message = ("failed", f"it exited with code {self._process.exitcode}")
        if message[0] != "started":
            self.stop()
            raise LifecycledError(f"the HTTP listener did not start: {message[1]}")
        self.invalidate()

    def _answer(self) -> None:
        """Answer the child's requests, each in a thread of a small pool (a slow one holds up no
        other); start a new child if this one dies."""
        while not self._stopping:
            conn = self._requests
            assert conn is not None
            try:
                key, request = conn.recv()
            except (EOFError, OSError):
                if self._stopping:
                    return
                log.error("the HTTP listener process exited code=%s; starting another",
                          self._process.exitcode if self._process else None)
                try:
                    self._spawn()
                except LifecycledError as exc:
                    log.error("%s", exc)
                    return
                continue
            self._pool.submit(self._reply, conn, key, request)

    def _reply(self, conn: Connection, key: int, request: Request) -> None:
        try:
            reply = reply_for(self.api, request)
        except Exception as exc:  # a bug in a route: logged, a 500, the daemon runs on
            log.exception("api request failed path=%s", request.path)
            reply = json_reply(500, {"error": f"{type(exc).__name__}: {exc}"})
        try:
            with self._reply_lock:
                conn.send((key, reply))
        except (EOFError, OSError):
            pass  # that child is gone; its replacement asks again if it must

    def invalidate(self) -> None:
        """A state change: the child renders /metrics afresh for the next scrape."""
        self._send(("invalidate", list(self.endpoints()), dict(self.intervals()),
                    self.store_writes(), self.replica()))

    def _send(self, message: tuple[Any, ...]) -> None:
        with self._send_lock:
            if self._control is None:
                return
            try:
                self._control.send(message)
            except (EOFError, OSError) as exc:
                log.error("the HTTP listener process is gone: %s", exc)

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping = True
        self._send(("stop",))
        for process in (self._process, self._renderer):
            if process is not None:
                process.join(timeout)
                if process.is_alive():
                    process.kill()
                    process.join(5)
        for conn in (self._control, self._requests):
            if conn is not None:
                conn.close()
        self._control = self._requests = None
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.socket.close()

    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()
