"""The demo end to end (real Triton, the daemon, the pipeline), on SQLite and on PostgreSQL,
checked from the state it leaves and not from its printed text."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from lifecycled.domain import HistoryKind, ModelRef, Status
from lifecycled.store import open_store
from lifecycled.store.outbox import deliveries, event_body
from lifecycled.store.results import latest_quality
from lifecycled.store.retirement import latest_plan
from lifecycled.store.updates import list_jobs

from tests.conftest import ROOT


def test_the_demo_tells_the_whole_story(tmp_path: Path, state_url: str) -> None:
    run = tmp_path / "demo"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py"), "--dir", str(run),
                           "--state-url", state_url],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    store = open_store(state_url, tmp_path)
    statuses = store.statuses()
    # 1, 3: the seed models registered from config/ and the unconfigured one discovered
    assert statuses[ModelRef("fraud_detection", "2")] == Status.PRODUCTION
    assert statuses[ModelRef("risk_assessment", "3")] == Status.PRODUCTION
    shadow = store.get(ModelRef("shadow_scoring", "1"))
    assert shadow.spec.owner_team == "auto_discovery" and "auto_discovered" in shadow.spec.tags
    assert shadow.status == Status.STAGING  # nobody registered it: never production by itself
    assert store.get(ModelRef("credit_scoring", "1")).spec.owner_team == "risk_ml"
    # 4: real serving numbers and quality were collected
    (quality,) = latest_quality(store, ModelRef("fraud_detection", "2"))
    assert quality.result["accuracy"] > 0.9
    # 7, 8: one job, triggered by the degradation (the drift of step 6 or the accuracy decay,
    # whichever the updates task sees first; the other is attached to the same job), completed by
    # the pipeline: 2 promoted, 1 deprecated then retired
    report = (run / "drift-report-credit_scoring-1.html").read_text()  # 6: the HTML report
    assert "Model severity" in report and 'data-feature="income"' in report
    (job,) = list_jobs(store)
    assert job.trigger_type in ("performance_degradation", "drift_detection")
    assert (job.state, job.target_version) == ("completed", "2")
    assert statuses[ModelRef("credit_scoring", "2")] == Status.PRODUCTION
    old = store.history(ModelRef("credit_scoring", "1"))
    assert [(h.to_status, h.actor) for h in old if h.kind == HistoryKind.STATUS_CHANGED] == [
        (Status.DEPRECATED, "updates"), (Status.RETIRED, "risk_ml")]
    # 10: retired with a verified backup, and everyone told
    plan = latest_plan(store, ModelRef("credit_scoring", "1"))
    assert plan is not None and plan.state == "completed"
    backup = Path(plan.steps[1]["detail"])
    assert json.loads((backup / "manifest.json").read_text())["model"] == "credit_scoring"
    assert plan.steps[0]["detail"] == "local: reloaded with versions 2 only"
    # 6 (from the backup, since retirement pruned v1's results): drift and concept drift found
    drifts = json.loads((backup / "drift_results.json").read_text())
    assert drifts and drifts[-1]["result"]["severity"] in ("medium", "high", "critical")
    # ... and per channel: utilization drifted in the mobile channel only
    segments = {s["segment"]: {f["feature"]: f["severity"] for f in s["worst_features"]}
                for s in drifts[-1]["result"]["segments"]}
    assert segments["channel=mobile"]["utilization"] in ("high", "critical")
    assert segments["channel=branch"].get("utilization", "low") == "low"
    assert segments["channel=web"].get("utilization", "low") == "low"
    qualities = json.loads((backup / "quality_results.json").read_text())
    assert qualities[-1]["result"]["concept"]["severity"] == "high"
    # 11: risk_assessment's late labels: provisional while too few are in, then judged; the
    # estimate shows the decay of the newest predictions before their labels, which confirm it.
    # Only the passes begun after the first labels were written count (the demo prints only
    # those): a pass judges the window of its own start, so one begun before them that read them
    # later (on a slow machine) judges an older window, where more of them are in
    risk = ModelRef("risk_assessment", "3")
    written = (run / "data" / "risk_labels" / "batch-1.csv").stat().st_mtime
    with store.read() as conn:
        results = [json.loads(r[1]) for r in conn.execute(
            "SELECT at, result FROM quality_results WHERE name = ? AND version = ? ORDER BY id",
            (risk.name, risk.version)) if r[0] > written]
    results = [r for r in results if r["labels"]["labelled"]]
    coverage = [r["labels"]["coverage"] for r in results]
    assert coverage[0] < 0.8 <= max(coverage)
    assert results[0]["labels"]["judged"] is False and results[0].get("accuracy") is None
    before = next(r for r in results if r["labels"]["judged"])
    assert before["accuracy"] > 0.9
    assert before["estimate"]["trusted"] is True
    assert before["estimate"]["accuracy_upper"] < before["accuracy"]  # the decay, before labels
    confirmed = next(r for r in results if "estimation" in r)
    estimation = confirmed["estimation"]
    assert estimation["realized"]["accuracy"] < before["accuracy"] - 0.04
    assert abs(estimation["error"]["accuracy"]) < 0.05
    assert 0.8 < confirmed["accuracy"] < before["accuracy"]
    sent = {event_body(store, d.event_id)["type"] for d in deliveries(store, state="delivered")}
    assert {"model.update_requested", "model.update_completed"} <= sent
    store.close()
    assert (run / "logs" / "lifecycled.log").exists()
