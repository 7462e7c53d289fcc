"""Serving state per endpoint, the last scrape per endpoint, snapshots, source health, job runs."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lifecycled.domain import ModelRef
from lifecycled.store.core import Connection, Store, dumps, newest_join

SNAPSHOT_FIELDS = (
    "interval_seconds", "requests_per_second", "inferences_per_second", "error_ratio",
    "latency_mean_seconds", "latency_p50_seconds", "latency_p95_seconds", "latency_p99_seconds",
    "queue_mean_seconds", "pending_requests", "memory_bytes",
    "accuracy", "precision_ratio", "recall_ratio", "f1_ratio", "roc_auc",
    "mae", "rmse", "mape_ratio", "r_squared", "mean_error",
)


@dataclass(frozen=True)
class ServingState:
    ref: ModelRef
    endpoint: str
    state: str  # ready, loading, unloading, unavailable, missing
    reason: str
    since: float
    updated_at: float
    unavailable_passes: int

    def to_json(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "state": self.state, "reason": self.reason,
                "since": self.since, "updated_at": self.updated_at,
                "unavailable_passes": self.unavailable_passes}


@dataclass(frozen=True)
class Snapshot:
    id: int
    ref: ModelRef
    at: float
    values: Mapping[str, float | None]
    detail: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.ref.name, "version": self.ref.version, "at": self.at,
                **self.values, "detail": dict(self.detail)}


@dataclass(frozen=True)
class SourceHealth:
    source: str
    up: bool
    last_attempt: float
    last_success: float | None
    last_error: str


@dataclass(frozen=True)
class JobRun:
    job: str
    runs: int
    failures: int
    last_start: float | None
    last_success: float | None
    last_duration: float | None
    last_error: str


# --- serving state ------------------------------------------------------------------------------


def serving_states(store: Store, ref: ModelRef | None = None, *,
                   states: Iterable[str] | None = None) -> list[ServingState]:
    """The last observed state of ``ref`` (else of every version) on each endpoint, only those
    in ``states`` if given."""
    clauses, params = ([], []) if ref is None else (["name = ?", "version = ?"],
                                                    [ref.name, ref.version])
    if states is not None:
        wanted = sorted(states)
        clauses.append(f"state IN ({', '.join('?' * len(wanted))})")
        params += wanted
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    with store.read() as conn:
        rows = conn.execute(f"SELECT * FROM serving_state {where} ORDER BY name, version, endpoint",
                            params).fetchall()
    return [_state(row) for row in rows]


def _state(row: Any) -> ServingState:
    return ServingState(ModelRef(row["name"], row["version"]), row["endpoint"], row["state"],
                        row["reason"], row["since"], row["updated_at"], row["unavailable_passes"])


def put_serving_state(conn: Connection, ref: ModelRef, endpoint: str, state: str,
                      reason: str, now: float) -> tuple[str | None, int]:
    """Record one observation; return the previous state and the consecutive unavailable passes."""
    return put_serving_states(conn, endpoint, {ref: (state, reason)}, now)[ref]


def put_serving_states(conn: Connection, endpoint: str,
                       observed: Mapping[ModelRef, tuple[str, str]], now: float
                       ) -> dict[ModelRef, tuple[str | None, int]]:
    """Record a pass's observations of ``endpoint`` (state and reason per version) in three
    statements; return each version's previous state and its consecutive unavailable passes."""
    rows = conn.execute("SELECT name, version, state, unavailable_passes FROM serving_state "
                        "WHERE endpoint = ?", (endpoint,)).fetchall()
    known = {(r[0], r[1]): (r[2], int(r[3])) for r in rows}
    found: dict[ModelRef, tuple[str | None, int]] = {}
    inserts, updates = [], []
    for ref, (state, reason) in observed.items():
        previous, before = known.get((ref.name, ref.version), (None, 0))
        passes = before + 1 if state == "unavailable" else 0
        found[ref] = (previous, passes)
        if (ref.name, ref.version) not in known:
            inserts.append((ref.name, ref.version, endpoint, state, reason, now, now, passes))
        else:
            updates.append((state, reason, now, passes, state, now, ref.name, ref.version,
                            endpoint))
    if inserts:
        conn.executemany("INSERT INTO serving_state VALUES (?, ?, ?, ?, ?, ?, ?, ?)", inserts)
    if updates:  # "since" moves only when the state changed
        conn.executemany("UPDATE serving_state SET state = ?, reason = ?, updated_at = ?, "
                         "unavailable_passes = ?, since = CASE WHEN state = ? THEN since "
                         "ELSE ? END WHERE name = ? AND version = ? AND endpoint = ?", updates)
    return found


# --- scrapes ------------------------------------------------------------------------------------


def last_scrape(store: Store, endpoint: str) -> tuple[float, Any] | None:
    return last_scrapes(store, [endpoint]).get(endpoint)


