"""What the two database engines behind the store share (``sqlite.py``, ``postgres.py``), and the
thin dialect layer between them.

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

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from lifecycled.errors import StoreError, first_line

# milliseconds a statement waits for a lock another writer holds (SQLite busy, PostgreSQL lock)
BUSY_TIMEOUT_MS = 30_000


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


def newer_schema(location: str, current: int, known: int) -> StoreError:
    return StoreError(f"{location} has schema version {current}, newer than this lifecycled "
                      f"({known}); upgrade lifecycled")


def statements(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]


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

