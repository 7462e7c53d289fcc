"""Local stand-ins on 127.0.0.1: for Slack and the mail relay (an HTTP sink and a minimal SMTP
sink recording what Alertmanager sends them), and misbehaving servers (a reply dripped a byte at a
time, or none at all) for the outbound deadlines."""

from __future__ import annotations

import json
import socket
import socketserver
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (a day long) and its key, made with openssl in ``folder``."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class HttpSink:
    """Accepts POSTs (Slack's incoming-webhook format) and keeps the JSON bodies, each with the
    monotonic time it arrived, and each request as sent (line, headers, body); answers
    ``status`` (200, or 410 to play a receiver that is gone) with ``reply_headers``."""

    def __init__(self, tls: tuple[str, str] | None = None) -> None:
        self.received: list[dict[str, Any]] = []
        self.arrivals: list[tuple[float, int, dict[str, Any]]] = []  # (time, answered, body)
        self.requests: list[tuple[str, dict[str, str], bytes]] = []  # (line, headers, body)
        self.header_lines: list[list[tuple[str, str]]] = []  # each request's, repeats kept
        self.peers: list[tuple[str, int]] = []  # the client address of each request
        self.status = 200
        self.reply_headers: dict[str, str] = {}
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = json.loads(raw or b"{}")
                status = sink.status
                sink.requests.append((self.requestline, dict(self.headers.items()), raw))
                sink.header_lines.append(list(self.headers.items()))
                sink.peers.append(self.client_address)
                sink.received.append(body)
                sink.arrivals.append((time.monotonic(), status, body))
                self.send_response(status)
                for name, value in sink.reply_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:  # (certificate file, key file): HTTPS
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.address}/slack"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SmtpSink:
    """Speaks just enough SMTP (no TLS, no AUTH) to receive messages; keeps their text."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write((line + "\r\n").encode())

            def handle(self) -> None:
                self.reply("220 sink ESMTP")
                while True:
                    line = self.rfile.readline().decode(errors="replace")
                    if not line:
                        return
                    verb = line.strip().split(" ", 1)[0].upper()
                    if verb in ("EHLO", "HELO"):
                        self.reply("250-sink")
                        self.reply("250 8BITMIME")
                    elif verb == "DATA":
                        self.reply("354 end with .")
                        lines = []
                        while (data := self.rfile.readline().decode(errors="replace")) not in (
                                ".\r\n", ".\n", ""):
                            lines.append(data)
                        sink.messages.append("".join(lines))
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("250 ok")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve(reply: Callable[[socket.socket], None]) -> Iterator[str]:
    """A TCP server on 127.0.0.1 answering each connection with ``reply`` in its own thread."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=_answer, args=(conn,), daemon=True).start()

    def _answer(conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                reply(conn)
            except OSError:
                pass

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    finally:  # also when the caller closes the generator
        stop.set()
        listener.close()


def drip(head: bytes, body: bytes) -> Callable[[socket.socket], None]:
    def reply(conn: socket.socket) -> None:
        for byte in head + body:
            conn.sendall(bytes([byte]))
            time.sleep(0.1)  # the server's pace: ten bytes a second
    return reply
