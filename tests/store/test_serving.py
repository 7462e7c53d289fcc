"""Serving state, scrapes and source health: what is kept of removed Triton endpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
from lifecycled.domain import ModelRef, ModelSpec, Status
from lifecycled.store.serving import (
    SNAPSHOT_FIELDS,
    add_snapshot,
    forget_endpoints,
    last_scrape,
    latest_snapshots,
    put_scrape,
    put_serving_state,
    put_serving_states,
    record_source,
    serving_states,
    source_health,
    stored_values,
)

from tests.stores import open_test_store

REF = ModelRef("credit_scoring", "1")

pytestmark = pytest.mark.usefixtures("both_engines")


def test_forgetting_removed_endpoints_keeps_the_configured_ones(tmp_path: Path) -> None:
    store = open_test_store(tmp_path)
    with store.write() as conn:
        for endpoint in ("a", "old"):
            put_serving_state(conn, REF, endpoint, "ready", "", 1.0)
            put_scrape(conn, endpoint, 1.0, {"models": []})
            record_source(conn, f"triton:{endpoint}", ok=True, now=1.0)
        record_source(conn, "prometheus", ok=True, now=1.0)
    with store.write() as conn:
        assert forget_endpoints(conn, ["a"]) == 1
        assert forget_endpoints(conn, ["a"]) == 0
    assert [s.endpoint for s in serving_states(store)] == ["a"]
    assert last_scrape(store, "old") is None and last_scrape(store, "a") is not None
    assert [h.source for h in source_health(store)] == ["prometheus", "triton:a"]
    with store.write() as conn:
        forget_endpoints(conn, [])  # no endpoint configured: nothing of Triton is kept
    assert serving_states(store) == []
    assert [h.source for h in source_health(store)] == ["prometheus"]
    store.close()


def test_a_snapshot_reads_back_as_stored_values_gives_it(tmp_path: Path) -> None:
    """What collect evaluates in memory is what the store reads back, on either engine: every
    field a float or None, a NaN kept as None (SQLite cannot keep one)."""
    store = open_test_store(tmp_path)
    store.register(ModelSpec(REF, owner_team="t", business_domain="d"), Status.PRODUCTION,
                   actor="t", reason="r", now=1.0)
    nan, inf = float("nan"), float("inf")
    values = {"requests_per_second": 3, "error_ratio": nan, "latency_p99_seconds": inf,
              "queue_mean_seconds": -inf, "accuracy": 0.1 + 0.2, "memory_bytes": None,
              "pending_requests": 0}
    expected = dict.fromkeys(SNAPSHOT_FIELDS, None) | {
        "requests_per_second": 3.0, "latency_p99_seconds": inf, "queue_mean_seconds": -inf,
        "accuracy": 0.1 + 0.2, "pending_requests": 0.0}
    assert stored_values(values) == expected
    with store.write() as conn:
        add_snapshot(conn, REF, 5.0, values, {})
    latest = latest_snapshots(store)[REF]
    assert dict(latest.values) == expected
    assert all(v is None or type(v) is float for v in latest.values.values())
    store.close()


def test_a_pass_of_serving_states_keeps_since_until_the_state_changes(tmp_path: Path) -> None:
    store = open_test_store(tmp_path)
    other = ModelRef("fraud_detection", "2")
    passes = [(1.0, {REF: ("ready", ""), other: ("unavailable", "oom")}),
              (2.0, {REF: ("ready", ""), other: ("unavailable", "oom again")}),
              (3.0, {REF: ("unavailable", "unloaded"), other: ("ready", "")})]
    answers = []
    for now, observed in passes:
        with store.write() as conn:
            answers.append(put_serving_states(conn, "e1", observed, now))
    assert answers == [{REF: (None, 0), other: (None, 1)},
                       {REF: ("ready", 0), other: ("unavailable", 2)},
                       {REF: ("ready", 1), other: ("unavailable", 0)}]
    states = {s.ref: s for s in serving_states(store)}
    assert (states[REF].state, states[REF].since, states[REF].updated_at) == ("unavailable", 3.0,
                                                                            3.0)
    assert states[REF].reason == "unloaded" and states[REF].unavailable_passes == 1
    assert (states[other].state, states[other].since) == ("ready", 3.0)
    with store.write() as conn:  # one observation, as before
        assert put_serving_state(conn, REF, "e1", "unavailable", "still", 4.0) == (
            "unavailable", 2)
    (kept,) = [s for s in serving_states(store) if s.ref == REF]
    assert (kept.since, kept.updated_at, kept.unavailable_passes) == (3.0, 4.0, 2)
    store.close()
