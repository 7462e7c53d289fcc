"""Every CLI command through a real subprocess: exit codes, JSON shape, error sentences."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import ROOT, CliResult

SEED = str(ROOT / "config" / "examples" / "seed-models.yaml")
Cli = Callable[..., CliResult]


@pytest.fixture
def seeded(cli: Cli) -> Cli:
    result = cli("models", "register", "--file", SEED, "--json")
    assert result.code == 0, result.err
    assert result.json() == {"registered": ["credit_scoring:1", "fraud_detection:2",
                                            "risk_assessment:3"], "updated": [], "unchanged": []}
    return cli


def test_check_config_accepts_the_shipped_file(cli: Cli) -> None:
    result = cli("check-config", config=ROOT / "config" / "lifecycled.yaml")
    assert result.code == 0, result.err
    assert "configuration is valid" in result.out


def test_check_config_reports_every_problem_and_exits_2(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  credit_scoring:\n    thresholds: {min_accuracy: 1.7}\n"
                   "schedule: {drift: soon}\n")
    result = cli("check-config", config=bad)
    assert result.code == 2
    assert "models.credit_scoring.thresholds.min_accuracy: must be between 0 and 1, got 1.7" \
        in result.err
    assert "schedule.drift:" in result.err
    assert "Traceback" not in result.err


def test_config_from_environment_variable(cli: Cli, config_path: Path) -> None:
    import os
    import subprocess
    import sys
    env = {**os.environ, "LIFECYCLED_CONFIG": str(config_path)}
    proc = subprocess.run([sys.executable, "-m", "lifecycled", "check-config"], env=env,
                          capture_output=True, text=True, cwd=config_path.parent, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert str(config_path) in proc.stdout


def test_list_filters_and_json_shape(seeded: Cli) -> None:
    everything = seeded("models", "list", "--json").json()["models"]
    assert [(m["name"], m["version"], m["status"]) for m in everything] == [
        ("credit_scoring", "1", "production"), ("fraud_detection", "2", "production"),
        ("risk_assessment", "3", "staging")]
    first = everything[0]
    assert first["owner_team"] == "risk_ml"
    assert first["thresholds"]["min_accuracy"] == 0.85
    assert set(first) >= {"business_domain", "model_type", "tags", "dependencies",
                          "registered_at", "last_updated", "status_changed_at", "monitoring"}
    staged = seeded("models", "list", "--status", "staging", "--json").json()["models"]
    assert [m["name"] for m in staged] == ["risk_assessment"]
    fraud = seeded("models", "list", "--domain", "fraud_prevention", "--json").json()["models"]
    assert [m["name"] for m in fraud] == ["fraud_detection"]
    table = seeded("models", "list")
    assert table.code == 0
    assert table.out.splitlines()[0].split() == ["MODEL", "VERSION", "STATUS", "OWNER", "DOMAIN",
                                                 "TYPE", "UPDATED"]


def test_show_and_history(seeded: Cli) -> None:
    shown = seeded("models", "show", "credit_scoring:1", "--json").json()
    assert shown["model"]["name"] == "credit_scoring"
    assert shown["history"][0]["kind"] == "registered"
    assert "owner team" in seeded("models", "show", "credit_scoring:1").out
    moved = seeded("models", "set-status", "credit_scoring:1", "deprecated", "--reason",
                   "superseded", "--actor", "alice", "--json")
    assert moved.code == 0, moved.err
    assert moved.json()["from"] == "production" and moved.json()["to"] == "deprecated"
    history = seeded("models", "history", "credit_scoring:1", "--json").json()
    assert history["model"] == "credit_scoring:1"
    assert [(h["from"], h["to"], h["actor"], h["reason"]) for h in history["history"]][-1] == (
        "production", "deprecated", "alice", "superseded")


def test_errors_are_one_sentence_and_exit_2(seeded: Cli) -> None:
    missing = seeded("models", "show", "credit_scoring:9")
    assert missing.code == 2
    assert missing.err.strip() == "lifecycled: no model credit_scoring:9; known versions: 1"
    refused = seeded("models", "set-status", "credit_scoring:1", "testing", "--reason", "x")
    assert refused.code == 2
    assert "cannot move credit_scoring:1 from production to testing" in refused.err
    malformed = seeded("models", "show", "credit_scoring")
    assert malformed.code == 2
    assert "expected NAME:VERSION" in malformed.err
    usage = seeded("models", "set-status", "credit_scoring:1", "shipped", "--reason", "x")
    assert usage.code == 2
    for result in (missing, refused, malformed, usage):
        assert "Traceback" not in result.err


def test_register_reports_updates_and_bad_files(seeded: Cli, tmp_path: Path) -> None:
    again = seeded("models", "register", "--file", SEED, "--json").json()
    assert again["unchanged"] == ["credit_scoring:1", "fraud_detection:2", "risk_assessment:3"]
    changed = tmp_path / "m.yaml"
    changed.write_text("name: credit_scoring\nversion: '1'\ndescription: retrained text\n")
    assert seeded("models", "register", "--file", str(changed), "--json").json()["updated"] == [
        "credit_scoring:1"]
    history = seeded("models", "history", "credit_scoring:1", "--json").json()["history"]
    assert history[-1]["kind"] == "metadata_updated"
    unknown = tmp_path / "u.yaml"
    unknown.write_text("name: brand_new\nversion: '1'\n")
    result = seeded("models", "register", "--file", str(unknown))
    assert result.code == 2
    assert "brand_new:1: owner_team and business_domain required" in result.err
    broken = tmp_path / "b.yaml"
    broken.write_text("name: x\nversion: '1'\nthresholds: {min_accuracy: 7}\n")
    result = seeded("models", "register", "--file", str(broken))
    assert result.code == 2
    assert "thresholds.min_accuracy: must be between 0 and 1, got 7" in result.err


def test_report_overview(seeded: Cli) -> None:
    seeded("models", "set-status", "risk_assessment:3", "production", "--reason", "approved")
    report = seeded("report", "--json").json()
    assert report["total"] == 3
    assert report["by_status"]["production"] == 3
    assert report["by_status"]["retired"] == 0
    assert report["by_domain"] == {"credit_risk": 1, "fraud_prevention": 1, "risk_management": 1}
    assert report["recent"][0]["model"] == "risk_assessment"
    assert len(report["recent"]) == 3
    text = seeded("report").out
    assert "Recent activity" in text and "ago" in text


def test_no_config_anywhere_is_a_clear_error(cli: Cli, tmp_path: Path) -> None:
    result = cli("models", "list", config=None)
    assert result.code == 2
    assert "no configuration file" in result.err


def test_thresholds_edited_in_the_config_are_reported_then_synced(cli: Cli, config_path: Path
                                                                  ) -> None:
    """The registry row is the source of truth: an edited models.d threshold is reported by
    check-config (and applies only after sync-thresholds, which records who and why)."""
    assert cli("models", "register", "--file", SEED).code == 0
    assert cli("check-config", "--json").json()["threshold_differences"] == []
    models_d = config_path.parent / "models.d" / "credit_scoring.yaml"
    text = models_d.read_text()
    assert "min_accuracy" in text
    models_d.write_text(re.sub(r"min_accuracy: [0-9.%]+", "min_accuracy: 0.6", text))
    checked = cli("check-config", "--json").json()
    (difference,) = [d for d in checked["threshold_differences"]
                     if d["model"] == "credit_scoring:1"]
    assert difference["changed"] == ["min_accuracy"]
    assert difference["configured"] == {"min_accuracy": 0.6}
    text_out = cli("check-config").out
    assert "credit_scoring:1: stored thresholds differ from the configuration" in text_out
    assert "models sync-thresholds credit_scoring:1" in text_out
    refused = cli("models", "sync-thresholds", "--reason", "x")
    assert refused.code == 2 and "give NAME:VERSION ... or --all" in refused.err
    synced = cli("models", "sync-thresholds", "--all", "--reason", "new limit",
                 "--actor", "alice", "--json").json()
    assert synced == {"synced": ["credit_scoring:1"]}
    shown = cli("models", "show", "credit_scoring:1", "--json").json()
    assert shown["model"]["thresholds"]["min_accuracy"] == 0.6
    last = shown["history"][-1]
    assert (last["kind"], last["actor"]) == ("metadata_updated", "alice")
    assert "new limit" in last["reason"]
    assert last["evidence"]["changed"]["thresholds"]["to"]["min_accuracy"] == 0.6
    assert [d for d in cli("check-config", "--json").json()["threshold_differences"]
            if d["model"] == "credit_scoring:1"] == []


def test_the_audit_actor_defaults_to_the_invoking_user(seeded: Cli) -> None:
    import getpass

    seeded("models", "set-status", "fraud_detection:2", "deprecated", "--reason", "old")
    (entry,) = [h for h in seeded("models", "history", "fraud_detection:2", "--json")
                .json()["history"] if h["kind"] == "status_changed"]
    assert entry["actor"] == getpass.getuser()
    assert entry["actor"] != "cli"


def test_every_option_has_help_and_retire_has_real_subcommands(cli: Cli) -> None:
    from lifecycled.cli import build_parser

    parser = build_parser()
    commands = [parser]
    seen = 0
    while commands:
        current = commands.pop()
        for action in current._actions:
            if action.choices and isinstance(action.choices, dict):  # subcommands
                commands.extend(action.choices.values())
            elif action.option_strings and action.help != "==SUPPRESS==":
                seen += 1
                assert action.help, f"{current.prog} {action.option_strings} has no help text"
    assert seen > 50
    help_text = cli("retire", "--help", config=None).out
    for word in ("candidates", "status", "version"):
        assert word in help_text
    assert "(default:" in cli("drift", "--help", config=None).out


@pytest.mark.parametrize("argv, problem", [
    (["drift", "--bins", "0"], "argument --bins: must be in [2, 1000], got 0"),
    (["drift", "--bins", "-3"], "argument --bins: must be in [2, 1000], got -3"),
    (["drift", "--bins", "100000000"], "argument --bins: must be in [2, 1000], got 100000000"),
    (["drift", "--min-samples", "-1"], "argument --min-samples: must be in [1, 1e+09], got -1"),
    (["drift", "--alpha", "nan"], "argument --alpha: must be in (0, 1), got nan"),
    (["collect", "--wait", "abc"], "argument --wait: expected a duration like 90s"),
    (["report", "--days", "-1"], "argument --days: must be in (0, 3650], got -1"),
    (["report", "--days", "nan"], "argument --days: must be in (0, 3650], got nan"),
    (["report", "--days", "inf"], "argument --days: must be in (0, 3650], got inf"),
])
def test_numbers_on_the_command_line_are_checked(cli: Cli, argv: list[str],
                                                 problem: str) -> None:
    """Each was accepted before (1e8 bins used 9.6 GB) or was a traceback."""
    result = cli(*argv)
    assert result.code == 2
    assert problem in result.err
    assert "Traceback" not in result.err


@pytest.mark.slow
def test_relative_state_is_per_user_never_the_cwd_and_private(tmp_path: Path) -> None:
    """Before, `models list` created ./lifecycled-state/lifecycled.db wherever it ran (another
    folder silently got another, empty registry) and the files were 0644."""
    import os
    import stat
    import subprocess
    import sys

    home, first, second = tmp_path / "home", tmp_path / "a", tmp_path / "b"
    for folder in (home, first, second):
        folder.mkdir()
    config = tmp_path / "lifecycled.yaml"
    config.write_text("daemon: {state_url: 'sqlite:///lifecycled.db'}\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("STATE_DIRECTORY", "XDG_STATE_HOME", "LIFECYCLED_CONFIG")}
    env["HOME"] = str(home)

    def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "lifecycled", *args, "--config", str(config)],
                              capture_output=True, text=True, cwd=cwd, env=env, timeout=120)

    state = home / ".local" / "state" / "lifecycled" / "lifecycled.db"
    looked = run(first, "models", "list")
    assert looked.returncode == 2 and f"no state store at {state} yet" in looked.stderr
    assert not state.exists() and list(first.iterdir()) == []
    entry = tmp_path / "m.yaml"
    entry.write_text("name: credit_scoring\nversion: '1'\nowner_team: t\nbusiness_domain: d\n")
    assert run(first, "models", "register", "--file", str(entry)).returncode == 0
    assert list(first.iterdir()) == [] and state.exists()
    assert "credit_scoring" in run(second, "models", "list").stdout  # the same registry
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.parent.stat().st_mode) == 0o700


@pytest.mark.parametrize("argv", [["models", "list"], ["check-config"]])
def test_a_reader_that_closes_the_pipe_ends_the_command_quietly(
        seeded: Cli, config_path: Path, argv: list[str]) -> None:
    """`lifecycled models list | head -1` ended in a BrokenPipeError traceback (4 runs in 5):
    here the reader's end is closed before the command writes a byte, every time."""
    import subprocess
    import sys

    read, write = os.pipe()
    os.close(read)
    with os.fdopen(write, "wb") as closed:
        proc = subprocess.run([sys.executable, "-m", "lifecycled", *argv, "--config",
                               str(config_path)], stdout=closed, stderr=subprocess.PIPE,
                              cwd=config_path.parent, timeout=120)
    assert proc.stderr == b"" and proc.returncode == 141


