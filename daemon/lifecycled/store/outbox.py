"""The webhook outbox: events written in the transaction of the change that caused them, one
delivery row per subscribed endpoint, and what the deliver job records about each attempt."""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lifecycled.store.core import Store
from lifecycled.store.events import DEAD, DELIVERED, PENDING


@dataclass(frozen=True)
class Delivery:
    event_id: str
    endpoint: str
    event_type: str
    body: str  # the exact JSON text that is signed and sent
    attempts: int
    state: str
    next_attempt_at: float
    last_status: int | None
    last_error: str
    created_at: float

    def to_json(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "endpoint": self.endpoint, "type": self.event_type,
                "state": self.state, "attempts": self.attempts,
                "next_attempt_at": self.next_attempt_at, "last_status": self.last_status,
                "last_error": self.last_error, "created_at": self.created_at}


def _delivery(row: Any) -> Delivery:
    return Delivery(row["event_id"], row["endpoint"], row["type"], row["body"], row["attempts"],
                    row["state"], row["next_attempt_at"], row["last_status"], row["last_error"],
                    row["created_at"])


_SELECT = ("SELECT d.*, e.type, e.body, e.created_at FROM deliveries d "
           "JOIN events e ON e.id = d.event_id")


def due(store: Store, now: float, limit: int) -> list[Delivery]:
    """Pending deliveries whose time has come, to endpoints that are not disabled, oldest first."""
    with store.read() as conn:
        rows = conn.execute(
            f"{_SELECT} LEFT JOIN webhook_endpoints w ON w.endpoint = d.endpoint "
            "WHERE d.state = ? AND d.next_attempt_at <= ? AND COALESCE(w.disabled, 0) = 0 "
            "ORDER BY d.next_attempt_at, e.created_at LIMIT ?", (PENDING, now, limit)).fetchall()
    return [_delivery(r) for r in rows]


@dataclass(frozen=True)
class Claimed:
    deliveries: list[Delivery]
    taken_over: int  # of them, claims another holder had let run out


def claim_due(store: Store, holder: str, now: float, limit: int, ttl: float) -> Claimed:
    """Claim the due deliveries no other replica has claimed (or whose claim has run out) for
    ``ttl`` seconds of database time; rows another replica is claiming at this moment are
    skipped, not waited for. The claim ends when the attempt is recorded."""
    db_now = store.engine.now_sql
    with store.write() as conn:
        rows = conn.execute(
            f"{_SELECT} LEFT JOIN webhook_endpoints w ON w.endpoint = d.endpoint "
            "WHERE d.state = ? AND d.next_attempt_at <= ? AND COALESCE(w.disabled, 0) = 0 "
            f"AND (d.claimed_by IS NULL OR d.claim_until < {db_now}) "
            "ORDER BY d.next_attempt_at, e.created_at LIMIT ?" + store.engine.lock_rows("d"),
            (PENDING, now, limit)).fetchall()
        if rows:  # one claim end for the batch, in the database's clock
            until = float(conn.execute(f"SELECT {db_now}").fetchone()[0]) + ttl
            conn.executemany(
                "UPDATE deliveries SET claimed_by = ?, claim_until = ? "
                "WHERE event_id = ? AND endpoint = ?",
                [(holder, until, r["event_id"], r["endpoint"]) for r in rows])
    taken = sum(1 for r in rows if r["claimed_by"] not in (None, holder))
    return Claimed([_delivery(r) for r in rows], taken)


def deliveries(store: Store, *, state: str | None = None, event_id: str | None = None
               ) -> list[Delivery]:
    clauses, params = [], []
    if state:
        clauses.append("d.state = ?")
        params.append(state)
    if event_id:
        clauses.append("d.event_id = ?")
        params.append(event_id)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    with store.read() as conn:
        rows = conn.execute(f"{_SELECT}{where} ORDER BY e.created_at", params).fetchall()
    return [_delivery(r) for r in rows]


class Outcome(enum.StrEnum):
    """What one delivery attempt came to."""

    DELIVERED = "delivered"  # a 2xx
    RETRY = "retry"  # tried again after a delay
    DEAD = "dead"  # out of attempts: a dead letter
    DISABLED = "disabled"  # the endpoint answered 410 Gone: it is disabled


@dataclass(frozen=True)
class Attempt:
    """What one attempt came to: outcome is delivered, retry, dead or disabled (410 Gone)."""

    delivery: Delivery
    now: float
    status: int | None
    error: str
    outcome: Outcome
    next_attempt_at: float | None = None
    disable_reason: str = ""


def record_attempt(store: Store, delivery: Delivery, *, now: float, status: int | None,
                   error: str, outcome: Outcome, next_attempt_at: float | None = None,
                   disable_reason: str = "") -> None:
    """Record one attempt: outcome is delivered, retry, dead or disabled (410 Gone)."""
    record_attempts(store, [Attempt(delivery, now, status, error, outcome, next_attempt_at,
                                    disable_reason)])


