"""Champion and challenger comparisons: one row each, its evidence updated every pass, its
decision taken once (a conditional update: only a running comparison decides)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lifecycled.domain import ModelRef
from lifecycled.errors import InputError, NotFoundError
from lifecycled.store.core import Connection, Store, dumps

RUNNING, PROMOTED, ROLLED_BACK, HELD, CANCELLED = (
    "running", "promoted", "rolled_back", "held", "cancelled")
STATES = (RUNNING, PROMOTED, ROLLED_BACK, HELD, CANCELLED)
OPEN = (RUNNING, HELD)  # a person still has to act on a held one


@dataclass(frozen=True)
class Comparison:
    id: str
    name: str
    champion: str
    challenger: str
    state: str
    job_id: str | None
    opened_at: float
    decided_at: float | None
    actor: str
    reason: str
    policy: Mapping[str, Any]
    evidence: Mapping[str, Any]
    last: Mapping[str, Any]  # the counters seen at the last pass, per version
    applied: bool  # the decision's Triton step is done (or there was none)

    @property
    def champion_ref(self) -> ModelRef:
        return ModelRef(self.name, self.champion)

    @property
    def challenger_ref(self) -> ModelRef:
        return ModelRef(self.name, self.challenger)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "model": self.name, "champion": self.champion,
                "challenger": self.challenger, "state": self.state, "job_id": self.job_id,
                "opened_at": self.opened_at, "decided_at": self.decided_at, "actor": self.actor,
                "reason": self.reason, "policy": dict(self.policy),
                "evidence": {k: v for k, v in self.evidence.items() if k != "log_lr"},
                "applied": self.applied}


def _comparison(row: Any) -> Comparison:
    return Comparison(row["id"], row["name"], row["champion"], row["challenger"], row["state"],
                      row["job_id"], row["opened_at"], row["decided_at"], row["actor"],
                      row["reason"], json.loads(row["policy"]), json.loads(row["evidence"]),
                      json.loads(row["last_seen"]), bool(row["applied"]))


def open_in(conn: Connection, champion: ModelRef, challenger: ModelRef, *, policy: Mapping[str, Any],
            evidence: Mapping[str, Any], actor: str, reason: str, now: float,
            job_id: str | None = None) -> str:
    """Open a comparison; refused while the model has one open."""
    found = conn.execute(f"SELECT id, state FROM comparisons WHERE name = ? AND state IN "
                         f"({', '.join('?' * len(OPEN))})", (champion.name, *OPEN)).fetchone()
    if found is not None:
        raise InputError(f"{champion.name} already has a comparison {found['id']} "
                         f"({found['state']}); decide or cancel it first")
    comparison_id = f"cmp_{uuid.uuid4().hex[:16]}"
    conn.execute(
        "INSERT INTO comparisons (id, name, champion, challenger, state, job_id, opened_at, "
        "decided_at, actor, reason, policy, evidence, last_seen, applied) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, '{}', 0)",
        (comparison_id, champion.name, champion.version, challenger.version, RUNNING, job_id,
         now, actor, reason, dumps(dict(policy)), dumps(dict(evidence))))
    return comparison_id


def get_in(conn: Connection, comparison_id: str) -> Comparison:
    row = conn.execute("SELECT * FROM comparisons WHERE id = ?", (comparison_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no comparison {comparison_id}")
    return _comparison(row)


def comparisons(store: Store, *, name: str | None = None,
                states: tuple[str, ...] | None = None) -> list[Comparison]:
    clauses, params = [], []
    if name is not None:
        clauses.append("name = ?")
        params.append(name)
    if states is not None:
        clauses.append(f"state IN ({', '.join('?' * len(states))})")
        params += list(states)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    with store.read() as conn:
        rows = conn.execute(f"SELECT * FROM comparisons {where} ORDER BY opened_at, id",
                            params).fetchall()
    return [_comparison(row) for row in rows]


def update_evidence(store: Store, comparison_id: str, evidence: Mapping[str, Any],
                    last: Mapping[str, Any]) -> bool:
    """Store a pass's evidence while the comparison runs (False: it was decided meanwhile)."""
    with store.write() as conn:
        cursor = conn.execute("UPDATE comparisons SET evidence = ?, last_seen = ? WHERE id = ? "
                              "AND state = ?", (dumps(dict(evidence)), dumps(dict(last)),
                                                comparison_id, RUNNING))
        return bool(cursor.rowcount)


def decide_in(conn: Connection, comparison_id: str, state: str, *, actor: str, reason: str,
              evidence: Mapping[str, Any], now: float, applied: bool,
              from_states: tuple[str, ...] = (RUNNING,)) -> bool:
    """Take the decision once: False (nothing changed) unless the comparison was in
    ``from_states``."""
    cursor = conn.execute(
        f"UPDATE comparisons SET state = ?, decided_at = ?, actor = ?, reason = ?, evidence = ?, "
        f"applied = ? WHERE id = ? AND state IN ({', '.join('?' * len(from_states))})",
        (state, now, actor, reason, dumps(dict(evidence)), int(applied), comparison_id,
         *from_states))
    return bool(cursor.rowcount)


def mark_applied(store: Store, comparison_id: str) -> None:
    with store.write() as conn:
        conn.execute("UPDATE comparisons SET applied = 1 WHERE id = ?", (comparison_id,))
