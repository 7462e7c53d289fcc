"""The listener against malformed and unusual requests, over a real socket on 127.0.0.1: every bad
request gets one clear reply and the listener keeps serving."""

from __future__ import annotations

import gzip
import json
import logging
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from lifecycled import http
from lifecycled.api import job_events_handler
from lifecycled.errors import LifecycledError
from lifecycled.http import Api, HttpServer
from lifecycled.http import protocol as http_protocol
from lifecycled.http import server as http_server
from lifecycled.store import open_store
from lifecycled.webconfig import WebConfig
from prometheus_client import CollectorRegistry, Gauge

from tests.helpers import write_config
from tests.sinks import self_signed_certificate

TOKEN = "t0ken"


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    registry = CollectorRegistry()
    Gauge("lifecycled_test_value", "A value.", registry=registry).set(1)
    store = open_store("sqlite:///s.db", tmp_path)
    api = Api(store, registry, lambda: (True, {}), lambda: TOKEN,
              posts={"jobs": job_events_handler(lambda job_id, event: pytest.fail("applied"))})
    server = HttpServer(api, "127.0.0.1", 0)
    server.start()
    yield f"http://127.0.0.1:{server.port}"
    server.stop()
    store.close()


def raw(url: str, request: bytes) -> bytes:
    """Send ``request`` as is and read the reply until the server closes (5 s at most)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("length", [b"-1", b"abc", b"1e3"])
def test_a_bad_content_length_is_a_400_not_a_read_to_eof(url: str, length: bytes) -> None:
    reply = raw(url, b"POST /api/v1/jobs/x/events HTTP/1.1\r\nHost: x\r\nContent-Length: "
                + length + b"\r\n\r\n{}")
    assert reply.startswith(b"HTTP/1.1 400"), reply[:200]
    assert b"Invalid HTTP request" in reply
    assert requests.get(f"{url}/healthz", timeout=5).status_code == 200  # still serving


def test_deeply_nested_json_is_a_400(url: str) -> None:
    body = b"[" * 30_000 + b"]" * 30_000
    reply = requests.post(f"{url}/api/v1/jobs/x/events", data=body, timeout=10,
                          headers={"Authorization": f"Bearer {TOKEN}"})
    assert reply.status_code == 400
    assert "nested too deeply" in reply.json()["error"]


def test_head_and_gzip_on_metrics_and_no_version_leak(url: str) -> None:
    head = requests.head(f"{url}/metrics", timeout=5)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["Content-Length"]) > 0
    assert head.headers["Server"] == "lifecycled"
    plain = requests.get(f"{url}/metrics", headers={"Accept-Encoding": "identity"}, timeout=5)
    assert "Content-Encoding" not in plain.headers
    zipped = raw(url, b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n"
                      b"Connection: close\r\n\r\n")
    head_part, _, body = zipped.partition(b"\r\n\r\n")
    assert b"content-encoding: gzip" in head_part.lower()
    assert gzip.decompress(body).decode() == plain.text
    assert "lifecycled_test_value 1.0" in plain.text


def test_other_methods_are_405_json(url: str) -> None:
    reply = requests.put(f"{url}/metrics", timeout=5)
    assert reply.status_code == 405
    assert reply.headers["Allow"] == "GET, HEAD, POST"
    assert reply.json() == {"error": "method PUT not allowed"}


@pytest.mark.slow
def test_a_busy_port_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = write_config(tmp_path / "cfg", {"daemon": {
            "listen": f"127.0.0.1:{port}",
            "state_url": f"sqlite:///{tmp_path / 'state.db'}"}})
        proc = subprocess.run([sys.executable, "-m", "lifecycled", "run", "--config", str(config)],
                              capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert f"daemon.listen: cannot listen on 127.0.0.1:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr
    json.dumps(proc.stderr)  # printable


@pytest.mark.slow
def test_a_part_that_cannot_start_stops_those_started_before_it(tmp_path: Path) -> None:
    """The daemon's parts start in order and stop in reverse by construction: when the listener
    cannot bind, the signal handlers are put back, the SQLite lock is given up and the store
    closed, so the next start on the same file is not refused as a second daemon."""
    import signal

    from lifecycled.app import Daemon
    from lifecycled.errors import ConfigError

    handlers = {number: signal.getsignal(number)
                for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    root = logging.getLogger()
    logged = (list(root.handlers), root.level)  # the daemon configures logging as it starts
    try:
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            config = write_config(tmp_path / "cfg", {
                "daemon": {"listen": f"127.0.0.1:{port}",
                           "state_url": f"sqlite:///{tmp_path / 'state.db'}"},
                "sources": {"triton": []}})
            with pytest.raises(ConfigError, match="cannot listen"):
                Daemon(str(config)).run()
        assert {number: signal.getsignal(number) for number in handlers} == handlers
        again = Daemon(str(config))
        assert again.run(once=True) == 0  # the lock was released: not a second daemon
        assert again.clean
    finally:
        root.handlers[:] = logged[0]
        root.setLevel(logged[1])


@pytest.mark.slow
def test_a_dripping_connection_is_closed_at_the_request_deadline(
        url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client that sends its request head one byte at a time never completes it; the listener
    closes it at the deadline (before, each byte reset a per-read timeout, forever)."""
    monkeypatch.setattr(http_protocol, "REQUEST_TIMEOUT", 0.5)
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        deadline = time.monotonic() + 5
        closed = False
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
            try:
                sock.sendall(bytes([byte]))
                sock.settimeout(0.1)
                if sock.recv(1) == b"":
                    closed = True
                    break
            except TimeoutError:
                pass
            except (ConnectionResetError, BrokenPipeError):
                closed = True
                break
            assert time.monotonic() < deadline, "still open after 5 s"
    assert closed


