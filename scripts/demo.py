"""The lifecycled demo: the seed's whole credit-risk scenario, done by the daemon itself against a
real Triton, through the project's own CLI and API.

    python scripts/demo.py [--dir demo-run] [--keep]

Everything it makes (configuration, model repository, data, state, backups, logs) goes into one
folder, printed at the end. Every process it starts is stopped at the end, also on Ctrl-C, unless
--keep leaves the daemon and Triton running.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import requests
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devtools import triton  # noqa: E402
from devtools.alerting import SlackSink, alertmanager_config  # noqa: E402
from devtools.pipeline import Pipeline, new_secret  # noqa: E402

SHADOW = triton.ModelSpec("shadow_scoring", "1", 4, (0.2, 0.1, -0.3, 0.4))
FEATURES = ("income", "debt_ratio", "age", "utilization")


def say(text: str) -> None:
    print(f"\n=== {text}", flush=True)


class Demo:
    def __init__(self, run_dir: Path, state_url: str | None = None) -> None:
        self.dir = run_dir
        self.state_url = state_url or f"sqlite:///{run_dir / 'state' / 'lifecycled.db'}"
        self.processes: list[subprocess.Popen[bytes]] = []
        self.triton: triton.TritonServer | None = None
        self.pipeline: Pipeline | None = None
        self.stop_traffic = threading.Event()
        self.shadow_shifted = threading.Event()  # shadow_scoring's callers change (step 6)
        # the versions of credit_scoring its callers split their requests between (step 8:
        # the client routes; lifecycled judges the versions on that traffic)
        self.credit_versions = ["1"]
        self.config = run_dir / "config" / "lifecycled.yaml"
        self.prometheus_url: str | None = None
        self.alertmanager_url: str | None = None
        self.slack: SlackSink | None = None
        self.port = triton.free_port()

    # -- helpers ------------------------------------------------------------------------------

    def cli(self, *args: str, show: bool = True) -> str:
        """Run ``lifecycled ARGS`` as printed (quoted so that it pastes), with the configuration
        from $LIFECYCLED_CONFIG, whose export step 2 prints."""
        command = shlex.join(["lifecycled", *args])
        if show:
            print(f"\n$ {command}", flush=True)
        proc = subprocess.run([sys.executable, "-m", "lifecycled", *args], capture_output=True,
                              text=True, cwd=self.dir, env=self.env, timeout=300)
        if show and proc.stdout.strip():
            print(proc.stdout.rstrip())
        if proc.returncode not in (0, 1):
            raise SystemExit(f"demo stopped: `{command}` failed:\n{proc.stderr}")
        return proc.stdout

    def api(self, path: str) -> Any:
        return requests.get(f"http://127.0.0.1:{self.port}{path}", timeout=10).json()

    def wait(self, what: str, predicate: Callable[[], Any], timeout: float = 180.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            if self.processes and self.processes[0].poll() is not None:
                raise SystemExit(f"the daemon exited; see {self.dir / 'logs'}")
            time.sleep(0.5)
        raise SystemExit(f"demo stopped: timed out waiting for {what}")

    # -- set-up -------------------------------------------------------------------------------

    def prepare(self) -> None:
        if self.dir.exists():
            shutil.rmtree(self.dir)
        for sub in ("config", "data", "logs", "triton", "state"):
            (self.dir / sub).mkdir(parents=True)
        shutil.copytree(ROOT / "config" / "models.d", self.dir / "config" / "models.d")
        self.secret_file = self.dir / "config" / "pipeline_webhook_secret"
        self.secret_file.write_text(new_secret())
        self.token = new_secret()[6:26]
        (self.dir / "config" / "api_token").write_text(self.token)
        # backups and caches in the run folder, whichever store holds the state
        self.env = {**os.environ, "LIFECYCLED_DEMO": "1", "LIFECYCLED_CONFIG": str(self.config),
                    "STATE_DIRECTORY": str(self.dir / "state")}
        self.make_data()

    def make_data(self) -> None:
        """Fixed seeds: every run tells the same story."""
        rng = np.random.default_rng(42)
        n_ref, n_cur = 5000, 3000
        reference = {"income": rng.lognormal(10.5, 0.5, n_ref), "debt_ratio": rng.beta(2, 5, n_ref),
                     "age": rng.normal(42, 12, n_ref), "utilization": rng.beta(2, 3, n_ref),
                     "channel": rng.choice(["branch", "web", "mobile"], n_ref, p=[.3, .4, .3])}
        current = {"income": rng.lognormal(10.5, 0.5, n_cur) * 1.35,  # injected drift
                   "debt_ratio": rng.beta(2, 5, n_cur), "age": rng.normal(42, 12, n_cur),
                   "utilization": rng.beta(2, 3, n_cur),
                   "channel": rng.choice(["branch", "web", "mobile"], n_cur, p=[.15, .35, .5])}
        mobile = current["channel"] == "mobile"  # utilization drifted in the mobile app only
        current["utilization"][mobile] = np.clip(current["utilization"][mobile] * 1.2 + 0.1, 0, 1)
        self.write_csv("credit_reference.csv", reference)
        self.write_csv("credit_current.csv", current)
        # outcomes: credit_scoring v1 decays from 92 % to 62 % (concept drift); fraud holds
        for name, start, end, seed in (("credit_scoring_1", 0.92, 0.62, 1),
                                       ("fraud_detection_2", 0.95, 0.95, 2)):
            self.write_outcomes(f"outcomes_{name}.csv", start, end, seed)
        for folder in ("risk_predictions", "risk_labels"):  # filled in step 11
            (self.dir / "data" / folder).mkdir()

    def make_late_labels(self) -> None:
        """risk_assessment's prediction log and its outcomes, a second standing for a day: 2,400
        expected losses (euros) predicted over the last 105 s, each realized loss known 10 to 40
        s after its prediction. The realized loss varies around the prediction more for accounts
        that use more of their credit line; in the last 35 s the accounts use more of it, so the
        model's error grows, without any change in what a prediction means. Three batches of
        labels: those known 28 s ago, those known by now, and those of the newest predictions,
        known only after they matured."""
        rng = np.random.default_rng(3)
        n, now = 2400, time.time()
        self.late_start = now
        at = np.sort(now - rng.uniform(0, 105, n))
        harder = at > now - 35
        utilization = np.where(harder, rng.beta(5, 2, n), rng.beta(2, 5, n))
        exposure = rng.lognormal(8, 0.5, n)
        predicted = 0.05 * exposure * (1 + utilization)  # the expected loss
        realized = np.clip(predicted * (1 + rng.normal(0, 0.1 + 0.5 * utilization)), 0, None)
        known = at + rng.uniform(10, 40, n)
        ids = np.array([f"ra-{i:05d}" for i in range(n)])
        self.write_csv("risk_predictions/log.csv", {
            "id": ids, "timestamp": np.round(at, 3), "prediction": np.round(predicted, 2),
            "utilization": np.round(utilization, 4)})
        self.label_batches = []
        for start, end in ((-np.inf, now - 28), (now - 28, now), (now, np.inf)):
            rows = (known > start) & (known <= end)
            self.label_batches.append({"id": ids[rows], "label": np.round(realized[rows], 2),
                                       "known_at": np.round(known[rows], 3)})
        self.mae_before = float(np.mean(np.abs(predicted[~harder] - realized[~harder])))
        self.write_csv("risk_labels/batch-1.csv", self.label_batches[0])

    def write_csv(self, name: str, columns: dict[str, Any]) -> None:
        with (self.dir / "data" / name).open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            writer.writerows(zip(*columns.values(), strict=True))

    def write_outcomes(self, name: str, start: float, end: float, seed: int, n: int = 1200) -> None:
        rng = np.random.default_rng(seed)
        labels = rng.integers(0, 2, n)
        accuracy = np.linspace(start, end, n)
        correct = rng.random(n) < accuracy
        scores = np.clip(np.where(labels == 1, 0.65, 0.35) + rng.normal(0, 0.2, n), 0, 1)
        predictions = np.where(correct, labels, 1 - labels)
        self.write_csv(name, {"prediction": predictions, "label": labels,
                              "score": np.round(scores, 4)})

    def write_config(self) -> None:
        assert self.triton is not None and self.pipeline is not None
        data = yaml.safe_load((ROOT / "config" / "lifecycled.yaml").read_text())
        seconds = {"discovery": "2s", "collect": "2s", "quality": "2s", "evaluate": "2s", "drift": "5s",
                   "updates": "2s", "retirement": "5s", "deliver": "1s", "housekeeping": "1h"}
        data["daemon"].update({
            "listen": f"127.0.0.1:{self.port}", "public_url": f"http://127.0.0.1:{self.port}",
            "state_url": self.state_url,
            "api_token_file": str((self.dir / "config" / "api_token").resolve())})
        data["sources"]["triton"] = [{"name": "local", "url": self.triton.url,
                                      "metrics_url": self.triton.metrics_url, "timeout": "5s",
                                      "allow_model_control": True,
                                      "trace_file": str(self.trace_file.resolve()),
                                      "trace_log_frequency": 20}]
        data["schedule"] = {**seconds, "traces": "1s", "compare": "1s"}
        # the opt-in default: every model discovery finds is judged from the inputs and outputs
        # Triton samples (here every request: the demo's traffic is small), its reference frozen
        # from its first 400 sampled rows, each check on the rows of the last drift interval;
        # the configured models below read files instead
        data["defaults"]["drift"].update({"source": "triton", "trace_rate": 1,
                                          "reference_rows": 400})
        # the schedules run 150 times faster than the defaults (a 5-minute pass every 2 s): so
        # does the false-alarm budget, or every verdict would be judged as if a month of checks
        # ran each minute (1 false alarm in 30 days / 150 = 1 in 4.8 hours)
        data["defaults"]["monitoring"]["false_alarm_budget"] = "1/288m"
        data_dir = (self.dir / "data").resolve()
        monitoring = {
            "credit_scoring": {"drift": {"source": "files",
                                         "reference": str(data_dir / "credit_reference.csv"),
                                         "current": str(data_dir / "credit_current.csv"),
                                         "alert_severity": "high"},
                               "segment_by": ["channel"],  # drift per channel too
                               "quality": {"outcomes": str(data_dir / "outcomes_credit_scoring_"
                                                                      "{version}.csv"),
                                           "score_column": "score"}},
            "fraud_detection": {"drift": {"source": "files"}, "quality": {
                "outcomes": str(data_dir / "outcomes_fraud_detection_{version}.csv")}},
            # outcomes arrive weeks late: joined by id
            "risk_assessment": {"drift": {"source": "files"}, "quality": {
                "predictions": {"path": str(data_dir / "risk_predictions" / "*.csv")},
                "labels": {"path": str(data_dir / "risk_labels" / "*.csv"),
                           "timestamp_column": "known_at"},
                "estimate_features": ["utilization"],  # what the error estimate learns from
                "maturity": "45s", "window": "30s",
                "min_coverage": 0.8}},  # step 11 runs a second to a day
        }
        for name, extra in monitoring.items():  # into each model's own models.d file
            path = self.dir / "config" / "models.d" / f"{name}.yaml"
            path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), **extra},
                                           sort_keys=False))
        data["webhooks"] = {"pipeline": {"url": self.pipeline.url,
                                         "secret_file": str(self.secret_file.resolve()),
                                         "events": ["model.update_requested",
                                                    "model.update_completed", "model.retired"],
                                         "backoff_initial": "1s", "backoff_max": "10s"}}
        data["policies"]["updates"]["cooldown"] = "1h"
        # promote only through a live comparison with the production version; judged on
        # failures here (the demo's CPU makes the p99 of two Python models too noisy to hold
        # a 20 % margin in seconds: its evidence is shown, not used)
        data["policies"]["updates"]["compare"] = True
        data["policies"]["compare"].update({"min_requests": 100, "max_duration": "2m",
                                            "block": ["failures"]})
        data["policies"]["retirement"].update({"min_accuracy": 0.85,
                                               "normal_weekly_requests": 100000})
        self.config.write_text(yaml.safe_dump(data, sort_keys=False))

    def start_triton(self) -> None:
        repository = self.dir / "triton" / "models"
        for model in (*triton.SEED_MODELS, SHADOW):
            triton.write_model(repository, model)
        self.trace_file = self.dir / "triton" / "traces" / "trace.json"
        self.trace_file.parent.mkdir()
        self.triton = triton.start(repository, self.dir / "triton", trace_file=self.trace_file)
        self.pipeline = Pipeline(self.secret_file.read_text().strip(), self.token,
                                 self.triton.url, repository, after_deploy=self.deployed)

    def deployed(self, model: str, version: str) -> None:
        """The pipeline also publishes the new version's labelled outcomes; the callers send half
        of their requests to it."""
        self.write_outcomes(f"outcomes_{model}_{version}.csv", 0.93, 0.93, 7)
        if model == "credit_scoring":
            self.credit_versions = ["1", version]

    def start_alerting(self) -> None:
        """Prometheus scraping Triton and the daemon with the shipped rules, and Alertmanager
        with the shipped routing, Slack sent to a local sink (e-mail and PagerDuty left out),
        when Debian's packages are installed; the demo goes on without them, saying so."""
        prometheus = shutil.which("prometheus")
        alertmanager = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
        if prometheus is None or self.triton is None:
            print("Prometheus is not installed here: no alerts (as root, `make demo` installs "
                  "Debian's prometheus and prometheus-alertmanager)")
            return
        work = self.dir / "prometheus"
        work.mkdir()
        if alertmanager is not None:
            self.slack = SlackSink()
            (work / "slack_url").write_text(self.slack.url)
            (work / "alertmanager.yml").write_text(yaml.safe_dump(
                alertmanager_config(work / "slack_url")))
            port = triton.free_port()
            self.spawn("alertmanager", [
                alertmanager, f"--config.file={work / 'alertmanager.yml'}",
                f"--storage.path={work / 'alertmanager'}", f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address="])
            self.alertmanager_url = f"http://127.0.0.1:{port}"
        # the shipped rules with every `for:` at 10 s, so that alerts fire within the demo's two
        # minutes; the shipped file keeps the real durations
        rules = yaml.safe_load((ROOT / "alerting" / "rules" / "lifecycled.yml").read_text())
        for group in rules["groups"]:
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = "10s"
        (work / "rules.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
        config: dict[str, Any] = {
            "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
            "rule_files": [str(work / "rules.yml")],
            "scrape_configs": [
                {"job_name": "triton", "static_configs": [
                    {"targets": [self.triton.metrics_url.split("/")[2]]}]},
                {"job_name": "lifecycled", "static_configs": [
                    {"targets": [f"127.0.0.1:{self.port}"]}]}]}
        if self.alertmanager_url:
            config["alerting"] = {"alertmanagers": [{"static_configs": [
                {"targets": [self.alertmanager_url.removeprefix("http://")]}]}]}
        (work / "prometheus.yml").write_text(yaml.safe_dump(config))
        port = triton.free_port()
        self.spawn("prometheus", [
            prometheus, f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}", f"--web.listen-address=127.0.0.1:{port}"])
        self.prometheus_url = f"http://127.0.0.1:{port}"
        print(f"Prometheus {self.prometheus_url} scrapes Triton and lifecycled with the shipped "
              "alert rules (every `for:` shortened to 10 s for the demo)"
              + (f"; Alertmanager {self.alertmanager_url} routes them as shipped, Slack to a "
                 "local sink" if self.alertmanager_url else
                 "; Alertmanager is not installed: alerts are not routed"))

    def spawn(self, name: str, argv: list[str]) -> None:
        log = (self.dir / "logs" / f"{name}.log").open("ab")
        self.processes.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT))

    def show_alerts(self) -> None:
        """The alerts firing in Prometheus, and the notifications Slack's stand-in received."""
        if self.prometheus_url is None:
            print("(no Prometheus here: nothing to show)")
            return

        def firing() -> list[dict[str, Any]]:
            alerts = requests.get(f"{self.prometheus_url}/api/v1/alerts",
                                  timeout=10).json()["data"]["alerts"]
            return [a for a in alerts if a["state"] == "firing"]

        # fraud_detection fails ~3 % of its requests (step 4), above its max_error_ratio of 1 %
        self.wait("LifecycledTritonErrorRatioHigh to fire", lambda: any(
            a["labels"]["alertname"] == "LifecycledTritonErrorRatioHigh" for a in firing()))
        print(f"$ curl -s {self.prometheus_url}/api/v1/alerts   # firing now:")
        for alert in sorted(firing(), key=lambda a: (a["labels"].get("severity", ""),
                                                     a["labels"]["alertname"])):
            labels = alert["labels"]
            who = ":".join(v for v in (labels.get("model"), labels.get("version")) if v) \
                or labels.get("endpoint", "")
            segment = f" {labels['segment']}" if labels.get("segment") else ""
            print(f"  {labels['alertname']:<34} {labels.get('severity', ''):<9} {who}{segment}")
        if self.slack is not None:
            slack = self.slack
            self.wait("Alertmanager's first Slack message", lambda: slack.received)
            titles = sorted({attachment.get("title", "") for message in slack.received
                             for attachment in message.get("attachments", [])})
            print(f"Slack (a local sink) received {len(slack.received)} message(s) from "
                  f"Alertmanager, routed as shipped:")
            for title in titles:
                print(f"  {title}")

    def start_daemon(self) -> None:
        log = (self.dir / "logs" / "lifecycled.log").open("ab")
        self.processes.insert(0, subprocess.Popen(  # first: wait() watches it
            [sys.executable, "-m", "lifecycled", "run", "--config", str(self.config)],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.dir, env=self.env))

    def traffic(self) -> None:
        """Requests to every model while the demo runs; a few fraud requests fail."""
        assert self.triton is not None
        rng = np.random.default_rng(5)
        url = self.triton.url
        while not self.stop_traffic.is_set():
            for model in ("credit_scoring", "fraud_detection", "risk_assessment", SHADOW.name):
                rows = rng.normal(0, 1, (int(rng.integers(1, 8)), 4))
                if model == SHADOW.name and self.shadow_shifted.is_set():
                    rows[:, 2] += 1.5  # its third input moves by 1.5 standard deviations
                rows = rows.tolist()
                if model == "fraud_detection" and rng.random() < 0.03:
                    rows = [[1e9, 0, 0, 0]]
                version = (str(rng.choice(self.credit_versions)) if model == "credit_scoring"
                           else None)
                with contextlib.suppress(requests.RequestException):
                    triton.infer(url, model, rows, timeout=10, version=version)
            self.stop_traffic.wait(0.05)

    # -- the story ----------------------------------------------------------------------------

    def run(self, keep: bool) -> int:
        self.prepare()
        say("Step 0: start a real Triton (CPU, Python backend) and the retraining pipeline")
        self.start_triton()
        assert self.triton is not None and self.pipeline is not None
        print(f"Triton {self.triton.url} serving credit_scoring:1, fraud_detection:2, "
              f"risk_assessment:3 and shadow_scoring:1 (not in the config)")
        self.write_config()

        say("Step 1: register the three credit-risk models with their metadata and thresholds")
        print("Every command below reads the demo's configuration from $LIFECYCLED_CONFIG; in "
              "another shell:")
        print(f"$ export LIFECYCLED_CONFIG={shlex.quote(str(self.config))}")
        self.cli("check-config")
        self.cli("models", "register", "--file", str(ROOT / "config" / "examples" /
                                                     "seed-models.yaml"))
        self.cli("models", "set-status", "risk_assessment:3", "production", "--reason",
                 "model risk review approved", "--actor", "model-risk-committee")

        engine = "SQLite" if self.state_url.startswith("sqlite") else "PostgreSQL"
        say(f"Step 2: start the daemon ({engine} state, Triton scraped directly)")
        self.start_daemon()
        self.wait("/readyz", lambda: self._ready())
        print(f"lifecycled is ready on http://127.0.0.1:{self.port}")
        print("its tasks run 150 times faster than the defaults (a 5-minute pass every 2 s), and "
              "so does its false-alarm budget: 1 false alarm per model in 4.8 hours (1/30d by "
              "default), which sets the significance of every repeated verdict")
        self.start_alerting()

        say("Step 3: auto-discovery finds what Triton serves, including a model not in the config")
        self.wait("discovery", lambda: any(m["name"] == SHADOW.name for m in
                                           self.api("/api/v1/models")["models"]))
        self.cli("models", "list")

        say("Step 4: serving metrics from Triton while traffic flows; quality from outcomes")
        threading.Thread(target=self.traffic, daemon=True).start()
        self.wait("snapshots", lambda: all(
            (d := self.api(f"/api/v1/models/{m}")).get("latest_snapshot")
            and d["latest_snapshot"].get("requests_per_second")
            for m in ("credit_scoring/1", "fraud_detection/2", "risk_assessment/3")))
        self.cli("collect")

        say("Step 5: the performance report of each model (fraud_detection fails about 3 % of "
            "its requests: the traffic sends it rows its backend refuses)")
        for model in ("credit_scoring:1", "fraud_detection:2", "risk_assessment:3"):
            self.print_performance(model)

        say("Step 6: data drift injected into credit_scoring's features (utilization in the "
            "mobile channel only: see the segments); concept drift; a discovered model's drift "
            "from Triton's own samples")
        report = self.dir / "drift-report-credit_scoring-1.html"
        self.cli("drift", "--model", "credit_scoring:1", "--html", str(report))
        self.cli("quality", "--outcomes", str(self.dir / "data" /
                                              "outcomes_credit_scoring_1.csv"),
                 "--score-column", "score")
        self.shadow_drift()

        say("Step 7: the drifted, decaying model triggers an update job; the pipeline retrains it")
        job = self.wait("an update job", lambda: self._jobs())
        print(f"update job {job['id']}: trigger {job['trigger_type']} "
              f"({job['trigger'].get('threshold', job['trigger'].get('severity'))})")

        say("Step 8: follow the job: validation, then version 2 judged live against version 1 "
            "on the same traffic (the callers send it half of their requests), promoted on the "
            "evidence; version 1 deprecated")
        self.wait("the comparison", lambda: self._jobs(state="comparing") or self._jobs(
            state="completed"))
        self.wait("the job to complete", lambda: self._jobs(state="completed"))
        self.cli("compare", "status", "credit_scoring")
        self.cli("jobs", "show", job["id"])
        self.cli("models", "history", "credit_scoring:2")

        say("Step 9: the lifecycle overview")
        self.cli("report")

        say("Step 10: retirement scores; the owners retire version 1, unloading it from Triton")
        self.wait("retirement scores", lambda: any(
            (c["model"], c["version"], c["status"]) == ("credit_scoring", "1", "deprecated")
            for c in json.loads(self.cli("retire", "candidates", "--json",
                                         show=False))["candidates"]))
        self.cli("retire", "candidates")
        self.cli("retire", "credit_scoring:1", "--dry-run")
        self.credit_versions = ["2"]  # the callers stop asking for version 1
        self.cli("retire", "credit_scoring:1", "--reason", "superseded by version 2 after the "
                 "accuracy decay", "--actor", "risk_ml")
        index = requests.post(f"{self.triton.url}/v2/repository/index", timeout=10).json()
        served = sorted(f"{e['name']}:{e.get('version')} {e.get('state')}" for e in index)
        print("Triton now serves: " + ", ".join(served))
        self.cli("webhooks", "list")

        say("Step 11: risk_assessment, an expected-loss regression model, has outcomes that "
            "arrive 10 to 40 days late (here a second stands for a day; maturity 45 d, window "
            "30 d): coverage climbs, the estimate (DLE) shows its error growing before any label "
            "of it, and the labels confirm it once they are in")
        self.make_late_labels()
        self.show_labels("first batch (the outcomes known 28 days ago)", self.late_start)
        since = time.time()
        self.write_csv("risk_labels/batch-2.csv", self.label_batches[1])
        self.show_labels("second batch (known by today), written to the labels folder", since)
        matured = self.late_start + 46
        print(f"\n(the newest predictions mature in {max(0.0, matured - time.time()):.0f} "
              f"days: waiting)")
        time.sleep(max(0.0, matured - time.time()))
        since = time.time()
        self.push_labels(self.label_batches[2])
        quality = self.show_labels("third batch (the newest predictions' outcomes), pushed over "
                                   "the API", since, confirmed=True)
        estimation = quality["estimation"]
        print(f"  the estimate made before their labels, beside what the labels show now: MAE "
              f"estimated {estimation['estimated']['mae']:.0f} EUR, realized "
              f"{estimation['realized']['mae']:.0f} EUR (error "
              f"{estimation['error']['mae']:+.0f}); before the accounts changed the labels "
              f"showed {self.mae_before:.0f} EUR")
        say("Step 12: the alerts Prometheus raised from lifecycled's metrics and Triton's")
        self.show_alerts()
        print(f"\nState, configuration, data, backups and logs are in {self.dir}")
        if keep:
            pids = " ".join(str(p.pid) for p in self.processes)
            print(f"--keep: daemon http://127.0.0.1:{self.port}/metrics and /api/v1/models; "
                  f"Triton {self.triton.url}"
                  + (f"; Prometheus {self.prometheus_url}" if self.prometheus_url else "")
                  + (f"; Alertmanager {self.alertmanager_url}" if self.alertmanager_url else "")
                  + f"; stop them with: kill {pids} {self.triton.process.pid}")
        return 0

    def shadow_drift(self) -> None:
        """shadow_scoring, found by discovery and configured by nobody, judged from what Triton
        samples of its requests: its reference frozen from the first 400 rows, then its callers
        change and the traces show it, inputs and output."""
        print("\nshadow_scoring (discovered, no file configured): Triton samples its requests "
              "(trace extension, set by lifecycled through Triton's API); its reference is "
              "frozen from the first 400 sampled rows")
        self.wait("shadow_scoring's frozen reference", lambda: json.loads(self.cli(
            "reference", "show", f"{SHADOW.name}:1", "--json", show=False)).get("rows"))
        self.cli("reference", "show", f"{SHADOW.name}:1")
        self.shadow_shifted.set()
        since = time.time()
        print("\nnow its callers send a third input 1.5 standard deviations higher; the next "
              "checks judge the rows sampled since")

        def drifted() -> bool:
            drift = self.api(f"/api/v1/models/{SHADOW.name}/1").get("latest_drift") or {}
            return drift.get("checked_at", 0) > since + 6 and drift.get("severity") in (
                "high", "critical")
        self.wait("the traced drift of shadow_scoring", drifted)
        self.cli("drift", "--model", f"{SHADOW.name}:1")

    def show_labels(self, what: str, since: float, confirmed: bool = False) -> dict[str, Any]:
        """Print the first quality result of a pass that began after ``since`` (with
        ``confirmed``: the first with an estimate compared with its labels)."""
        def after() -> dict[str, Any] | None:
            quality = self.api("/api/v1/models/risk_assessment/3").get("latest_quality") or {}
            found = quality.get("at", 0) > since and (quality.get("labels") or {}).get(
                "labelled")
            return quality if found and (not confirmed or "estimation" in quality) else None

        quality = self.wait(f"the quality pass after the {what}", after)
        labels = quality["labels"]
        error = (f"MAE {quality['mae']:.0f} EUR, RMSE {quality['rmse']:.0f} EUR, bias "
                 f"{quality['mean_error']:+.0f} EUR (counts)" if labels["judged"] else
                 f"MAE {labels['provisional']['mae']:.0f} EUR provisional: {labels['reason']}")
        print(f"{what}: {labels['labelled']} of {labels['predictions']} matured predictions "
              f"labelled, coverage {labels['coverage']:.0%}, label lag p50 "
              f"{labels['lag_p50_seconds']:.0f} d, p95 {labels['lag_p95_seconds']:.0f} d; "
              f"{error}")
        estimate = quality.get("estimate") or {}
        if estimate.get("mae") is not None:
            print(f"  estimated before their labels (DLE), the {estimate['n']} newest "
                  f"predictions: MAE {estimate['mae']:.0f} EUR "
                  f"[{estimate['mae_lower']:.0f}, {estimate['mae_upper']:.0f}]"
                  + ("" if estimate.get("trusted") else f" untrusted: {estimate.get('reason')}"))
        return quality

    def push_labels(self, batch: dict[str, Any]) -> None:
        body = "".join(json.dumps({"id": str(i), "label": float(v), "known_at": float(t)}) + "\n"
                       for i, v, t in zip(batch["id"], batch["label"], batch["known_at"],
                                          strict=True))
        print(f"\n$ curl -X POST -H 'Authorization: Bearer …' -H 'Content-Type: "
              f"application/x-ndjson' --data-binary @labels.jsonl "
              f"http://127.0.0.1:{self.port}/api/v1/models/risk_assessment/3/labels")
        reply = requests.post(f"http://127.0.0.1:{self.port}/api/v1/models/risk_assessment/3/"
                              f"labels", data=body.encode(), timeout=60, headers={
                                  "Authorization": f"Bearer {self.token}",
                                  "Content-Type": "application/x-ndjson"})
        print(reply.text)
        if reply.status_code != 200:
            raise SystemExit(f"demo stopped: the labels push failed: {reply.text}")

    def _ready(self) -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).ok
        except requests.RequestException:
            return False

    def _jobs(self, state: str | None = None) -> dict[str, Any] | None:
        args = ["jobs", "list", "--json"] + (["--state", state] if state else [])
        jobs = json.loads(self.cli(*args, show=False))["jobs"]
        return jobs[0] if jobs else None

    def print_performance(self, model: str) -> None:
        name, version = model.split(":")
        detail = self.api(f"/api/v1/models/{name}/{version}")
        snap = detail["latest_snapshot"] or {}
        evaluation = detail["latest_evaluation"] or {}

        def fmt(value: Any, unit: str = "", scale: float = 1.0) -> str:
            return "unknown" if value is None else f"{value * scale:.3g}{unit}"

        assert self.triton is not None
        stats = requests.get(f"{self.triton.url}/v2/models/{name}/versions/{version}/stats",
                             timeout=10).json()["model_stats"][0]["inference_stats"]
        ok, failed = stats["success"]["count"], stats["fail"]["count"]
        breaches = ", ".join(b["threshold"] for b in evaluation.get("breaches", [])) or "none"
        quality = (f"MAE {fmt(snap.get('mae'), ' EUR')}"
                   if detail["model"].get("model_type") == "regression"
                   else f"accuracy {fmt(snap.get('accuracy'))}")
        print(f"{model:<20} throughput {fmt(snap.get('requests_per_second'), ' req/s')}, "
              f"p99 {fmt(snap.get('latency_p99_seconds'), ' ms', 1000)}, "
              f"errors {fmt(snap.get('error_ratio'), ' %', 100)} of the last interval "
              f"({failed} of {ok + failed} requests since Triton started), "
              f"{quality}; level {evaluation.get('level', 'unknown')} "
              f"(score {fmt(evaluation.get('score'))}); breaches: {breaches}")

    def cleanup(self, keep: bool) -> None:
        self.stop_traffic.set()
        if keep:
            return
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
        if self.triton is not None:
            self.triton.stop()
        if self.pipeline is not None:
            self.pipeline.stop()
        if self.slack is not None:
            self.slack.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=str(ROOT / "demo-run"), help="run folder")
    parser.add_argument("--keep", action="store_true",
                        help="leave the daemon and Triton running and print their URLs")
    parser.add_argument("--state-url", help="the state store (default: a SQLite file in the run "
                                            "folder); e.g. postgresql://user@host/db, its "
                                            "password from PGPASSWORD or ~/.pgpass")
    args = parser.parse_args()
    demo = Demo(Path(args.dir).resolve(), args.state_url)
    try:
        return demo.run(args.keep)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping everything the demo started")
        return 130
    finally:
        demo.cleanup(args.keep)


if __name__ == "__main__":
    raise SystemExit(main())