def record_attempts(store: Store, attempts: Sequence[Attempt]) -> None:
    """Record attempts in one transaction (a batch sent side by side commits once): each
    delivery's row, and the endpoint's counts and state as the attempts, in order, leave them
    (shared rows in key order, so replicas recording at once lock them in the same order)."""
    if not attempts:
        return
    counts: dict[tuple[str, str], list[int]] = {}
    endpoints: dict[str, list[Any]] = {}  # endpoint -> [disabled, reason, last success]
    for attempt in attempts:
        delivery, ok = attempt.delivery, attempt.outcome == Outcome.DELIVERED
        count = counts.setdefault((delivery.endpoint, delivery.event_type), [0, 0])
        count[0] += 1
        count[1] += 0 if ok else 1
        state = endpoints.setdefault(delivery.endpoint, [0, "", None])
        if attempt.outcome == Outcome.DISABLED:
            state[0], state[1] = 1, attempt.disable_reason
        if ok:
            state[2] = attempt.now
    with store.write() as conn:
        conn.executemany(
            "UPDATE deliveries SET state = ?, attempts = attempts + 1, last_attempt_at = ?, "
            "last_status = ?, last_error = ?, next_attempt_at = COALESCE(?, next_attempt_at), "
            "claimed_by = NULL, claim_until = NULL, "
            "delivered_at = CASE WHEN ? = 'delivered' THEN ? ELSE delivered_at END "
            "WHERE event_id = ? AND endpoint = ?",
            [(_STATES.get(a.outcome, PENDING), a.now, a.status, a.error, a.next_attempt_at,
              _STATES.get(a.outcome, PENDING), a.now, a.delivery.event_id, a.delivery.endpoint)
             for a in attempts])
        conn.executemany(
            "INSERT INTO webhook_counts (endpoint, event_type, deliveries, failures) VALUES "
            "(?, ?, ?, ?) ON CONFLICT(endpoint, event_type) DO UPDATE SET "
            "deliveries = webhook_counts.deliveries + excluded.deliveries, "
            "failures = webhook_counts.failures + excluded.failures",
            [(endpoint, event_type, n, failures)
             for (endpoint, event_type), (n, failures) in sorted(counts.items())])
        conn.executemany(
            "INSERT INTO webhook_endpoints (endpoint, disabled, disabled_reason, last_success) "
            "VALUES (?, ?, ?, ?) ON CONFLICT(endpoint) DO UPDATE SET "
            "disabled = CASE WHEN excluded.disabled = 1 THEN 1 "
            "ELSE webhook_endpoints.disabled END, "
            "disabled_reason = CASE WHEN excluded.disabled = 1 THEN excluded.disabled_reason "
            "ELSE webhook_endpoints.disabled_reason END, "
            "last_success = COALESCE(excluded.last_success, webhook_endpoints.last_success)",
            [(endpoint, *state) for endpoint, state in sorted(endpoints.items())])


# an attempt's outcome -> its delivery's state (retry and disabled leave it pending)
_STATES = {Outcome.DELIVERED: DELIVERED, Outcome.DEAD: DEAD}


def redeliver(store: Store, *, event_id: str | None, all_dead: bool, now: float) -> int:
    """Make dead letters (one event's, or all) pending again with a fresh attempt budget."""
    with store.write() as conn:
        if all_dead:
            cursor = conn.execute("UPDATE deliveries SET state = ?, attempts = 0, "
                                  "next_attempt_at = ? WHERE state = ?", (PENDING, now, DEAD))
        else:
            cursor = conn.execute("UPDATE deliveries SET state = ?, attempts = 0, "
                                  "next_attempt_at = ? WHERE event_id = ? AND state = ?",
                                  (PENDING, now, event_id, DEAD))
        return int(cursor.rowcount)


def enable_endpoint(store: Store, endpoint: str) -> None:
    with store.write() as conn:
        conn.execute("UPDATE webhook_endpoints SET disabled = 0, disabled_reason = '' "
                     "WHERE endpoint = ?", (endpoint,))


@dataclass(frozen=True)
class EndpointSummary:
    endpoint: str
    pending: int
    dead: int
    delivered: int
    disabled: bool
    disabled_reason: str
    last_success: float | None


def endpoint_summaries(store: Store, names: Sequence[str]) -> list[EndpointSummary]:
    with store.read() as conn:
        counts = {(r[0], r[1]): r[2] for r in conn.execute(
            "SELECT endpoint, state, COUNT(*) FROM deliveries GROUP BY endpoint, state")}
        states = {r["endpoint"]: r for r in conn.execute("SELECT * FROM webhook_endpoints")}
    known = list(dict.fromkeys([*names, *(e for e, _ in counts)]))
    return [EndpointSummary(
        name, counts.get((name, PENDING), 0), counts.get((name, DEAD), 0),
        counts.get((name, DELIVERED), 0), bool(states[name]["disabled"]) if name in states else False,
        states[name]["disabled_reason"] if name in states else "",
        states[name]["last_success"] if name in states else None) for name in known]


def webhook_counts(store: Store) -> list[tuple[str, str, int, int]]:
    with store.read() as conn:
        return [(r[0], r[1], r[2], r[3]) for r in conn.execute(
            "SELECT endpoint, event_type, deliveries, failures FROM webhook_counts "
            "ORDER BY endpoint, event_type")]


def prune_events(store: Store, *, older_than: float) -> int:
    """Delete delivered events (and their deliveries) older than ``older_than``; never pending
    or dead ones."""
    with store.write() as conn:
        conn.execute(
            "DELETE FROM deliveries WHERE event_id IN (SELECT id FROM events WHERE created_at < ?) "
            "AND event_id NOT IN (SELECT event_id FROM deliveries WHERE state != ?)",
            (older_than, DELIVERED))
        cursor = conn.execute(
            "DELETE FROM events WHERE created_at < ? AND id NOT IN (SELECT event_id FROM "
            "deliveries)", (older_than,))
        return int(cursor.rowcount)


def event_body(store: Store, event_id: str) -> dict[str, Any] | None:
    with store.read() as conn:
        row = conn.execute("SELECT body FROM events WHERE id = ?", (event_id,)).fetchone()
    return json.loads(row[0]) if row else None

