"""Total deadlines on outbound calls, against real dripping and silent servers on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from lifecycled.net import DeadlineExceeded, DeadlineSession, Poster, describe, interrupt_all

from tests.sinks import HttpSink, drip, self_signed_certificate, serve


@pytest.fixture
def dripping_body() -> Iterator[str]:
    yield from serve(drip(b"", b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000))


@pytest.fixture
def silent() -> Iterator[str]:
    def read_until_hung_up(conn: socket.socket) -> None:
        while conn.recv(65536):
            pass
    yield from serve(read_until_hung_up)  # never answers


@pytest.fixture
def prompt() -> Iterator[str]:
    yield from serve(lambda conn: conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                                               b"Connection: close\r\n\r\nok"))


@pytest.mark.slow
def test_a_server_dripping_bytes_cannot_hold_a_call_past_its_timeout(dripping_body: str) -> None:
    """Each byte arrives well within a per-read timeout, so plain requests waited ~500 s."""
    session = DeadlineSession()
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="no complete reply within 1 s"):
        session.get(dripping_body, timeout=1.0)
    assert time.monotonic() - started < 5


@pytest.mark.slow
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


def interrupted(call: Callable[[], object]) -> tuple[BaseException, float]:
    """Run ``call`` in a thread, ``interrupt_all`` once it is in flight: what it raised, and the
    seconds from the interrupt to its end."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # recorded for the caller
            failure.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 10
    while interrupt_all("stopping for the test") == 0:  # until the call is in flight
        assert time.monotonic() < deadline
        time.sleep(0.01)
    started = time.monotonic()
    thread.join(10)
    assert not thread.is_alive() and failure
    return failure[0], time.monotonic() - started


def test_interrupt_all_ends_calls_in_flight_at_once(silent: str) -> None:
    failure, seconds = interrupted(lambda: DeadlineSession().get(silent, timeout=60))
    assert isinstance(failure, DeadlineExceeded) and "stopping for the test" in str(failure)
    assert seconds < 3


def test_a_prompt_server_is_answered_as_before(prompt: str) -> None:
    reply = DeadlineSession().get(prompt, timeout=5)
    assert reply.status_code == 200 and reply.text == "ok"


@pytest.mark.slow
def test_a_hung_prometheus_costs_one_timeout_retries_included(silent: str) -> None:
    """With `timeout: 2s` a hung Prometheus cost 6.4 s per query (each retry waited again)."""
    from lifecycled.config import parse_settings
    from lifecycled.errors import SourceError
    from lifecycled.sources.prometheus import PrometheusSource

    settings = parse_settings({"sources": {"prometheus": {"url": silent.rstrip("/"),
                                                          "timeout": "2s"}}})
    source = PrometheusSource(settings.sources.prometheus)  # type: ignore[arg-type]
    started = time.monotonic()
    with pytest.raises(SourceError):
        source.query("up")
    assert time.monotonic() - started < 3.5  # one timeout and slack for a loaded machine, not two


