"""The one HTTP listener: /metrics, /healthz, /readyz and the JSON API under /api/v1, split by
concern: ``routes`` (each request to its reply), ``exposition`` (/metrics), ``protocol`` (the
per-request deadline) and ``server`` (the ASGI application, limits, uvicorn)."""

from lifecycled.http.exposition import Exposition, render_locally, text_exposition
from lifecycled.http.routes import Api, Reply, Reports, Request, json_reply, reply_for
from lifecycled.http.server import HttpServer, Listener, Readiness, Uvicorn, bind, split_listen

__all__ = ["Api", "Exposition", "HttpServer", "Listener", "Readiness", "Reply", "Reports",
           "Request", "Uvicorn", "bind", "json_reply", "render_locally", "reply_for",
           "split_listen", "text_exposition"]
