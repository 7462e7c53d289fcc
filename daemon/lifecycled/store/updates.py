"""Update jobs: their state, progress, log and validation metrics."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lifecycled.domain import UPDATE_JOB_STATES, JobState, ModelRef
from lifecycled.errors import NotFoundError
from lifecycled.store.core import Connection, Store, dumps

STATES = UPDATE_JOB_STATES
ACTIVE = tuple(state.value for state in JobState if state.active)
FINAL = tuple(state.value for state in JobState if not state.active)


@dataclass(frozen=True)
class UpdateJob:
    id: str
    ref: ModelRef
    target_version: str
    trigger_type: str
    trigger: Mapping[str, Any]
    state: JobState
    progress: float
    validation: Mapping[str, float]
    reason: str
    created_at: float
    updated_at: float
    finished_at: float | None
    log: tuple[tuple[float, str], ...] = ()

    @property
    def active(self) -> bool:
        return self.state.active

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "model": self.ref.name, "version": self.ref.version,
                "target_version": self.target_version, "trigger_type": self.trigger_type,
                "trigger": dict(self.trigger), "state": self.state, "progress": self.progress,
                "validation": dict(self.validation), "reason": self.reason,
                "created_at": self.created_at, "updated_at": self.updated_at,
                "finished_at": self.finished_at,
                "log": [{"at": at, "line": line} for at, line in self.log]}


def _job(row: Any, log: Sequence[tuple[float, str]] = ()) -> UpdateJob:
    return UpdateJob(row["id"], ModelRef(row["name"], row["version"]), row["target_version"],
                     row["trigger_type"], json.loads(row["trigger"]), JobState(row["state"]),
                     row["progress"], json.loads(row["validation"]), row["reason"],
                     row["created_at"], row["updated_at"], row["finished_at"], tuple(log))


def create_in(conn: Connection, ref: ModelRef, target: str, trigger_type: str,
              trigger: Mapping[str, Any], state: str, now: float) -> str:
    job_id = f"job_{uuid.uuid4().hex[:16]}"
    conn.execute("INSERT INTO update_jobs (id, name, version, target_version, trigger_type, "
                 "trigger, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 (job_id, ref.name, ref.version, target, trigger_type, dumps(dict(trigger)), state,
                  now, now))
    attach_in(conn, job_id, trigger_type)
    return job_id


def attach_in(conn: Connection, job_id: str, trigger_type: str) -> bool:
    """Record that job ``job_id`` answers triggers of ``trigger_type``; False when it already
    did (each type is attached once)."""
    cursor = conn.execute("INSERT INTO update_job_triggers (job_id, trigger_type) VALUES (?, ?) "
                          "ON CONFLICT DO NOTHING", (job_id, trigger_type))
    return bool(cursor.rowcount)


def get_in(conn: Connection, job_id: str) -> UpdateJob:
    row = conn.execute("SELECT * FROM update_jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no update job {job_id}")
    log = conn.execute("SELECT at, line FROM update_job_log WHERE job_id = ? ORDER BY id",
                       (job_id,)).fetchall()
    return _job(row, [(r[0], r[1]) for r in log])


def get(store: Store, job_id: str) -> UpdateJob:
    with store.read() as conn:
        return get_in(conn, job_id)


def list_jobs(store: Store, *, state: str | None = None, ref: ModelRef | None = None
              ) -> list[UpdateJob]:
    clauses, params = [], []
    if state:
        clauses.append("state = ?")
        params.append(state)
    if ref:
        clauses += ["name = ?", "version = ?"]
        params += [ref.name, ref.version]
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    with store.read() as conn:
        rows = conn.execute(f"SELECT * FROM update_jobs{where} ORDER BY created_at, id",
                            params).fetchall()
    return [_job(r) for r in rows]


def active_for_in(conn: Connection, name: str) -> UpdateJob | None:
    """The active job of any version of model ``name`` (at most one exists)."""
    row = conn.execute(f"SELECT * FROM update_jobs WHERE name = ? AND state IN "
                       f"({', '.join('?' * len(ACTIVE))}) ORDER BY created_at DESC LIMIT 1",
                       (name, *ACTIVE)).fetchone()
    return _job(row) if row else None


def last_created_in(conn: Connection, name: str) -> float | None:
    row = conn.execute("SELECT MAX(created_at) FROM update_jobs WHERE name = ?",
                       (name,)).fetchone()
    return row[0] if row and row[0] is not None else None


def update_in(conn: Connection, job_id: str, now: float, *, state: str | None = None,
              progress: float | None = None, validation: Mapping[str, float] | None = None,
              reason: str | None = None) -> None:
    sets: list[str] = ["updated_at = ?"]
    params: list[Any] = [now]
    if state is not None:
        sets.append("state = ?")
        params.append(state)
        if state in FINAL:
            sets.append("finished_at = ?")
            params.append(now)
    if progress is not None:
        sets.append("progress = ?")
        params.append(progress)
    if validation is not None:
        sets.append("validation = ?")
        params.append(dumps(dict(validation)))
    if reason is not None:
        sets.append("reason = ?")
        params.append(reason)
    conn.execute(f"UPDATE update_jobs SET {', '.join(sets)} WHERE id = ?", (*params, job_id))


def log_in(conn: Connection, job_id: str, now: float, *lines: str) -> None:
    conn.executemany("INSERT INTO update_job_log (job_id, at, line) VALUES (?, ?, ?)",
                     [(job_id, now, line) for line in lines])


def count_by_state(store: Store) -> dict[str, int]:
    with store.read() as conn:
        return {r[0]: r[1] for r in conn.execute(
            "SELECT state, COUNT(*) FROM update_jobs GROUP BY state")}


def latest_per_model(store: Store) -> list[UpdateJob]:
    """The newest job of every model version."""
    with store.read() as conn:
        rows = conn.execute("SELECT * FROM update_jobs WHERE rowid IN (SELECT MAX(rowid) FROM "
                            "update_jobs GROUP BY name, version)").fetchall()
    return [_job(r) for r in rows]


def jobs_by_target(store: Store) -> dict[ModelRef, UpdateJob]:
    """The newest update job for each target version (discovery asks: an active job's target is
    the gate's to register; a failed job's target must not become production on its own)."""
    targets: dict[ModelRef, UpdateJob] = {}
    for job in list_jobs(store):  # oldest first: the newest job wins
        targets[ModelRef(job.ref.name, job.target_version)] = job
    return targets
