"""Evaluation of what collect has just written, in memory, equals the evaluation of the same
snapshots read back from the store (what the evaluate task does)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lifecycled.config import parse_settings
from lifecycled.context import Context
from lifecycled.domain import ModelRef, ModelSpec, Status
from lifecycled.store.serving import Snapshot, add_snapshot, stored_values
from lifecycled.tasks.evaluate import evaluate_versions

from tests.stores import open_test_store

pytestmark = pytest.mark.usefixtures("both_engines")


def test_the_snapshots_collect_wrote_evaluate_as_they_read_back(tmp_path: Path) -> None:
    store = open_test_store(tmp_path)
    cases = {
        ModelRef("breached", "1"): {"accuracy": 0.7, "error_ratio": 0.2,
                                    "latency_p99_seconds": 3, "requests_per_second": 5},
        ModelRef("unknown_error", "1"): {"accuracy": 0.95, "error_ratio": float("nan")},
        ModelRef("healthy", "2"): {"accuracy": 0.99, "error_ratio": 0.0,
                                   "latency_p99_seconds": 0.05, "memory_bytes": 2.0**20},
        ModelRef("nothing_measured", "1"): {},
    }
    for ref in cases:
        store.register(ModelSpec(ref, owner_team="t", business_domain="d", thresholds={
            "min_accuracy": 0.85, "max_error_ratio": 0.05, "max_latency_p99_seconds": 1.0}),
            Status.PRODUCTION, actor="t", reason="r", now=1.0)
    ctx = Context(parse_settings({}), store, clock=lambda: 10.0)
    written = {}
    with store.write() as conn:
        for ref, values in cases.items():
            snapshot_id = add_snapshot(conn, ref, 10.0, values, {})
            written[ref] = Snapshot(snapshot_id, ref, 10.0, stored_values(values), {})
    in_memory = evaluate_versions(ctx, set(cases), 10.0, written)
    read_back = evaluate_versions(ctx, set(cases), 10.0)
    assert in_memory == read_back
    assert sorted(b["threshold"] for b in in_memory["breached:1"]["breaches"]) == [
        "max_error_ratio", "max_latency_p99_seconds", "min_accuracy"]
    assert "max_error_ratio" in in_memory["unknown_error:1"]["unknown"]
    assert in_memory["healthy:2"]["breaches"] == []
    store.close()
