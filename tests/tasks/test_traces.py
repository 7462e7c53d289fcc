"""Reading an endpoint's trace files into the store: each file once, then deleted; a file still
being written waits; a cut or bad file is one problem and loses nothing else; references are
frozen from the first rows; the drift check says ``unknown`` until then. (No Triton: the files
are written here in the server's shape, tests/sources/test_traces.py.)"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from lifecycled.config import parse_settings
from lifecycled.context import Context
from lifecycled.domain import HistoryKind, ModelRef, ModelSpec, Status
from lifecycled.store import open_store
from lifecycled.store.traces import frozen_reference, frozen_refs, trace_states, traced_rows
from lifecycled.tasks.drift import drift_due, run_model_drift
from lifecycled.tasks.traces import EndpointPass, consume_files, freeze_due

from tests.sources.test_traces import file_of, scored

REF = ModelRef("credit_scoring", "1")


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    settings = parse_settings({
        "sources": {"triton": [{"name": "local", "url": "http://127.0.0.1:9",
                                "trace_file": str(tmp_path / "traces" / "trace.json")}]},
        "models": {"credit_scoring": {"drift": {"source": "triton", "reference_rows": 6,
                                                "min_samples": 2,
                                                "columns": {"INPUT_0": "income"}}}}})
    (tmp_path / "traces").mkdir()
    context = Context(settings, open_store("sqlite:///state.db", tmp_path))
    context.store.register(ModelSpec(REF, owner_team="risk_ml", business_domain="credit_risk"),
                           Status.STAGING, actor="test", reason="test", now=1.0)
    return context


def write(ctx: Context, index: int, data: bytes, age: float = 60.0) -> Path:
    endpoint = ctx.settings.sources.triton[0]
    path = Path(f"{endpoint.trace_file}.{index}")
    path.write_bytes(data)
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def consume(ctx: Context) -> EndpointPass:
    report = EndpointPass()
    versions = {REF: ctx.store.get(REF)}
    consume_files(ctx, ctx.settings.sources.triton[0], versions, report, now=time.time())
    return report


def test_each_file_is_read_once_then_deleted(ctx: Context) -> None:
    data = file_of(scored(1, np.array([[1.0, 2.0], [3.0, 4.0]])),
                   scored(2, np.array([[5.0, 6.0]]), model="fraud_detection"))
    first = write(ctx, 0, data)
    report = consume(ctx)
    assert (report.files, report.requests, report.problems) == (1, 1, 0)
    assert not first.exists()
    columns, rows = traced_rows(ctx.store, REF)
    assert rows == 2 and columns["income"].tolist() == [1.0, 3.0]  # renamed by drift.columns
    assert traced_rows(ctx.store, ModelRef("fraud_detection", "1"))[1] == 0  # not watched

    # the daemon stopped after storing a file but before deleting it: read again, stored once
    again = write(ctx, 0, data)
    assert consume(ctx).files == 0
    assert not again.exists() and traced_rows(ctx.store, REF)[1] == 2


def test_bad_and_partial_files_are_one_problem_each_and_lose_nothing_else(
        ctx: Context, caplog: pytest.LogCaptureFixture) -> None:
    whole = file_of(scored(1, np.ones((2, 2))), scored(2, np.zeros((1, 2))))
    cut = whole[: whole.index(b'"id": 2') + 40]
    writing = write(ctx, 1, cut, age=0.0)  # just written: may still be being written
    old_cut = write(ctx, 2, cut)
    garbage = write(ctx, 3, b"\x00 not a trace")
    good = write(ctx, 4, file_of(scored(3, np.full((3, 2), 7.0))))
    report = consume(ctx)
    assert (report.files, report.waiting, report.rejected, report.problems) == (2, 1, 1, 2)
    assert writing.exists()  # left for the next pass
    assert not old_cut.exists() and not good.exists()
    assert not garbage.exists() and garbage.with_name("trace.json.3.rejected").exists()
    assert sorted(traced_rows(ctx.store, REF)[0]["income"].tolist()) == [1.0, 1.0, 7.0, 7.0, 7.0]
    problems = [r.getMessage() for r in caplog.records if "trace file problem" in r.getMessage()]
    assert len(problems) == 2
    assert any("cut short" in p for p in problems) and any("not a JSON array" in p
                                                           for p in problems)
    (state,) = trace_states(ctx.store)
    assert (state.backlog_files, state.files_total, state.rejected_total,
            state.problems_total) == (1, 2, 1, 2)
    assert state.backlog_bytes == len(cut)


def test_the_reference_is_frozen_from_the_first_rows_and_unknown_until_then(
        ctx: Context) -> None:
    # a discovered version is watched too, and judged once its reference is frozen: until
    # then no verdict is stored (no "unknown" alert while a quiet model's rows are sampled)
    assert not drift_due(ctx, REF, Status.STAGING, frozen_refs(ctx.store))
    write(ctx, 0, file_of(scored(1, np.arange(8.0).reshape(4, 2))))
    consume(ctx)
    _, record = run_model_drift(ctx, REF, now=time.time())
    assert record["severity"] == "unknown"
    assert record["reference"] == {"frozen": None, "sampled": 4, "wanted": 6}
    assert freeze_due(ctx, {REF: ctx.store.get(REF)}, now=time.time()) == [REF]
    assert frozen_reference(ctx.store, REF) is None

    write(ctx, 1, file_of(scored(2, np.arange(8.0, 16.0).reshape(4, 2))))
    consume(ctx)
    assert freeze_due(ctx, {REF: ctx.store.get(REF)}, now=time.time()) == []
    frozen = frozen_reference(ctx.store, REF)
    assert frozen is not None and frozen.rows == 6
    assert frozen.columns["income"].tolist() == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]  # the first six
    assert frozen.origin["status"] == "staging"
    entry = ctx.store.history(REF)[-1]
    assert entry.kind == HistoryKind.REFERENCE_FROZEN and entry.actor == "lifecycled"
    assert freeze_due(ctx, {REF: ctx.store.get(REF)}, now=time.time()) == []  # once
    assert drift_due(ctx, REF, Status.STAGING, frozen_refs(ctx.store))
    assert not drift_due(ctx, REF, Status.DEPRECATED, frozen_refs(ctx.store))
    assert len([e for e in ctx.store.history(REF) if e.kind == HistoryKind.REFERENCE_FROZEN]) == 1
    _, record = run_model_drift(ctx, REF, now=time.time())
    assert record["reference"]["rows"] == 6 and record["judged"] > 0
    assert json.loads(json.dumps(record))  # stored and served as JSON
