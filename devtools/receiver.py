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

        self._start(Handler)

    def _start(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
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


class AsyncReceiver(Receiver):
    """The same receiver on an asyncio server (one thread, keep-alive HTTP/1.1, only what a
    webhook POST needs): about 7,800 requests a second, 13 times ``http.server``'s, for the
    outbox benchmark, where the receiver must not be the limit. ``respond`` runs on the event
    loop, so it must not wait (a slow receiver is the threaded ``Receiver``)."""

    def _start(self, handler: type[BaseHTTPRequestHandler]) -> None:
        import asyncio

        self.loop = asyncio.new_event_loop()
        started = threading.Event()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    headers = {}
                    for line in head.decode("latin-1").split("\r\n")[1:]:
                        if ":" in line:
                            key, value = line.split(":", 1)
                            headers[key.strip().lower()] = value.strip()
                    raw = await reader.readexactly(int(headers.get("content-length", 0)))
                    status, extra = self._handle(raw, headers)
                    lines = [f"HTTP/1.1 {status} -", "Content-Length: 0",
                             *(f"{k}: {v}" for k, v in extra.items())]
                    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
                writer.close()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.server_ = self.loop.run_until_complete(
                asyncio.start_server(serve, "127.0.0.1", self.port))
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        started.wait(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_.sockets[0].getsockname()[1]}/hook"

    def stop(self) -> None:
        import asyncio

        async def close() -> None:
            self.server_.close()
            tasks = [t for t in asyncio.all_tasks(self.loop) if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.loop.stop()

        asyncio.run_coroutine_threadsafe(close(), self.loop)
        self.thread.join(10)
