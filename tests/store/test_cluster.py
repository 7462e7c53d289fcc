"""Several replicas on one store: the leader lease, its fencing epoch, outbox claims (on SQLite
and PostgreSQL), and one daemon per SQLite file."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lifecycled.app import idle_limit
from lifecycled.config import parse_settings
from lifecycled.domain import ModelRef, ModelSpec, Status
from lifecycled.errors import StoreError
from lifecycled.replica import Replication
from lifecycled.store import Store, open_store
from lifecycled.store.cluster import (
    Replica,
    acquire,
    check_items,
    check_leader,
    claim_item,
    finish_items,
    heartbeat,
    items_held,
    leases,
    release,
    running_items,
)
from lifecycled.store.core import Fenced
from lifecycled.store.events import emit_in
from lifecycled.store.outbox import Attempt, claim_due, deliveries, record_attempts

from tests.stores import open_test_store, store_url

pytestmark = pytest.mark.usefixtures("both_engines")
REF = ModelRef("credit_scoring", "1")


def until(check: Callable[[], object], timeout: float = 10.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


@pytest.mark.slow
def test_one_holder_at_a_time_and_the_epoch_grows_at_each_change(store: Store) -> None:
    first = acquire(store, "a", ttl=0.5)
    assert first is not None and first.taken_from == ""
    assert acquire(store, "b", ttl=0.5) is None  # held
    renewed = acquire(store, "a", ttl=0.5)
    assert renewed is not None and renewed.epoch == first.epoch  # a renewal is no change
    # b takes it once a's lease has run out (database time), and says from whom
    taken = until(lambda: acquire(store, "b", ttl=30))
    assert taken.epoch == first.epoch + 1 and taken.taken_from == "a"  # type: ignore[attr-defined]
    assert acquire(store, "a", ttl=0.5) is None
    (lease,) = leases(store)
    assert (lease.holder, lease.epoch) == ("b", first.epoch + 1)
    # a clean release hands over at once, and is not a takeover
    assert release(store, "b")
    after = acquire(store, "a", ttl=30)
    assert after is not None and after.taken_from == "" and after.epoch == first.epoch + 2


def test_a_replica_that_lost_the_lease_cannot_write(store: Store) -> None:
    old = acquire(store, "a", ttl=0.3)
    assert old is not None
    with store.fenced(functools.partial(check_leader, holder="a", epoch=old.epoch)):
        store.register(ModelSpec(REF, owner_team="t", business_domain="d"), Status.PRODUCTION,
                       actor="a", reason="r", now=1.0)
    new = until(lambda: acquire(store, "b", ttl=30))
    with (store.fenced(functools.partial(check_leader, holder="a", epoch=old.epoch)),
          pytest.raises(Fenced, match="a lost the leader lease")):
        store.set_status(REF, Status.DEPRECATED, actor="a", reason="late", now=2.0)
    assert store.get(REF).status == Status.PRODUCTION  # nothing of the refused write was kept
    assert len(store.history(REF)) == 1
    with store.fenced(functools.partial(check_leader, holder="b",
                                        epoch=new.epoch)):  # type: ignore[attr-defined]
        store.set_status(REF, Status.DEPRECATED, actor="b", reason="leader", now=3.0)
    assert store.get(REF).status == Status.DEPRECATED
    # writes outside a fence (the API, deliveries) are not checked
    store.set_status(REF, Status.PRODUCTION, actor="api", reason="r", now=4.0)


def test_claims_share_the_outbox_and_run_out(store: Store) -> None:
    with store.write() as conn:
        for _ in range(4):
            emit_in(conn, {"ci": ("model.registered",)}, "model.registered",
                    {"model": REF.name, "version": REF.version}, 1.0)
    mine = claim_due(store, "a", 10.0, limit=3, ttl=0.3)
    assert len(mine.deliveries) == 3 and mine.taken_over == 0
    rest = claim_due(store, "b", 10.0, limit=10, ttl=30)
    assert len(rest.deliveries) == 1  # a's three are not offered to b
    assert {d.event_id for d in rest.deliveries}.isdisjoint(d.event_id for d in mine.deliveries)
    # a answers one; its other two claims run out and b takes them over
    record_attempts(store, [Attempt(mine.deliveries[0], 11.0, 200, "", "delivered")])
    taken = until(lambda: claim_due(store, "b", 10.0, limit=10, ttl=30).deliveries)
    assert {d.event_id for d in taken} == {d.event_id for d in mine.deliveries[1:]}  # type: ignore[attr-defined]
    states = sorted(d.state for d in deliveries(store))
    assert states == ["delivered", "pending", "pending", "pending"]


def test_the_claim_counts_takeovers(store: Store) -> None:
    with store.write() as conn:
        emit_in(conn, {"ci": ("model.registered",)}, "model.registered",
                {"model": REF.name, "version": REF.version}, 1.0)
    claim_due(store, "a", 10.0, limit=1, ttl=0.2)
    taken = until(lambda: claim_due(store, "b", 10.0, limit=1, ttl=30).taken_over)
    assert taken == 1


def test_a_second_daemon_on_one_sqlite_file_is_refused(tmp_path: Path, store: Store) -> None:
    settings = parse_settings({})
    first = Replication(store, settings)
    if store.several_replicas:  # PostgreSQL: any number may start; one leads
        second = Replication(store, parse_settings({"daemon": {"replica": "two"}}))
        first.start()
        second.start()
        try:
            assert [first.is_leader(), second.is_leader()] == [True, False]
        finally:
            first.stop()
            second.stop()
        return
    first.start()
    other = Store(store.path)  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="a SQLite state store serves one daemon; for several "
                                         "replicas use a PostgreSQL state_url"):
        Replication(other, settings).start()
    first.stop()
    again = Replication(other, settings)
    again.start()  # the lock went with the first daemon
    again.stop()
    other.close()


def test_an_item_is_claimed_once_then_held_and_a_dead_claim_is_taken_over(store: Store) -> None:
    first = claim_item(store, "drift", "m:1", "a", ttl=0.3)
    assert first.mine and first.taken_from == ""
    assert not claim_item(store, "drift", "m:1", "b", ttl=30).mine  # a works on it
    check_item_in(store, "drift", "m:1", "a")  # a's writes pass its fence
    # a dies before finishing: b takes the item over once a's claim runs out, and a is fenced
    taken = until(lambda: claim_item(store, "drift", "m:1", "b", ttl=30).mine)
    assert taken
    with pytest.raises(Fenced, match="a lost its claim on drift m:1"):
        check_item_in(store, "drift", "m:1", "a")
    finish_items(store, "drift", ["m:1"], "b", hold=30)
    assert not claim_item(store, "drift", "m:1", "a", ttl=30).mine  # done, held for the interval
    assert running_items(store) == {}


def check_item_in(store: Store, task: str, item: str, holder: str) -> None:
    with store.write() as conn:
        check_items(conn, task, [item], holder)


def test_two_replicas_racing_for_items_claim_each_once(tmp_path: Path, store: Store) -> None:
    other = open_test_store(tmp_path)  # a second connection, as a second replica has
    won: dict[str, list[str]] = {"a": [], "b": []}

    def race(who: str, on: Store) -> None:
        for i in range(40):
            if claim_item(on, "quality", f"m{i}:1", who, ttl=30).mine:
                won[who].append(f"m{i}:1")
    threads = [threading.Thread(target=race, args=("a", store)),
               threading.Thread(target=race, args=("b", other))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(won["a"] + won["b"]) == sorted(f"m{i}:1" for i in range(40))
    other.close()


def test_replicas_share_the_quality_checks_each_model_once_per_interval(
        tmp_path: Path, store: Store) -> None:
    from lifecycled.context import Context
    from lifecycled.store.cluster import Replica, heartbeat
    from lifecycled.store.results import latest_quality
    from lifecycled.tasks.quality import run_quality

    from tests.helpers import write_outcomes

    refs = [ModelRef(f"model_{i}", "1") for i in range(6)]
    models = {}
    for ref in refs:
        outcomes = tmp_path / f"{ref.name}.csv"
        write_outcomes(outcomes, accuracy=0.9)
        models[ref.name] = {"quality": {"outcomes": str(outcomes)}}
        store.register(ModelSpec(ref, owner_team="t", business_domain="d"), Status.PRODUCTION,
                       actor="t", reason="r", now=1.0)
    settings = parse_settings({"daemon": {"leader_lease": "100ms"},
                               "schedule": {"quality": "1h"}, "models": models})
    contexts = {}
    for who in ("a", "b"):
        heartbeat(store, Replica(who, who, "host", 1, "0", 0.0, 0.0, None))
        contexts[who] = Context(settings, store, clock=lambda: 100.0, environ={}, claim_as=who)
    done = {who: run_quality(ctx) for who, ctx in contexts.items()}
    assert len(done["a"]) == 3 and len(done["b"]) == 3  # the fair share: 6 models, 2 alive
    assert set(done["a"]).isdisjoint(done["b"])
    assert all(latest_quality(store, ref) is not None for ref in refs)
    # a second pass within the interval finds every model held: nothing is checked twice
    assert run_quality(contexts["a"]) == {} and run_quality(contexts["b"]) == {}
    # alone (no claims), the same task checks every model
    assert len(run_quality(Context(settings, store, clock=lambda: 100.0, environ={}))) == 6


def test_a_leader_task_without_the_lease_does_not_run_unfenced(store: Store) -> None:
    replication = Replication(store, parse_settings({}))
    if not replication.clustered:
        return  # SQLite: one daemon, nothing to fence
    with pytest.raises(Fenced, match="lost the leader lease before discovery started"), \
            replication.fence("discovery"):
        pytest.fail("the task ran without the lease")
    with replication.fence("drift"):  # every replica's task: fenced by its own claims
        pass


def test_replicas_not_seen_for_long_are_forgotten(store: Store) -> None:
    from lifecycled.store.cluster import forget_replicas, replicas

    heartbeat(store, Replica("old/1/x", "old", "h", 1, "0", 0.0, 0.0, None))
    with store.write() as conn:
        conn.execute("UPDATE replicas SET seen_at = seen_at - 8 * 86400")
    heartbeat(store, Replica("new/2/y", "new", "h", 2, "0", 0.0, 0.0, None))
    assert forget_replicas(store, older_than=7 * 86400) == 1
    assert [r.replica for r in replicas(store)] == ["new"]


# --- PostgreSQL: replicas on other machines, each with its own connections ----------------------


@pytest.fixture
def other(tmp_path: Path, store: Store) -> Iterator[Store]:
    """A second replica's store on the same PostgreSQL database (SQLite serialises every write
    on its one file lock, and holds one daemon per file: nothing of this applies there)."""
    if store.engine.name != "postgresql":
        pytest.skip("PostgreSQL only: SQLite runs one daemon per file")
    s = open_store(store_url(tmp_path), tmp_path)
    yield s
    s.close()


def run_out(store: Store) -> None:
    lease = leases(store)[0]
    until(lambda: store.database_time() > lease.until)


def test_a_replica_paused_inside_a_write_does_not_hold_up_a_takeover(
        store: Store, other: Store) -> None:
    """A replica stopped (SIGSTOP, a long pause) inside an ordinary write holds the writers'
    queue; the lease's writes do not wait in it, so another replica takes the lease once it runs
    out, and says it is alive."""
    assert acquire(store, "a", ttl=0.2) is not None
    run_out(store)
    with store.write() as conn:  # a is paused here, holding the writers' queue
        conn.execute("SELECT 1")
        heartbeat(other, Replica("b/2/y", "b", "h", 2, "0", 0.0, 0.0, None))
        taken = acquire(other, "b", ttl=30)
        assert taken is not None and taken.taken_from == "a"
    assert leases(other)[0].holder == "b"


def test_a_takeover_waits_for_the_fenced_write_in_flight_and_fences_the_next(
        store: Store, other: Store) -> None:
    """The lease's writes do not queue behind the other writers, so the fence holds the lease
    row: a leader's write that began under the lease commits before the takeover, and its next
    write is refused."""
    got = acquire(store, "a", ttl=0.2)
    assert got is not None
    fence = functools.partial(check_leader, holder="a", epoch=got.epoch,
                              share=store.engine.share_rows)
    taken: list[object] = []
    taker = threading.Thread(target=lambda: taken.append(acquire(other, "b", ttl=30)))
    with store.fenced(fence):
        with store.write() as conn:
            run_out(other)
            taker.start()
            until(lambda: other_waits(other))  # b's takeover waits on a's write
            assert not taken
            emit_in(conn, {"ci": ("model.registered",)}, "model.registered",
                    {"model": "m", "version": "1"}, now=1.0)
        taker.join(timeout=30)
        assert taken and taken[0] is not None
        with pytest.raises(Fenced, match="a lost the leader lease"), store.write():
            pytest.fail("a wrote after the takeover")


def other_waits(store: Store) -> bool:
    with store.read() as conn:
        return bool(conn.execute("SELECT COUNT(*) FROM pg_locks WHERE NOT granted").fetchone()[0])


def test_a_write_left_idle_is_ended_by_the_server(tmp_path: Path, other: Store) -> None:
    """A replica paused inside a write holds its locks only until the database ends its idle
    transaction (half a leader lease, ``app.idle_limit``): the other replicas' writes go on."""
    paused = open_store(store_url(tmp_path), tmp_path, idle_in_transaction=idle_limit(2.0))
    try:
        with pytest.raises(StoreError), paused.write() as conn:
            assert conn.execute("SHOW idle_in_transaction_session_timeout").fetchone()[0] == "1s"
            with other.write() as theirs:  # waits in the queue until the server ends a's write
                theirs.execute("SELECT 1")
            conn.execute("SELECT 1")  # a wakes: its transaction is gone
        assert paused.write_error is not None
    finally:
        paused.close()


