"""Total deadlines on outbound calls, against real dripping and silent servers on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import requests
from lifecycled.net import DeadlineExceeded, DeadlineSession, interrupt_all

from tests.sinks import drip, serve


@pytest.fixture
def dripping_body() -> Iterator[str]:
    yield from serve(drip(b"", b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000))


@pytest.fixture
def silent() -> Iterator[str]:
    yield from serve(lambda conn: conn.recv(1))  # reads until the client hangs up


@pytest.fixture
def prompt() -> Iterator[str]:
    yield from serve(lambda conn: conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                                               b"Connection: close\r\n\r\nok"))


def test_a_server_dripping_bytes_cannot_hold_a_call_past_its_timeout(dripping_body: str) -> None:
    """Each byte arrives well within a per-read timeout, so plain requests waited ~500 s."""
    session = DeadlineSession()
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="no complete reply within 1 s"):
        session.get(dripping_body, timeout=1.0)
    assert time.monotonic() - started < 5


def test_the_timeout_bounds_every_retry_together(silent: str) -> None:
    """urllib3 retries multiplied the timeout (a hung Prometheus with 2 s cost 6.4 s a pass)."""
    from lifecycled.net import DeadlineAdapter
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    session = DeadlineSession(adapters={"http://": DeadlineAdapter(
        max_retries=Retry(total=5, read=5, backoff_factor=0.2, allowed_methods=["GET"]))})
    assert isinstance(session.get_adapter(silent), HTTPAdapter)
    started = time.monotonic()
    with pytest.raises(requests.RequestException):
        session.get(silent, timeout=1.0)
    assert time.monotonic() - started < 3


def test_interrupt_all_ends_calls_in_flight_at_once(silent: str) -> None:
    session = DeadlineSession()
    failure: list[BaseException] = []

    def call() -> None:
        try:
            session.get(silent, timeout=60)
        except BaseException as exc:  # recorded for the assertion below
            failure.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    deadline = time.monotonic() + 10
    while interrupt_all("stopping for the test") == 0:  # until the call is in flight
        assert time.monotonic() < deadline
        time.sleep(0.01)
    thread.join(10)
    assert not thread.is_alive()
    assert isinstance(failure[0], DeadlineExceeded) and "stopping for the test" in str(failure[0])


def test_a_prompt_server_is_answered_as_before(prompt: str) -> None:
    reply = DeadlineSession().get(prompt, timeout=5)
    assert reply.status_code == 200 and reply.text == "ok"


def test_a_hung_prometheus_costs_one_timeout_retries_included(silent: str) -> None:
    """With `timeout: 2s` a hung Prometheus cost 6.4 s per query (each retry waited again)."""
    from lifecycled.config import parse_settings
    from lifecycled.errors import SourceError
    from lifecycled.sources.prometheus import PrometheusSource

    settings = parse_settings({"sources": {"prometheus": {"url": silent.rstrip("/"),
                                                          "timeout": "1s"}}})
    source = PrometheusSource(settings.sources.prometheus)  # type: ignore[arg-type]
    started = time.monotonic()
    with pytest.raises(SourceError):
        source.query("up")
    assert time.monotonic() - started < 2


def test_a_dripping_triton_cannot_hold_a_pass(dripping_body: str) -> None:
    """tritonclient's timeouts bound each socket operation; a byte every 0.1 s never hit them."""
    from lifecycled.config import parse_settings
    from lifecycled.errors import SourceError
    from lifecycled.sources.triton import TritonClient

    settings = parse_settings({"sources": {"triton": [{"name": "slow", "url": dripping_body.rstrip("/"),
                                                       "timeout": "1s"}]}})
    started = time.monotonic()
    with TritonClient(settings.sources.triton[0]) as client, \
            pytest.raises(SourceError, match="no complete reply within 1 s"):
        client.index()
    assert time.monotonic() - started < 5
