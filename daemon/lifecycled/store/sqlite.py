"""The SQLite engine: one connection in WAL mode guarded by a lock; a write is ``BEGIN
IMMEDIATE``, which queues writers; the schema version in ``PRAGMA user_version``.
"""


from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from lifecycled.errors import StoreError
from lifecycled.store.engine import BUSY_TIMEOUT_MS, Connection, Engine, newer_schema, statements

# SQLite's primary result codes of a write the storage refused
_SQLITE_REFUSALS = frozenset({sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR})


class SQLiteEngine(Engine):
    name = "sqlite"
    now_sql = "((julianday('now') - 2440587.5) * 86400.0)"
    errors = (sqlite3.Error,)

    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = str(path)
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
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open state store {path}: {exc}") from exc

    @contextmanager
    def transaction(self, *, write: bool, queue: bool = True) -> Iterator[Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield self._conn
            except BaseException:
                # SQLite has already rolled back after some errors (SQLITE_FULL, SQLITE_IOERR): a
                # second ROLLBACK would fail with "no transaction is active" and hide the cause
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            if self._conn.in_transaction:
                self._conn.execute("COMMIT")

    @staticmethod
    def refused(exc: BaseException) -> bool:
        # the primary result code (an extended one carries it in its low byte)
        code = getattr(exc, "sqlite_errorcode", None)
        return code is not None and code & 0xFF in _SQLITE_REFUSALS

    def migrate(self, migrations: Sequence[str]) -> None:
        with self.transaction(write=True) as conn:
            current = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if current > len(migrations):
                raise newer_schema(self.location, current, len(migrations))
            for number, script in enumerate(migrations[current:], start=current + 1):
                for statement in statements(script):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")

    def schema_version(self) -> int:
        with self.transaction(write=False) as conn:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])

    def integrity_check(self) -> str:
        with self.transaction(write=False) as conn:
            return str(conn.execute("PRAGMA integrity_check").fetchone()[0])

    def tables(self) -> list[str]:
        with self.transaction(write=False) as conn:
            return [r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                " ORDER BY name")]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