@pytest.mark.slow
def test_work_claimed_together_is_fenced_on_every_key_and_a_partial_claim_is_given_back(
        store: Store) -> None:
    from lifecycled.context import Context

    settings = parse_settings({"daemon": {"leader_lease": "100ms"}})  # claims last 1 s
    contexts = {}
    for who in ("a", "b"):
        heartbeat(store, Replica(who, who, "host", 1, "0", 0.0, 0.0, None))
        contexts[who] = Context(settings, store, environ={}, claim_as=who)

    def keys(item: str) -> list[str]:
        return {"x": ["e1"], "y": ["e2", "e1"]}[item]

    with contexts["a"].claimed("collect", ["x"], hold=30, keys=keys) as mine:
        assert mine == ["x"]
        # b's item needs e1 too: it wins e2, cannot have e1, and gives e2 back at once
        with contexts["b"].claimed("collect", ["y"], hold=30, keys=keys) as theirs:
            assert theirs == []
        freed = claim_item(store, "collect", "e2", "c", ttl=30)
        assert freed.mine and freed.taken_from == ""  # given back, not taken over
        assert items_held(store, "a") == {"collect": 1}

        def b_takes_x_over() -> bool:
            """b's own pass, in a thread of its own (a's fence is this thread's)."""
            won: list[list[str]] = []

            def work() -> None:
                with contexts["b"].claimed("collect", ["x"], hold=30, keys=keys) as mine:
                    won.append(mine)
            thread = threading.Thread(target=work)
            thread.start()
            thread.join(timeout=30)
            return won == [["x"]]

        # a stalls past its claim: b takes e1 over (counted), and a's next write is refused
        until(b_takes_x_over)
        assert dict(contexts["b"].work_taken_over) == {"collect": 1}
        assert items_held(store, "a") == {}
        with pytest.raises(Fenced, match="a lost its claim on collect e1"):
            store.register(ModelSpec(REF, owner_team="t", business_domain="d"),
                           Status.PRODUCTION, actor="a", reason="late", now=1.0)
    assert store.statuses() == {}  # nothing of the refused write was kept
