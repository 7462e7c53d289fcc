"""The two database engines behind the store, and the thin dialect layer between them.

The store's SQL is written once, in the dialect both engines share (``?`` placeholders, upserts
with ``ON CONFLICT``, ``RETURNING``, window functions). What differs lives here:

- connections: SQLite is one connection in WAL mode guarded by a lock; PostgreSQL is a pool of
  psycopg 3 connections with client-side parameter binding and no prepared statements
  (``prepare_threshold=None``), so a transaction-mode PgBouncer in between works;
- transactions: a SQLite write is ``BEGIN IMMEDIATE``, which queues writers; a PostgreSQL write
  takes a transaction-level advisory lock, which queues them the same way across replicas, so
  every read-modify-write of the store stays as correct on several machines as on one;
- schema: the migrations are written for SQLite and translated for PostgreSQL (``REAL`` is
  ``DOUBLE PRECISION``, ``INTEGER`` is ``BIGINT``, autoincrement is an identity column, and every
  table gets an explicit ``rowid`` column standing for SQLite's implicit one); the version is kept
  in ``PRAGMA user_version`` on SQLite and in a ``schema_version`` table on PostgreSQL, and
  concurrent first starts on PostgreSQL migrate once under an advisory lock;
- the database clock (leases are timed by the database, not by each machine's clock) and the row
  locking clause of a claim (``FOR UPDATE … SKIP LOCKED``; nothing on SQLite, whose writers are
  already serialised).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from lifecycled.errors import StoreError, first_line

BUSY_TIMEOUT_MS = 30_000
# seconds a failing PostgreSQL connection is retried before its pool slot is freed
RECONNECT_GIVE_UP = 2.0
# SQLite's primary result codes of a write the storage refused
_SQLITE_REFUSALS = frozenset({sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR})
# pg_advisory_xact_lock keys (any two bigints unlikely to collide with an operator's own)
WRITE_LOCK_KEY = 0x6C6966656379
MIGRATE_LOCK_KEY = 0x6C6966656370


class Connection(Protocol):
    """What the store's SQL runs on: ``execute`` and ``executemany`` with ``?`` placeholders,
    returning a cursor (``fetchone``, ``fetchall``, iteration, ``rowcount``) whose rows are read
    by position or by column name."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> Any: ...


