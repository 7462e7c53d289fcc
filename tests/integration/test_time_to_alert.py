"""Time to alert, measured end to end. Two real Tritons, the daemon, a real Prometheus with a
default scrape config (jobs ``lifecycled`` and ``triton``, the labels a stock scrape adds) running
the shipped rules, and a real Alertmanager with the shipped routing sending to a local Slack
stand-in. Every schedule, the scrape and evaluation intervals are 1 s and each ``for`` is scaled
from minutes to seconds. Each fault is injected at a known moment; its alert must reach Slack no
sooner than its own ``for`` and no later than the manual's worst case, computed by the same
formula (``lifecycled.alerting.time_to_alert``) with the scaled numbers, plus a fixed allowance."""

from __future__ import annotations

import base64
import csv
import json
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import requests
from lifecycled.alerting import time_to_alert
from lifecycled.settings import ScheduleSettings

from devtools import triton
from devtools.alerting import alertmanager_config
from tests.helpers import ROOT, endpoint, wait_for, write_outcomes
from tests.integration.test_daemon import FAST, Daemon, daemon_config
from tests.sinks import HttpSink

SCHEDULE = {**FAST, "deliver": "1s", "updates": "1s"}
SCRAPE = EVALUATION = 1.0
FOR_SCALE = 1 / 60  # for: 5m becomes 5s
# Beyond the formula: Triton refreshes its metrics every 2 s, a task pass and the exposition
# render take their time, and Alertmanager waits group_wait (1 s here) before the first message.
ALLOWANCE = 6.0
INFO = {"LifecycledUnmanagedModel"}  # routed to no receiver: timed at Alertmanager

MODELS = (*triton.SEED_MODELS,
          triton.ModelSpec("churn", "1", 4, (0.1, 0.1, 0.1, 0.1)),
          triton.ModelSpec("pricing", "1", 4, (0.2, 0.2, 0.2, 0.2)),
          triton.ModelSpec("legacy", "1", 4, (0.3, 0.3, 0.3, 0.3)),
          triton.ModelSpec("batch_scoring", "1", 4, (0.5, 0.5, 0.5, 0.5)))
EDGE = (triton.ModelSpec("edge_scoring", "1", 4, (0.4, 0.4, 0.4, 0.4)),)


def sample(path: Path, shift: float, seed: int) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["x"])
        writer.writerows([[v] for v in np.random.default_rng(seed).normal(shift, 1, 2000)])
    temporary.replace(path)  # the sample pipeline writes a new file whole


def scaled_rules(path: Path) -> Path:
    rules = (ROOT / "alerting" / "rules" / "lifecycled.yml").read_text()

    def scale(match: re.Match[str]) -> str:
        seconds = int(match.group(2)) * {"m": 60, "h": 3600}[match.group(3)] * FOR_SCALE
        return f"{match.group(1)}for: {round(seconds)}s"

    path.write_text(re.sub(r"^(\s+)for: (\d+)([mh])$", scale, rules, flags=re.M))
    return path


