"""Retirement scores and plans; the export of a version's stored data for its backup; pruning
a retired version's results once the backup is verified."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lifecycled.domain import ModelRef
from lifecycled.errors import NotFoundError
from lifecycled.store.core import Connection, Store, dumps

STEPS = ("stop_traffic", "backup", "set_retired", "cleanup", "notify")
RESULT_TABLES = ("snapshots", "drift_results", "quality_results", "evaluations")


@dataclass(frozen=True)
class Plan:
    id: str
    ref: ModelRef
    state: str  # running, failed, completed
    actor: str
    reason: str
    steps: tuple[dict[str, Any], ...]  # {"name", "state": pending|done|failed, "at", "detail"}
    error: str
    created_at: float
    updated_at: float

    def next_step(self) -> dict[str, Any] | None:
        return next((s for s in self.steps if s["state"] != "done"), None)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "model": self.ref.name, "version": self.ref.version,
                "state": self.state, "actor": self.actor, "reason": self.reason,
                "steps": [dict(s) for s in self.steps], "error": self.error,
                "created_at": self.created_at, "updated_at": self.updated_at}


def _plan(row: Any) -> Plan:
    return Plan(row["id"], ModelRef(row["name"], row["version"]), row["state"], row["actor"],
                row["reason"], tuple(json.loads(row["steps"])), row["error"], row["created_at"],
                row["updated_at"])


def put_scores(store: Store, scores: Sequence[tuple[ModelRef, dict[str, Any]]], now: float,
               events: Sequence[tuple[ModelRef, str, dict[str, Any]]] = ()) -> None:
    """Replace the latest score of each version and write the events, in one transaction."""
    with store.write() as conn:
        for ref, result in scores:
            conn.execute("INSERT INTO retirement_scores VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT"
                         "(name, version) DO UPDATE SET at = excluded.at, score = excluded.score,"
                         " candidate = excluded.candidate, result = excluded.result",
                         (ref.name, ref.version, now, result["score"], int(result["candidate"]),
                          dumps(result)))
        for ref, event_type, data in events:
            store.emit_in(conn, event_type, ref, data, now)


def scores(store: Store) -> dict[ModelRef, dict[str, Any]]:
    with store.read() as conn:
        rows = conn.execute("SELECT * FROM retirement_scores").fetchall()
    return {ModelRef(r["name"], r["version"]): {"at": r["at"], **json.loads(r["result"])}
            for r in rows}


def create_plan_in(conn: Connection, ref: ModelRef, actor: str, reason: str,
                   now: float) -> Plan:
    plan_id = f"ret_{uuid.uuid4().hex[:16]}"
    steps = [{"name": name, "state": "pending", "at": None, "detail": ""} for name in STEPS]
    conn.execute("INSERT INTO retirement_plans (id, name, version, state, actor, reason, steps, "
                 "created_at, updated_at) VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?)",
                 (plan_id, ref.name, ref.version, actor, reason, dumps(steps), now, now))
    return get_plan_in(conn, plan_id)


def get_plan_in(conn: Connection, plan_id: str) -> Plan:
    row = conn.execute("SELECT * FROM retirement_plans WHERE id = ?", (plan_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no retirement plan {plan_id}")
    return _plan(row)


def latest_plan_in(conn: Connection, ref: ModelRef) -> Plan | None:
    row = conn.execute("SELECT * FROM retirement_plans WHERE name = ? AND version = ? "
                       "ORDER BY created_at DESC, rowid DESC LIMIT 1",
                       (ref.name, ref.version)).fetchone()
    return _plan(row) if row else None


def latest_plan(store: Store, ref: ModelRef) -> Plan | None:
    with store.read() as conn:
        return latest_plan_in(conn, ref)


def unfinished_plans(store: Store) -> list[Plan]:
    """Plans to resume: running (a runner stopped) or waiting for Triton to stop serving."""
    with store.read() as conn:
        rows = conn.execute("SELECT * FROM retirement_plans WHERE state IN "
                            "('running', 'waiting_for_unload') ORDER BY created_at").fetchall()
    return [_plan(r) for r in rows]


# waiting_for_unload: the owning pipeline was asked to stop traffic (model.unload_requested) and
# Triton still serves the version; the plan goes on once discovery sees it no longer served
PLAN_STATES = ("running", "waiting_for_unload", "failed", "completed", "cancelled")


def plan_counts(store: Store) -> dict[str, int]:
    with store.read() as conn:
        return {r[0]: r[1] for r in conn.execute(
            "SELECT state, COUNT(*) FROM retirement_plans GROUP BY state")}


def mark_step_in(conn: Connection, plan: Plan, step: str, state: str, detail: str,
                 now: float) -> Plan:
    steps = [dict(s) for s in plan.steps]
    for s in steps:
        if s["name"] == step:
            s.update(state=state, at=now, detail=detail)
    finished = all(s["state"] == "done" for s in steps)
    plan_state = {"failed": "failed", "waiting": "waiting_for_unload"}.get(
        state, "completed" if finished else "running")
    conn.execute("UPDATE retirement_plans SET steps = ?, state = ?, error = ?, updated_at = ? "
                 "WHERE id = ?", (dumps(steps), plan_state, detail if state == "failed" else "",
                                  now, plan.id))
    return get_plan_in(conn, plan.id)


def claim(store: Store, plan_id: str, owner: str, now: float, lease: float,
          holder_alive: Callable[[str], bool] = lambda holder: True) -> bool:
    """Take (or extend) the right to run a plan; False while another runner holds it, that is
    until its lease runs out or ``holder_alive(holder)`` says it is gone."""
    with store.write() as conn:
        row = conn.execute("SELECT owner, lease_until, state FROM retirement_plans WHERE id = ?",
                           (plan_id,)).fetchone()
        if row is None or row["state"] != "running":
            return False
        holder = row["owner"]
        if holder not in (None, owner) and row["lease_until"] >= now and holder_alive(holder):
            return False
        conn.execute("UPDATE retirement_plans SET owner = ?, lease_until = ? WHERE id = ?",
                     (owner, now + lease, plan_id))
        return True


def holder_in(conn: Connection, plan_id: str) -> tuple[str | None, float]:
    """Who holds the right to run a plan, and until when (owner None: nobody)."""
    row = conn.execute("SELECT owner, lease_until FROM retirement_plans WHERE id = ?",
                       (plan_id,)).fetchone()
    return (row["owner"], row["lease_until"] or 0.0) if row is not None else (None, 0.0)


def release(store: Store, plan_id: str, owner: str) -> None:
    with store.write() as conn:
        conn.execute("UPDATE retirement_plans SET owner = NULL, lease_until = NULL "
                     "WHERE id = ? AND owner = ?", (plan_id, owner))


def resume_waiting_in(conn: Connection, plan: Plan, now: float) -> Plan:
    """A plan waiting for an unload runs again (its step re-checks Triton)."""
    conn.execute("UPDATE retirement_plans SET state = 'running', updated_at = ? "
                 "WHERE id = ? AND state = 'waiting_for_unload'", (now, plan.id))
    return get_plan_in(conn, plan.id)


def cancel_plan_in(conn: Connection, plan: Plan, why: str, now: float) -> Plan:
    """End ``plan`` without going on: no further step runs; what was done stays recorded."""
    conn.execute("UPDATE retirement_plans SET state = 'cancelled', error = ?, updated_at = ? "
                 "WHERE id = ?", (why, now, plan.id))
    return get_plan_in(conn, plan.id)


def retry_plan_in(conn: Connection, plan: Plan, now: float) -> Plan:
    steps = [dict(s, state="pending") if s["state"] == "failed" else dict(s) for s in plan.steps]
    conn.execute("UPDATE retirement_plans SET steps = ?, state = 'running', error = '', "
                 "updated_at = ? WHERE id = ?", (dumps(steps), now, plan.id))
    return get_plan_in(conn, plan.id)


def export_version(store: Store, ref: ModelRef) -> dict[str, Any]:
    """Everything stored about ``ref``, as JSON-able values, for its backup."""
    with store.read() as conn:
        record = store.get_in(conn, ref)
        data: dict[str, Any] = {"metadata": record.to_json()}
        data["history"] = [dict(r) for r in conn.execute(
            "SELECT * FROM history WHERE name = ? AND version = ? ORDER BY id",
            (ref.name, ref.version))]
        for table in (*RESULT_TABLES, "update_jobs"):
            data[table] = [dict(r) for r in conn.execute(
                f"SELECT * FROM {table} WHERE name = ? AND version = ? ORDER BY rowid",
                (ref.name, ref.version))]
    for table in ("drift_results", "quality_results", "evaluations"):
        for row in data[table]:
            row["result"] = json.loads(row["result"])
    for row in data["snapshots"]:
        row["detail"] = json.loads(row["detail"])
    return data


def prune_version_in(conn: Connection, ref: ModelRef) -> int:
    """Delete ``ref``'s snapshots, results and serving state (history and jobs stay)."""
    removed = 0
    for table in (*RESULT_TABLES, "serving_state", "retirement_scores"):
        removed += conn.execute(f"DELETE FROM {table} WHERE name = ? AND version = ?",
                                (ref.name, ref.version)).rowcount
    return removed