def last_scrapes(store: Store, endpoints: Iterable[str]) -> dict[str, tuple[float, Any]]:
    """``last_scrape`` of each of ``endpoints`` that has one, in one read."""
    return {row[0]: (row[1], json.loads(row[2]))
            for row in _scrape_rows(store, endpoints, "endpoint, at, payload")}


def host_gauges(store: Store) -> dict[str, tuple[float, float | None, float | None]]:
    """Each Triton endpoint's host-wide CPU utilisation (0-1) and used memory (bytes) from its
    last stored scrape: {endpoint: (at, cpu, memory)}, None where Triton did not report it."""
    with store.read() as conn:
        rows = conn.execute("SELECT endpoint, at, payload FROM scrapes").fetchall()
    out = {}
    for endpoint, at, payload in rows:
        data = json.loads(payload)
        if isinstance(data, dict):
            out[endpoint] = (at, data.get("cpu_utilization"), data.get("memory_used_bytes"))
    return out


def scrape_times(store: Store, endpoints: Iterable[str]) -> dict[str, float]:
    """When each of ``endpoints`` was last scraped (as stored), without reading the scrapes."""
    return {row[0]: row[1] for row in _scrape_rows(store, endpoints, "endpoint, at")}


def _scrape_rows(store: Store, endpoints: Iterable[str], columns: str) -> list[Any]:
    names = list(endpoints)
    if not names:
        return []
    with store.read() as conn:
        return list(conn.execute(f"SELECT {columns} FROM scrapes WHERE endpoint IN "
                                 f"({', '.join('?' * len(names))})", names).fetchall())


def put_scrape(conn: Connection, endpoint: str, at: float, payload: Any) -> None:
    conn.execute("INSERT INTO scrapes (endpoint, at, payload) VALUES (?, ?, ?) ON CONFLICT(endpoint)"
                 " DO UPDATE SET at = excluded.at, payload = excluded.payload",
                 (endpoint, at, dumps(payload)))


# --- snapshots ----------------------------------------------------------------------------------


def add_snapshot(conn: Connection, ref: ModelRef, at: float,
                 values: Mapping[str, float | None], detail: Mapping[str, Any]) -> int:
    """Append a snapshot; its values are stored as ``stored_values`` gives them."""
    unknown = set(values) - set(SNAPSHOT_FIELDS)
    if unknown:
        raise ValueError(f"unknown snapshot fields: {sorted(unknown)}")
    columns = ["name", "version", "at", *values, "detail"]
    stored = stored_values(values)
    cursor = conn.execute(
        f"INSERT INTO snapshots ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
        "RETURNING id", (ref.name, ref.version, at, *(stored[c] for c in values),
                         dumps(dict(detail))))
    return int(cursor.fetchone()[0])


def stored_values(values: Mapping[str, float | None]) -> dict[str, float | None]:
    """A snapshot's values as the store keeps them and reads them back, on either engine: every
    field, a float or None (not measured; a NaN too, which SQLite cannot keep)."""
    return {f: None if (v := values.get(f)) is None or v != v else float(v)
            for f in SNAPSHOT_FIELDS}


def _snapshot(row: Any) -> Snapshot:
    return Snapshot(row["id"], ModelRef(row["name"], row["version"]), row["at"],
                    {f: row[f] for f in SNAPSHOT_FIELDS}, json.loads(row["detail"]))


def snapshots(store: Store, ref: ModelRef, *, limit: int | None = None,
              since: float | None = None) -> list[Snapshot]:
    """Snapshots of ``ref``, newest first."""
    sql = "SELECT * FROM snapshots WHERE name = ? AND version = ?"
    params: list[Any] = [ref.name, ref.version]
    if since is not None:
        sql += " AND at >= ?"
        params.append(since)
    sql += " ORDER BY id DESC"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    with store.read() as conn:
        return [_snapshot(row) for row in conn.execute(sql, params).fetchall()]


def latest_snapshots(store: Store) -> dict[ModelRef, Snapshot]:
    """The newest snapshot of every model version."""
    with store.read() as conn:
        rows = conn.execute(f"SELECT t.* FROM {newest_join('snapshots')}").fetchall()
    return {snap.ref: snap for snap in map(_snapshot, rows)}


def prune_snapshots(store: Store, *, older_than: float, keep: int) -> int:
    """Delete snapshots, and evaluations (one per snapshot since collect evaluates), older than
    ``older_than`` and beyond the newest ``keep`` per version; return the snapshots deleted."""
    deleted = 0
    with store.write() as conn:
        for table in ("snapshots", "evaluations"):
            aged = conn.execute(f"DELETE FROM {table} WHERE at < ?", (older_than,)).rowcount
            excess = conn.execute(
                f"DELETE FROM {table} WHERE id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER "
                f"(PARTITION BY name, version ORDER BY id DESC) AS n FROM {table}) AS ranked WHERE n > ?)",
                (keep,)).rowcount
            if table == "snapshots":
                deleted = aged + excess
    return int(deleted)


