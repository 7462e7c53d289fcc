"""uvicorn's HTTP/1.1 protocol with a deadline for each request head."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)
REQUEST_TIMEOUT = 10.0  # seconds to send a whole request head, and again its body


class DeadlineProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a deadline for each request: a connection that has not
    sent a complete request head within ``REQUEST_TIMEOUT`` seconds of opening (or of its last
    reply) is closed, however slowly it drips bytes. Idle connections hold no thread."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(REQUEST_TIMEOUT, self._expire, self.cycle)

    def _expire(self, waiting_since: object) -> None:
        if self.cycle is waiting_since and not self.transport.is_closing():
            log.debug("http request head not complete within %ss; closing", REQUEST_TIMEOUT)
            self.transport.close()