def test_output_to_a_full_device_is_one_line(seeded: Cli, config_path: Path) -> None:
    import subprocess
    import sys

    with open("/dev/full", "wb") as full:
        proc = subprocess.run([sys.executable, "-m", "lifecycled", "models", "list", "--config",
                               str(config_path)], stdout=full, stderr=subprocess.PIPE,
                              cwd=config_path.parent, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.decode() == ("lifecycled: cannot write the output: no space left on the "
                                    "device\n")


def test_check_config_probe_names_each_failure_in_one_line(cli: Cli, tmp_path: Path) -> None:
    """check-config accepted an unset secret variable and an unreachable metrics URL that
    `collect` and `webhooks test` then tripped on; --probe finds each, one line each, exit 1."""
    import socket

    with socket.socket() as a, socket.socket() as b:
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))  # bound, never listening: refused
        triton_url = f"http://127.0.0.1:{a.getsockname()[1]}"
        hook = f"http://127.0.0.1:{b.getsockname()[1]}/hook"
        config = tmp_path / "probe.yaml"
        config.write_text(
            f"daemon: {{state_url: 'sqlite:///{tmp_path / 's.db'}', api_token_env: NO_TOKEN}}\n"
            f"sources:\n  triton: [{{name: local, url: '{triton_url}', "
            f"metrics_url: 'http://no-such-host.invalid:8002/metrics', timeout: 2s}}]\n"
            f"webhooks:\n  ci: {{url: '{hook}', secret_env: NO_SECRET}}\n")
        plain = cli("check-config", config=config, env={"NO_TOKEN": "", "NO_SECRET": ""})
        probed = cli("check-config", "--probe", config=config,
                     env={"NO_TOKEN": "", "NO_SECRET": ""})
    assert plain.code == 0
    assert probed.code == 1, probed.err
    lines = [line.strip() for line in probed.out.splitlines() if "FAIL" in line]
    assert lines == [
        f"FAIL triton:local {triton_url}: repository index: {triton_url}: connection refused "
        "(nothing listens there)",
        "FAIL triton:local http://no-such-host.invalid:8002/metrics: metrics: "
        "http://no-such-host.invalid:8002/metrics: cannot resolve the host name",
        "FAIL daemon.api_token: environment variable NO_TOKEN is not set",
        "FAIL webhooks.ci.secret: environment variable NO_SECRET is not set",
        f"FAIL webhooks.ci {hook}: connection refused (nothing listens there)"]
    assert probed.err == ""


