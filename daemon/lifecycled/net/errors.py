"""One line for a failed outbound call: what went wrong, in words, with the URL's credentials
left out.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from typing import Any

import requests
import urllib3

from lifecycled.net.deadlines import DeadlineExceeded


def _without_auth(url: str) -> str:
    return str(urllib3.util.parse_url(url)._replace(auth=None).url)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps (causes, contexts, urllib3's ``reason``, args)."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = [current.__cause__, current.__context__, getattr(current, "reason", None),
                   *current.args]
        todo.extend(e for e in wrapped if isinstance(e, BaseException))


def describe(exc: BaseException, url: str) -> str:
    """One line for people saying why a call to ``url`` failed, naming no library's classes:
    what was refused, unreachable, too slow or not trusted, or the HTTP status."""
    import ssl

    url = _without_auth(url)
    chain = list(_causes(exc))
    response = getattr(exc, "response", None)
    if response is not None and getattr(response, "status_code", None):
        return f"{url} answered HTTP {response.status_code}"
    if isinstance(exc, DeadlineExceeded):
        return str(exc)
    def found(kind: type[BaseException] | tuple[type[BaseException], ...]) -> Any:
        return next((cause for cause in chain if isinstance(cause, kind)), None)

    if (cert := found(ssl.SSLCertVerificationError)) is not None:
        return f"{url}: the TLS certificate is not trusted ({cert.verify_message})"
    if (tls := found(ssl.SSLError)) is not None:
        return f"{url}: TLS failed ({tls.reason or tls.strerror or 'handshake'})"
    if found(socket.gaierror) is not None:
        return f"{url}: cannot resolve the host name"
    if found(ConnectionRefusedError) is not None:
        return f"{url}: connection refused (nothing listens there)"
    if found((TimeoutError, requests.Timeout)) is not None:
        return f"{url}: no reply within the timeout"
    for cause in chain:
        if isinstance(cause, OSError) and cause.strerror:
            return f"{url}: {cause.strerror.lower()}"
    text = str(chain[-1]).splitlines()[0] if str(chain[-1]) else ""
    if not text or re.search(r"[A-Z_]\w*\(|<\w", text):  # a library's repr, not words
        text = "the request failed"
    return f"{url}: {text[:200]}"

