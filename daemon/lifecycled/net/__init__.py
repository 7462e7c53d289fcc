"""Outbound HTTP, one stack for every call (requests and urllib3): ``deadlines`` (a total
deadline per call, ended on shutdown), ``session`` (the session and adapters that report their
sockets to it, the webhook ``Poster``) and ``errors`` (a failed call in one line)."""

from lifecycled.net.deadlines import DeadlineExceeded, deadline, interrupt_all
from lifecycled.net.errors import describe
from lifecycled.net.session import DeadlineAdapter, DeadlineSession, Poster, Reply

__all__ = ["DeadlineAdapter", "DeadlineExceeded", "DeadlineSession", "Poster", "Reply",
           "deadline", "describe", "interrupt_all"]
