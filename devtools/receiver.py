"""A real HTTP webhook receiver on 127.0.0.1 (tests, benchmarks, the demo's pipeline): verifies
every delivery with the ``standardwebhooks`` reference library and can be told to fail."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    id: str
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class Receiver:
    """``respond(attempt_number, headers) -> (status, extra headers)`` decides each answer."""

    secret: str
    respond: Callable[[int, dict[str, str]], tuple[int, dict[str, str]]] = (
        lambda n, h: (200, {}))
    on_event: Callable[[Received], None] | None = None
    port: int = 0
    attempts: list[dict[str, str]] = field(default_factory=list)
    accepted: list[Received] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.verifier = Webhook(self.secret)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, extra = receiver._handle(raw, headers)
                self.send_response(status)
                for key, value in extra.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _handle(self, raw: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
        with self.lock:
            self.attempts.append(headers)
            number = len(self.attempts)
        status, extra = self.respond(number, headers)  # outside the lock: it may take its time
        if status >= 300:
            return status, extra
        try:
            self.verifier.verify(raw, headers)
        except WebhookVerificationError as exc:
            with self.lock:
                self.rejected.append(str(exc))
            return 400, {}
        event = Received(headers["webhook-id"], json.loads(raw), headers)
        with self.lock:
            self.accepted.append(event)
        if self.on_event is not None:
            self.on_event(event)
        return status, extra

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def unique(self) -> dict[str, Received]:
        """Accepted events after de-duplication on webhook-id."""
        with self.lock:
            return {event.id: event for event in self.accepted}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