# --- sources and jobs ---------------------------------------------------------------------------


def record_source(conn: Connection, source: str, *, ok: bool, now: float,
                  error: str = "") -> None:
    conn.execute(
        "INSERT INTO sources (source, up, last_attempt, last_success, last_error) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT(source) DO UPDATE SET up = excluded.up, "
        "last_attempt = excluded.last_attempt, last_error = excluded.last_error, "
        "last_success = COALESCE(excluded.last_success, sources.last_success)",
        (source, int(ok), now, now if ok else None, "" if ok else error))


def source_health(store: Store) -> list[SourceHealth]:
    with store.read() as conn:
        rows = conn.execute("SELECT * FROM sources ORDER BY source").fetchall()
    return [SourceHealth(r["source"], bool(r["up"]), r["last_attempt"], r["last_success"],
                         r["last_error"]) for r in rows]


def record_job_run(store: Store, job: str, *, started: float, duration: float,
                   error: str | None) -> None:
    """Count one run of ``job`` (a failure when ``error`` is given)."""
    ok = error is None
    with store.write() as conn:
        conn.execute(
            "INSERT INTO job_runs (job, runs, failures, last_start, last_success, last_duration, "
            "last_error) VALUES (?, 1, ?, ?, ?, ?, ?) ON CONFLICT(job) DO UPDATE SET "
            "runs = job_runs.runs + 1, failures = job_runs.failures + excluded.failures, "
            "last_start = excluded.last_start, last_duration = excluded.last_duration, "
            "last_success = COALESCE(excluded.last_success, job_runs.last_success), "
            "last_error = excluded.last_error",
            (job, 0 if ok else 1, started, started + duration if ok else None, duration,
             error or ""))


def job_runs(store: Store) -> list[JobRun]:
    with store.read() as conn:
        rows = conn.execute("SELECT * FROM job_runs ORDER BY job").fetchall()
    return [JobRun(r["job"], r["runs"], r["failures"], r["last_start"], r["last_success"],
                   r["last_duration"], r["last_error"]) for r in rows]


@dataclass(frozen=True)
class Unmanaged:
    """A model Triton serves under a name or version the registry cannot hold."""

    endpoint: str
    name: str
    version: str
    reason: str
    first_seen: float


def put_unmanaged(conn: Connection, endpoint: str,
                  found: Iterable[tuple[str, str, str]], now: float
                  ) -> list[tuple[str, str, str]]:
    """Replace ``endpoint``'s unmanaged models with ``found`` (name, version, reason); return
    those not seen there before."""
    found = list(found)
    before = {(r["name"], r["version"]) for r in conn.execute(
        "SELECT name, version FROM unmanaged_models WHERE endpoint = ?", (endpoint,))}
    gone = before - {(name, version) for name, version, _ in found}
    conn.executemany("DELETE FROM unmanaged_models WHERE endpoint = ? AND name = ? AND version = ?",
                     [(endpoint, name, version) for name, version in gone])
    conn.executemany(  # first_seen stays that of the first pass that saw it
        "INSERT INTO unmanaged_models (endpoint, name, version, reason, first_seen) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (endpoint, name, version) "
        "DO UPDATE SET reason = excluded.reason",
        [(endpoint, name, version, reason, now) for name, version, reason in found])
    return [item for item in found if item[:2] not in before]


def unmanaged_models(store: Store) -> list[Unmanaged]:
    with store.read() as conn:
        rows = conn.execute("SELECT endpoint, name, version, reason, first_seen "
                            "FROM unmanaged_models ORDER BY endpoint, name, version").fetchall()
    return [Unmanaged(r["endpoint"], r["name"], r["version"], r["reason"], r["first_seen"])
            for r in rows]


def forget_endpoints(conn: Connection, keep: Iterable[str]) -> int:
    """Drop what is kept of Triton endpoints no longer configured: their serving states (which
    feed mismatch checks and metrics), their last scrape and their source health. Returns the
    number of serving-state rows dropped."""
    names = list(keep)
    marks = ", ".join("?" * len(names)) or "''"
    dropped = conn.execute(f"DELETE FROM serving_state WHERE endpoint NOT IN ({marks})",
                           names).rowcount
    conn.execute(f"DELETE FROM scrapes WHERE endpoint NOT IN ({marks})", names)
    conn.execute(f"DELETE FROM unmanaged_models WHERE endpoint NOT IN ({marks})", names)
    conn.execute(f"DELETE FROM sources WHERE source LIKE 'triton:%' AND source NOT IN ({marks})",
                 [f"triton:{name}" for name in names])
    return int(dropped)