def test_register_merges_with_what_discovery_learned_and_history_shows_it(
        cli: Cli, config_path: Path, tmp_path: Path) -> None:
    """`models register` on a discovered version wiped the framework, deployment and tags that
    discovery learned from Triton, and `models history` did not say what changed."""
    from lifecycled.domain import ModelRef, ModelSpec, Status
    from lifecycled.store import open_store

    ref = ModelRef("shadow_scoring", "1")
    store = open_store(f"sqlite:///{config_path.parent / 'state' / 'lifecycled.db'}",
                       config_path.parent)
    store.register(ModelSpec(ref, owner_team="auto_discovery", business_domain="unassigned",
                             framework="python", tags=("auto_discovered",),
                             deployment={"max_batch_size": 64}),
                   Status.STAGING, actor="discovery", reason="found READY in Triton", now=1.0)
    store.close()
    entry = tmp_path / "shadow.yaml"
    entry.write_text("name: shadow_scoring\nversion: '1'\nowner_team: risk_ml\n"
                     "business_domain: credit_risk\ndescription: shadow of credit scoring\n")
    assert cli("models", "register", "--file", str(entry)).code == 0
    model = cli("models", "show", "shadow_scoring:1", "--json").json()["model"]
    assert (model["framework"], model["tags"], model["deployment"]) == (
        "python", ["auto_discovered"], {"max_batch_size": 64})
    assert (model["owner_team"], model["description"]) == ("risk_ml", "shadow of credit scoring")
    text = cli("models", "history", "shadow_scoring:1").out
    assert "CHANGES" in text and "owner_team: auto_discovery -> risk_ml" in text
    assert "framework" not in text.split("CHANGES", 1)[1]  # kept, so not a change