@pytest.mark.slow
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


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[HttpSink]:
    """A server on 127.0.0.1 keeping each request as sent, answering 202 with a Retry-After
    (also as a forward proxy, answering for the origin itself); no proxy from the caller."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    server = HttpSink()
    server.status, server.reply_headers = 202, {"Retry-After": "7"}
    yield server
    server.stop()


def test_a_poster_sends_what_session_post_sends(recorder: HttpSink) -> None:
    """Same request line, headers (the URL's basic auth included, a header given in another
    case once, not twice) and body as requests."""
    url = f"http://hook:s3cret@{recorder.address}/in?x=1"
    body = b'{"a": 1}'
    extra = {"webhook-id": "msg_1", "content-type": "application/json", "user-agent": "hooks/1"}
    session = DeadlineSession()
    session.post(url, data=body, headers=extra, timeout=5, allow_redirects=False).close()
    with Poster(session, url) as poster:
        reply = poster.post(body, extra, 5)
    assert (reply.status, reply.headers["retry-after"]) == (202, "7")
    (line_a, _, body_a), (line_b, headers_b, body_b) = recorder.requests
    assert line_b == line_a == "POST /in?x=1 HTTP/1.1"
    sent_a, sent_b = ([(k.lower(), v) for k, v in lines] for lines in recorder.header_lines)
    assert sorted(sent_b) == sorted(sent_a) and ("user-agent", "hooks/1") in sent_b
    assert headers_b["Authorization"].startswith("Basic ") and body_b == body_a == body


def test_a_poster_without_a_content_type_sends_none(recorder: HttpSink) -> None:
    """As requests with bytes: no Content-Type."""
    url = f"http://{recorder.address}/in"
    session = DeadlineSession()
    session.post(url, data=b"{}", timeout=5).close()
    with Poster(session, url) as poster:
        poster.post(b"{}", {}, 5)
    sent_a, sent_b = ([k.lower() for k, _ in lines] for lines in recorder.header_lines)
    assert "content-type" not in sent_b and sorted(sent_a) == sorted(sent_b)


@pytest.mark.slow
def test_a_poster_refuses_a_header_with_a_line_break(recorder: HttpSink) -> None:
    with Poster(DeadlineSession(), f"http://{recorder.address}/in") as poster, \
            pytest.raises(requests.exceptions.InvalidHeader):
        poster.post(b"{}", {"webhook-id": "msg_1\r\nX-Smuggled: 1"}, 5)
    assert recorder.requests == []


@pytest.mark.slow
def test_a_poster_goes_through_the_environments_proxy_unless_no_proxy_says(
        recorder: HttpSink, monkeypatch: pytest.MonkeyPatch) -> None:
    session = DeadlineSession()
    monkeypatch.setenv("HTTP_PROXY", f"http://{recorder.address}")
    Poster(session, "http://hooks.example.invalid/in").post(b"{}", {}, 5)  # the proxy answers
    assert recorder.requests[-1][0] == "POST http://hooks.example.invalid/in HTTP/1.1"

    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert Poster(session, f"http://{recorder.address}/direct").post(b"{}", {}, 5).status == 202
    assert recorder.requests[-1][0] == "POST /direct HTTP/1.1"
    monkeypatch.delenv("NO_PROXY")
    with pytest.raises(requests.exceptions.ProxyError):
        Poster(session, f"http://{recorder.address}/direct").post(b"{}", {}, 5)


@pytest.mark.slow
def test_a_poster_keeps_its_connection_alive_and_reconnects_when_it_is_closed(
        recorder: HttpSink) -> None:
    with Poster(DeadlineSession(), f"http://{recorder.address}/in") as poster:
        for _ in range(3):
            assert poster.post(b"{}", {}, 5).status == 202
        assert len(set(recorder.peers)) == 1  # kept alive
        recorder.reply_headers = {"Connection": "close"}
        assert poster.post(b"{}", {}, 5).status == 202  # the receiver closes after this one
        assert poster.post(b"{}", {}, 5).status == 202
        other = threading.Thread(target=poster.post, args=(b"{}", {}, 5))
        other.start()
        other.join(10)
    assert len(recorder.requests) == 6 and len(set(recorder.peers)) == 3


@pytest.mark.slow
def test_a_poster_leaves_no_descriptor_open(recorder: HttpSink) -> None:
    """A connection the receiver closes is closed here too: 50 reconnections leave no socket
    open."""
    def descriptors() -> int:
        return len(os.listdir("/proc/self/fd"))

    recorder.reply_headers = {"Connection": "close"}  # a new connection for every request
    with Poster(DeadlineSession(), f"http://{recorder.address}/in") as poster:
        poster.post(b"{}", {}, 5)
        during = descriptors()
        for _ in range(50):
            assert poster.post(b"{}", {}, 5).status == 202
        assert descriptors() <= during + 2  # the sink may still be closing its side of one
    deadline = time.monotonic() + 10
    while descriptors() > during:  # every connection the receiver closed is closed here
        assert time.monotonic() < deadline, os.listdir("/proc/self/fd")
        time.sleep(0.01)
    assert len(set(recorder.peers)) == 51


def test_a_poster_call_is_ended_by_interrupt_all(silent: str) -> None:
    """Stopping the daemon does not wait for a webhook receiver that never answers."""
    def post() -> None:
        with Poster(DeadlineSession(), silent) as poster:
            poster.post(b"{}", {}, 60)

    failure, seconds = interrupted(post)
    assert isinstance(failure, DeadlineExceeded) and "stopping for the test" in str(failure)
    assert seconds < 3


@pytest.mark.slow
def test_a_poster_checks_the_receivers_certificate_against_the_environments_bundle(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTPS as requests does it: an unknown certificate fails with requests' SSLError; the CA
    bundle named by REQUESTS_CA_BUNDLE is trusted."""
    cert, key = self_signed_certificate(tmp_path)
    for name in ("https_proxy", "all_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    server = HttpSink(tls=(str(cert), str(key)))
    url = f"https://{server.address}/in"
    try:
        with pytest.raises(requests.exceptions.SSLError), Poster(DeadlineSession(), url) as poster:
            poster.post(b"{}", {}, 5)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
        with Poster(DeadlineSession(), url) as poster:
            assert poster.post(b"{}", {}, 5).status == 200
        assert len(server.requests) == 1
    finally:
        server.stop()


@pytest.mark.slow
def test_a_poster_raises_requests_errors_within_its_deadline(dripping_body: str) -> None:
    session = DeadlineSession()
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="no complete reply within 1 s"):
        Poster(session, dripping_body).post(b"{}", {}, 1.0)
    assert time.monotonic() - started < 5
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens on the port
    url = f"http://hook:s3cret@127.0.0.1:{port}/"
    with pytest.raises(requests.ConnectionError) as raised:
        Poster(session, url).post(b"{}", {}, 5)
    said = describe(raised.value, url)
    assert f"127.0.0.1:{port}" in said and "s3cret" not in said + str(raised.value)


