"""End to end: a real Triton, the daemon, a real Prometheus scraping both and evaluating the
shipped rules, and a real Alertmanager with the shipped routing pointed at local stand-ins for
Slack and the mail relay. A breach makes the right alert arrive at the right sink; fixing it
resolves it. Every PromQL expression of the rules and dashboards runs on the live Prometheus."""

from __future__ import annotations

import base64
import csv
import json
import os
import re
import threading
from pathlib import Path
from typing import Any

import requests

from devtools import triton
from devtools.alerting import alertmanager_config
from tests.helpers import ROOT, endpoint, wait_for, write_outcomes
from tests.integration.test_daemon import Daemon, daemon_config
from tests.sinks import HttpSink, SmtpSink
from tests.test_alerting import expressions

# Empty by nature in this run (nothing is a retirement candidate, nothing is dead)
# no comparison runs here: tests/integration/test_compare.py checks that row's series
MAY_BE_EMPTY = {"Retirement candidates", "Champion and challenger: requests and failures",
                "Champion and challenger: evidence"}




def sample(path: Path, shift: float) -> str:
    import numpy as np
    rng = np.random.default_rng(int(shift * 10))
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["x", "channel"])
        writer.writerows([[v, "web" if i % 2 else "app"]
                          for i, v in enumerate(rng.normal(shift, 1, 500))])
    return str(path)




def losses(folder: Path) -> str:
    """A regression model's outcomes for any version (``{version}`` in the path): predicted
    against realized losses, within the model's limits."""
    import numpy as np
    rng = np.random.default_rng(7)
    realized = rng.lognormal(5, 0.5, 400)
    with (folder / "losses_3.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([["prediction", "label"],
                                      *zip(realized * rng.normal(1, 0.05, 400), realized,
                                           strict=True)])
    return str(folder / "losses_{version}.csv")


def as_grafana_would(expr: str) -> str:
    """A dashboard query with its variables set: this run's scrape job, every instance, model
    and version (All), and a rate interval."""
    for variable, value in (("$job", "lifecycled"), ("$instance", ".*"), ("$model", ".+"),
                            ("$version", ".+"), ("$__rate_interval", "1m")):
        expr = expr.replace(variable, value)
    return expr


