"""Writing an event into the outbox, inside the transaction of the change that caused it."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from lifecycled.store.engine import Connection

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"


def iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat().replace("+00:00", "Z")


def emit_in(conn: Connection, subscriptions: Mapping[str, Sequence[str]], event_type: str,
            data: Mapping[str, Any], now: float) -> str:
    """Write an event (and its deliveries) inside the caller's transaction; return its id."""
    event_id = f"msg_{uuid.uuid4().hex}"
    body = json.dumps({"type": event_type, "timestamp": iso(now), "data": dict(data)},
                      sort_keys=True, separators=(",", ":"))
    conn.execute("INSERT INTO events (id, type, name, version, created_at, body) VALUES "
                 "(?, ?, ?, ?, ?, ?)", (event_id, event_type, data.get("model"),
                                        data.get("version"), now, body))
    for endpoint, types in subscriptions.items():
        if event_type in types:
            conn.execute("INSERT INTO deliveries (event_id, endpoint, state, next_attempt_at) "
                         "VALUES (?, ?, ?, ?)", (event_id, endpoint, PENDING, now))
    return event_id
