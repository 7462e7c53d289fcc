"""A full disk under the state store: one line naming the cause, the daemon keeps running and says
so in /readyz and a metric, and the next write after space returns succeeds.

The disk is made full for one connection with SQLite's own ``PRAGMA max_page_count`` (a cap on
the file's size): the errors are SQLite's real SQLITE_FULL, without filling a real disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lifecycled.cli import main
from lifecycled.context import Context
from lifecycled.domain import ModelRef, ModelSpec, Status
from lifecycled.errors import StoreError
from lifecycled.exporter import LifecycleCollector
from lifecycled.scheduler import Runtime
from lifecycled.settings import Settings
from lifecycled.store import Store, open_store
from lifecycled.store.core import WRITE_FAILURE_HOLD
from prometheus_client import CollectorRegistry, generate_latest

BIG = "x" * 200_000  # more than the free pages of a fresh store


def spec(name: str, description: str = "") -> ModelSpec:
    return ModelSpec(ref=ModelRef(name, "1"), owner_team="t", business_domain="d",
                     description=description)


def fill_up(store: Store) -> None:
    with store.read() as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    store.engine._conn.execute(f"PRAGMA max_page_count = {pages}")


def test_a_full_disk_is_one_line_naming_the_cause_and_visible(tmp_path: Path) -> None:
    store = open_store("sqlite:///state.db", tmp_path)
    store.register(spec("before"), Status.PRODUCTION, actor="t", reason="r", now=1.0)
    fill_up(store)
    with pytest.raises(StoreError) as info:
        store.register(spec("after", BIG), Status.PRODUCTION, actor="t", reason="r", now=2.0)
    message = str(info.value)
    assert "database or disk is full" in message and "cannot rollback" not in message
    assert "\n" not in message
    assert [r.ref.name for r in store.list_models()] == ["before"]  # nothing half-written

    runtime = Runtime(Context(Settings(), store), jobs={})
    ok, detail = runtime.readiness()
    assert not ok and "database or disk is full" in detail["store"]
    registry = CollectorRegistry()
    registry.register(LifecycleCollector(store, store_writes=store.writes))
    assert b"lifecycled_state_store_writable 0.0" in generate_latest(registry)
    assert b"lifecycled_state_store_write_failures_total 1.0" in generate_latest(registry)

    # a small write still fits: it used to clear the failure at once, so /readyz said ok and
    # the gauge 1 while every push failed
    store.register(spec("small"), Status.PRODUCTION, actor="t", reason="r", now=2.5)
    assert not runtime.readiness()[0]
    assert b"lifecycled_state_store_writable 0.0" in generate_latest(registry)

    store.engine._conn.execute("PRAGMA max_page_count = 1073741823")  # space again
    store.register(spec("after", BIG), Status.PRODUCTION, actor="t", reason="r", now=3.0)
    assert store.write_error is not None  # held for WRITE_FAILURE_HOLD after the failure
    later = store.monotonic() + WRITE_FAILURE_HOLD
    store.monotonic = lambda: later
    assert store.write_error is None and runtime.readiness()[1]["store"] == "ok"
    assert b"lifecycled_state_store_writable 1.0" in generate_latest(registry)
    assert b"lifecycled_state_store_write_failures_total 1.0" in generate_latest(registry)
    store.close()


def test_the_cli_on_a_full_disk_says_so_in_one_line(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Before: `cannot rollback - no transaction is active` (hiding the cause) and a traceback."""
    config = tmp_path / "lifecycled.yaml"
    config.write_text(f"daemon: {{state_url: 'sqlite:///{tmp_path / 'state.db'}'}}\n")
    document = tmp_path / "m.yaml"
    document.write_text(f"name: m\nversion: '1'\nowner_team: t\nbusiness_domain: d\n"
                        f"description: {BIG}\n")
    opened = Store.__init__

    def full(self: Store, engine: Any, **kw: Any) -> None:
        opened(self, engine, **kw)
        fill_up(self)

    monkeypatch.setattr(Store, "__init__", full)
    code = main(["models", "register", "--file", str(document), "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 1
    assert "database or disk is full" in err and "cannot rollback" not in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_only_a_refusing_storage_holds_the_store_unwritable() -> None:
    """A full disk, a read-only file or an I/O error is held for two minutes (small writes may
    still fit); a lock held too long, a lost connection or a server shutting down passes by
    itself and was held too: after an ordinary PostgreSQL restart (57P01) every replica would
    have stayed unready for two minutes."""
    import sqlite3

    import psycopg.errors
    from lifecycled.store.postgres import PostgresEngine
    from lifecycled.store.sqlite import SQLiteEngine

    def sqlite_error(code: int) -> sqlite3.Error:
        error = sqlite3.OperationalError("x")
        error.sqlite_errorcode = code
        return error

    assert [SQLiteEngine.refused(sqlite_error(c)) for c in (
        sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_IOERR_WRITE, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)] == [
        True, True, True, True, False, False]
    assert [PostgresEngine.refused(e) for e in (
        psycopg.errors.DiskFull(), psycopg.errors.OutOfMemory(), psycopg.errors.IoError(),
        psycopg.errors.ReadOnlySqlTransaction(), psycopg.errors.AdminShutdown(),
        psycopg.errors.LockNotAvailable(), psycopg.OperationalError("connection lost"))] == [
        True, True, True, True, False, False, False]
