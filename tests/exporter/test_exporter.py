"""The metric contract: a fixed store renders to a golden exposition, promtool finds nothing to
lint, and the catalogue (the metrics reference's source) declares exactly the exported families.

Regenerate the golden file after an intended change with:
    LIFECYCLED_REGENERATE=1 python -m pytest tests/exporter/test_exporter.py
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lifecycled.core.drift import compare, result_to_json
from lifecycled.core.profile import build_profile
from lifecycled.core.thresholds import evaluate, evaluation_to_json
from lifecycled.domain import DriftPolicy, ModelRef, ModelSpec, Status
from lifecycled.exporter import LifecycleCollector
from lifecycled.exporter.catalogue import CATALOGUE
from lifecycled.store import Store, StoreWrites
from lifecycled.store.labels import Label, Prediction, add_labels_in, add_predictions_in
from lifecycled.store.outbox import due, record_attempt
from lifecycled.store.results import add_drift_result, add_evaluation, add_quality_result
from lifecycled.store.retirement import put_scores
from lifecycled.store.serving import (
    add_snapshot,
    put_scrape,
    put_serving_state,
    record_job_run,
    record_source,
)
from lifecycled.store.updates import create_in
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.stores import open_test_store

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "fixtures" / "expected_metrics.txt"
T0 = 1_790_000_000.0

pytestmark = pytest.mark.usefixtures("both_engines")


def fixed_store(tmp_path: Path) -> Store:
    """A small, fully deterministic state: every family has at least one series."""
    store = open_test_store(tmp_path, "golden.db")
    thresholds = {"min_accuracy": 0.85, "max_latency_p99_seconds": 0.1, "min_throughput_rps": 10.0,
                  "max_error_ratio": 0.01, "max_memory_bytes": 2.0**31, "max_cpu_ratio": 0.8}
    for name, version, status in (("credit_scoring", "1", Status.PRODUCTION),
                                  ("fraud_detection", "2", Status.PRODUCTION),
                                  ("legacy_score", "1", Status.DEPRECATED)):
        spec = ModelSpec(ModelRef(name, version), owner_team="risk_ml",
                         business_domain="credit_risk", model_type="classification",
                         framework="python", thresholds=thresholds)
        store.register(spec, Status.DEVELOPING if status == Status.DEPRECATED else status,
                       actor="test", reason="golden", now=T0)
    legacy = ModelRef("legacy_score", "1")
    for step in (Status.TESTING, Status.STAGING, Status.PRODUCTION, Status.DEPRECATED,
                 Status.RETIRED):
        store.set_status(legacy, step, actor="test", reason="golden", now=T0 + 60)
    credit = ModelRef("credit_scoring", "1")
    values = {"interval_seconds": 300.0, "requests_per_second": 12.5,
              "inferences_per_second": 50.0, "error_ratio": 0.02, "latency_mean_seconds": 0.004,
              "latency_p50_seconds": 0.003, "latency_p95_seconds": 0.009,
              "latency_p99_seconds": 0.12, "accuracy": 0.8}
    with store.write() as conn:
        put_scrape(conn, "local", T0, {"at": T0, "cpu_utilization": 0.35,
                                       "memory_used_bytes": 6.0e9, "models": []})
        put_serving_state(conn, credit, "local", "ready", "", T0)
        put_serving_state(conn, ModelRef("fraud_detection", "2"), "local", "unavailable",
                          "unloaded", T0)
        put_serving_state(conn, legacy, "local", "unavailable", "unloaded", T0)
        snapshot_id = add_snapshot(conn, credit, T0 + 300, values, {"requests": 3750})
        record_source(conn, "triton:local", ok=True, now=T0 + 300)
        record_source(conn, "prometheus", ok=False, now=T0 + 300, error="connection refused")
    add_evaluation(store, credit, evaluation_to_json(evaluate(values, thresholds)),
                   snapshot_id=snapshot_id, now=T0 + 310)
    rng = np.random.default_rng(0)
    reference = {"amount": rng.normal(0, 1, 500), "channel": np.array(["web", "pos"] * 250,
                                                                        dtype=object),
                 "constant": np.full(500, 1.0)}
    current = {"amount": rng.normal(1, 1, 500), "channel": np.array(["web"] * 300 + ["pos"] * 200,
                                                                     dtype=object),
               "constant": np.full(500, 1.0)}
    result = compare(build_profile(reference), current, DriftPolicy())
    segments = [{"segment": "channel=web", "column": "channel", "value": "web",
                 "current_rows": 300, "reference_rows": 250, "severity": "high",
                 "drifted_share": 0.5},
                {"segment": "channel=other", "column": "channel", "value": "other",
                 "current_rows": 3, "reference_rows": 0, "severity": "unknown",
                 "drifted_share": None}]
    add_drift_result(store, credit, {**result_to_json(result), "current_rows": 500,
                                     "segments": segments}, now=T0 + 400)
    add_quality_result(store, credit, {"samples": 1000, "accuracy": 0.8, "precision": 0.75,
                                       "recall": 0.7, "f1": 0.72, "roc_auc": 0.81,
                                       "concept": {"severity": "medium"}}, now=T0 + 300)
    fraud = ModelRef("fraud_detection", "2")  # a prediction log, its labels not all in yet
    with store.write() as conn:
        add_predictions_in(conn, fraud, [Prediction(str(i), T0 + i, "1", None)
                                         for i in range(4)], T0 + 300)
        add_labels_in(conn, fraud.name, [Label("0", "1", T0 + 90), Label("1", "0", T0 + 191),
                                         Label("no-such-id", "1", T0 + 200)], T0 + 300)
    add_quality_result(store, fraud, {"samples": 2, "source": "predictions and labels",
                                      "labels": {"predictions": 4, "labelled": 2,
                                                 "coverage": 0.5, "min_coverage": 0.8,
                                                 "lag_p50_seconds": 140.5,
                                                 "lag_p95_seconds": 185.05, "judged": False,
                                                 "provisional": {"accuracy": 0.5}},
                                      "estimate": {"n": 2, "trusted": True, "accuracy": 0.7,
                                                   "accuracy_lower": 0.6,
                                                   "accuracy_upper": 0.8},
                                      "estimation": {"error": {"accuracy": -0.05}},
                                      "segments": [
                                          {"segment": "region=eu", "predictions": 3,
                                           "labelled": 2, "coverage": 2 / 3, "judged": False,
                                           "estimate": {"trusted": False, "reason": "few"}},
                                          {"segment": "region=other", "predictions": 1,
                                           "labelled": 1, "coverage": 1.0, "judged": True,
                                           "accuracy": 1.0, "roc_auc": None,
                                           "estimate": {"trusted": True, "accuracy": 0.9,
                                                        "accuracy_lower": 0.8,
                                                        "accuracy_upper": 1.0}}]},
                       now=T0 + 300)
    losses = ModelRef("loss_given_default", "3")  # a regression model, judged by its errors
    store.register(ModelSpec(losses, owner_team="risk_ml", business_domain="credit_risk",
                             model_type="regression", framework="python",
                             thresholds={"max_mae": 0.05, "min_r_squared": 0.3,
                                         "max_abs_mean_error": 0.01}),
                   Status.PRODUCTION, actor="test", reason="golden", now=T0)
    add_quality_result(store, losses, {"model_type": "regression", "samples": 400,
                                       "mae": 0.061, "rmse": 0.083, "mape": 0.21,
                                       "r2": 0.42, "mean_error": -0.004,
                                       "concept": {"severity": "low"},
                                       "estimate": {"method": "DLE", "n": 120, "trusted": True,
                                                    "mae": 0.058, "mae_lower": 0.05,
                                                    "mae_upper": 0.066, "rmse": 0.08,
                                                    "rmse_lower": 0.07, "rmse_upper": 0.09},
                                       "segments": [
                                           {"segment": "product=mortgage", "predictions": 250,
                                            "labelled": 250, "coverage": 1.0, "judged": True,
                                            "mae": 0.05, "rmse": 0.07, "mape": 0.2, "r2": 0.5,
                                            "mean_error": 0.002}]}, now=T0 + 300)
    store.subscriptions = {"ci": ("model.update_requested",)}
    with store.write() as conn:
        job_id = create_in(conn, credit, "2", "performance_degradation", {"severity": "high"},
                           "dispatched", T0 + 500)
        store.emit_in(conn, "model.update_requested", credit, {"job_id": job_id}, T0 + 500)
    (delivery,) = due(store, T0 + 600, 10)
    record_attempt(store, delivery, now=T0 + 600, status=500, error="HTTP 500", outcome="retry",
                   next_attempt_at=T0 + 700)
    put_scores(store, [(ModelRef("fraud_detection", "2"), {
        "score": 0.65, "candidate": True, "components": {}, "reasons": ["deprecated"]})], T0 + 700)
    record_job_run(store, "collect", started=T0, duration=1.5, error=None)
    record_job_run(store, "discovery", started=T0, duration=0.5, error="SourceError: down")
    return store


def render(store: Store, replica: dict[str, Any] | None = None) -> str:
    registry = CollectorRegistry()
    registry.register(LifecycleCollector(store, lambda: ["ci"],
                                         lambda: {"collect": 300.0, "discovery": 60.0},
                                         lambda: StoreWrites(True, 0), lambda: replica))
    return generate_latest(registry).decode()


def replica_state(leader: bool) -> dict[str, Any]:
    return {"replica": "a", "holder": "a/1/x", "leader": leader, "epoch": 3 if leader else None,
            "acquisitions": 2, "takeovers": 1, "claims_taken_over": 4,
            "work_taken_over": {"collect": 0, "drift": 2}}


def test_golden_exposition(tmp_path: Path) -> None:
    """The golden file names the Python running the test as PYTHON (build_info's python label)."""
    text = render(fixed_store(tmp_path)).replace(
        f'python="{platform.python_version()}"', 'python="PYTHON"')
    if os.environ.get("LIFECYCLED_REGENERATE"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()


def test_promtool_finds_nothing_to_lint() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed (Debian package prometheus; make test installs it)")
    proc = subprocess.run([promtool, "check", "metrics"], input=GOLDEN.read_text(),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "" and proc.stderr.strip() == "", (
        proc.stdout + proc.stderr)


def exported_names(text: str) -> set[str]:
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name + ("_total" if family.type == "counter" else ""))
    return names


def test_the_catalogue_declares_exactly_the_exported_families(tmp_path: Path) -> None:
    """The metrics reference is generated from the catalogue: a fixed state that exercises every
    collector (and a leader among replicas) exports each declared family, and nothing else."""
    clustered = render(fixed_store(tmp_path), replica_state(leader=True))
    declared = {family.exposed for family in CATALOGUE}
    assert declared == exported_names(GOLDEN.read_text()) | exported_names(clustered)


def test_a_standby_exports_itself_and_not_the_fleet(tmp_path: Path) -> None:
    """Among replicas the leader exports the fleet's state once; a standby only its own."""
    store = fixed_store(tmp_path)
    leader = render(store, replica_state(leader=True))
    standby = render(store, replica_state(leader=False))
    alone = render(store)
    fleet = exported_names(alone) - {"lifecycled_build_info", "lifecycled_state_store_writable",
                                     "lifecycled_state_store_write_failures_total",
                                     "lifecycled_exporter_collector_success",
                                     "lifecycled_task_interval_seconds"}
    assert fleet <= exported_names(leader) and not fleet & exported_names(standby)
    assert "lifecycled_leader 1.0" in leader and "lifecycled_leader 0.0" in standby
    assert "lifecycled_leader_epoch 3.0" in leader and "lifecycled_leader_epoch" not in standby
    assert 'lifecycled_replica_info{holder="a/1/x",replica="a"} 1.0' in standby
    assert "lifecycled_claims_taken_over_total 4.0" in standby
    assert 'lifecycled_work_claims_taken_over_total{task="drift"} 2.0' in standby
    assert 'lifecycled_work_claims_held{task="collect"} 0.0' in standby
    promtool = shutil.which("promtool")
    assert promtool, "promtool (Debian prometheus) is required"
    for text in (leader, standby):
        proc = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 0 and not (proc.stdout + proc.stderr).strip(), proc.stdout


def test_unknown_values_are_absent_and_retired_models_drop_out(tmp_path: Path) -> None:
    text = render(fixed_store(tmp_path))
    assert 'lifecycled_model_memory_bytes{' not in text  # never reported: absent, not 0
    assert 'lifecycled_model_serving_state{endpoint="local",model="legacy_score"' not in text
    assert 'lifecycled_model_status{model="legacy_score",status="retired",version="1"} 1.0' in text
    assert 'lifecycled_model_threshold_breached{model="credit_scoring",threshold="max_memory_bytes"' \
        not in text  # unknown value: neither breached nor passed
    assert ('lifecycled_model_threshold_breached{model="credit_scoring",'
            'threshold="min_accuracy",version="1"} 1.0') in text
    assert 'lifecycled_model_feature_unjudged{feature="constant",model="credit_scoring",' \
           'reason="constant",version="1"} 1.0' in text


def test_a_new_drift_result_replaces_the_reused_feature_samples(tmp_path: Path) -> None:
    """Per-feature samples are built once per stored result and reused between scrapes; a newer
    result must show instead, and nothing of the old one may remain."""
    store = fixed_store(tmp_path)
    collector = LifecycleCollector(store)
    registry = CollectorRegistry()
    registry.register(collector)

    def psi_of(text: str) -> list[float]:
        return [s.value for family in text_string_to_metric_families(text)
                for s in family.samples
                if s.name == "lifecycled_model_drift_statistic" and s.labels["test"] == "psi"
                and s.labels["feature"] == "amount"]

    first = generate_latest(registry).decode()
    assert generate_latest(registry).decode() == first  # the reused samples render the same
    rng = np.random.default_rng(1)
    reference, current = {"amount": rng.normal(0, 1, 500)}, {"amount": rng.normal(3, 1, 500)}
    result = compare(build_profile(reference), current, DriftPolicy())
    add_drift_result(store, ModelRef("credit_scoring", "1"), result_to_json(result), now=T0 + 900)
    second = generate_latest(registry).decode()
    assert psi_of(second) == [pytest.approx(result.features[0].psi)]
    assert psi_of(first) != psi_of(second)
    assert 'feature="channel"' not in second  # the new result has no such feature
    assert len(collector.decodings.drift_samples) == 4  # one result, four per-feature families


def test_no_label_clashes_with_a_scrape_or_an_alert(tmp_path: Path) -> None:
    """A default scrape adds `job` and `instance`, and alerts carry `severity`: an exported label
    of those names would be renamed `exported_job` or shadow the alert's own."""
    text = render(fixed_store(tmp_path))
    names = {name for family in text_string_to_metric_families(text)
             for sample in family.samples for name in sample.labels}
    assert {"task", "level"} <= names
    assert not names & {"job", "instance", "severity"}


def test_a_retired_version_still_served_is_exported(tmp_path: Path) -> None:
    """Retired versions kept only status and info, so nothing could alert on one that Triton
    still serves (the retirement only asked its pipeline to unload it, or it was reloaded)."""
    store = fixed_store(tmp_path)
    legacy = ModelRef("legacy_score", "1")
    assert "lifecycled_model_retired_but_serving{" not in render(store)  # unavailable: fine
    with store.write() as conn:
        put_serving_state(conn, legacy, "local", "ready", "", T0 + 60)
    assert ('lifecycled_model_retired_but_serving{endpoint="local",model="legacy_score",'
            'version="1"} 1.0') in render(store)


def test_host_gauges_are_absent_while_their_endpoint_is_down(tmp_path: Path) -> None:
    """A Triton host's CPU is exported from its last scrape only while the endpoint answers: a
    down endpoint's last value would keep LifecycledTritonHostCpuHigh firing on old data."""
    store = fixed_store(tmp_path)
    assert 'lifecycled_triton_cpu_utilization_ratio{endpoint="local"} 0.35' in render(store)
    with store.write() as conn:
        record_source(conn, "triton:local", ok=False, now=T0 + 600, error="connection refused")
    text = render(store)
    assert "lifecycled_triton_cpu_utilization_ratio{" not in text
    assert "lifecycled_triton_memory_used_bytes{" not in text


def test_a_failing_collector_costs_its_own_families_only(tmp_path: Path) -> None:
    """One collector that raised blanked the whole of /metrics. Here the update jobs' table is
    gone (a damaged store): the other families are exported as before, the updates collector's
    are missing, and lifecycled_exporter_collector_success says which one failed."""
    store = fixed_store(tmp_path)
    whole = render(store)
    with store.write() as conn:
        conn.execute("DROP TABLE update_job_log")
        conn.execute("DROP TABLE update_jobs")
    broken = render(store)
    assert 'lifecycled_exporter_collector_success{collector="updates"} 0.0' in broken
    assert 'lifecycled_exporter_collector_success{collector="drift"} 1.0' in broken
    updates = {n for n in exported_names(whole)
               if n.startswith(("lifecycled_update_job", "lifecycled_model_update_job"))}
    assert updates and not updates & exported_names(broken)
    assert exported_names(broken) == exported_names(whole) - updates


def test_every_collector_is_one_function_of_the_scrape_in_one_table() -> None:
    """One contract: ``collect(scrape) -> Iterator[Metric]``, each collector registered once in
    COLLECTORS under the name its success gauge carries."""
    import inspect

    from lifecycled.exporter import COLLECTORS
    from lifecycled.exporter.scrape import Scrape

    names = [c.name for c in COLLECTORS]
    assert len(names) == len(set(names))
    for collector in COLLECTORS:
        (parameter,) = inspect.signature(collector.collect).parameters.values()
        assert parameter.annotation in (Scrape, "Scrape"), collector.name
        assert collector.scope in ("own", "replica", "fleet")


def test_a_registry_that_cannot_be_listed_fails_every_collector_that_needs_it(
        tmp_path: Path) -> None:
    """Without the registry no model's series can be told live or retired: those collectors
    fail (none exports a retired model's series by mistake), the others still answer."""
    store = fixed_store(tmp_path)
    with store.write() as conn:
        conn.execute("ALTER TABLE models RENAME TO models_away")
    text = render(store)
    for name in ("registry", "serving", "quality", "checks", "drift", "updates", "retirement"):
        assert f'lifecycled_exporter_collector_success{{collector="{name}"}} 0.0' in text
    for name in ("daemon", "hosts", "webhooks", "tasks"):
        assert f'lifecycled_exporter_collector_success{{collector="{name}"}} 1.0' in text
    assert "lifecycled_model_info" not in exported_names(text)
