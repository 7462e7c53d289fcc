"""Retirement plans against a real SQLite store and real backup files (no Triton here: see
tests/integration/test_retirement_triton.py for unloading)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from lifecycled.actions.backup import prune_backups, write_backup
from lifecycled.actions.retire import STEPS, preview, retire, run_plan
from lifecycled.config import parse_settings
from lifecycled.context import Context
from lifecycled.domain import HistoryKind, ModelRef, ModelSpec, Status
from lifecycled.errors import InputError
from lifecycled.store.outbox import deliveries, event_body
from lifecycled.store.retirement import create_plan_in, latest_plan, scores
from lifecycled.store.serving import add_snapshot, snapshots
from lifecycled.tasks.retirement import run_retirement

from tests.stores import open_test_store

OLD = ModelRef("credit_scoring", "1")
DEPENDENT = ModelRef("risk_assessment", "3")

pytestmark = pytest.mark.usefixtures("both_engines")


def context(tmp_path: Path, **config: Any) -> Context:
    store = open_test_store(tmp_path)
    store.subscriptions = {"ci": ("model.retired", "model.retirement_candidate")}
    now = time.time()
    store.register(ModelSpec(OLD, owner_team="risk_ml", business_domain="credit_risk"),
                   Status.DEPRECATED, actor="t", reason="r", now=now - 800 * 86400)
    with store.write() as conn:
        for i in range(12):
            add_snapshot(conn, OLD, now - i * 3600, {"accuracy": 0.6,
                                                     "requests_per_second": 0.0},
                         {"requests": 1})
    return Context(parse_settings(config), store, clock=time.time)


def events(ctx: Context, kind: str) -> list[dict[str, Any]]:
    found = [event_body(ctx.store, d.event_id) for d in deliveries(ctx.store)]
    return [e for e in found if e["type"] == kind]


def test_retire_backs_up_retires_prunes_and_notifies(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    plan = retire(ctx, OLD, reason="replaced and idle", actor="alice")
    assert plan.state == "completed", plan.error
    backup = Path(next(s for s in plan.steps if s["name"] == "backup")["detail"])
    manifest = json.loads((backup / "manifest.json").read_text())
    assert set(manifest["files"]) == {"metadata.json", "history.json", "snapshots.json",
                                      "drift_results.json", "quality_results.json",
                                      "evaluations.json", "update_jobs.json"}
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((backup / name).read_bytes()).hexdigest() == digest
    assert len(json.loads((backup / "snapshots.json").read_text())) == 12
    assert ctx.store.get(OLD).status == Status.RETIRED
    last = ctx.store.history(OLD)[-1]
    assert (last.to_status, last.actor, last.reason) == (Status.RETIRED, "alice",
                                                         "replaced and idle")
    assert last.evidence["backup"] == str(backup)
    assert snapshots(ctx.store, OLD) == []  # pruned after the verified backup
    (retired,) = events(ctx, "model.retired")
    assert retired["data"]["backup"] == str(backup)
    with pytest.raises(InputError, match="already retired"):
        retire(ctx, OLD, reason="again", actor="alice")


def test_dependents_block_and_dry_run_changes_nothing(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    ctx.store.register(ModelSpec(DEPENDENT, owner_team="t", business_domain="d",
                                 dependencies=("credit_scoring",)), Status.PRODUCTION,
                       actor="t", reason="r", now=time.time())
    before = ctx.store.history(OLD)
    shown = preview(ctx, OLD)
    assert shown["blocked_by"] == ["risk_assessment:3"] and shown["retirable"]
    with pytest.raises(InputError, match=r"risk_assessment:3 depend\(s\) on it"):
        retire(ctx, OLD, reason="x", actor="a")
    assert ctx.store.history(OLD) == before and latest_plan(ctx.store, OLD) is None
    newer = ModelRef("credit_scoring", "2")  # another version of the model keeps it satisfied
    ctx.store.register(ModelSpec(newer, owner_team="t", business_domain="d"),
                       Status.PRODUCTION, actor="t", reason="r", now=time.time())
    assert preview(ctx, OLD)["blocked_by"] == []


@pytest.mark.parametrize("stopped_after", range(len(STEPS)))
def test_a_plan_stopped_at_any_step_resumes_without_doing_anything_twice(
        tmp_path: Path, stopped_after: int) -> None:
    ctx = context(tmp_path)
    with ctx.store.write() as conn:
        plan = create_plan_in(conn, OLD, "alice", "old", ctx.clock())
    for name in list(STEPS)[:stopped_after]:  # the process died after these steps
        plan = STEPS[name](ctx, plan)
    resumed = run_plan(ctx, latest_plan(ctx.store, OLD))
    assert resumed.state == "completed"
    assert [s["state"] for s in resumed.steps] == ["done"] * len(STEPS)
    moves = [h for h in ctx.store.history(OLD) if h.kind == HistoryKind.STATUS_CHANGED]
    assert [h.to_status for h in moves] == [Status.RETIRED]
    assert len(events(ctx, "model.retired")) == 1
    assert len(list((tmp_path / "backups").glob("*/*/*/manifest.json"))) == 1


def test_retention_deletes_only_expired_backups(tmp_path: Path) -> None:
    root = tmp_path / "backups"
    now = time.time()
    old = write_backup(root / "m" / "1" / "old", {"a": [1]}, created_at=now - 400 * 86400,
                       about={})
    fresh = write_backup(root / "m" / "2" / "new", {"a": [2]}, created_at=now - 10 * 86400,
                         about={})
    assert prune_backups(root, older_than=now - 365 * 86400) == [old]
    assert not old.exists() and fresh.exists()


def test_the_job_scores_announces_and_retires_when_policy_allows(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    first = run_retirement(ctx)
    assert first["candidates"] == ["credit_scoring:1"] and first["retired"] == []
    result = scores(ctx.store)[OLD]
    assert result["candidate"] and result["score"] > 0.9
    assert any("too old" in r for r in result["reasons"])
    run_retirement(ctx)
    assert len(events(ctx, "model.retirement_candidate")) == 1  # only when newly a candidate
    ctx.settings = parse_settings({"policies": {"retirement": {"auto_retire": True}}})
    auto = run_retirement(ctx)
    assert auto["retired"] == ["credit_scoring:1"]
    assert ctx.store.history(OLD)[-1].actor == "retirement"


def test_cli_set_status_retired_points_to_retire(cli: Any, tmp_path: Path) -> None:
    import yaml
    (tmp_path / "m.yaml").write_text(yaml.safe_dump({"name": "credit_scoring", "version": "1",
                                                     "status": "deprecated"}))
    assert cli("models", "register", "--file", str(tmp_path / "m.yaml")).code == 0
    refused = cli("models", "set-status", "credit_scoring:1", "retired", "--reason", "x")
    assert refused.code == 2 and "lifecycled retire credit_scoring:1" in refused.err
    dry = cli("retire", "credit_scoring:1", "--dry-run", "--json")
    assert dry.code == 0 and dry.json()["retirable"] is True
    done = cli("retire", "credit_scoring:1", "--reason", "old", "--json")
    assert done.code == 0, done.err
    assert done.json()["state"] == "completed"
    status = cli("retire", "status", "credit_scoring:1")
    assert "notify" in status.out and "completed" in status.out
    listed = cli("retire", "candidates", "--json")
    assert listed.code == 0 and listed.json() == {"candidates": []}
    assert os.path.isdir(done.json()["steps"][1]["detail"])