LIBRARY_WORDS = ("Pool", "NewConnectionError", "MaxRetryError", "urllib3", "HTTPConnection",
                 "Caused by", "Errno")


def _failure(call: Callable[[], object]) -> BaseException:
    try:
        call()
    except requests.RequestException as exc:
        return exc
    raise AssertionError("the call did not fail")


def _one_clear_line(text: str, url: str) -> None:
    assert "\n" not in text and len(text) < 160 + len(url), text
    assert url.rstrip("/") in text and not [w for w in LIBRARY_WORDS if w in text], text


def test_a_refused_connection_is_one_line_naming_the_url() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/metrics"  # bound, not listening
        text = describe(_failure(lambda: DeadlineSession().get(url, timeout=2)), url)
    assert text == f"{url}: connection refused (nothing listens there)"
    _one_clear_line(text, url)


@pytest.mark.slow
def test_an_unknown_host_a_silent_server_an_untrusted_certificate_and_a_503(
        silent: str, tmp_path: Path) -> None:
    session = DeadlineSession()
    unknown = "http://no-such-host.invalid:8000/v2"
    assert describe(_failure(lambda: session.get(unknown, timeout=2)), unknown) == \
        f"{unknown}: cannot resolve the host name"
    slow = describe(_failure(lambda: session.get(silent, timeout=0.5)), silent)
    assert "no complete reply within 0.5 s" in slow or "no reply within the timeout" in slow
    _one_clear_line(slow, silent)
    sink = HttpSink(tls=self_signed_certificate(tmp_path))
    try:
        secure = sink.url.replace("http://", "https://")
        text = describe(_failure(lambda: session.post(secure, json={}, timeout=5)), secure)
        assert "the TLS certificate is not trusted" in text
        _one_clear_line(text, secure)
    finally:
        sink.stop()
    sink = HttpSink()
    sink.status = 503
    try:
        reply = session.post(sink.url, json={}, timeout=5)
        text = describe(_failure(reply.raise_for_status), sink.url)
    finally:
        sink.stop()
    assert text == f"{sink.url} answered HTTP 503"


@pytest.fixture
def slow_body() -> Iterator[str]:
    """A receiver that answers 200 at once, then sends its body ten bytes a second."""
    def reply(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n")
        drip(b"", b"x" * 5000)(conn)
    yield from serve(reply)


@pytest.mark.slow
def test_a_2xx_is_the_answer_even_when_its_body_outlasts_the_deadline(slow_body: str) -> None:
    """A receiver that answered 200 with a body longer than the deadline was reported ok by
    `webhooks test` but dead-lettered by delivery. Both send through ``Poster.post``: the status
    is the answer, and the body is read only while the deadline lasts."""
    from lifecycled.actions.webhooks import ping
    from lifecycled.settings import WebhookEndpoint

    started = time.monotonic()
    with Poster(DeadlineSession(), slow_body) as poster:
        assert poster.post(b"{}", {}, 1.0).status == 200
    assert time.monotonic() - started < 3
    endpoint = WebhookEndpoint(url=slow_body, timeout=1.0, secret_env="UNUSED")
    assert ping(DeadlineSession(), "slow", endpoint, b"k" * 32, time.time()) == (200, "")
