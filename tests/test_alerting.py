"""Alert rules, their promtool tests, Alertmanager routing and the Grafana dashboards are files
tested like code: syntax, coverage of every alert, routing cases, and every metric they name
exists in the exporter contract (README) or in Triton's metrics."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.exporter.test_exporter import readme_names

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "alerting" / "rules" / "lifecycled.yml"
TESTS = ROOT / "alerting" / "tests" / "lifecycled_test.yml"
ALERTMANAGER = ROOT / "alerting" / "alertmanager.yml"
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
    return found


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
        assert "for" in rule, f"{rule['alert']} has no for: (README: every alert has one)"
        annotations = rule["annotations"]
        assert {"summary", "description", "runbook_url"} <= set(annotations)
        anchor = str(annotations["runbook_url"]).split("#", 1)[1]
        assert f'<a id="{anchor}"></a>' in (ROOT / "README.md").read_text(), anchor
    assert len(names) >= 16


def test_every_named_metric_exists() -> None:
    contract = readme_names()
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
])
def test_render_refuses_bad_options_in_one_line(argv: list[str], named: str) -> None:
    rendered = lifecycled("alerting", "render", *argv)
    assert rendered.returncode == 2, rendered
    assert rendered.stdout == ""
    assert rendered.stderr.startswith("lifecycled: ") and named in rendered.stderr
    assert rendered.stderr.count("\n") == 1


def test_the_readme_time_to_alert_table_is_current() -> None:
    from lifecycled.alerting import time_to_alert_table
    from lifecycled.settings import ScheduleSettings
    table = time_to_alert_table(ScheduleSettings().model_dump())
    assert table in (ROOT / "README.md").read_text(), "README's time-to-alert table:\n" + table