@pytest.mark.slow
def test_many_idle_connections_hold_no_threads_and_block_nothing(url: str) -> None:
    before = threading.active_count()
    idle = [socket.create_connection(tuple(url.removeprefix("http://").split(":")))  # type: ignore
            for _ in range(300)]
    try:
        assert requests.get(f"{url}/healthz", timeout=5).status_code == 200
        assert threading.active_count() <= before + http_server.WORKERS
    finally:
        for sock in idle:
            sock.close()


def test_idle_tcp_connections_do_not_freeze_tls(tmp_path: Path) -> None:
    """The TLS handshake runs per connection: ten clients that connect and say nothing do not
    hold up an eleventh (before, the handshake ran inside accept() and froze every request)."""
    cert, key = self_signed_certificate(tmp_path)
    store = open_store("sqlite:///s.db", tmp_path)
    server = HttpServer(Api(store, CollectorRegistry(), lambda: (True, {})), "127.0.0.1", 0,
                        web=WebConfig(cert_file=str(cert), key_file=str(key)))
    server.start()
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(10)]
    try:
        started = time.monotonic()
        with requests.get(f"https://127.0.0.1:{server.port}/healthz", verify=str(cert),
                          timeout=5, headers={"Connection": "close"}) as reply:
            assert reply.status_code == 200 and time.monotonic() - started < 2
    finally:
        for sock in idle:
            sock.close()
        server.stop()
        store.close()


def test_concurrent_scrapes_share_one_render_and_a_change_renders_afresh() -> None:
    registry = CollectorRegistry()
    gauge = Gauge("lifecycled_test_value", "A value.", registry=registry)
    now = [0.0]
    exposition = http.Exposition(http.render_locally(registry), max_age=15.0, fresh_wait=5.0,
                                 monotonic=lambda: now[0])
    gauge.set(1)
    with ThreadPoolExecutor(20) as pool:
        bodies = list(pool.map(lambda _: exposition.bodies()[0], range(20)))
    assert exposition.renders == 1 and len(set(bodies)) == 1
    gauge.set(2)
    assert b"lifecycled_test_value 1.0" in exposition.bodies()[0]  # cached: no change announced
    exposition.invalidate()
    assert b"lifecycled_test_value 2.0" in exposition.bodies()[0]
    gauge.set(3)
    now[0] = 16.0  # older than max_age: rendered again even without a change
    plain, zipped = exposition.bodies()
    assert b"lifecycled_test_value 3.0" in plain and gzip.decompress(zipped) == plain
    assert exposition.renders == 3


def test_renders_take_at_most_half_the_time_however_often_the_state_changes() -> None:
    """A render of 2 s (on the exposition's clock): a change 1 s after it ended is served the
    previous body without a new render; 2 s after, it is rendered afresh."""
    now = [0.0]
    calls: list[float] = []

    def render() -> tuple[bytes, bytes]:
        calls.append(now[0])
        now[0] += 2.0
        return f"body {len(calls)}".encode(), b""

    exposition = http.Exposition(render, fresh_wait=0.05, monotonic=lambda: now[0])
    assert exposition.bodies()[0] == b"body 1" and now[0] == 2.0
    now[0] = 3.0
    exposition.invalidate()
    assert exposition.ready() is not None and exposition.bodies()[0] == b"body 1"
    assert exposition.renders == 1  # too soon: no render started
    now[0] = 4.0
    assert exposition.ready() is None
    deadline = time.monotonic() + 10
    while exposition.bodies()[0] != b"body 2":
        assert time.monotonic() < deadline
    assert calls == [0.0, 4.0]


