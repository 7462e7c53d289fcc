"""Alert rules, their promtool tests, Alertmanager routing and the Grafana dashboards are files
tested like code: syntax, coverage of every alert, routing cases, and every metric they name
exists in the exporter's catalogue or in Triton's metrics."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from lifecycled.exporter.catalogue import CATALOGUE

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "alerting" / "rules" / "lifecycled.yml"
TESTS = ROOT / "alerting" / "tests" / "lifecycled_test.yml"
ALERTMANAGER = ROOT / "alerting" / "alertmanager.yml"
RUNBOOKS = ROOT / "docs" / "runbooks.md"
TRITON = {"nv_inference_request_success", "nv_inference_request_failure", "nv_inference_count",
          "nv_inference_exec_count", "nv_inference_request_duration_us",
          "nv_inference_queue_duration_us", "nv_inference_pending_request_count",
          "nv_inference_request_summary_us", "nv_cpu_utilization", "nv_cpu_memory_used_bytes"}
NAME = re.compile(r"\b(lifecycled_[a-z0-9_]+|nv_[a-z0-9_]+|model_version:[a-z0-9_:]+)")


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is required (Debian prometheus / prometheus-alertmanager)")
    return path


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=ROOT)


def rules() -> list[dict[str, object]]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def expressions() -> list[str]:
    found = [str(r["expr"]) for r in rules()]
    for path in (ROOT / "grafana" / "dashboards").glob("*.json"):
        dashboard = json.loads(path.read_text())
        found += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
        found += [v["query"]["query"] for v in dashboard["templating"]["list"]
                  if v["type"] == "query"]
        found += [a["expr"] for a in dashboard["annotations"]["list"] if "expr" in a]
    return found


def dashboards() -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text())
            for path in sorted((ROOT / "grafana" / "dashboards").glob("*.json"))}


@pytest.mark.slow
def test_rules_are_valid_and_their_unit_tests_pass() -> None:
    check = run(tool("promtool"), "check", "rules", str(RULES))
    assert check.returncode == 0, check.stdout + check.stderr
    unit = run(tool("promtool"), "test", "rules", str(TESTS))
    assert unit.returncode == 0 and "SUCCESS" in unit.stdout, unit.stdout + unit.stderr


def test_every_alert_is_tested_firing_and_silent() -> None:
    cases = [case for test in yaml.safe_load(TESTS.read_text())["tests"]
             for case in test.get("alert_rule_test", [])]
    for rule in rules():
        if "alert" not in rule:
            continue
        mine = [c for c in cases if c["alertname"] == rule["alert"]]
        assert any(c["exp_alerts"] for c in mine), f"{rule['alert']} never tested firing"
        assert any(not c["exp_alerts"] for c in mine), f"{rule['alert']} never tested silent"


def test_alerts_have_the_required_labels_and_annotations() -> None:
    names = set()
    for rule in rules():
        if "alert" not in rule:
            assert re.fullmatch(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", str(rule["record"]))
            continue
        names.add(rule["alert"])
        assert rule["labels"]["severity"] in ("critical", "warning", "info")
        assert "for" in rule, f"{rule['alert']} has no for: (every alert has one)"
        annotations = rule["annotations"]
        assert {"summary", "description", "runbook_url"} <= set(annotations)
        url, anchor = str(annotations["runbook_url"]).split("#", 1)
        assert url == "https://lifecycled.invalid/runbooks/" and anchor == rule["alert"]
        assert f"## {anchor} {{ #{anchor} }}" in RUNBOOKS.read_text(), anchor
    assert len(names) >= 16


def test_every_named_metric_exists() -> None:
    contract = {family.exposed for family in CATALOGUE}
    recorded = {str(r["record"]) for r in rules() if "record" in r}
    for expr in expressions():
        for name in NAME.findall(expr):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            assert name in contract | recorded | TRITON or base in TRITON, f"unknown metric {name}"


def test_alertmanager_config_and_routes() -> None:
    amtool = tool("amtool")
    check = run(amtool, "check-config", str(ALERTMANAGER))
    assert check.returncode == 0, check.stdout + check.stderr
    text = ALERTMANAGER.read_text()
    assert not re.search(r"^\s*(api_url|auth_password|smtp_auth_password):", text, re.MULTILINE)
    cases = [  # every route, and a critical alert that no team owns
        (["severity=critical", "owner_team=risk_ml"], "ml-oncall,risk-ml-slack"),
        (["severity=warning", "owner_team=risk_ml"], "risk-ml-slack"),
        (["severity=warning", "owner_team=fraud_ml"], "fraud-ml-slack"),
        (["severity=critical", "owner_team=fraud_ml"], "ml-oncall,fraud-ml-slack"),
        (["severity=warning", "owner_team=auto_discovery", "business_domain=credit_risk"],
         "risk-ml-slack"),
        (["severity=warning", "owner_team=someone"], "ml-platform-slack"),
        (["severity=critical", "alertname=LifecycledStateStoreNotWritable"],
         "ml-oncall,ml-platform-slack"),
        (["severity=critical", "owner_team=someone"], "ml-oncall,ml-platform-slack"),
        (["severity=info", "owner_team=risk_ml"], "blackhole"),
    ]
    for labels, receivers in cases:
        result = run(amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER}",
                     f"--verify.receivers={receivers}", *labels)
        assert result.returncode == 0, f"{labels}: {result.stdout}{result.stderr}"
    config = yaml.safe_load(text)
    (inhibit,) = config["inhibit_rules"]
    assert inhibit["equal"] == ["model", "version", "category"]
    # one set of texts: every receiver's text fields call the shared templates
    for receiver in config["receivers"]:
        for kind, configs in receiver.items():
            for item in configs if isinstance(configs, list) else []:
                for key in ("title", "text", "description"):
                    if key in item:
                        assert item[key].startswith('{{ template "lifecycled.'), (kind, key)
                assert not any(k in item for k in ("api_url", "routing_key", "service_key"))


def test_the_notification_template_carries_runbook_and_dashboard_links() -> None:
    amtool = tool("amtool")
    rendered = run(amtool, "template", "render",
                   f"--template.glob={ROOT / 'alerting' / 'templates' / '*.tmpl'}",
                   "--template.text", '{{ template "lifecycled.text" . }}')
    assert rendered.returncode == 0, rendered.stderr
    assert "Runbook: " in rendered.stdout
    assert "Dashboard: https://grafana.example.org/d/lifecycled-overview/" in rendered.stdout


def test_dashboards_take_their_datasource_from_a_variable() -> None:
    """Bound to one fixed datasource uid, every panel broke when imported into a Grafana whose
    Prometheus (or Mimir, Thanos) has another uid; now a `datasource` variable chooses it,
    defaulting to the provisioned one."""
    provisioned = yaml.safe_load((ROOT / "grafana" / "provisioning" / "datasources" /
                                  "lifecycled-prometheus.yaml").read_text())
    uid = provisioned["datasources"][0]["uid"]
    titles = set()
    for path in (ROOT / "grafana" / "dashboards").glob("*.json"):
        dashboard = json.loads(path.read_text())
        titles.add(dashboard["title"])
        assert dashboard["uid"] and dashboard["id"] is None
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        chooser = variables["datasource"]
        assert (chooser["type"], chooser["query"], chooser["current"]["value"]) == (
            "datasource", "prometheus", uid)
        queries = [v for v in variables.values() if v["type"] == "query"]
        for item in [*dashboard["panels"], *queries]:
            assert item["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, path
        for panel in dashboard["panels"]:
            assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])
        assert uid not in path.read_text().replace(f'"value": "{uid}"', "")
    assert len(titles) == 3


def lifecycled(*argv: str) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "-m", "lifecycled", *argv)


def test_the_shipped_rules_are_the_default_render() -> None:
    """One source of truth: alerting/rules/lifecycled.yml is `lifecycled alerting render`'s
    output with the defaults (render again after editing daemon/lifecycled/alerting/rules.yml),
    and promtool finds nothing to lint in it."""
    rendered = lifecycled("alerting", "render")
    assert rendered.returncode == 0, rendered.stderr
    assert rendered.stdout == RULES.read_text(), (
        "alerting/rules/lifecycled.yml is not current: python -m lifecycled alerting render "
        "--out alerting/rules")
    check = run(tool("promtool"), "check", "rules", "--lint=all", str(RULES))
    assert check.returncode == 0 and "SUCCESS" in check.stdout, check.stdout + check.stderr
    assert "warning" not in (check.stdout + check.stderr).lower()


def selectors_of(expr: str, prefix: str) -> list[str]:
    return re.findall(rf"(?<![\w:]){prefix}[a-z0-9_]+(\{{[^}}]*\}})?", expr)


def test_render_puts_the_selectors_on_every_series_and_the_runbook_pattern_on_every_alert(
        tmp_path: Path) -> None:
    """Rules without a job selector summed every job's nv_inference_* series and read any
    lifecycled_* series; rendered for an environment, each series carries its selector (merged
    with its own matchers) and each alert its runbook link."""
    ours, theirs = 'job="ml-lifecycled",env=~"prod|dr"', 'namespace="triton"'
    rendered = lifecycled("alerting", "render", "--selector", ours, "--triton-selector", theirs,
                          "--runbook-url-pattern", "https://wiki.example.org/runbooks/%s",
                          "--out", str(tmp_path))
    assert rendered.returncode == 0, rendered.stderr
    path = tmp_path / "lifecycled.yml"
    check = run(tool("promtool"), "check", "rules", "--lint=all", str(path))
    assert check.returncode == 0, check.stdout + check.stderr
    rules = [r for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"]]
    seen = 0
    for rule in rules:
        expr = str(rule["expr"])
        for prefix, selector in (("lifecycled_", ours), ("nv_", theirs)):
            for matchers in selectors_of(expr, prefix):
                assert matchers.startswith("{" + selector), (rule, matchers)
                seen += 1
        if "alert" in rule:
            assert rule["annotations"]["runbook_url"] == \
                f"https://wiki.example.org/runbooks/{rule['alert']}"
    assert seen > len(rules)  # every rule names at least one series, most two or more
    breached = next(r for r in rules if r.get("alert") == "LifecycledModelAccuracyLow")
    assert ('lifecycled_model_threshold_breached{job="ml-lifecycled",env=~"prod|dr", '
            'threshold="min_accuracy"}') in breached["expr"]


def test_render_a_prometheus_operator_manifest(tmp_path: Path) -> None:
    rendered = lifecycled("alerting", "render", "--format", "prometheusrule", "--out",
                          str(tmp_path))
    assert rendered.returncode == 0, rendered.stderr
    manifest = yaml.safe_load((tmp_path / "lifecycled-prometheusrule.yaml").read_text())
    assert (manifest["apiVersion"], manifest["kind"]) == ("monitoring.coreos.com/v1",
                                                          "PrometheusRule")
    assert manifest["metadata"]["name"] == "lifecycled"
    assert manifest["spec"] == yaml.safe_load(RULES.read_text())


@pytest.mark.parametrize(("argv", "named"), [
    (["--selector", "job=lifecycled"], "--selector"),
    (["--triton-selector", 'job="a"}) or vector(1'], "--triton-selector"),
    (["--runbook-url-pattern", "https://wiki/runbooks"], "--runbook-url-pattern"),
    (["--out", "/nonexistent/dir"], "--out"),
    # a line break or control character broke the file; an invalid regex was accepted
    (["--selector", 'job="a",\nenv="b"'], "--selector"),
    (["--selector", 'env="pro\x01d"'], "--selector"),
    (["--runbook-url-pattern", "https://wiki/\n%s"], "--runbook-url-pattern"),
    (["--selector", 'env=~"prod(|"'], "not a regular expression"),
    (["--triton-selector", 'job=~"(?!test).*"'], "lookarounds"),
])
def test_render_refuses_bad_options_in_one_line(argv: list[str], named: str) -> None:
    rendered = lifecycled("alerting", "render", *argv)
    assert rendered.returncode == 2, rendered
    assert rendered.stdout == ""
    assert rendered.stderr.startswith("lifecycled: ") and named in rendered.stderr
    assert rendered.stderr.count("\n") == 1


def test_render_with_no_selector_writes_rules_promtool_accepts(tmp_path: Path) -> None:
    """`--selector ''` (documented as "'' for none") wrote 18 of 33 rules that promtool rejected:
    a series' own matchers lost their opening brace."""
    rendered = lifecycled("alerting", "render", "--selector", "", "--triton-selector", "",
                          "--out", str(tmp_path))
    assert rendered.returncode == 0, rendered.stderr
    check = run(tool("promtool"), "check", "rules", str(tmp_path / "lifecycled.yml"))
    assert check.returncode == 0, check.stdout + check.stderr
    assert 'lifecycled_model_threshold_breached{threshold="min_accuracy"}' in (
        tmp_path / "lifecycled.yml").read_text()


