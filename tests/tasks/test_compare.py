"""What a comparison shows beside its tests: the drift between the two versions' traced rows
since it opened, and each version's latest quality (rows put in the store as the traces and
quality tasks would; the tests themselves run against a real Triton in
tests/integration/test_compare.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from lifecycled.actions.compare import start_comparison
from lifecycled.config import parse_settings
from lifecycled.context import Context
from lifecycled.domain import ModelRef, ModelSpec, Status
from lifecycled.store import open_store
from lifecycled.store.comparisons import comparisons
from lifecycled.store.results import add_quality_result
from lifecycled.store.traces import add_trace_file
from lifecycled.tasks.compare import informed

CHAMPION, CHALLENGER = ModelRef("credit_scoring", "1"), ModelRef("credit_scoring", "2")


def test_the_outputs_drift_and_quality_are_shown_beside_the_tests(tmp_path: Path) -> None:
    settings = parse_settings({
        "sources": {"triton": [{"name": "local", "url": "http://127.0.0.1:9",
                                "trace_file": str(tmp_path / "trace.json")}]},
        "models": {"credit_scoring": {"drift": {"source": "triton", "min_samples": 50}}}})
    ctx = Context(settings, open_store("sqlite:///state.db", tmp_path), clock=lambda: 100.0)
    for ref, status in ((CHAMPION, Status.PRODUCTION), (CHALLENGER, Status.STAGING)):
        ctx.store.register(ModelSpec(ref, owner_team="risk_ml", business_domain="credit_risk"),
                           status, actor="t", reason="r", now=1.0)
    start_comparison(ctx, CHAMPION, CHALLENGER, actor="alice", reason="new build")
    (comparison,) = comparisons(ctx.store)
    assert informed(ctx, comparison) == {}  # nothing sampled or labelled yet

    rng = np.random.default_rng(0)
    for index, (ref, shift) in enumerate(((CHAMPION, 0.0), (CHALLENGER, 1.0))):
        rows = {"INPUT_0": rng.normal(0, 1, 400), "OUTPUT": rng.normal(shift, 1, 400)}
        add_trace_file(ctx.store, "local", f"d{index}", f"trace.json.{index}", requests=400,
                       batches={ref: rows}, at=150.0, now=150.0)
        add_quality_result(ctx.store, ref, {"samples": 300, "accuracy": 0.9 - 0.1 * index},
                           now=150.0)
    shown = informed(ctx, comparison)
    assert shown["outputs"]["rows"] == [400, 400]
    assert shown["outputs"]["features"]["OUTPUT"] in ("high", "critical")
    assert shown["outputs"]["features"]["INPUT_0"] == "low"  # the same traffic on both sides
    assert shown["quality"] == {"champion": {"samples": 300, "accuracy": 0.9},
                                "challenger": {"samples": 300, "accuracy": 0.8}}