def test_init_writes_a_valid_config_the_scrape_job_and_the_shipped_files(
        cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "etc"
    made = cli("init", str(folder), "--triton", "http://triton.internal:8000", "--prometheus",
               "http://prometheus.internal:9090", config=None)
    assert made.code == 0, made.err
    config = folder / "lifecycled.yaml"
    check = cli("check-config", "--json", config=config)
    assert check.code == 0, check.err
    assert check.json()["prometheus"] is True and check.json()["triton_endpoints"] == 1
    import yaml

    (job,) = yaml.safe_load((folder / "prometheus-scrape.yml").read_text())
    assert job["static_configs"] == [{"targets": ["127.0.0.1:9877"]}]
    shipped = {p.relative_to(folder / "shipped").as_posix()
               for p in (folder / "shipped").rglob("*") if p.is_file()}
    assert {"config/lifecycled.yaml", "config/systemd/lifecycled.service",
            "alerting/alertmanager.yml", "alerting/rules/lifecycled.yml",
            "alerting/templates/lifecycled.tmpl",
            "grafana/dashboards/lifecycled-overview.json"} <= shipped
    assert (folder / "shipped" / "alerting" / "rules" / "lifecycled.yml").read_text() == \
        (ROOT / "alerting" / "rules" / "lifecycled.yml").read_text()
    again = cli("init", str(folder), config=None)
    assert again.code == 2 and "exists; --force replaces" in again.err
    bad = cli("init", str(tmp_path / "x"), "--triton", "triton:8000", config=None)
    assert bad.code == 2 and "--triton 'triton:8000': expected an http:// or https:// URL" \
        in bad.err