def test_the_manuals_time_to_alert_table_is_current() -> None:
    from lifecycled.alerting import time_to_alert_table
    from lifecycled.settings import ScheduleSettings
    table = time_to_alert_table(ScheduleSettings().model_dump())
    assert table in (ROOT / "docs" / "alerting.md").read_text(), "the time-to-alert table:\n" + table


SCRAPE_SELECTOR = '{job=~"$job", instance=~"$instance"'


def test_every_dashboard_query_follows_the_job_and_instance_variables() -> None:
    """Without a job/instance variable, dev and prod (or two replicas) were summed together:
    every lifecycled series in every panel, annotation and variable query now carries
    job=~"$job", instance=~"$instance"; model and version are multi-select with All."""
    for name, dashboard in dashboards().items():
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert variables["job"]["query"]["query"] == "label_values(lifecycled_build_info, job)"
        assert variables["instance"]["query"]["query"] == \
            'label_values(lifecycled_build_info{job=~"$job"}, instance)'
        assert variables["instance"]["multi"] and variables["instance"]["includeAll"]
        queries = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
        queries += [a["expr"] for a in dashboard["annotations"]["list"] if "expr" in a]
        queries += [v["query"]["query"] for k, v in variables.items()
                    if v["type"] == "query" and k not in ("job", "instance")]
        for query in queries:
            found = selectors_of(query, "lifecycled_")
            assert found, (name, query)
            assert all(m.startswith(SCRAPE_SELECTOR) for m in found), (name, query)
        for key in ("model", "version"):
            if key in variables:
                chooser = variables[key]
                assert chooser["multi"] and chooser["includeAll"] and chooser["allValue"] == ".*"


