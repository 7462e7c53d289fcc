"""The registry on SQLite and PostgreSQL: registration, metadata, status moves, history, writers."""

from __future__ import annotations

import itertools
import multiprocessing
import socket
from pathlib import Path

import pytest
from lifecycled.domain import HistoryKind, ModelRef, ModelSpec, Status
from lifecycled.errors import InputError, NotFoundError, StoreError, TransitionError
from lifecycled.store import Store, open_store
from lifecycled.store.migrations import MIGRATIONS

from devtools.postgres import Postgres


def spec(name: str = "credit_scoring", version: str = "1", **kw: object) -> ModelSpec:
    base: dict[str, object] = {"owner_team": "risk_ml", "business_domain": "credit_risk",
                               "thresholds": {"min_accuracy": 0.85}}
    base.update(kw)
    return ModelSpec(ref=ModelRef(name, version), **base)  # type: ignore[arg-type]


def test_schema_is_migrated_and_wal(store: Store, tmp_path: Path) -> None:
    assert store.schema_version() == len(MIGRATIONS)
    if store.path is None:  # PostgreSQL
        assert "schema_version" in store.engine.tables()
        return
    assert store.path.exists()
    with store.read() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_register_records_time_and_history(store: Store) -> None:
    record, kind = store.register(spec(), Status.DEVELOPING, actor="alice", reason="new",
                                  now=100.0)
    assert kind == HistoryKind.REGISTERED
    assert (record.registered_at, record.last_updated, record.status) == (
        100.0, 100.0, Status.DEVELOPING)
    (row,) = store.history(record.ref)
    assert (row.kind, row.from_status, row.to_status, row.actor, row.at) == (
        HistoryKind.REGISTERED, None, Status.DEVELOPING, "alice", 100.0)


def test_registering_again_updates_metadata_and_records_what_changed(store: Store) -> None:
    store.register(spec(), Status.PRODUCTION, actor="a", reason="r", now=1.0)
    _, kind = store.register(spec(), Status.DEVELOPING, actor="a", reason="r", now=2.0)
    assert kind is None
    record, kind = store.register(spec(description="v2 text"), Status.DEVELOPING, actor="b",
                                  reason="r", now=3.0)
    assert kind == HistoryKind.METADATA_UPDATED
    assert record.status == Status.PRODUCTION  # registration never moves the status
    assert record.spec.description == "v2 text"
    assert (record.registered_at, record.last_updated) == (1.0, 3.0)
    last = store.history(record.ref)[-1]
    assert last.evidence == {"changed": {"description": {"from": "", "to": "v2 text"}}}


def test_status_moves_append_history_and_are_never_deleted(store: Store) -> None:
    ref = store.register(spec(), Status.DEVELOPING, actor="a", reason="r", now=1.0)[0].ref
    for n, target in enumerate([Status.TESTING, Status.STAGING, Status.PRODUCTION,
                                Status.DEPRECATED, Status.RETIRED], start=2):
        store.set_status(ref, target, actor="bob", reason=f"step {n}",
                         evidence={"accuracy": 0.9}, now=float(n))
    history = store.history(ref)
    assert [(h.from_status, h.to_status) for h in history[1:]] == [
        (Status.DEVELOPING, Status.TESTING), (Status.TESTING, Status.STAGING),
        (Status.STAGING, Status.PRODUCTION), (Status.PRODUCTION, Status.DEPRECATED),
        (Status.DEPRECATED, Status.RETIRED)]
    assert history[-1].evidence == {"accuracy": 0.9}
    assert store.get(ref).status_changed_at == 6.0


def test_refused_move_changes_nothing(store: Store) -> None:
    ref = store.register(spec(), Status.PRODUCTION, actor="a", reason="r", now=1.0)[0].ref
    with pytest.raises(TransitionError, match="from production to testing"):
        store.set_status(ref, Status.TESTING, actor="a", reason="r", now=2.0)
    assert store.get(ref).status == Status.PRODUCTION
    assert len(store.history(ref)) == 1


def test_status_change_needs_a_reason(store: Store) -> None:
    ref = store.register(spec(), Status.PRODUCTION, actor="a", reason="r", now=1.0)[0].ref
    with pytest.raises(InputError, match="reason"):
        store.set_status(ref, Status.DEPRECATED, actor="a", reason="  ", now=2.0)


def test_not_found_names_known_versions(store: Store) -> None:
    store.register(spec(version="1"), Status.PRODUCTION, actor="a", reason="r", now=1.0)
    store.register(spec(version="2"), Status.STAGING, actor="a", reason="r", now=2.0)
    with pytest.raises(NotFoundError, match=r"^no model credit_scoring:9; known versions: 1, 2$"):
        store.get(ModelRef("credit_scoring", "9"))
    with pytest.raises(NotFoundError, match="no version of other is registered"):
        store.history(ModelRef("other", "1"))