def redact(url: str) -> str:
    """The URL without a password (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


class Engine:
    """One database: how to connect, begin, migrate and tell the time."""

    name = ""
    location = ""  # what messages call it (a file, or a URL without password)
    now_sql = ""  # the database's clock in seconds since the epoch
    errors: tuple[type[BaseException], ...] = ()
    several_replicas = False

    share_rows = ""  # what a read ends with to hold its rows until commit (SQLite: nothing)

    @contextmanager
    def transaction(self, *, write: bool, queue: bool = True) -> Iterator[Connection]:
        """A transaction; a write with ``queue=False`` does not wait behind the other writers
        (where the engine can tell them apart: it then relies on its row locks alone)."""
        raise NotImplementedError
        yield  # pragma: no cover

    def after_copy(self, conn: Connection, table: str, columns: Sequence[str]) -> None:
        """After rows were copied in with their ids: make new rows continue after them."""

    def describe(self, exc: BaseException) -> str:
        """One line saying what went wrong (the cause, not the pool's wait for it)."""
        return first_line(exc)

    @staticmethod
    def refused(exc: BaseException) -> bool:
        """Whether the storage refused the write (a full disk, a read-only file, an I/O error),
        which small writes may still get past, rather than something that passes by itself: a
        stopped server, no free connection, a lock held too long."""
        raise NotImplementedError

    def unreachable(self, timeout: float) -> str | None:
        """Why the database cannot be reached within ``timeout`` seconds, or None when it can
        (a file always can: its errors show when it is used)."""
        return None

    def lock_rows(self, table: str) -> str:
        """The clause a claim's SELECT ends with: lock the rows of ``table`` it returns, skipping
        rows another transaction holds (nothing on SQLite, whose writers are serialised)."""
        return ""

    def migrate(self, migrations: Sequence[str]) -> None:
        raise NotImplementedError

    def schema_version(self) -> int:
        raise NotImplementedError

    def integrity_check(self) -> str:
        raise NotImplementedError

    def tables(self) -> list[str]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def _newer(location: str, current: int, known: int) -> StoreError:
    return StoreError(f"{location} has schema version {current}, newer than this lifecycled "
                      f"({known}); upgrade lifecycled")


def statements(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]


# --- SQLite ---------------------------------------------------------------------------------------


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
                raise _newer(self.location, current, len(migrations))
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


# --- PostgreSQL -----------------------------------------------------------------------------------


class Row(tuple[Any, ...]):
    """A result row read by position or by column name (as ``Any``)."""

    names: dict[str, int]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self.names[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self.names)


@functools.lru_cache(maxsize=512)
def _row_type(names: tuple[str, ...]) -> Callable[[Sequence[Any]], Row]:
    return type("Row", (Row,), {"names": {n: i for i, n in enumerate(names)}, "__slots__": ()})


def _row_factory(cursor: Any) -> Callable[[Sequence[Any]], Row]:
    return _row_type(tuple(column.name for column in cursor.description or ()))


_QUOTED_OR_MARK = re.compile(r"'(?:[^']|'')*'|\?|%")


def to_pyformat(sql: str) -> str:
    """``?`` placeholders (outside quotes) as psycopg's ``%s``, and every literal ``%`` doubled
    (psycopg reads ``%`` even inside quotes)."""
    def swap(match: re.Match[str]) -> str:
        text = match.group(0)
        return "%s" if text == "?" else text.replace("%", "%%")
    return _QUOTED_OR_MARK.sub(swap, sql)


def _value(value: Any) -> Any:
    # SQLite stores booleans as integers: so do we, in BIGINT columns
    return int(value) if isinstance(value, bool) else value


_translate = functools.lru_cache(maxsize=2048)(lambda sql: to_pyformat(sql))


class PgConnection:
    """A psycopg connection speaking the store's dialect."""

    def __init__(self, conn: Any) -> None:
        self.raw = conn

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Any:
        cursor = self.raw.cursor()
        cursor.execute(_translate(sql), [_value(v) for v in parameters])
        return cursor

    def executemany(self, sql: str, seq_of_parameters: Iterable[Sequence[Any]], /) -> Any:
        cursor = self.raw.cursor()
        rows = [[_value(v) for v in row] for row in seq_of_parameters]
        if rows:
            cursor.executemany(_translate(sql), rows)
        return cursor


_TYPE_WORDS = (
    (re.compile(r"\bINTEGER PRIMARY KEY AUTOINCREMENT\b"),
     "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
)
_CREATE_TABLE = re.compile(r"^\s*CREATE TABLE\s+(\w+)\s*\(", re.IGNORECASE)


def postgres_ddl(statement: str) -> str:
    """A migration statement written for SQLite, in PostgreSQL's words."""
    for pattern, replacement in _TYPE_WORDS:
        statement = pattern.sub(replacement, statement)
    if _CREATE_TABLE.match(statement):
        head, _, tail = statement.rstrip().rpartition(")")
        statement = f"{head.rstrip()},\n    rowid BIGINT GENERATED BY DEFAULT AS IDENTITY\n){tail}"
    return statement


class PostgresEngine(Engine):
    name = "postgresql"
    now_sql = "(EXTRACT(EPOCH FROM clock_timestamp())::DOUBLE PRECISION)"
    several_replicas = True
    share_rows = " FOR SHARE"

    def lock_rows(self, table: str) -> str:
        return f" FOR UPDATE OF {table} SKIP LOCKED"

    def after_copy(self, conn: Connection, table: str, columns: Sequence[str]) -> None:
        for column in columns:
            sequence = conn.execute("SELECT pg_get_serial_sequence(?, ?)",
                                    (table, column)).fetchone()[0]
            if sequence:
                conn.execute(f"SELECT setval(?, (SELECT COALESCE(MAX({column}), 0) + 1 FROM "
                             f"{table}), false)", (sequence,))

    def __init__(self, url: str, *, password: str | None = None, pool_size: int = 8,
                 connect_timeout: float = 10.0, idle_in_transaction: float = 30.0) -> None:
        import psycopg
        import psycopg_pool

        self.errors = (psycopg.Error, psycopg_pool.PoolTimeout)
        self.location = redact(url)
        idle = f"SET LOCAL idle_in_transaction_session_timeout = {int(idle_in_transaction * 1000)}"
        self._begin_read = f"BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; {idle}"
        # writers queue on one advisory lock, as SQLite's on its file lock; the lease's own
        # writes do not (a replica paused inside a write must not hold up a takeover)
        self._begin_unqueued = f"BEGIN; {idle}; SET LOCAL lock_timeout = {BUSY_TIMEOUT_MS}"
        self._begin_write = (f"{self._begin_unqueued}; "
                             f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")
        kwargs: dict[str, Any] = {"autocommit": True, "prepare_threshold": None,
                                  "cursor_factory": psycopg.ClientCursor,
                                  "row_factory": _row_factory,
                                  "connect_timeout": max(1, int(connect_timeout))}
        if password is not None:
            kwargs["password"] = password
        self._url, self._kwargs, self._connect_timeout = url, kwargs, connect_timeout
        # the pool's own reconnection warnings span lines and repeat; the store reports the
        # cause once per failed call instead (``describe``)
        logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
        problem = self._cannot_connect(connect_timeout)  # a refused password says so at once
        if problem is not None:
            raise StoreError(f"cannot connect to the state store {self.location}: {problem}")
        # a connection that cannot be made is retried with a doubling delay (1, 2, 4 ... s) until
        # ``reconnect_timeout``; after an outage of 30 s the next try would come up to 30 s after
        # the database is back, with every slot waiting on one. Give a try up after two seconds
        # instead: the slot is freed and the next caller asks for a fresh connection at once.
        self._pool = psycopg_pool.ConnectionPool(
            url, kwargs=kwargs, min_size=1, max_size=max(1, pool_size), open=False,
            timeout=connect_timeout, name="lifecycled", reconnect_timeout=RECONNECT_GIVE_UP)
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            self._pool.close()
            raise StoreError(f"cannot connect to the state store {self.location}: "
                             f"{first_line(exc)}") from exc

    @contextmanager
    def transaction(self, *, write: bool, queue: bool = True) -> Iterator[Connection]:
        begin = ((self._begin_write if queue else self._begin_unqueued) if write
                 else self._begin_read)
        with self._pool.connection() as raw:
            conn = PgConnection(raw)
            # one round trip (the simple query protocol takes several statements at once)
            raw.execute(begin)
            try:
                yield conn
            except BaseException:
                self._rollback(raw)
                raise
            raw.execute("COMMIT")

    def describe(self, exc: BaseException) -> str:
        import psycopg_pool

        if not isinstance(exc, psycopg_pool.PoolTimeout):
            return first_line(exc)
        # no connection came in time: say why a fresh one cannot be made (a stopped server, a
        # refused password), else that every connection is busy
        return self._cannot_connect(self._connect_timeout) or (
            f"all {self._pool.max_size} connections busy: {first_line(exc)}")

    @staticmethod
    def refused(exc: BaseException) -> bool:
        # insufficient resources (53: disk full, out of memory), system errors (58: I/O) and a
        # read-only server (25006); not a lost connection (no SQLSTATE), a server shutting down
        # (57P01) or a lock timeout (55P03), which pass when the server is back or free
        state = getattr(exc, "sqlstate", None) or ""
        return state[:2] in ("53", "58") or state == "25006"

    def unreachable(self, timeout: float) -> str | None:
        try:  # a pooled connection answers in a round trip; a new one costs a server process
            with self._pool.connection(timeout=timeout) as raw:
                raw.execute("SELECT 1")
            return None
        except self.errors:
            return self._cannot_connect(timeout)

    def _cannot_connect(self, timeout: float) -> str | None:
        import psycopg

        try:
            psycopg.connect(self._url, **{**self._kwargs,
                                          "connect_timeout": max(1, int(timeout))}).close()
        except psycopg.Error as exc:
            return first_line(exc)
        return None

    def _rollback(self, raw: Any) -> None:
        # a lost server fails the ROLLBACK too: the cause is the first error, not this one (the
        # pool drops the broken connection)
        if raw.closed:
            return
        with contextlib.suppress(*self.errors):
            raw.execute("ROLLBACK")

    def migrate(self, migrations: Sequence[str]) -> None:
        with self._pool.connection() as raw:
            raw.execute("BEGIN")
            try:
                raw.execute(f"SELECT pg_advisory_xact_lock({MIGRATE_LOCK_KEY})")
                raw.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
                row = raw.execute("SELECT MAX(version) FROM schema_version").fetchone()
                current = int(row[0] or 0) if row else 0
                if current > len(migrations):
                    raise _newer(self.location, current, len(migrations))
                for number, script in enumerate(migrations[current:], start=current + 1):
                    for statement in statements(script):
                        raw.execute(postgres_ddl(statement))
                    raw.execute("DELETE FROM schema_version")
                    raw.execute("INSERT INTO schema_version (version) VALUES (%s)", [number])
            except BaseException:
                self._rollback(raw)
                raise
            raw.execute("COMMIT")

    def schema_version(self) -> int:
        with self.transaction(write=False) as conn:
            return int(conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0)

    def integrity_check(self) -> str:
        # PostgreSQL checks its pages itself; what can be checked from here is that every table
        # of the schema answers
        with self.transaction(write=False) as conn:
            for table in self.tables():
                conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchall()
        return "ok"

    def tables(self) -> list[str]:
        with self.transaction(write=False) as conn:
            return [r[0] for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = "
                "current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name")]

    def close(self) -> None:
        self._pool.close()


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


def sqlite_path(url: str, base_dir: Path) -> Path:
    """Return the file of a ``sqlite:///relative`` or ``sqlite:////absolute`` URL."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        scheme = url.split("://", 1)[0]
        raise StoreError(f"unsupported state_url scheme {scheme!r} for a file: use sqlite:///FILE")
    rest = url[len(prefix):]
    if not rest:
        raise StoreError("state_url names no file")
    path = Path(rest)
    return path if path.is_absolute() else base_dir / path


def is_sqlite(url: str) -> bool:
    return url.split("://", 1)[0].lower() == "sqlite"
