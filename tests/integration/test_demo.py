"""The demo end to end (real Triton, the daemon, the pipeline, Prometheus and Alertmanager), on
SQLite and on PostgreSQL, checked from the state it leaves, and its printed words against what
they claim: commands that paste and run, and the alerts it says fired."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from lifecycled.domain import HistoryKind, ModelRef, Status
from lifecycled.store import open_store
from lifecycled.store.comparisons import comparisons
from lifecycled.store.outbox import deliveries, event_body
from lifecycled.store.results import latest_drift, latest_quality
from lifecycled.store.retirement import latest_plan
from lifecycled.store.traces import frozen_reference
from lifecycled.store.updates import list_jobs

from tests.helpers import ROOT


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
    # 6: ... yet judged from Triton's own samples of its requests, no file configured: the
    # reference frozen from its first 400 rows, then its shifted third input, and its output
    frozen = frozen_reference(store, shadow.ref)
    assert frozen is not None and frozen.rows == 400
    assert sorted(frozen.columns) == ["INPUT_0", "INPUT_1", "INPUT_2", "INPUT_3", "OUTPUT"]
    (traced,) = latest_drift(store, shadow.ref)
    assert traced.result["source"] == "triton"
    severity = {f["feature"]: f["severity"] for f in traced.result["features"]}
    assert "INPUT_2" in traced.result["drivers"] and severity["INPUT_2"] == "critical"
    assert all(severity[f] == "low" for f in ("INPUT_0", "INPUT_1", "INPUT_3"))
    assert severity["OUTPUT"] in ("medium", "high", "critical")
    assert "shadow_scoring:1: frozen" in proc.stdout and "(driven by INPUT_2" in proc.stdout
    assert not list((run / "triton" / "traces").glob("trace.json.*.rejected"))
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
        (Status.DEPRECATED, "compare"), (Status.RETIRED, "risk_ml")]
    # 8: promoted only through a comparison on live traffic, decided on its evidence
    (comparison,) = comparisons(store)
    assert (comparison.state, comparison.job_id, comparison.champion, comparison.challenger) \
        == ("promoted", job.id, "1", "2")
    assert comparison.evidence["requests"]["challenger"] >= 100
    new = store.history(ModelRef("credit_scoring", "2"))
    promoted = [h for h in new if h.kind == HistoryKind.STATUS_CHANGED][-1]
    assert (promoted.to_status, promoted.actor) == (Status.PRODUCTION, "compare")
    assert promoted.evidence["comparison_id"] == comparison.id
    assert "compared with credit_scoring:1 on live traffic" in proc.stdout
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
    # 11: risk_assessment, a regression model, and its late labels: provisional while too few
    # are in, then judged by its errors (never accuracy); the estimate (DLE) shows the error of
    # the newest predictions growing before their labels, which confirm it. Only the passes
    # begun after the first labels were written count (the demo prints only those): a pass
    # judges the window of its own start, so one begun before them that read them later (on a
    # slow machine) judges an older window, where more of them are in
    risk = ModelRef("risk_assessment", "3")
    written = (run / "data" / "risk_labels" / "batch-1.csv").stat().st_mtime
    with store.read() as conn:
        results = [json.loads(r[1]) for r in conn.execute(
            "SELECT at, result FROM quality_results WHERE name = ? AND version = ? ORDER BY id",
            (risk.name, risk.version)) if r[0] > written]
    results = [r for r in results if r["labels"]["labelled"]]
    coverage = [r["labels"]["coverage"] for r in results]
    assert coverage[0] < 0.8 <= max(coverage)
    assert results[0]["labels"]["judged"] is False and results[0].get("mae") is None
    assert not any("accuracy" in r for r in results)
    before = next(r for r in results if r["labels"]["judged"])
    assert before["model_type"] == "regression" and before["mae"] > 0
    assert before["estimate"]["method"] == "DLE" and before["estimate"]["trusted"] is True
    assert before["estimate"]["mae_lower"] > before["mae"]  # the error grows, before labels
    confirmed = next(r for r in results if "estimation" in r)
    estimation = confirmed["estimation"]
    assert estimation["realized"]["mae"] > 1.5 * before["mae"]
    assert abs(estimation["error"]["mae"]) < 0.2 * estimation["realized"]["mae"]
    sent = {event_body(store, d.event_id)["type"] for d in deliveries(store, state="delivered")}
    assert {"model.update_requested", "model.update_completed"} <= sent
    store.close()
    assert (run / "logs" / "lifecycled.log").exists()
    check_the_printed_words(proc.stdout, run)


def check_the_printed_words(out: str, run: Path) -> None:
    """Before, printed commands were not quoted (pasting them failed), the --config they need was
    never shown, and a critical alert fired for fraud_detection while the demo printed 'errors
    0 %'."""
    lines = out.splitlines()
    export = next(line for line in lines if line.startswith("$ export LIFECYCLED_CONFIG="))
    (assignment,) = shlex.split(export[2:])[1:]
    config = assignment.split("=", 1)[1]
    assert Path(config) == run / "config" / "lifecycled.yaml"
    commands = [shlex.split(line[2:]) for line in lines if line.startswith("$ lifecycled ")]
    assert len(commands) > 10 and not [c for c in commands if "--config" in c]
    with_spaces = [c for c in commands if any(" " in word for word in c)]
    assert with_spaces  # e.g. --reason 'model risk review approved', one word when pasted
    env = {**os.environ, "LIFECYCLED_CONFIG": config}
    shown = subprocess.run([sys.executable, "-m", "lifecycled", "models", "show",
                            "fraud_detection:2"], capture_output=True, text=True, env=env,
                           timeout=120)
    assert shown.returncode == 0, shown.stderr  # a printed command, pasted after the export
    fraud = next(line for line in lines if line.startswith("fraud_detection:2    throughput"))
    assert "requests since Triton started" in fraud
    if shutil.which("prometheus") and shutil.which("prometheus-alertmanager"):
        firing = lines[lines.index(next(line for line in lines if "/api/v1/alerts" in line)):]
        assert any(line.split()[:3] == ["LifecycledTritonErrorRatioHigh", "critical",
                                        "fraud_detection:2"] for line in firing)
        assert any("LifecycledTritonErrorRatioHigh fraud_detection:2" in line
                   for line in firing if "FIRING" in line)