def test_queries_and_counts(store: Store) -> None:
    store.register(spec("a", "1"), Status.PRODUCTION, actor="x", reason="r", now=1.0)
    store.register(spec("b", "1", business_domain="fraud"), Status.PRODUCTION, actor="x",
                   reason="r", now=2.0)
    store.register(spec("c", "1", business_domain="fraud"), Status.STAGING, actor="x",
                   reason="r", now=3.0)
    assert [str(r.ref) for r in store.list_models(status=Status.PRODUCTION)] == ["a:1", "b:1"]
    assert [str(r.ref) for r in store.list_models(domain="fraud")] == ["b:1", "c:1"]
    assert [str(r.ref) for r in store.list_models(name="c")] == ["c:1"]
    assert store.counts("status") == {"production": 2, "staging": 1}
    assert store.counts("business_domain") == {"credit_risk": 1, "fraud": 2}
    assert [str(r.ref) for r in store.recently_changed(2)] == ["c:1", "b:1"]


def test_a_newer_schema_is_refused(state_url: str, tmp_path: Path) -> None:
    store = open_store(state_url, tmp_path)
    newer = len(MIGRATIONS) + 1
    with store.write() as conn:
        if store.path is None:
            conn.execute("UPDATE schema_version SET version = ?", (newer,))
        else:
            conn.execute(f"PRAGMA user_version = {newer}")
    store.close()
    with pytest.raises(StoreError, match=f"schema version {newer}, newer than this lifecycled"):
        open_store(state_url, tmp_path)


def test_unknown_schemes_and_unreachable_servers_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="unsupported state_url scheme 'mysql'"):
        open_store("mysql://db/lifecycled", tmp_path)
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://lifecycled:hunter2@127.0.0.1:{port}/lifecycled"
    with pytest.raises(StoreError) as caught:
        open_store(url, tmp_path)
    message = str(caught.value)
    assert f"cannot connect to the state store postgresql://lifecycled:***@127.0.0.1:{port}" in message
    assert "hunter2" not in message and "\n" not in message


def test_concurrent_first_starts_migrate_once(postgres: Postgres) -> None:
    """Four processes open a new PostgreSQL database at once: one migrates, all agree."""
    url = postgres.create_database("first_start")
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_open_and_close, args=(url,)) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
        assert w.exitcode == 0
    assert postgres.sql("SELECT COUNT(*), MAX(version) FROM schema_version", "first_start") == [
        (1, len(MIGRATIONS))]
    postgres.sql("DROP DATABASE first_start WITH (FORCE)")


def _open_and_close(url: str) -> None:
    open_store(url, Path.cwd()).close()


def _writer(url: str, worker: int, count: int, marks: str) -> None:
    store = open_store(url, Path(marks))
    shared = ModelRef("shared", "1")
    flips = 0
    for i in range(count):
        ref = ModelRef(f"w{worker}_m{i}", "1")
        store.register(spec(ref.name), Status.DEVELOPING, actor=f"w{worker}", reason="r",
                       now=float(i))
        store.set_status(ref, Status.TESTING, actor=f"w{worker}", reason="r", now=float(i))
        seen = store.get(shared).status
        target = Status.DEVELOPING if seen == Status.TESTING else Status.TESTING
        try:  # the other writer may have flipped it since we looked: the store must refuse
            store.set_status(shared, target, actor=f"w{worker}", reason="flip", now=float(i))
            flips += 1
        except TransitionError:
            pass
    (Path(marks) / f"w{worker}").write_text(str(flips))
    store.close()


def test_two_processes_writing_at_once_lose_nothing(state_url: str, tmp_path: Path) -> None:
    store = open_store(state_url, tmp_path)
    store.register(spec("shared"), Status.DEVELOPING, actor="t", reason="r", now=0.0)
    count = 60
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_writer, args=(state_url, w, count, str(tmp_path)))
               for w in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
        assert w.exitcode == 0
    assert store.integrity_check() == "ok"
    assert len(store.list_models()) == 2 * count + 1
    for w in range(2):
        for i in range(count):
            history = store.history(ModelRef(f"w{w}_m{i}", "1"))
            assert [h.to_status for h in history] == [Status.DEVELOPING, Status.TESTING]
    shared = store.history(ModelRef("shared", "1"))
    flips = sum(int((tmp_path / f"w{w}").read_text()) for w in range(2))
    assert flips >= 1
    assert len(shared) == 1 + flips
    # every flip saw the status the previous flip left: the chain is unbroken
    for before, after in itertools.pairwise(shared[1:]):
        assert after.from_status == before.to_status
    store.close()
