"""The state store: registry and history, and the plumbing every store module shares (one
transaction per public method, on SQLite or PostgreSQL through ``lifecycled.store.engine``)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from lifecycled.domain import (
    HistoryEntry,
    HistoryKind,
    ModelRecord,
    ModelRef,
    ModelSpec,
    Status,
    check_transition,
)
from lifecycled.errors import InputError, NotFoundError, StoreError
from lifecycled.render import finite_json
from lifecycled.store.engine import Connection, Engine, sqlite_path
from lifecycled.store.events import emit_in
from lifecycled.store.migrations import MIGRATIONS
from lifecycled.store.postgres import PostgresEngine
from lifecycled.store.sqlite import SQLiteEngine

__all__ = ["Connection", "Store", "dumps", "open_store", "sqlite_path"]


def open_engine(url: str, base_dir: Path, *, password: str | None = None,
                pool_size: int = 8, idle_in_transaction: float = 30.0) -> Engine:
    """The engine of a ``sqlite:///file`` or ``postgresql://…`` state URL. On PostgreSQL the
    server ends a transaction left idle for ``idle_in_transaction`` seconds (its client paused or
    cut off), releasing its locks."""
    scheme = url.split("://", 1)[0].lower()
    if scheme == "sqlite":
        return SQLiteEngine(sqlite_path(url, base_dir))
    if scheme in ("postgresql", "postgres"):
        return PostgresEngine(url, password=password, pool_size=pool_size,
                              idle_in_transaction=idle_in_transaction)
    raise StoreError(f"unsupported state_url scheme {scheme!r}: use sqlite:///FILE or "
                     f"postgresql://HOST/DATABASE")


def open_store(url: str, base_dir: Path, *, password: str | None = None,
               pool_size: int = 8, idle_in_transaction: float = 30.0) -> Store:
    """Open (creating and migrating if needed) the store at ``url``."""
    return Store(open_engine(url, base_dir, password=password, pool_size=pool_size,
                             idle_in_transaction=idle_in_transaction), folder=base_dir)


def dumps(value: Any) -> str:
    """Canonical JSON text for a stored value (NaN and infinities stored as null: valid JSON)."""
    try:  # most values hold no NaN: the encoder finds out faster than a walk through them
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except ValueError:
        return json.dumps(finite_json(value), sort_keys=True, separators=(",", ":"),
                          allow_nan=False)


class Fenced(StoreError):
    """A write of a fleet-wide task was refused: this replica no longer holds the leader lease."""


WRITE_FAILURE_HOLD = 120.0  # seconds a failed write keeps the store reported not writable


class StoreWrites(NamedTuple):
    writable: bool  # no write failed within WRITE_FAILURE_HOLD
    failures: int  # writes failed since start


class Store:
    """Registry, history and results; every public method is one transaction."""

    def __init__(self, engine: Engine | Path, *, folder: Path | None = None) -> None:
        self.engine = engine if isinstance(engine, Engine) else SQLiteEngine(engine)
        # the file of a SQLite store (None on PostgreSQL)
        self.path: Path | None = getattr(self.engine, "path", None)
        # where files that belong with the state live (profile caches, backups): beside a SQLite
        # file, else the state directory
        self.folder = self.path.parent if self.path is not None else (folder or Path.cwd())
        # webhook endpoint -> event types it wants; set by the app from the configuration
        self.subscriptions: Mapping[str, Sequence[str]] = {}
        self.write_failures = 0  # writes that failed since the daemon started
        # (monotonic time, cause, whether the database refused it) of the last failed write
        self._last_failure: tuple[float, str, bool] | None = None
        self.monotonic = time.monotonic
        # the check a thread's writes must pass (``fenced``)
        self._fence = threading.local()
        try:
            self.engine.migrate(MIGRATIONS)
        except self.engine.errors as exc:
            self.engine.close()
            raise StoreError(f"cannot open state store {self.location}: {exc}") from exc
        except StoreError:
            self.engine.close()
            raise

    # -- plumbing ---------------------------------------------------------------------------------

    @property
    def location(self) -> str:
        """The file or the URL (without password) of the store, for messages."""
        return self.engine.location

    @property
    def several_replicas(self) -> bool:
        """Whether several daemons may share this store (PostgreSQL) or only one (SQLite)."""
        return self.engine.several_replicas

    def close(self) -> None:
        self.engine.close()

    @contextmanager
    def fenced(self, check: Callable[[Connection], None]) -> Iterator[None]:
        """Every write this thread makes inside the block first runs ``check`` in its own
        transaction (does this replica still hold the leader lease, or its claim?); when the
        check raises ``Fenced`` the write is refused and nothing of it is kept."""
        previous = getattr(self._fence, "value", None)
        self._fence.value = check
        try:
            yield
        finally:
            self._fence.value = previous

    def unfence(self) -> None:
        """Drop this thread's fence (after a task, whatever state its loops were left in)."""
        self._fence.value = None

    @contextmanager
    def write(self, *, queue: bool = True) -> Iterator[Connection]:
        """Run the block as one write transaction (writers queue, on one machine or several; the
        leader lease's writes pass with ``queue=False`` where the engine can). A database error
        (a full disk, a read-only file, a lost server) is a StoreError naming the cause,
        remembered in ``write_error`` until a write succeeds again."""
        try:
            with self.engine.transaction(write=True, queue=queue) as conn:
                fence = getattr(self._fence, "value", None)
                if fence is not None:
                    fence(conn)
                yield conn
        except self.engine.errors as exc:
            cause = f"cannot write the state store {self.location}: {self.engine.describe(exc)}"
            self._last_failure = (self.monotonic(), cause, self.engine.refused(exc))
            self.write_failures += 1
            raise StoreError(cause) from exc
        failure = self._last_failure
        if failure is not None and not failure[2]:
            self._last_failure = None  # the database is reached again: writable at once

    @property
    def write_error(self) -> str | None:
        """The cause of the last failed write, or None. A write the database itself refused (a
        full disk, a read-only file) is held for ``WRITE_FAILURE_HOLD`` seconds, even when later
        writes succeed: on a full disk small writes (a task's run) still fit where a push does
        not, and cleared the failure at once. A database that was not reached (a stopped server)
        is writable again with the next write that succeeds."""
        failure = self._last_failure
        if failure is None or (failure[2]
                               and self.monotonic() - failure[0] >= WRITE_FAILURE_HOLD):
            return None
        return failure[1]

    def writes(self) -> StoreWrites:
        """What the daemon exports of its writes."""
        return StoreWrites(self.write_error is None, self.write_failures)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """Run the block as one read transaction (a consistent snapshot)."""
        try:
            with self.engine.transaction(write=False) as conn:
                yield conn
        except self.engine.errors as exc:
            raise StoreError(f"cannot read the state store {self.location}: "
                             f"{self.engine.describe(exc)}") from exc

    def unreachable(self, timeout: float = 1.0) -> str | None:
        """Why the store's database cannot be reached now (None: it can), within ``timeout``
        seconds: what a readiness probe asks, which must answer fast."""
        return self.engine.unreachable(timeout)

    def database_time(self) -> float:
        """The database's clock (seconds since the epoch): what leases are timed by."""
        with self.read() as conn:
            return float(conn.execute(f"SELECT {self.engine.now_sql}").fetchone()[0])

    def schema_version(self) -> int:
        try:
            return self.engine.schema_version()
        except self.engine.errors as exc:
            raise StoreError(f"cannot read the state store {self.location}: {exc}") from exc

    def integrity_check(self) -> str:
        try:
            return self.engine.integrity_check()
        except self.engine.errors as exc:
            raise StoreError(f"cannot read the state store {self.location}: {exc}") from exc

    # -- registry ---------------------------------------------------------------------------------

    def register(self, spec: ModelSpec, status: Status, *, actor: str, reason: str,
                 now: float) -> tuple[ModelRecord, HistoryKind | None]:
        """Register ``spec`` or update its metadata; return the record and what was recorded.

        A new version starts at ``status``; an existing one keeps its status and records the changed
        fields (or nothing, returning kind None, when nothing changed).
        """
        with self.write() as conn:
            kind = self.register_in(conn, spec, status, actor=actor, reason=reason, now=now)
            return self.get_in(conn, spec.ref), kind

    def register_in(self, conn: Connection, spec: ModelSpec, status: Status, *,
                    actor: str, reason: str, now: float) -> HistoryKind | None:
        """Register inside an open write transaction (for callers that add more to it)."""
        ref = spec.ref
        meta = spec.metadata()
        row = conn.execute("SELECT * FROM models WHERE name = ? AND version = ?",
                           (ref.name, ref.version)).fetchone()
        columns = {key: (dumps(v) if isinstance(v, list | dict) else v) for key, v in meta.items()}
        if row is None:
            if status == Status.RETIRED:
                raise InputError(f"cannot register {ref} as retired")
            conn.execute(
                f"INSERT INTO models (name, version, status, {', '.join(columns)}, registered_at,"
                f" last_updated, status_changed_at) VALUES (?, ?, ?, {', '.join('?' * len(columns))},"
                " ?, ?, ?)",
                (ref.name, ref.version, status.value, *columns.values(), now, now, now),
            )
            self.append_history_in(conn, ref, HistoryKind.REGISTERED, None, status, actor, reason,
                                   {"metadata": meta}, now)
            self.emit_in(conn, "model.registered", ref, {
                "status": status.value, "actor": actor, "reason": reason,
                "owner_team": spec.owner_team, "business_domain": spec.business_domain}, now)
            return HistoryKind.REGISTERED
        old = _record_from_row(row).spec.metadata()
        changed = {key: {"from": old[key], "to": meta[key]} for key in meta if old[key] != meta[key]}
        if not changed:
            return None
        conn.execute(
            f"UPDATE models SET {', '.join(f'{k} = ?' for k in columns)}, last_updated = ?"
            " WHERE name = ? AND version = ?",
            (*columns.values(), now, ref.name, ref.version),
        )
        current = Status(row["status"])
        self.append_history_in(conn, ref, HistoryKind.METADATA_UPDATED, current, current, actor,
                               reason, {"changed": changed}, now)
        return HistoryKind.METADATA_UPDATED

    def set_status(self, ref: ModelRef, target: Status, *, actor: str, reason: str,
                   evidence: Mapping[str, Any] | None = None, now: float) -> HistoryEntry:
        """Move ``ref`` to ``target`` along the lifecycle graph and record it."""
        with self.write() as conn:
            return self.set_status_in(conn, ref, target, actor=actor, reason=reason,
                                      evidence=evidence, now=now)

    def set_status_in(self, conn: Connection, ref: ModelRef, target: Status, *,
                      actor: str, reason: str, evidence: Mapping[str, Any] | None = None,
                      now: float) -> HistoryEntry:
        """Change status inside an open write transaction."""
        if not reason.strip():
            raise InputError("a status change needs a reason")
        current = self.get_in(conn, ref).status
        check_transition(str(ref), current, target)
        conn.execute(
            "UPDATE models SET status = ?, status_changed_at = ?, last_updated = ?"
            " WHERE name = ? AND version = ?",
            (target.value, now, now, ref.name, ref.version),
        )
        entry = self.append_history_in(conn, ref, HistoryKind.STATUS_CHANGED, current, target,
                                       actor, reason, dict(evidence or {}), now)
        data = {"from": current.value, "to": target.value, "actor": actor, "reason": reason,
                "evidence": dict(evidence or {})}
        self.emit_in(conn, "model.status_changed", ref, data, now)
        return entry

    def subscribers(self, event_type: str) -> list[str]:
        """The webhook endpoints that receive ``event_type`` (none: nobody hears it)."""
        return sorted(name for name, types in self.subscriptions.items() if event_type in types)

    def emit_in(self, conn: Connection, event_type: str, ref: ModelRef,
                data: Mapping[str, Any], now: float) -> str:
        """Add a webhook event about ``ref`` to the outbox inside an open transaction."""
        body = {"model": ref.name, "version": ref.version, **data,
                "links": {"model": f"/api/v1/models/{ref.name}/{ref.version}"}}
        return emit_in(conn, self.subscriptions, event_type, body, now)

    def append_history_in(self, conn: Connection, ref: ModelRef, kind: HistoryKind,
                          from_status: Status | None, to_status: Status, actor: str, reason: str,
                          evidence: Mapping[str, Any], now: float) -> HistoryEntry:
        """Append one audit row about ``ref`` inside an open transaction."""
        cursor = conn.execute(
            "INSERT INTO history (name, version, kind, from_status, to_status, actor, reason,"
            " evidence, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (ref.name, ref.version, kind.value, from_status.value if from_status else None,
             to_status.value, actor, reason, dumps(dict(evidence)), now),
        )
        return HistoryEntry(int(cursor.fetchone()[0]), ref, kind, from_status, to_status, actor,
                            reason, dict(evidence), now)

    def get(self, ref: ModelRef) -> ModelRecord:
        """Return the record of ``ref`` or raise NotFoundError naming the known versions."""
        with self.read() as conn:
            return self.get_in(conn, ref)

    def get_in(self, conn: Connection, ref: ModelRef) -> ModelRecord:
        """Return the record of ``ref`` inside an open transaction."""
        row = conn.execute("SELECT * FROM models WHERE name = ? AND version = ?",
                           (ref.name, ref.version)).fetchone()
        if row is not None:
            return _record_from_row(row)
        versions = [r[0] for r in conn.execute(
            "SELECT version FROM models WHERE name = ? ORDER BY registered_at, version",
            (ref.name,))]
        if versions:
            raise NotFoundError(f"no model {ref}; known versions: {', '.join(versions)}")
        raise NotFoundError(f"no model {ref}; no version of {ref.name} is registered")

    def list_models(self, *, status: Status | None = None, domain: str | None = None,
                    name: str | None = None) -> list[ModelRecord]:
        """Return registered versions, filtered, ordered by name then registration."""
        clauses, params = [], []
        for column, value in (("status", status.value if status else None),
                              ("business_domain", domain), ("name", name)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self.read() as conn:
            rows = conn.execute(f"SELECT * FROM models{where} ORDER BY name, registered_at, version",
                                params).fetchall()
        return [_record_from_row(row) for row in rows]

    def thresholds(self, status: Status) -> dict[ModelRef, dict[str, float]]:
        """The thresholds of every version in ``status`` (cheaper than list_models)."""
        with self.read() as conn:
            rows = conn.execute("SELECT name, version, thresholds FROM models WHERE status = ? "
                                "ORDER BY name, registered_at, version",
                                (status.value,)).fetchall()
        return {ModelRef(r[0], r[1]): json.loads(r[2]) for r in rows}

    def statuses(self) -> dict[ModelRef, Status]:
        """The status of every registered version (cheaper than list_models)."""
        with self.read() as conn:
            rows = conn.execute("SELECT name, version, status FROM models").fetchall()
        return {ModelRef(r[0], r[1]): Status(r[2]) for r in rows}

    def history(self, ref: ModelRef) -> list[HistoryEntry]:
        """Return every history row of ``ref``, oldest first."""
        with self.read() as conn:
            self.get_in(conn, ref)
            rows = conn.execute("SELECT * FROM history WHERE name = ? AND version = ? ORDER BY id",
                                (ref.name, ref.version)).fetchall()
        return [_history_from_row(row) for row in rows]

    def counts(self, column: str) -> dict[str, int]:
        """Return the number of versions per ``status`` or per ``business_domain``."""
        if column not in ("status", "business_domain"):
            raise ValueError(column)
        with self.read() as conn:
            rows = conn.execute(
                f"SELECT {column}, COUNT(*) FROM models GROUP BY {column} ORDER BY {column}"
            ).fetchall()
        return {row[0]: int(row[1]) for row in rows}

    def recently_changed(self, limit: int) -> list[ModelRecord]:
        """Return the ``limit`` versions changed most recently, newest first."""
        with self.read() as conn:
            rows = conn.execute(
                "SELECT * FROM models ORDER BY last_updated DESC, name, version LIMIT ?", (limit,)
            ).fetchall()
        return [_record_from_row(row) for row in rows]


def _record_from_row(row: Any) -> ModelRecord:
    spec = ModelSpec(
        ref=ModelRef(row["name"], row["version"]),
        owner_team=row["owner_team"],
        business_domain=row["business_domain"],
        model_type=row["model_type"],
        framework=row["framework"],
        description=row["description"],
        training_dataset=row["training_dataset"],
        tags=tuple(json.loads(row["tags"])),
        dependencies=tuple(json.loads(row["dependencies"])),
        thresholds=json.loads(row["thresholds"]),
        monitoring=json.loads(row["monitoring"]),
        deployment=json.loads(row["deployment"]),
    )
    return ModelRecord(spec, Status(row["status"]), row["registered_at"], row["last_updated"],
                       row["status_changed_at"])


def _history_from_row(row: Any) -> HistoryEntry:
    return HistoryEntry(
        id=row["id"],
        ref=ModelRef(row["name"], row["version"]),
        kind=HistoryKind(row["kind"]),
        from_status=Status(row["from_status"]) if row["from_status"] else None,
        to_status=Status(row["to_status"]),
        actor=row["actor"],
        reason=row["reason"],
        evidence=json.loads(row["evidence"]),
        at=row["at"],
    )


def newest_join(table: str) -> str:
    """``models m`` joined with the newest row ``t`` of ``table`` per model version: one lookup
    in the table's (name, version, id) index per version (results exist only for registered
    versions), where ``MAX(id) ... GROUP BY`` would read every row of the history."""
    return (f"models m JOIN {table} t ON t.id = (SELECT MAX(id) FROM {table} "
            f"WHERE name = m.name AND version = m.version)")
