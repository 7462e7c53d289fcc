"""The listener against malformed and unusual requests, over a real socket on 127.0.0.1: every bad
request gets one clear reply and the listener keeps serving."""

from __future__ import annotations

import gzip
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from lifecycled.api import job_events_handler
from lifecycled.http import Api, HttpServer
from lifecycled.store import open_store
from prometheus_client import CollectorRegistry, Gauge

from tests.conftest import write_config

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
    assert b"Content-Length must be a non-negative integer" in reply
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
    assert b"Content-Encoding: gzip" in head_part
    assert gzip.decompress(body).decode() == plain.text
    assert "lifecycled_test_value 1.0" in plain.text


def test_other_methods_are_405_json(url: str) -> None:
    reply = requests.put(f"{url}/metrics", timeout=5)
    assert reply.status_code == 405
    assert reply.headers["Allow"] == "GET, HEAD, POST"
    assert reply.json() == {"error": "method PUT not allowed"}


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