def test_a_slow_render_serves_the_previous_body_and_a_failed_one_is_an_error() -> None:
    release = threading.Event()
    calls: list[str] = []

    def render() -> tuple[bytes, bytes]:
        calls.append("render")
        if len(calls) == 2:
            release.wait(10)  # the second render is slow
        if len(calls) == 3:
            raise sqlite3.OperationalError("disk I/O error")
        return f"body {len(calls)}".encode(), b""

    exposition = http.Exposition(render, fresh_wait=0.05)
    assert exposition.bodies()[0] == b"body 1"  # nothing yet: the first scrape waits
    exposition.invalidate()
    started = time.monotonic()
    assert exposition.bodies()[0] == b"body 1"  # the render in flight is not waited for
    assert time.monotonic() - started < 5
    release.set()
    deadline = time.monotonic() + 10
    while exposition.bodies()[0] != b"body 2":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    exposition.invalidate()
    deadline = time.monotonic() + 10
    while True:  # once the failing render is done, it is not hidden behind the previous body
        try:
            exposition.bodies()
        except LifecycledError as exc:
            assert "disk I/O error" in str(exc)
            break
        assert time.monotonic() < deadline
        time.sleep(0.01)


@pytest.mark.slow
def test_the_listener_dies_with_a_killed_daemon_and_frees_its_port(tmp_path: Path) -> None:
    """kill -9 of the daemon: its listener child ends too (the kernel's parent-death signal, or
    the closed pipe), so the port is free for the daemon that replaces it."""
    import signal as signals
    import subprocess
    import sys

    from devtools import triton
    from tests.helpers import write_config

    port = triton.free_port()
    config = write_config(tmp_path / "cfg", {"daemon": {
        "listen": f"127.0.0.1:{port}", "state_url": f"sqlite:///{tmp_path / 's.db'}"}})
    daemon = subprocess.Popen([sys.executable, "-m", "lifecycled", "run", "--config",
                               str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok:
                break
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline and daemon.poll() is None, "the daemon did not start"
        time.sleep(0.1)
    children = subprocess.run(["pgrep", "-P", str(daemon.pid)], capture_output=True,
                              text=True).stdout.split()
    assert children, "no listener child"
    daemon.send_signal(signals.SIGKILL)
    daemon.wait(timeout=30)
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() and "zombie" not in
              Path(f"/proc/{pid}/status").read_text(errors="replace").lower()
              for pid in children):
        assert time.monotonic() < deadline, "the listener outlived the daemon"
        time.sleep(0.05)


@pytest.mark.slow
def test_a_killed_renderer_is_started_again_with_its_listener(tmp_path: Path) -> None:
    """kill -9 of the /metrics renderer: the next render finds it gone, its listener exits, and
    the daemon starts both again; /metrics answers 200 from a new renderer."""
    import os
    import signal as signals

    from lifecycled.listener import ListenerProcess

    url = f"sqlite:///{tmp_path / 's.db'}"
    store = open_store(url, tmp_path)
    server = ListenerProcess(http.Api(store, CollectorRegistry(), lambda: (True, {})),
                             "127.0.0.1", 0, state_url=url, base_dir=tmp_path)
    server.start()
    try:
        metrics = f"http://127.0.0.1:{server.port}/metrics"
        assert requests.get(metrics, timeout=30).status_code == 200
        first = server._renderer.pid
        os.kill(first, signals.SIGKILL)
        server.invalidate()  # the next scrape asks for a render
        deadline = time.monotonic() + 60
        while True:
            try:
                answered = requests.get(metrics, timeout=10).status_code == 200
            except requests.RequestException:  # the listener exiting under the scrape
                answered = False
            if answered and server._renderer.pid != first and server.alive():
                break
            assert time.monotonic() < deadline, "the renderer was not started again"
            time.sleep(0.05)
    finally:
        server.stop()
        store.close()


def test_the_landing_page_links_the_metrics(url: str) -> None:
    page = requests.get(url + "/", timeout=5)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'href="/metrics"' in page.text and 'href="/healthz"' in page.text


@pytest.mark.parametrize("flag, error", [
    ("nowhere", "--web.listen-address: expected HOST:PORT, got 'nowhere'"),
    ("127.0.0.1:70000", "--web.listen-address: the port must be between 1 and 65535")])
def test_a_bad_listen_flag_is_one_line_and_exit_2(tmp_path: Path, flag: str, error: str) -> None:
    config = write_config(tmp_path / "cfg", {"daemon": {
        "state_url": f"sqlite:///{tmp_path / 'state.db'}"}})
    proc = subprocess.run([sys.executable, "-m", "lifecycled", "run", "--config", str(config),
                           "--web.listen-address", flag], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and error in proc.stderr and "Traceback" not in proc.stderr


def test_a_post_without_the_token_is_refused_before_its_body(url: str) -> None:
    """Unauthenticated push bodies (up to 64 MiB) were read whole and shipped to the daemon
    before the token was checked, and `Expect: 100-continue` without a token got
    `100 Continue`."""
    host, port = url.removeprefix("http://").split(":")
    head = (b"POST /api/v1/models/m/1/predictions HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-ndjson\r\nContent-Length: 50000000\r\n")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(head + b"Expect: 100-continue\r\n\r\n")
        reply = b""
        while b"\r\n\r\n" not in reply:
            reply += sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 401"), reply[:200]
    assert b"100 Continue" not in reply
    wrong = raw(url, head.replace(b"Content-Length: 50000000", b"Content-Length: 2")
                + b"Authorization: Bearer nope\r\n\r\n{}")
    assert wrong.startswith(b"HTTP/1.1 401") and b"bearer token" in wrong


@pytest.mark.slow
def test_a_slow_request_holds_up_neither_health_nor_the_api(tmp_path: Path) -> None:
    """Every non-/metrics request went through one pipe and one daemon thread: a 63 MiB push
    blocked /healthz 13 s and a report render froze /readyz for a minute. Here one POST is held
    in its route until the test lets it go; meanwhile health, readiness and reads answer."""
    import threading as threads

    from lifecycled.listener import ListenerProcess

    release, entered = threads.Event(), threads.Event()

    def held(request: http.Request) -> tuple[int, Any]:
        entered.set()
        release.wait(60)
        return 200, {"held": True}

    (tmp_path / "token").write_text(TOKEN)
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = open_store(url, tmp_path)
    api = http.Api(store, CollectorRegistry(), lambda: (True, {}), lambda: TOKEN,
                   posts={"slow": held})
    server = ListenerProcess(api, "127.0.0.1", 0, state_url=url, base_dir=tmp_path,
                             token_source=(str(tmp_path / "token"), None))
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        with ThreadPoolExecutor(1) as pool:
            slow = pool.submit(requests.post, base + "/api/v1/slow", json={}, timeout=60,
                               headers={"Authorization": f"Bearer {TOKEN}"})
            assert entered.wait(30), "the POST never reached its route"
            for path in ("/healthz", "/readyz", "/api/v1/models"):
                assert requests.get(base + path, timeout=5).status_code == 200, path
            assert not slow.done()
            release.set()
            assert slow.result().json() == {"held": True}
    finally:
        release.set()
        server.stop()
        store.close()


@pytest.mark.slow
def test_readiness_is_answered_while_every_api_worker_is_busy(tmp_path: Path) -> None:
    """/readyz went through the daemon's API workers: under a push, a report render and 20 API
    clients it timed out at 10 s. The daemon now reports readiness to the listener every second
    and the listener answers from that: with every worker held, /readyz still answers at once
    (and says what the daemon last said), and a daemon that stops reporting is not ready."""
    import threading as threads

    from lifecycled.listener import API_WORKERS, ListenerProcess

    release = threads.Event()
    entered = threads.Semaphore(0)
    ready = {"ok": True}

    def held(request: http.Request) -> tuple[int, Any]:
        entered.release()
        release.wait(60)
        return 200, {}

    def readiness() -> tuple[bool, dict[str, Any]]:
        if not ready["ok"]:
            release.wait(60)  # a daemon that no longer gets to report
        return True, {"store": "ok"}

    (tmp_path / "token").write_text(TOKEN)
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = open_store(url, tmp_path)
    api = http.Api(store, CollectorRegistry(), readiness, lambda: TOKEN, posts={"slow": held})
    server = ListenerProcess(api, "127.0.0.1", 0, state_url=url, base_dir=tmp_path,
                             token_source=(str(tmp_path / "token"), None))
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        with ThreadPoolExecutor(API_WORKERS) as pool:
            for _ in range(API_WORKERS):
                pool.submit(requests.post, base + "/api/v1/slow", json={}, timeout=90,
                            headers={"Authorization": f"Bearer {TOKEN}"})
            for _ in range(API_WORKERS):
                assert entered.acquire(timeout=30), "a POST never reached its route"
            deadline = time.monotonic() + 10
            while (reply := requests.get(base + "/readyz", timeout=2)).status_code != 200:
                assert time.monotonic() < deadline, reply.text  # the first report comes
                time.sleep(0.1)
            assert reply.json() == {"ready": True, "store": "ok"}
            ready["ok"] = False  # the next report never comes
            deadline = time.monotonic() + http_server.READY_STALE + 5
            while (reply := requests.get(base + "/readyz", timeout=2)).status_code == 200:
                assert time.monotonic() < deadline, "a stale report still said ready"
                time.sleep(0.2)
            assert reply.status_code == 503
            assert reply.json()["daemon"].startswith("no readiness report for"), reply.text
            release.set()
    finally:
        release.set()
        server.stop()
        store.close()