def test_each_fault_reaches_slack_within_its_worst_case(
        triton_factory: Any, servers: Any, cli: Any, tmp_path: Path) -> None:
    main, edge = triton_factory("t1", MODELS), triton_factory("t2", EDGE)
    slack, hook, audit = HttpSink(), HttpSink(), HttpSink()
    stop = threading.Event()
    faults = {"errors": threading.Event(), "slow": threading.Event(),
              "no traffic": threading.Event()}
    (tmp_path / "slack_url").write_text(slack.url)
    (tmp_path / "smtp_password").write_text("unused")
    alertmanager = servers("alertmanager", alertmanager_config(
        tmp_path / "slack_url", "127.0.0.1:9", tmp_path / "smtp_password"))
    outcomes, reference, current, fraud_current = (
        tmp_path / n for n in ("outcomes.csv", "r.csv", "c.csv", "fraud.csv"))
    write_outcomes(outcomes, accuracy=0.97)
    sample(reference, 0.0, 1)
    sample(current, 0.0, 2)
    sample(fraud_current, 0.0, 4)
    quiet = {"thresholds": {"min_throughput": 0}}  # the test sends little traffic
    config = daemon_config(
        tmp_path / "daemon", models_d=False, schedule=SCHEDULE,
        sources={"triton": [endpoint("local", main, allow_model_control=True),
                            endpoint("edge", edge)]},
        models={**{m.name: {**quiet, "owner_team": "risk_ml"} for m in (*MODELS, *EDGE)},
                "credit_scoring": {**quiet, "owner_team": "risk_ml",
                                   "quality": {"outcomes": str(outcomes)},
                                   "drift": {"reference": str(reference),
                                             "current": str(current)}},
                "batch_scoring": {"thresholds": {"min_throughput": 2}, "owner_team": "risk_ml"},
                "fraud_detection": {**quiet, "owner_team": "fraud_ml",
                                    "drift": {"reference": str(reference),
                                              "current": str(fraud_current)}}},
        webhooks={"ops": {"url": hook.url, "secret_env": "OPS_SECRET"},
                  "audit": {"url": audit.url, "secret_env": "OPS_SECRET", "max_attempts": 1}})
    secret = "whsec_" + base64.b64encode(b"t" * 32).decode()
    daemon = Daemon(config, {**os.environ, "OPS_SECRET": secret}, tmp_path / "daemon.log")
    prometheus = servers("prometheus", {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(scaled_rules(tmp_path / "rules.yml"))],
        "alerting": {"alertmanagers": [{"static_configs": [
            {"targets": [f"127.0.0.1:{alertmanager.port}"]}]}]},
        "scrape_configs": [
            {"job_name": "lifecycled", "static_configs": [
                {"targets": [f"127.0.0.1:{daemon.port}"]}]},
            {"job_name": "triton", "static_configs": [
                {"targets": [s.metrics_url.split("/")[2] for s in (main, edge)]}]}]})

    def traffic() -> None:
        while not stop.is_set():
            for model in ("credit_scoring", "fraud_detection", "churn"):
                triton.infer(main.url, model, [[0.1, 0.2, 0.3, 0.4]])
            if not faults["no traffic"].is_set():  # its clients are gone after the fault
                triton.infer(main.url, "batch_scoring", [[0.1, 0.2, 0.3, 0.4]])
            stop.wait(0.05)

    def failing_traffic() -> None:
        # its own steady stream: every collect window of the burst holds failures, however the
        # other clients are slowed down on a busy machine
        while not stop.is_set():
            if faults["errors"].is_set():
                triton.infer(main.url, "fraud_detection", [[9e6, 0, 0, 0]])
            stop.wait(0.02)

    def slow_traffic() -> None:
        while not stop.is_set():
            row = [4242.0, 0, 0, 0] if faults["slow"].is_set() else [0.1, 0.2, 0.3, 0.4]
            triton.infer(main.url, "risk_assessment", [row])
            stop.wait(0.02)

    def query(promql: str) -> list[dict[str, Any]]:
        reply = requests.get(f"{prometheus.url}/api/v1/query", params={"query": promql},
                             timeout=10).json()
        return list(reply["data"]["result"])

    def active_alerts() -> set[str]:
        alerts = requests.get(f"{prometheus.url}/api/v1/alerts", timeout=10).json()
        return {a["labels"]["alertname"] for a in alerts["data"]["alerts"]}

    seen_by_alertmanager: dict[str, float] = {}

    def watch_alertmanager() -> None:  # info alerts notify nobody: time their arrival there
        while not stop.is_set():
            try:
                alerts = requests.get(f"{alertmanager.url}/api/v2/alerts", timeout=5).json()
            except requests.RequestException:
                alerts = []
            for alert in alerts:
                seen_by_alertmanager.setdefault(json.dumps(alert["labels"], sort_keys=True),
                                                time.monotonic())
            stop.wait(0.1)

    def arrived(alert: str, key: str, after: float) -> float | None:
        """When the alert first reached its sink after the fault (a daemon slow to start, say,
        may have fired LifecycledAbsent before any fault)."""
        for when, _, body in slack.arrivals:
            text = json.dumps(body)
            if when >= after and "FIRING" in text and alert in text and key in text:
                return when
        if alert in INFO:
            return next((when for labels, when in seen_by_alertmanager.items()
                         if when >= after and alert in labels and key in labels), None)
        return None

    threads = [threading.Thread(target=f, daemon=True)
               for f in (traffic, failing_traffic, slow_traffic, watch_alertmanager)]
    for thread in threads:
        thread.start()
    try:
        daemon.wait_until(daemon.ready, "readyz")
        # warm: every version known to Prometheus, Triton's rates flowing, a first drift check
        wait_for(lambda: len(query('lifecycled_model_info{job="lifecycled"}')) == 8,
                 "eight versions in Prometheus", timeout=60)
        wait_for(lambda: query('lifecycled_model_throughput_requests_per_second'
                               '{model="batch_scoring"} > 2'), "batch_scoring's traffic",
                 timeout=60)
        wait_for(lambda: query('model_version:nv_inference_request_success:rate5m'
                               '{model="fraud_detection"} > 0'), "Triton's rates", timeout=60)
        wait_for(lambda: len(query('lifecycled_model_drift_severity{level="low"} == 1')) == 2,
                 "a first drift check of both models", timeout=60)
        wait_for(lambda: query('lifecycled_model_latency_p99_seconds{model="risk_assessment"}'),
                 "a latency for risk_assessment", timeout=60)
        retired = cli("retire", "legacy:1", "--reason", "replaced", config=config)
        assert retired.code == 0, retired.out + retired.err  # lifecycled unloaded it
        wait_for(lambda: query('lifecycled_model_status{model="legacy",status="retired"} == 1'),
                 "legacy retired in Prometheus", timeout=60)
        measured_alerts = {
            "LifecycledTritonErrorRatioHigh", "LifecycledModelErrorRatioHigh",
            "LifecycledModelLatencyP99High", "LifecycledModelAccuracyLow",
            "LifecycledModelFailed", "LifecycledRetiredModelServing", "LifecycledSourceDown",
            "LifecycledWebhookEndpointDisabled", "LifecycledModelDataDriftCritical",
            "LifecycledAbsent", "LifecycledModelDriftUnknown", "LifecycledWebhookDeadLetters",
            "LifecycledUnmanagedModel", "LifecycledModelThroughputLow"}
        before = active_alerts() & measured_alerts
        assert not before, f"already pending or firing before any fault: {before}"

        injected: dict[str, float] = {}
        cases: list[tuple[str, str, str]] = []  # (fault, alert, key in the Slack message)

        def inject(fault: str, alert: str, key: str, act: Callable[[], object]) -> None:
            injected[fault] = time.monotonic()
            act()
            cases.append((fault, alert, key))

        inject("error burst", "LifecycledTritonErrorRatioHigh", "fraud_detection:2",
               faults["errors"].set)
        cases.append(("error burst", "LifecycledModelErrorRatioHigh", "fraud_detection:2"))
        inject("latency", "LifecycledModelLatencyP99High", "risk_assessment:3",
               faults["slow"].set)
        inject("traffic stops", "LifecycledModelThroughputLow", "batch_scoring:1",
               faults["no traffic"].set)
        inject("accuracy drop", "LifecycledModelAccuracyLow", "credit_scoring:1",
               lambda: write_outcomes(outcomes, accuracy=0.60))
        inject("drift critical", "LifecycledModelDataDriftCritical", "credit_scoring:1",
               lambda: sample(current, 3.0, 3))
        inject("empty sample window", "LifecycledModelDriftUnknown", "fraud_detection:2",
               lambda: fraud_current.write_text("x\n"))  # the sample pipeline wrote nothing

        def shadow() -> None:  # a name Triton allows and the registry cannot hold
            triton.write_model(main.repository, triton.ModelSpec("_shadow", "1", 4, (0.1,) * 4))
            loaded = requests.post(f"{main.url}/v2/repository/models/_shadow/load", json={},
                                   timeout=60)
            assert loaded.status_code == 200, loaded.text

        inject("unmanaged model", "LifecycledUnmanagedModel", '"_shadow"', shadow)
        inject("model unloaded", "LifecycledModelFailed", "churn:1", lambda: requests.post(
            f"{main.url}/v2/repository/models/churn/unload", json={}, timeout=30))

        def failed_deploy() -> None:  # a new build of pricing that cannot load
            requests.post(f"{main.url}/v2/repository/models/pricing/unload", json={}, timeout=30)
            (main.repository / "pricing" / "1" / "model.py").write_text("raise ImportError\n")
            loaded = requests.post(f"{main.url}/v2/repository/models/pricing/load", json={},
                                   timeout=60)
            assert loaded.status_code == 400, loaded.text

        inject("model failed", "LifecycledModelFailed", "pricing:1", failed_deploy)
        inject("source down", "LifecycledSourceDown", "triton:edge", edge.stop)
        hook.status = 410  # the receiver is gone; the status changes above send it events
        audit.status = 500  # and this one fails (one attempt allowed: a dead letter at once)

        inject("retired but serving", "LifecycledRetiredModelServing", "legacy:1",
               lambda: requests.post(f"{main.url}/v2/repository/models/legacy/load", json={},
                                     timeout=60))  # someone deploys the retired version again
        gone = wait_for(lambda: next((w for w, s, _ in hook.arrivals if s == 410), None),
                        "a delivery answered 410", timeout=30)
        injected["webhook 410"] = gone
        cases.append(("webhook 410", "LifecycledWebhookEndpointDisabled", "Endpoint ops"))
        injected["webhook 500"] = wait_for(
            lambda: next((w for w, s, _ in audit.arrivals if s == 500), None),
            "a delivery answered 500", timeout=30)
        cases.append(("webhook 500", "LifecycledWebhookDeadLetters", "endpoint audit"))

        expected = time_to_alert(ScheduleSettings.model_validate(SCHEDULE).model_dump(),
                                 SCRAPE, EVALUATION, FOR_SCALE)
        worst = {t.alert: t.seconds for t in expected}
        fors = {t.alert: t.hold for t in expected}
        longest = max(worst[alert] for _, alert, _ in cases) + ALLOWANCE
        try:
            wait_for(lambda: all(arrived(a, k, injected[f]) for f, a, k in cases),
                     "every alert in Slack", timeout=longest + 30)
        except AssertionError:
            missing = [(f, a) for f, a, k in cases if not arrived(a, k, injected[f])]
            raise AssertionError(f"no Slack message for {missing}; Prometheus has "
                                 f"{sorted(active_alerts())}\n{daemon.log()[-3000:]}") from None

        injected["daemon down"] = time.monotonic()
        daemon.process.kill()
        cases.append(("daemon down", "LifecycledAbsent", "LifecycledAbsent"))
        wait_for(lambda: arrived("LifecycledAbsent", "", injected["daemon down"]),
                 "the absent alert",
                 timeout=worst["LifecycledAbsent"] + ALLOWANCE + 30)

        rows = []
        for fault, alert, key in cases:
            took = float(arrived(alert, key, injected[fault]) or 0) - injected[fault]
            rows.append((fault, alert, took, fors[alert], worst[alert]))
        print("\n" + "\n".join(f"{f:22} {a:36} {t:6.1f} s (for {h:.0f} s, worst {w:.0f} s)"
                               for f, a, t, h, w in rows))
        for fault, alert, took, hold, bound in rows:
            assert hold <= took <= bound + ALLOWANCE, (
                f"{fault}: {alert} after {took:.1f} s, expected between its for ({hold:.0f} s)"
                f" and the worst case {bound:.0f} s + {ALLOWANCE:.0f} s")
    finally:
        stop.set()
        if daemon.process.poll() is None:
            daemon.stop()
        for sink in (slack, hook, audit):
            sink.stop()
