"""The newest result of every model is found by one index lookup per model, not by reading the
whole history: the work SQLite does to find them (its virtual machine's steps, counted by a
progress handler) is the same with 3 or 300 stored rows per model, and the rows found are the
newest."""

from __future__ import annotations

from pathlib import Path

import pytest
from lifecycled.domain import ModelRef, ModelSpec, Status
from lifecycled.store import Store, open_store
from lifecycled.store.results import (
    Evaluation,
    add_drift_result,
    add_evaluations,
    latest_drift,
    latest_evaluation,
)
from lifecycled.store.serving import add_snapshot, latest_snapshots

MODELS = [ModelRef(f"m{i:02d}", "1") for i in range(20)]


def add_rows(store: Store, count: int, start: float) -> None:
    for k in range(count):
        at = start + k
        with store.write() as conn:
            for ref in MODELS:
                add_snapshot(conn, ref, at, {"requests_per_second": at}, {})
        add_evaluations(store, [Evaluation(ref, {"level": "ok", "score": at, "breaches": []}, None)
                                for ref in MODELS], now=at)
        for ref in MODELS:
            add_drift_result(store, ref, {"severity": "low", "at": at}, now=at)


def steps(store: Store) -> int:
    count = [0]

    def tick() -> int:
        count[0] += 1
        return 0

    with store.read() as conn:
        conn.set_progress_handler(tick, 10)  # type: ignore[attr-defined]
    try:
        latest_snapshots(store)
        latest_evaluation(store)
        latest_drift(store)
    finally:
        with store.read() as conn:
            conn.set_progress_handler(None, 10)  # type: ignore[attr-defined]
    return count[0]


@pytest.mark.slow
def test_finding_the_newest_rows_does_not_read_the_history(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.db'}", tmp_path)
    for ref in MODELS:
        store.register(ModelSpec(ref, owner_team="t", business_domain="d"), Status.PRODUCTION,
                       actor="test", reason="r", now=0.0)
    add_rows(store, 3, start=1.0)
    few = steps(store)
    add_rows(store, 297, start=10.0)
    many = steps(store)
    assert many < 1.5 * few, (few, many)
    newest = 10.0 + 296
    assert {s.values["requests_per_second"] for s in latest_snapshots(store).values()} == {newest}
    assert {e.result["score"] for e in latest_evaluation(store)} == {newest}
    assert {d.result["at"] for d in latest_drift(store)} == {newest}
    store.close()