def test_breach_alerts_route_to_slack_and_email_and_resolve(
        triton_factory: Any, servers: Any, tmp_path: Path) -> None:
    server = triton_factory()
    slack, mail = HttpSink(), SmtpSink()
    stop = threading.Event()
    try:
        (tmp_path / "slack_url").write_text(slack.url)
        (tmp_path / "smtp_password").write_text("unused")
        alertmanager = servers("alertmanager", alertmanager_config(
            tmp_path / "slack_url", mail.address, tmp_path / "smtp_password"))
        rules = (ROOT / "alerting" / "rules" / "lifecycled.yml").read_text()
        fast_rules = tmp_path / "rules.yml"  # the shipped rules with short `for`
        fast_rules.write_text(re.sub(r"^(\s+)for: \S+$", r"\1for: 2s", rules, flags=re.M))
        quality = tmp_path / "outcomes.csv"
        write_outcomes(quality, accuracy=0.60)
        secret = "whsec_" + base64.b64encode(b"e" * 32).decode()
        config = daemon_config(tmp_path / "cfg", models_d=False,
                               sources={"triton": [endpoint("local", server)]},
                               models={"credit_scoring": {
                                   "owner_team": "risk_ml", "business_domain": "credit_risk",
                                   "quality": {"outcomes": str(quality)},
                                   "segment_by": ["channel"],
                                   "drift": {"reference": sample(tmp_path / "r.csv", 0.0),
                                             "current": sample(tmp_path / "c.csv", 1.5)}},
                                       "fraud_detection": {"owner_team": "fraud_ml",
                                                           "business_domain": "fraud"},
                                       # a regression model, for its panels
                                       "risk_assessment": {
                                           "owner_team": "risk_ml",
                                           "business_domain": "credit_risk",
                                           "model_type": "regression",
                                           "thresholds": {"max_mae": 50, "min_r2": 0.1},
                                           "quality": {"outcomes": losses(tmp_path)}}},
                               webhooks={"ops": {"url": slack.url.replace("/slack", "/hooks"),
                                                 "secret_env": "OPS_SECRET"}})
        daemon = Daemon(config, {**os.environ, "OPS_SECRET": secret}, tmp_path / "daemon.log")
        prometheus = servers("prometheus", {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(fast_rules)],
            "alerting": {"alertmanagers": [{"static_configs": [
                {"targets": [f"127.0.0.1:{alertmanager.port}"]}]}]},
            "scrape_configs": [
                {"job_name": "triton", "static_configs": [
                    {"targets": [server.metrics_url.split("/")[2]]}]},
                {"job_name": "lifecycled", "static_configs": [
                    {"targets": [f"127.0.0.1:{daemon.port}"]}]}]})

        def traffic() -> None:
            while not stop.is_set():
                triton.infer(server.url, "credit_scoring", [[0.1, 0.2, 0.3, 0.4]] * 2)
                triton.infer(server.url, "fraud_detection", [[0.5, 0.5, 0.5, 0.5]])
                triton.infer(server.url, "fraud_detection", [[9e6, 0, 0, 0]])  # 50 % errors
                stop.wait(0.05)

        threading.Thread(target=traffic, daemon=True).start()

        def slack_text() -> str:
            return json.dumps(slack.received)

        try:
            wait_for(lambda: "LifecycledModelAccuracyLow" in slack_text() and "credit_scoring" in
                     slack_text(), "the accuracy alert in Slack")
        except AssertionError:
            alerts = requests.get(f"{prometheus.url}/api/v1/alerts", timeout=10).json()
            metrics = requests.get(daemon.url("/metrics"), timeout=10).text
            raise AssertionError(json.dumps(alerts)[:3000] + "\n" + slack_text()[:2000] + "\n"
                                 + alertmanager.log_path.read_text()[-3000:] + "\n"
                                 + "\n".join(line for line in metrics.splitlines()
                                             if "accuracy" in line or "breached" in line)
                                 ) from None
        accuracy = next(m for m in slack.received
                        if "LifecycledModelAccuracyLow" in json.dumps(m))
        assert accuracy["channel"] == "#risk-ml-alerts"
        assert "credit_scoring version 1 accuracy is 0.600" in json.dumps(accuracy)
        wait_for(lambda: any("LifecycledModelErrorRatioHigh" in m and "fraud_detection" in m
                             for m in mail.messages), "the critical error alert by email")
        assert any("#fraud-ml-alerts" in json.dumps(m) and "LifecycledModelErrorRatioHigh" in
                   json.dumps(m) for m in slack.received)
        assert not any("LifecycledModelAccuracyLow" in m for m in mail.messages)  # warning: Slack

        def run_query(expr: str) -> list[dict[str, Any]]:
            body = requests.get(f"{prometheus.url}/api/v1/query",
                                params={"query": as_grafana_would(expr)}, timeout=10).json()
            assert body["status"] == "success", (expr, body)
            return list(body["data"]["result"])

        for expr in expressions():  # valid everywhere, and data wherever the run has some
            grafana = re.fullmatch(r"label_values\((.+), \w+\)", expr)  # Grafana, not PromQL
            run_query(grafana.group(1) if grafana else expr)

        # every variable resolves: the default scrape's job and the daemon's instance among them
        for path in (ROOT / "grafana" / "dashboards").glob("*.json"):
            for variable in json.loads(path.read_text())["templating"]["list"]:
                if variable["type"] != "query":
                    continue
                series, label = re.fullmatch(r"label_values\((.+), (\w+)\)",
                                             variable["query"]["query"]).groups()
                values = {r["metric"].get(label) for r in run_query(series)} - {None}
                assert values, (path.name, variable["name"])
                if label == "job":
                    assert "lifecycled" in values
                if label == "instance":
                    assert f"127.0.0.1:{daemon.port}" in values

        def empty_panels() -> set[str]:
            empty = set()
            for path in (ROOT / "grafana" / "dashboards").glob("*.json"):
                for panel in json.loads(path.read_text())["panels"]:
                    if not any(run_query(t["expr"]) for t in panel["targets"]):
                        empty.add(panel["title"])
            return empty

        # a rate needs two scrapes of a counter that may have appeared a moment ago: poll
        try:
            wait_for(lambda: empty_panels() <= MAY_BE_EMPTY, "data in every panel", timeout=60)
        except AssertionError:
            raise AssertionError(f"panels without data: {sorted(empty_panels())}") from None

        write_outcomes(quality, accuracy=0.97)  # the fix: the labels now agree with the model
        wait_for(lambda: any("RESOLVED" in json.dumps(m) and "LifecycledModelAccuracyLow" in
                             json.dumps(m) for m in slack.received), "the resolved message")
        assert daemon.process.poll() is None
    finally:
        stop.set()
        if "daemon" in locals():
            daemon.stop()
        slack.stop()
        mail.stop()
