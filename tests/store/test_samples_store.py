"""Traced rows, trace watches, frozen references and comparisons in the store, on SQLite and on
PostgreSQL: each trace file stored once, windows of rows, pruning that spares what a reference
still needs, a reference replaced with its history, a comparison decided once."""

from __future__ import annotations

import numpy as np
import pytest
from lifecycled.domain import HistoryKind, ModelRef, ModelSpec, Status
from lifecycled.errors import InputError
from lifecycled.store import Store
from lifecycled.store.comparisons import (
    HELD,
    PROMOTED,
    RUNNING,
    comparisons,
    decide_in,
    open_in,
)
from lifecycled.store.traces import (
    Watch,
    add_trace_file,
    drop_watch,
    freeze_reference,
    frozen_reference,
    prune_trace_rows,
    put_watch,
    traced_counts,
    traced_rows,
    watches,
)

pytestmark = pytest.mark.usefixtures("both_engines")
ONE, TWO = ModelRef("credit_scoring", "1"), ModelRef("credit_scoring", "2")


@pytest.fixture
def store(store: Store) -> Store:
    for ref in (ONE, TWO):
        store.register(ModelSpec(ref, owner_team="risk_ml", business_domain="credit_risk"),
                       Status.STAGING, actor="t", reason="r", now=1.0)
    return store


def batch(start: float, rows: int) -> dict[str, np.ndarray]:
    values = np.arange(start, start + rows, dtype=float)
    out = values.copy()
    out[0] = np.nan  # a missing value survives the round trip
    return {"INPUT": values, "OUTPUT": out}


def test_trace_rows_are_stored_once_and_read_by_window(store: Store) -> None:
    for index, at in enumerate((10.0, 20.0, 30.0)):
        assert add_trace_file(store, "local", f"digest-{index}", f"trace.json.{index}",
                              requests=4, batches={ONE: batch(index * 10, 4)}, at=at, now=at)
    assert not add_trace_file(store, "local", "digest-1", "trace.json.1", requests=4,
                              batches={ONE: batch(99, 4)}, at=40.0, now=40.0)  # read again
    columns, rows = traced_rows(store, ONE)
    assert rows == 12 and columns["INPUT"].tolist() == [*range(4), *range(10, 14),
                                                        *range(20, 24)]
    assert np.isnan(columns["OUTPUT"][4])
    assert traced_rows(store, ONE, since=15.0, until=25.0)[0]["INPUT"].tolist() == [
        10, 11, 12, 13]
    assert traced_rows(store, ONE, newest=6)[0]["INPUT"].tolist() == [12, 13, 20, 21, 22, 23]
    assert traced_rows(store, ONE, oldest=5)[0]["INPUT"].tolist() == [0, 1, 2, 3, 10]
    assert traced_counts(store, {ONE: 15.0, TWO: 0.0}) == {ONE: 8, TWO: 0}

    add_trace_file(store, "local", "digest-9", "trace.json.9", requests=4,
                   batches={TWO: batch(0, 4)}, at=10.0, now=10.0)
    assert prune_trace_rows(store, older_than=25.0, keep=[TWO]) == 2  # ONE's two oldest
    assert traced_rows(store, ONE)[1] == 4 and traced_rows(store, TWO)[1] == 4
    assert prune_trace_rows(store, older_than=25.0) == 1


def test_watches_are_kept_until_dropped(store: Store) -> None:
    applied = {"trace_level": ["TIMESTAMPS", "TENSORS"], "trace_rate": "100",
               "log_frequency": "20"}
    put_watch(store, Watch("local", "credit_scoring", None, applied, 5.0))
    put_watch(store, Watch("local", "credit_scoring", {"trace_rate": "7"}, applied, 6.0))
    (watch,) = watches(store, "local")
    assert (watch.previous, watch.applied, watch.since) == ({"trace_rate": "7"}, applied, 6.0)
    drop_watch(store, "local", "credit_scoring")
    assert watches(store) == []


def test_a_frozen_reference_is_replaced_only_on_purpose_with_its_history(store: Store) -> None:
    first = {"INPUT": np.array([1.0, 2.0])}
    assert freeze_reference(store, ONE, first, {"source": "triton traces"}, actor="lifecycled",
                            reason="first rows", now=10.0, replace=False)
    assert not freeze_reference(store, ONE, {"INPUT": np.array([9.0])}, {}, actor="x",
                                reason="again", now=11.0, replace=False)
    assert freeze_reference(store, ONE, {"INPUT": np.array([5.0, 6.0, 7.0])},
                            {"chosen": {"since": 0}}, actor="alice", reason="quiet week",
                            now=12.0, replace=True)
    frozen = frozen_reference(store, ONE)
    assert frozen is not None and frozen.rows == 3 and frozen.columns["INPUT"].tolist() == [
        5.0, 6.0, 7.0]
    rows = [h for h in store.history(ONE) if h.kind == HistoryKind.REFERENCE_FROZEN]
    assert [h.actor for h in rows] == ["lifecycled", "alice"]
    assert rows[1].evidence["replaced"] == {"source": "triton traces"}


def test_a_comparison_is_decided_once_and_one_per_model_is_open(store: Store) -> None:
    with store.write() as conn:
        comparison_id = open_in(conn, ONE, TWO, policy={}, evidence={}, actor="alice",
                                reason="r", now=1.0)
    with pytest.raises(InputError, match="already has a comparison"), store.write() as conn:
        open_in(conn, ONE, TWO, policy={}, evidence={}, actor="bob", reason="r", now=2.0)
    with store.write() as conn:
        assert decide_in(conn, comparison_id, HELD, actor="compare", reason="slow",
                         evidence={}, now=3.0, applied=True)
        assert not decide_in(conn, comparison_id, PROMOTED, actor="compare", reason="again",
                             evidence={}, now=4.0, applied=True)  # only a running one
        assert decide_in(conn, comparison_id, PROMOTED, actor="alice", reason="looked",
                         evidence={}, now=5.0, applied=True, from_states=(RUNNING, HELD))
    (done,) = comparisons(store)
    assert (done.state, done.actor, done.decided_at) == (PROMOTED, "alice", 5.0)
