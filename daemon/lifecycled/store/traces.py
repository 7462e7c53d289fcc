"""Triton's trace samples in the store: the rows decoded from trace files, the files consumed,
the trace settings lifecycled changed, and the references frozen from the rows."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lifecycled.domain import HistoryKind, ModelRef
from lifecycled.store.core import Store, dumps

Columns = dict[str, np.ndarray]


def encode_columns(columns: Mapping[str, np.ndarray]) -> str:
    """Columns as JSON (NaN as null)."""
    return json.dumps({name: [None if math.isnan(v) else v for v in values.tolist()]
                       for name, values in columns.items()}, separators=(",", ":"))


def decode_columns(text: str) -> Columns:
    return {name: np.array([math.nan if v is None else v for v in values], dtype=np.float64)
            for name, values in json.loads(text).items()}


def _rows(columns: Mapping[str, np.ndarray]) -> int:
    return len(next(iter(columns.values()))) if columns else 0


def add_trace_file(store: Store, endpoint: str, digest: str, file: str, *, requests: int,
                   batches: Mapping[ModelRef, Columns], at: float, now: float) -> bool:
    """Store the rows one trace file gave, once: False (nothing stored) when a file with the
    same content was consumed before (the daemon stopped between storing and deleting it)."""
    with store.write() as conn:
        seen = conn.execute("SELECT 1 FROM trace_files WHERE endpoint = ? AND digest = ?",
                            (endpoint, digest)).fetchone()
        if seen is not None:
            return False
        conn.execute("INSERT INTO trace_files (endpoint, digest, file, requests, read_at)"
                     " VALUES (?, ?, ?, ?, ?)", (endpoint, digest, file, requests, now))
        conn.executemany(
            "INSERT INTO trace_rows (name, version, at, rows, data) VALUES (?, ?, ?, ?, ?)",
            [(ref.name, ref.version, at, _rows(columns), encode_columns(columns))
             for ref, columns in batches.items() if _rows(columns)])
    return True


def traced_rows(store: Store, ref: ModelRef, *, since: float | None = None,
                until: float | None = None, newest: int | None = None,
                oldest: int | None = None) -> tuple[Columns, int]:
    """The sampled rows of ``ref`` (those read at or after ``since``, and at or before
    ``until``), the newest ``newest`` or the oldest ``oldest`` of them, oldest first, and their
    count; a column a batch lacks is NaN there."""
    order = "DESC" if oldest is None else "ASC"
    with store.read() as conn:
        rows = conn.execute(
            f"SELECT rows, data FROM trace_rows WHERE name = ? AND version = ? AND at >= ? "
            f"AND at <= ? ORDER BY at {order}, id {order}",
            (ref.name, ref.version, since if since is not None else -math.inf,
             until if until is not None else math.inf)).fetchall()
    want = newest if newest is not None else oldest
    parts: list[Columns] = []
    taken = 0
    for row in rows:
        if want is not None and taken >= want:
            break
        parts.append(decode_columns(row["data"]))
        taken += int(row["rows"])
    if oldest is None:
        parts.reverse()
    columns = concatenate(parts)
    if want is not None and taken > want:
        cut = slice(taken - want, None) if oldest is None else slice(0, want)
        columns = {name: values[cut] for name, values in columns.items()}
        taken = want
    return columns, taken


def concatenate(parts: Sequence[Columns]) -> Columns:
    """Batches one after the other; a column a batch lacks is NaN there."""
    names: dict[str, None] = {}
    for part in parts:
        names.update(dict.fromkeys(part))
    return {name: np.concatenate([part[name] if name in part else np.full(_rows(part), np.nan)
                                  for part in parts]) for name in names}


def traced_counts(store: Store, since: Mapping[ModelRef, float]) -> dict[ModelRef, int]:
    """Rows sampled of each version at or after its time in ``since``."""
    counts: dict[ModelRef, int] = {}
    with store.read() as conn:
        for ref, start in since.items():
            row = conn.execute("SELECT COALESCE(SUM(rows), 0) FROM trace_rows WHERE name = ? AND "
                               "version = ? AND at >= ?", (ref.name, ref.version, start)).fetchone()
            counts[ref] = int(row[0])
    return counts


def prune_trace_rows(store: Store, *, older_than: float, keep: Iterable[ModelRef] = ()) -> int:
    """Delete rows sampled before ``older_than``, except those of the versions in ``keep``
    (whose reference is still to be frozen from them); and consumed-file records older than a
    day past it (they only guard against reading a file twice)."""
    kept = list(keep)
    with store.write() as conn:
        if kept:
            marks = ", ".join("(?, ?)" for _ in kept)
            deleted = conn.execute(
                f"DELETE FROM trace_rows WHERE at < ? AND (name, version) NOT IN (VALUES {marks})",
                (older_than, *[v for ref in kept for v in (ref.name, ref.version)])).rowcount
        else:
            deleted = conn.execute("DELETE FROM trace_rows WHERE at < ?", (older_than,)).rowcount
        conn.execute("DELETE FROM trace_files WHERE read_at < ?", (older_than - 86400.0,))
    return int(deleted or 0)


@dataclass(frozen=True)
class TraceState:
    """An endpoint's trace files: what waits to be read, and what was read (counts since the
    state was created)."""

    endpoint: str
    backlog_files: int
    backlog_bytes: int
    files_total: int
    requests_total: int
    rejected_total: int
    problems_total: int
    at: float


def add_trace_counts(store: Store, endpoint: str, *, backlog: tuple[int, int], files: int,
                     requests: int, rejected: int, problems: int, now: float) -> None:
    """Record a pass over an endpoint's trace files: its backlog after the pass, and what it
    read added to the totals."""
    with store.write() as conn:
        row = conn.execute("SELECT * FROM trace_state WHERE endpoint = ?", (endpoint,)).fetchone()
        totals = (files, requests, rejected, problems) if row is None else (
            row["files_total"] + files, row["requests_total"] + requests,
            row["rejected_total"] + rejected, row["problems_total"] + problems)
        conn.execute("DELETE FROM trace_state WHERE endpoint = ?", (endpoint,))
        conn.execute("INSERT INTO trace_state (endpoint, backlog_files, backlog_bytes, files_total,"
                     " requests_total, rejected_total, problems_total, at)"
                     " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (endpoint, *backlog, *totals, now))


def trace_states(store: Store) -> list[TraceState]:
    with store.read() as conn:
        rows = conn.execute("SELECT * FROM trace_state ORDER BY endpoint").fetchall()
    return [TraceState(r["endpoint"], r["backlog_files"], r["backlog_bytes"], r["files_total"],
                       r["requests_total"], r["rejected_total"], r["problems_total"], r["at"])
            for r in rows]


# --- the trace settings lifecycled changed -------------------------------------------------------


@dataclass(frozen=True)
class Watch:
    """A model whose trace settings lifecycled changed on an endpoint: what it set, and what
    was there before (None: the endpoint's global settings, put back by clearing the model's)."""

    endpoint: str
    name: str
    previous: dict[str, Any] | None
    applied: dict[str, Any]
    since: float


def watches(store: Store, endpoint: str | None = None) -> list[Watch]:
    where, params = ("WHERE endpoint = ?", (endpoint,)) if endpoint is not None else ("", ())
    with store.read() as conn:
        rows = conn.execute(f"SELECT * FROM trace_watches {where} ORDER BY endpoint, name",
                            params).fetchall()
    return [Watch(r["endpoint"], r["name"],
                  json.loads(r["previous"]) if r["previous"] is not None else None,
                  json.loads(r["applied"]), r["since"]) for r in rows]


def put_watch(store: Store, watch: Watch) -> None:
    with store.write() as conn:
        conn.execute("DELETE FROM trace_watches WHERE endpoint = ? AND name = ?",
                     (watch.endpoint, watch.name))
        conn.execute("INSERT INTO trace_watches (endpoint, name, previous, applied, since)"
                     " VALUES (?, ?, ?, ?, ?)",
                     (watch.endpoint, watch.name,
                      dumps(watch.previous) if watch.previous is not None else None,
                      dumps(watch.applied), watch.since))


def drop_watch(store: Store, endpoint: str, name: str) -> None:
    with store.write() as conn:
        conn.execute("DELETE FROM trace_watches WHERE endpoint = ? AND name = ?",
                     (endpoint, name))


# --- references frozen from the traces -----------------------------------------------------------


@dataclass(frozen=True)
class Frozen:
    ref: ModelRef
    frozen_at: float
    rows: int
    origin: dict[str, Any]
    columns: Columns


def frozen_reference(store: Store, ref: ModelRef, *, with_columns: bool = True) -> Frozen | None:
    with store.read() as conn:
        row = conn.execute(
            f"SELECT frozen_at, rows, origin{', data' if with_columns else ''} FROM "
            "frozen_references WHERE name = ? AND version = ?", (ref.name, ref.version)).fetchone()
    if row is None:
        return None
    return Frozen(ref, row["frozen_at"], int(row["rows"]), json.loads(row["origin"]),
                  decode_columns(row["data"]) if with_columns else {})


def frozen_refs(store: Store) -> set[ModelRef]:
    with store.read() as conn:
        rows = conn.execute("SELECT name, version FROM frozen_references").fetchall()
    return {ModelRef(r["name"], r["version"]) for r in rows}


def freeze_reference(store: Store, ref: ModelRef, columns: Columns, origin: Mapping[str, Any], *,
                     actor: str, reason: str, now: float, replace: bool) -> bool:
    """Store ``columns`` as the reference of ``ref`` with a history row saying where they came
    from. Without ``replace``, a reference already frozen stays (False)."""
    with store.write() as conn:
        record = store.get_in(conn, ref)
        found = conn.execute("SELECT origin FROM frozen_references WHERE name = ? AND "
                             "version = ?", (ref.name, ref.version)).fetchone()
        if found is not None and not replace:
            return False
        conn.execute("DELETE FROM frozen_references WHERE name = ? AND version = ?",
                     (ref.name, ref.version))
        conn.execute("INSERT INTO frozen_references (name, version, frozen_at, rows, origin,"
                     " data) VALUES (?, ?, ?, ?, ?, ?)",
                     (ref.name, ref.version, now, _rows(columns), dumps(dict(origin)),
                      encode_columns(columns)))
        evidence = {**origin, "rows": _rows(columns),
                    **({"replaced": json.loads(found["origin"])} if found is not None else {})}
        store.append_history_in(conn, ref, HistoryKind.REFERENCE_FROZEN, record.status,
                                record.status, actor, reason, evidence, now)
    return True
