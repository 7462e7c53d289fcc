"""SQLite state store: WAL, busy timeout, migrations on ``PRAGMA user_version``, short write
transactions taken with ``BEGIN IMMEDIATE`` so that concurrent writers queue instead of failing."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
from lifecycled.store.events import emit_in
from lifecycled.store.migrations import MIGRATIONS

BUSY_TIMEOUT_MS = 30_000


def sqlite_path(url: str, base_dir: Path) -> Path:
    """Return the file of a ``sqlite:///relative`` or ``sqlite:////absolute`` URL."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        scheme = url.split("://", 1)[0]
        raise StoreError(f"unsupported state_url scheme {scheme!r}: only sqlite:/// is available")
    rest = url[len(prefix):]
    if not rest:
        raise StoreError("state_url names no file")
    path = Path(rest)
    return path if path.is_absolute() else base_dir / path


def open_store(url: str, base_dir: Path) -> Store:
    """Open (creating and migrating if needed) the store at ``url``."""
    return Store(sqlite_path(url, base_dir))


def dumps(value: Any) -> str:
    """Canonical JSON text for a stored value (NaN and infinities stored as null: valid JSON)."""
    return json.dumps(finite_json(value), sort_keys=True, separators=(",", ":"), allow_nan=False)


class Store:
    """Registry, history and (later) results; every public method is one transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # webhook endpoint -> event types it wants; set by the app from the configuration
        self.subscriptions: Mapping[str, Sequence[str]] = {}
        self.write_error: str | None = None  # the last write's failure, until one succeeds
        self._lock = threading.RLock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                check_same_thread=False,
            )
            self._conn.row_factory = sqlite3.Row
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open state store {path}: {exc}") from exc

    # -- plumbing ---------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """Run the block as one immediate write transaction. A database error (a full disk, a
        read-only file) is a StoreError naming the cause, remembered in ``write_error`` until a
        write succeeds again."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._rollback()
                    raise
            except sqlite3.Error as exc:
                self.write_error = f"cannot write the state store {self.path}: {exc}"
                raise StoreError(self.write_error) from exc
            self.write_error = None

    def _rollback(self) -> None:
        # SQLite has already rolled back after some errors (SQLITE_FULL, SQLITE_IOERR): a second
        # ROLLBACK would fail with "no transaction is active" and hide the cause
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """Run the block as one read transaction (a consistent snapshot)."""
        with self._lock:
            try:
                self._conn.execute("BEGIN")
                try:
                    yield self._conn
                finally:
                    if self._conn.in_transaction:
                        self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read the state store {self.path}: {exc}") from exc

    def _migrate(self) -> None:
        with self.write() as conn:
            current = conn.execute("PRAGMA user_version").fetchone()[0]
            if current > len(MIGRATIONS):
                raise StoreError(
                    f"{self.path} has schema version {current}, newer than this lifecycled "
                    f"({len(MIGRATIONS)}); upgrade lifecycled"
                )
            for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")

    def schema_version(self) -> int:
        with self.read() as conn:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])

    def integrity_check(self) -> str:
        with self.read() as conn:
            return str(conn.execute("PRAGMA integrity_check").fetchone()[0])

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

    def register_in(self, conn: sqlite3.Connection, spec: ModelSpec, status: Status, *,
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
            self._append_history(conn, ref, HistoryKind.REGISTERED, None, status, actor, reason,
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
        self._append_history(conn, ref, HistoryKind.METADATA_UPDATED, current, current, actor,
                             reason, {"changed": changed}, now)
        return HistoryKind.METADATA_UPDATED

    def set_status(self, ref: ModelRef, target: Status, *, actor: str, reason: str,
                   evidence: Mapping[str, Any] | None = None, now: float) -> HistoryEntry:
        """Move ``ref`` to ``target`` along the lifecycle graph and record it."""
        with self.write() as conn:
            return self.set_status_in(conn, ref, target, actor=actor, reason=reason,
                                      evidence=evidence, now=now)

    def set_status_in(self, conn: sqlite3.Connection, ref: ModelRef, target: Status, *,
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
        entry = self._append_history(conn, ref, HistoryKind.STATUS_CHANGED, current, target, actor,
                                     reason, dict(evidence or {}), now)
        data = {"from": current.value, "to": target.value, "actor": actor, "reason": reason,
                "evidence": dict(evidence or {})}
        self.emit_in(conn, "model.status_changed", ref, data, now)
        return entry

    def emit_in(self, conn: sqlite3.Connection, event_type: str, ref: ModelRef,
                data: Mapping[str, Any], now: float) -> str:
        """Add a webhook event about ``ref`` to the outbox inside an open transaction."""
        body = {"model": ref.name, "version": ref.version, **data,
                "links": {"model": f"/api/v1/models/{ref.name}/{ref.version}"}}
        return emit_in(conn, self.subscriptions, event_type, body, now)

    def _append_history(self, conn: sqlite3.Connection, ref: ModelRef, kind: HistoryKind,
                        from_status: Status | None, to_status: Status, actor: str, reason: str,
                        evidence: Mapping[str, Any], now: float) -> HistoryEntry:
        cursor = conn.execute(
            "INSERT INTO history (name, version, kind, from_status, to_status, actor, reason,"
            " evidence, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (ref.name, ref.version, kind.value, from_status.value if from_status else None,
             to_status.value, actor, reason, dumps(dict(evidence)), now),
        )
        return HistoryEntry(int(cursor.lastrowid or 0), ref, kind, from_status, to_status, actor,
                            reason, dict(evidence), now)

    def get(self, ref: ModelRef) -> ModelRecord:
        """Return the record of ``ref`` or raise NotFoundError naming the known versions."""
        with self.read() as conn:
            return self.get_in(conn, ref)

    def get_in(self, conn: sqlite3.Connection, ref: ModelRef) -> ModelRecord:
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


def _record_from_row(row: sqlite3.Row) -> ModelRecord:
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


def _history_from_row(row: sqlite3.Row) -> HistoryEntry:
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
