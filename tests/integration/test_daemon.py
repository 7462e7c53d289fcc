"""`lifecycled run` as a real process: systemd notify and watchdog, readiness, SIGHUP, SIGTERM,
Triton down, promtool on live /metrics, and kill -9 at random moments."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from devtools import triton
from tests.helpers import endpoint, write_config

FAST = {"discovery": "1s", "collect": "1s", "quality": "1s", "evaluate": "1s", "drift": "1s",
        "housekeeping": "1s"}


class Daemon:
    def __init__(self, config: Path, env: dict[str, str], log: Path) -> None:
        self.port = int(yaml.safe_load(config.read_text())["daemon"]["listen"].rsplit(":", 1)[1])
        self.log_path = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "lifecycled", "run", "--config", str(config)],
                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=config.parent)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until(self, predicate: Any, what: str, timeout: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"daemon exited:\n{self.log()[-3000:]}"
            try:
                value = predicate()
            except requests.RequestException:
                value = None
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}:\n{self.log()[-3000:]}")

    def ready(self) -> bool:
        return requests.get(self.url("/readyz"), timeout=5).status_code == 200

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


def daemon_config(directory: Path, models_d: bool = True, **extra: Any) -> Path:
    data: dict[str, Any] = {"daemon": {"listen": f"127.0.0.1:{triton.free_port()}",
                                       "state_url": f"sqlite:///{directory / 'state.db'}",
                                       "shutdown_grace": "20s"},
                            "schedule": FAST, "sources": {"triton": []},
                            # the fleets of these tests are in production, as a person would
                            # have promoted them after discovery (which registers as staging)
                            "defaults": {"monitoring": {"initial_status": "production"}}}
    data.update(extra)
    return write_config(directory, data, models_d=models_d)


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.settimeout(0.2)
    yield sock
    sock.close()


def receive(sock: socket.socket, wanted: str, timeout: float = 30.0) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            message = sock.recv(4096).decode()
        except TimeoutError:
            continue
        seen.append(message)
        if wanted in message.split("\n"):
            return seen
    raise AssertionError(f"no {wanted} in {seen}")


def test_lifecycle_under_a_service_manager(tmp_path: Path, notify_socket: socket.socket) -> None:
    config = daemon_config(tmp_path / "cfg")
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify.sock"),
           "WATCHDOG_USEC": "1000000"}
    daemon = Daemon(config, env, tmp_path / "daemon.log")
    try:
        receive(notify_socket, "READY=1")
        daemon.wait_until(daemon.ready, "readyz")
        receive(notify_socket, "WATCHDOG=1")
        receive(notify_socket, "WATCHDOG=1")
        assert requests.get(daemon.url("/healthz"), timeout=5).json() == {"status": "alive"}
        models = requests.get(daemon.url("/api/v1/models"), timeout=5).json()
        assert models == {"models": []}
        missing = requests.get(daemon.url("/api/v1/models/x/1"), timeout=5)
        assert missing.status_code == 404 and "no model x:1" in missing.json()["error"]
        promtool = shutil.which("promtool")
        assert promtool, "promtool (Debian prometheus) is required"
        live = requests.get(daemon.url("/metrics"), timeout=5).text
        assert 'lifecycled_task_runs_total{task="discovery"}' in live
        lint = subprocess.run([promtool, "check", "metrics"], input=live, capture_output=True,
                              text=True, timeout=60)
        assert lint.returncode == 0 and not (lint.stdout + lint.stderr).strip(), lint.stdout
        good = config.read_text()
        config.write_text("schedule: {discovery: whenever}\n")
        daemon.process.send_signal(signal.SIGHUP)
        daemon.wait_until(lambda: "reload refused" in daemon.log(), "refused reload")
        assert "schedule.discovery" in daemon.log()
        daemon.wait_until(daemon.ready, "readyz after the refused reload")
        for bad, reason in [(b"daemon: {listen: \"\xff\"}\n", "not UTF-8 text"),
                            (b"a: " + b"[" * 5000 + b"]" * 5000, "nested too deeply")]:
            config.write_bytes(bad)  # each killed the daemon before
            daemon.process.send_signal(signal.SIGHUP)
            daemon.wait_until(lambda reason=reason: reason in daemon.log(), reason)
            assert daemon.process.poll() is None  # still running, with the old configuration
            daemon.wait_until(daemon.ready, "readyz after a refused reload")
        config.write_text(good.replace("discovery: 1s", "discovery: 2s"))
        daemon.process.send_signal(signal.SIGHUP)
        daemon.wait_until(lambda: "configuration reloaded" in daemon.log(), "reload")
    finally:
        code = daemon.stop()
    assert code == 0, daemon.log()[-2000:]
    receive(notify_socket, "STOPPING=1")
    assert "lifecycled stopped" in daemon.log()
    assert "Traceback" not in daemon.log()


def test_triton_down_keeps_the_daemon_up_and_shows_which_job_is_stale(tmp_path: Path) -> None:
    dead = {"name": "local", "url": f"http://127.0.0.1:{triton.free_port()}",
            "metrics_url": f"http://127.0.0.1:{triton.free_port()}/metrics", "timeout": "1s"}
    config = daemon_config(tmp_path / "cfg", sources={"triton": [dead]})
    daemon = Daemon(config, dict(os.environ), tmp_path / "daemon.log")
    try:
        def stale() -> Any:  # each task is stale 3 intervals after its (staggered) first run
            response = requests.get(daemon.url("/readyz"), timeout=5)
            body = response.json() if response.status_code == 503 else {}
            return body if {"discovery", "collect"} <= set(body.get("stale_jobs", ())) else None
        body = daemon.wait_until(stale, "stale jobs")
        assert "no source answered: local: triton:local" in body["stale_jobs"]["discovery"]["last_error"]
        text = requests.get(daemon.url("/metrics"), timeout=5).text
        assert 'lifecycled_source_up{source="triton:local"} 0.0' in text
        assert daemon.process.poll() is None
    finally:
        assert daemon.stop() == 0


def history_rows(db: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT id, name, version, kind, from_status, to_status, at "
                            "FROM history ORDER BY id").fetchall()


def test_kill_9_at_random_moments_loses_nothing(tmp_path: Path, triton_factory: Any,
                                                 cli: Any) -> None:
    server = triton_factory()
    config = daemon_config(tmp_path / "cfg", sources={"triton": [endpoint("local", server)]})
    db = tmp_path / "cfg" / "state.db"
    rng = random.Random(7)
    seen: list[tuple[Any, ...]] = []
    for cycle in range(20):
        daemon = Daemon(config, dict(os.environ), tmp_path / "daemon.log")
        daemon.wait_until(daemon.ready, "readyz")
        daemon.wait_until(lambda d=daemon: requests.get(
            d.url("/api/v1/models/risk_assessment/3"), timeout=5).ok, "discovery")
        triton.infer(server.url, "credit_scoring", [[0.1, 0.2, 0.3, 0.4]])
        # a CLI writer racing the daemon adds history the daemon must never lose
        target = "deprecated" if cycle % 2 == 0 else "production"
        moved = cli("models", "set-status", "risk_assessment:3", target, "--reason",
                    f"cycle {cycle}", config=config)
        assert moved.code == 0, moved.err
        deadline = time.monotonic() + rng.uniform(0.0, 1.5)
        while time.monotonic() < deadline:  # let passes run for a random while, then kill
            daemon.process.poll()
        daemon.process.kill()
        daemon.process.wait(timeout=30)
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = history_rows(db)
        assert rows[: len(seen)] == seen, f"history changed after kill in cycle {cycle}"
        seen = rows
    moves = [r for r in seen if r[1] == "risk_assessment" and r[3] == "status_changed"]
    assert len(moves) == 20


def test_kill_9_between_the_state_change_and_the_delivery(tmp_path: Path, cli: Any) -> None:
    import base64

    from devtools.receiver import Receiver

    secret = "whsec_" + base64.b64encode(b"s" * 32).decode()
    port = triton.free_port()
    config = daemon_config(tmp_path / "cfg", webhooks={"ci": {
        "url": f"http://127.0.0.1:{port}/hook", "secret_env": "CI_SECRET",
        "backoff_initial": "1s", "backoff_max": "2s", "timeout": "2s",
        "events": ["model.status_changed"]}})
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(
        {"name": "credit_scoring", "version": "1", "status": "production"}))
    env = {**os.environ, "CI_SECRET": secret}
    assert cli("models", "register", "--file", str(tmp_path / "m.yaml"), config=config).code == 0
    daemon = Daemon(config, env, tmp_path / "daemon.log")
    daemon.wait_until(daemon.ready, "readyz")
    moved = cli("models", "set-status", "credit_scoring:1", "deprecated", "--reason", "old",
                config=config)
    assert moved.code == 0
    daemon.process.kill()  # the receiver is down: the event can only be in the outbox
    daemon.process.wait(timeout=30)
    refused = cli("models", "set-status", "credit_scoring:1", "testing", "--reason", "x",
                  config=config)
    assert refused.code == 2  # a refused change writes no event
    receiver = Receiver(secret, port=port)
    try:
        daemon = Daemon(config, env, tmp_path / "daemon.log")
        daemon.wait_until(lambda: receiver.unique(), "delivery after restart")
        (event,) = receiver.unique().values()
        assert event.body["type"] == "model.status_changed"
        assert (event.body["data"]["from"], event.body["data"]["to"]) == ("production",
                                                                         "deprecated")
        assert not receiver.rejected
        listed = cli("webhooks", "list", "--json", config=config).json()["endpoints"]
        daemon.wait_until(lambda: cli("webhooks", "list", "--json", config=config).json()[
            "endpoints"][0]["delivered"] == 1, "delivery recorded")
        assert listed[0]["endpoint"] == "ci" and listed[0]["dead_letters"] == 0
    finally:
        assert daemon.stop() == 0
        receiver.stop()


def test_sigterm_interrupts_a_delivery_to_a_dripping_receiver(tmp_path: Path) -> None:
    """A webhook receiver that drips one byte at a time held the deliver task past the whole
    shutdown grace, and the daemon exited 1; now SIGTERM ends the call and the daemon exits 0."""
    import base64
    import threading

    from tests.sinks import drip, serve

    accepted = threading.Event()
    dripping = drip(b"", b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100000)

    def reply(conn: socket.socket) -> None:
        accepted.set()
        dripping(conn)

    receiver = serve(reply)
    url = next(receiver)
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    config = daemon_config(tmp_path / "cfg", webhooks={"slow": {
        "url": f"{url}hook", "secret_env": "HOOK_SECRET",
        "timeout": "10m"}})
    env = {**os.environ, "HOOK_SECRET": secret}
    (tmp_path / "m.yaml").write_text("name: m\nversion: '1'\nowner_team: t\nbusiness_domain: d\n")
    register = subprocess.run([sys.executable, "-m", "lifecycled", "models", "register", "--file",
                               str(tmp_path / "m.yaml"), "--config", str(config)],
                              capture_output=True, text=True, env=env, timeout=120)
    assert register.returncode == 0, register.stderr
    daemon = Daemon(config, env, tmp_path / "daemon.log")
    try:
        assert accepted.wait(60), daemon.log()  # the delivery is in flight, dripping
        started = time.monotonic()
        code = daemon.stop()
        assert code == 0, daemon.log()[-2000:]
        assert time.monotonic() - started < 15  # well inside the 20 s grace
        assert "interrupted 1 outbound call" in daemon.log()
    finally:
        if daemon.process.poll() is None:
            daemon.process.kill()
        receiver.close()


def test_the_exporter_conventions_of_the_prometheus_ecosystem(tmp_path: Path) -> None:
    """--web.listen-address overrides daemon.listen; /metrics has the daemon's own process_*
    series and python_info, and build_info names version, revision and Python; / is a page."""
    config = daemon_config(tmp_path / "cfg")
    port = triton.free_port()
    log = tmp_path / "daemon.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "lifecycled", "run", "--config", str(config),
             "--web.listen-address", f"127.0.0.1:{port}"],
            stdout=out, stderr=subprocess.STDOUT, cwd=config.parent)
    daemon = Daemon.__new__(Daemon)
    daemon.port, daemon.log_path, daemon.process = port, log, process
    try:
        text = daemon.wait_until(
            lambda: (r := requests.get(daemon.url("/metrics"), timeout=5)).ok and r.text,
            "/metrics on the flag's port")
        series = {line.split("{")[0].split(" ")[0] for line in text.splitlines()
                  if line and not line.startswith("#")}
        assert {"process_cpu_seconds_total", "process_resident_memory_bytes",
                "process_open_fds", "process_start_time_seconds", "python_info"} <= series
        build = next(line for line in text.splitlines()
                     if line.startswith("lifecycled_build_info{"))
        assert 'version="' in build and 'revision="' in build and 'python="3.' in build
        start = next(float(line.split()[-1]) for line in text.splitlines()
                     if line.startswith("process_start_time_seconds "))
        assert abs(start - time.time()) < 600  # the daemon's own process, started just now
        landing = requests.get(daemon.url("/"), timeout=5)
        assert landing.ok and 'href="/metrics"' in landing.text
    finally:
        code = daemon.stop()
    assert code == 0, daemon.log()[-2000:]


def test_the_web_config_file_guards_the_running_daemon(tmp_path: Path) -> None:
    """`run --web.config.file` (the exporter-toolkit format): reads need a user, liveness not."""
    import base64

    import bcrypt

    web = tmp_path / "web.yml"
    web.write_text(yaml.safe_dump({"basic_auth_users": {
        "prometheus": bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()}}))
    config = daemon_config(tmp_path / "cfg")
    port = int(yaml.safe_load(config.read_text())["daemon"]["listen"].rsplit(":", 1)[1])
    log = tmp_path / "daemon.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "lifecycled", "run", "--config", str(config),
             "--web.config.file", str(web)], stdout=out, stderr=subprocess.STDOUT,
            cwd=config.parent)
    daemon = Daemon.__new__(Daemon)
    daemon.port, daemon.log_path, daemon.process = port, log, process
    login = {"Authorization": "Basic " + base64.b64encode(b"prometheus:s3cret").decode()}
    try:
        daemon.wait_until(lambda: requests.get(daemon.url("/healthz"), timeout=5).ok, "healthz")
        assert requests.get(daemon.url("/metrics"), timeout=5).status_code == 401
        assert requests.get(daemon.url("/api/v1/models"), timeout=5).status_code == 401
        scraped = requests.get(daemon.url("/metrics"), headers=login, timeout=5)
        assert scraped.ok and "lifecycled_build_info" in scraped.text
    finally:
        code = daemon.stop()
    assert code == 0, daemon.log()[-2000:]
