"""The store through a real PgBouncer (Debian's) in transaction pooling mode, two server
connections shared by every client: each transaction may run on another server connection, so
nothing may rely on session state (prepared statements, session advisory locks, SET without
LOCAL). Migration, concurrent writers, the outbox claims, the leader lease and its fence all
work through it as they do directly."""

from __future__ import annotations

import functools
import itertools
import threading
from collections.abc import Iterator

import pytest
from lifecycled.domain import ModelRef, ModelSpec, Status
from lifecycled.store import Store, open_store
from lifecycled.store.cluster import acquire, check_leader
from lifecycled.store.core import Fenced
from lifecycled.store.events import emit_in
from lifecycled.store.outbox import Attempt, claim_due, deliveries, record_attempts
from lifecycled.store.serving import add_snapshot, latest_snapshots

from devtools.postgres import PgBouncer, Postgres, start_pgbouncer

_names = itertools.count()


@pytest.fixture
def bounced(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[PgBouncer, str]]:
    name = f"bounced_{next(_names)}"
    postgres.create_database(name)
    bouncer = start_pgbouncer(postgres, name, pool_size=2)
    yield bouncer, name
    bouncer.stop()
    postgres.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_the_store_works_through_pgbouncer_in_transaction_mode(
        bounced: tuple[PgBouncer, str], postgres: Postgres,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    bouncer, name = bounced
    folder = tmp_path_factory.mktemp("bounced")
    first = open_store(bouncer.url(name), folder, password=postgres.password, pool_size=4)
    second = open_store(bouncer.url(name), folder, password=postgres.password, pool_size=4)
    try:
        stores: list[Store] = [first, second]
        refs = [ModelRef(f"m{i:02d}", "1") for i in range(24)]
        errors: list[BaseException] = []

        def register(part: list[ModelRef], store: Store) -> None:
            try:
                for ref in part:
                    store.register(ModelSpec(ref, owner_team="t", business_domain="d"),
                                   Status.PRODUCTION, actor="test", reason="r", now=1.0)
                    with store.write() as conn:
                        add_snapshot(conn, ref, 2.0, {"requests_per_second": 1.0}, {})
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=register, args=(refs[i::8], stores[i % 2]))
                   for i in range(8)]  # 8 writers on 2 server connections
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert set(second.statuses()) == set(refs)
        assert set(latest_snapshots(first)) == set(refs)

        with first.write() as conn:
            for _ in range(6):
                emit_in(conn, {"ci": ("model.registered",)}, "model.registered",
                        {"model": "m00", "version": "1"}, 1.0)
        mine = claim_due(first, "a", 10.0, limit=4, ttl=30)
        theirs = claim_due(second, "b", 10.0, limit=10, ttl=30)
        assert len(mine.deliveries) == 4 and len(theirs.deliveries) == 2
        assert {d.event_id for d in mine.deliveries}.isdisjoint(
            d.event_id for d in theirs.deliveries)
        record_attempts(second, [Attempt(d, 11.0, 200, "", "delivered")
                                 for d in theirs.deliveries])
        assert sorted(d.state for d in deliveries(first)).count("delivered") == 2

        lease = acquire(first, "a", ttl=30)
        assert lease is not None and acquire(second, "b", ttl=30) is None
        ref = refs[0]
        with second.fenced(functools.partial(check_leader, holder="b", epoch=lease.epoch),
                           ), pytest.raises(Fenced):
            second.set_status(ref, Status.DEPRECATED, actor="b", reason="not the leader",
                              now=3.0)
        with first.fenced(functools.partial(check_leader, holder="a", epoch=lease.epoch,
                                            share=first.engine.share_rows)):
            first.set_status(ref, Status.DEPRECATED, actor="a", reason="leader", now=4.0)
        assert second.get(ref).status == Status.DEPRECATED
    finally:
        first.close()
        second.close()
