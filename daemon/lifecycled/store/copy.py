"""Copy a whole state store to another (SQLite to PostgreSQL, or back): every table, in one
transaction on the target, then verified table by table (row counts and a checksum of the rows).

Row ids are kept, so history, results and outbox keep their order and their links; SQLite's
implicit ``rowid`` becomes PostgreSQL's explicit one and back. The checksum is order-free (the
sum of each row's SHA-256), so it streams in bounded memory and does not depend on the order
each engine returns rows in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from lifecycled.errors import InputError, StoreError
from lifecycled.store.core import Connection, Store

BATCH = 2000
_MOD = 2**256
SKIP = frozenset({"schema_version"})  # kept by each engine itself


@dataclass(frozen=True)
class TableCopy:
    table: str
    rows: int
    checksum: str

    def to_json(self) -> dict[str, Any]:
        return {"table": self.table, "rows": self.rows, "checksum": self.checksum}


def _normal(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value


class _Sum:
    def __init__(self) -> None:
        self.total = 0
        self.rows = 0

    def add(self, columns: list[str], row: Any) -> None:
        text = json.dumps([_normal(row[c]) for c in columns], separators=(",", ":"))
        self.total = (self.total + int.from_bytes(hashlib.sha256(text.encode()).digest(), "big")) % _MOD
        self.rows += 1

    @property
    def hex(self) -> str:
        return f"{self.total:064x}"


def _columns(store: Store, conn: Connection, table: str) -> list[str]:
    """The table's own columns (without the engine's ``rowid``), in a fixed order."""
    if store.path is not None:  # SQLite
        names = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
    else:
        names = [r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = "
            "current_schema() AND table_name = ? ORDER BY ordinal_position", (table,))]
    return sorted(n for n in names if n != "rowid")


def _rows(store: Store, conn: Connection, table: str) -> Iterator[Any]:
    select = (f"SELECT rowid AS rowid, * FROM {table}" if store.path is not None
              else f"SELECT * FROM {table}")
    cursor = conn.execute(select + " ORDER BY rowid")
    while True:
        batch = cursor.fetchmany(BATCH)
        if not batch:
            return
        yield from batch


def tables(store: Store) -> list[str]:
    return [t for t in store.engine.tables() if t not in SKIP]


def _check_empty(target: Store, names: Iterable[str]) -> None:
    with target.read() as conn:
        for table in names:
            if table == "leases":
                continue  # seeded by the migrations
            if conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is not None:
                raise InputError(f"the target {target.location} already holds state (table "
                                 f"{table} has rows): migrate into a new, empty database")


def checksums(store: Store) -> list[TableCopy]:
    """Rows and checksum of each table."""
    found = []
    names = tables(store)
    with store.read() as conn:
        for table in names:
            columns = _columns(store, conn, table)
            total = _Sum()
            for row in _rows(store, conn, table):
                total.add(columns, row)
            found.append(TableCopy(table, total.rows, total.hex))
    return found


def copy_store(source: Store, target: Store) -> list[TableCopy]:
    """Copy every table of ``source`` into the empty ``target`` and verify it; return what was
    copied. StoreError if the verification finds any difference (the target then holds a copy
    that must not be used; nothing in the source changes)."""
    if source.schema_version() != target.schema_version():
        raise StoreError(f"schema versions differ: {source.location} is at "
                         f"{source.schema_version()}, {target.location} at "
                         f"{target.schema_version()}; open both with this lifecycled first")
    names = tables(source)
    missing = sorted(set(names) - set(tables(target)))
    if missing:
        raise StoreError(f"the target lacks tables {', '.join(missing)}")
    _check_empty(target, names)
    copied = []
    with source.read() as read, target.write() as write:
        for table in names:
            columns = _columns(source, read, table)
            keep_rowid = "id" not in columns  # an id column is SQLite's rowid already
            insert = [*columns, "rowid"] if keep_rowid else columns
            statement = (f"INSERT INTO {table} ({', '.join(insert)}) VALUES "
                         f"({', '.join('?' * len(insert))})")
            if table == "leases":
                write.execute("DELETE FROM leases")
            total = _Sum()
            batch: list[list[Any]] = []
            for row in _rows(source, read, table):
                total.add(columns, row)
                batch.append([row[c] for c in insert])
                if len(batch) >= BATCH:
                    write.executemany(statement, batch)
                    batch = []
            if batch:
                write.executemany(statement, batch)
            target.engine.after_copy(write, table, ["id", "rowid"] if not keep_rowid
                                     else ["rowid"])
            copied.append(TableCopy(table, total.rows, total.hex))
    verified = {c.table: c for c in checksums(target)}
    for expected in copied:
        got = verified.get(expected.table)
        if got != expected:
            raise StoreError(f"verification failed for table {expected.table}: copied "
                             f"{expected.rows} rows (checksum {expected.checksum[:12]}), target "
                             f"has {got.rows if got else 0} (checksum "
                             f"{got.checksum[:12] if got else '-'})")
    return copied