def test_dashboards_have_descriptions_links_annotations_thresholds_and_mappings() -> None:
    boards = dashboards()
    for name, dashboard in boards.items():
        assert all(p.get("description") for p in dashboard["panels"]), name
        assert {"type": "dashboards", "tags": ["lifecycled"]}.items() <= \
            dashboard["links"][0].items(), name  # every dashboard links to the others
        for panel in dashboard["panels"]:
            if panel["type"] != "table":  # a table's rows are not legends
                assert all(t.get("legendFormat") for t in panel["targets"]), (name, panel)
    model, overview, daemon = (boards[f"lifecycled-{n}"] for n in ("model", "overview", "self"))
    for board in (model, overview):
        names = {a["name"] for a in board["annotations"]["list"]}
        assert {"Status changes", "Update jobs", "Retirements"} <= names
    panels = {p["title"]: p for p in model["panels"]}
    for title, threshold in (("Throughput", "min_throughput_rps"),
                             ("Latency", "max_latency_p99_seconds"),
                             ("Error ratio", "max_error_ratio"), ("Quality", "min_accuracy")):
        limits = [t for t in panels[title]["targets"]
                  if f'threshold="{threshold}"' in t["expr"]]
        assert limits and "lifecycled_model_threshold_limit" in limits[0]["expr"], title
    steps = panels["Performance score and level"]["fieldConfig"]["defaults"]["thresholds"]
    assert [s["value"] for s in steps["steps"]] == [None, 50, 70, 80, 90]  # core/thresholds.py
    breach = panels["Thresholds (1 = breached)"]["fieldConfig"]["defaults"]["mappings"][0]
    assert breach["options"]["1"]["text"] == "BREACHED"
    report = [link["url"] for link in model["links"] if "drift/report.html" in link.get("url", "")]
    assert report, "the model dashboard links to the drift report"
    by_title = {p["title"]: p for p in overview["panels"]}
    for title in ("Recent status changes", "Retirement candidates"):
        (link,) = by_title[title]["fieldConfig"]["defaults"]["links"]
        assert link["url"].startswith("/d/lifecycled-model/") and "${__data.fields.model}" in \
            link["url"]
    statuses = by_title["Status over time"]["fieldConfig"]["defaults"]["mappings"][0]["options"]
    from lifecycled.domain import Status
    assert {m["text"] for m in statuses.values()} == {s.value for s in Status}
    up = {p["title"]: p for p in daemon["panels"]}["Sources up"]["fieldConfig"]["defaults"]
    assert up["mappings"][0]["options"]["0"]["text"] == "DOWN"


def test_the_import_dashboards_ask_for_their_datasource_and_are_current() -> None:
    check = run(sys.executable, "-m", "devtools.dashboards", "--check")
    assert check.returncode == 0, check.stderr
    for path in (ROOT / "grafana" / "import").glob("*.json"):
        board = json.loads(path.read_text())
        (ask,) = board["__inputs"]
        assert (ask["type"], ask["pluginId"]) == ("datasource", "prometheus")
        chooser = next(v for v in board["templating"]["list"] if v["type"] == "datasource")
        assert chooser["current"]["value"] == "${" + ask["name"] + "}"
