"""Configuration: defaults, units, every kind of error reported at once with its key path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from lifecycled.config import (
    ConfigError,
    load_settings,
    parse_settings,
    parse_yaml,
    resolve_config_path,
)
from lifecycled.domain import Status
from lifecycled.registration import parse_registrations
from lifecycled.secrets import read_secret
from lifecycled.units import parse_duration, parse_size

ROOT = Path(__file__).resolve().parent.parent


def problems(data: object) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_settings(data)
    return info.value.problems


def test_shipped_config_validates_with_the_seed_models() -> None:
    settings = load_settings(ROOT / "config" / "lifecycled.yaml")
    assert set(settings.models) == {"credit_scoring", "fraud_detection", "risk_assessment"}
    assert settings.daemon.listen.startswith("127.0.0.1:")
    assert settings.sources.triton[0].url == "http://127.0.0.1:8000"
    assert settings.sources.prometheus is None


def test_defaults_follow_the_seed_but_page_for_nothing() -> None:
    """The seed's limits, except a throughput floor (an idle or nightly-batch model is not
    failing) and a per-model CPU limit (Triton's CPU is the host's); discovery registers as
    staging, never production."""
    settings = parse_settings({})
    assert settings.thresholds_for("any") == {
        "min_accuracy": 0.85, "max_latency_p99_seconds": 0.1,
        "max_error_ratio": 0.01, "max_memory_bytes": 2048 * 2**20,
    }
    assert settings.defaults.monitoring.initial_status == Status.STAGING
    assert settings.schedule.collect == 300
    assert settings.schedule.evaluate == 3600
    assert settings.schedule.drift == 86400


def test_model_thresholds_override_defaults_key_by_key() -> None:
    settings = parse_settings({"models": {"m": {"thresholds": {"max_latency_p99": "80ms",
                                                                "min_throughput": 2}}}})
    merged = settings.thresholds_for("m")
    assert merged["max_latency_p99_seconds"] == pytest.approx(0.08)
    assert merged["min_throughput_rps"] == 2
    assert merged["min_accuracy"] == 0.85


@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90), ("5m", 300), ("12h", 43200), ("7d", 604800), ("80ms", 0.08), (15, 15),
    ("1.5h", 5400), ("1h30m", 5400), ("2d12h", 216000), ("1m30s500ms", 90.5), ("1h 30m", 5400),
])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["5 parsecs", "m5", "", True, "-5s", None, "30m1h", "5m5m",
                                 "1h-30m"])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_sizes() -> None:
    assert parse_size("2048MiB") == 2048 * 2**20
    assert parse_size("2GB") == 2e9
    with pytest.raises(ValueError):
        parse_size("2 gallons")


def test_every_problem_is_reported_at_once_with_its_path() -> None:
    found = problems({
        "models": {"credit_scoring": {"thresholds": {"min_accuracy": 1.7},
                                      "ownr_team": "typo"}},
        "schedule": {"drift": "5 parsecs"},
        "daemon": {"log_level": "LOUD"},
        "sources": {"triton": [{"name": "a"}]},
    })
    assert "models.credit_scoring.thresholds.min_accuracy: must be between 0 and 1, got 1.7" in found
    assert "models.credit_scoring.ownr_team: unknown key" in found
    assert any(p.startswith("schedule.drift: expected a duration") for p in found)
    assert any(p.startswith("daemon.log_level:") and "LOUD" in p for p in found)
    assert "sources.triton.0.url: required key is missing" in found
    assert "sources.triton.0.metrics_url: required key is missing" in found
    assert len(found) == 6


def test_unknown_top_level_section() -> None:
    assert problems({"deamon": {}}) == ["deamon: unknown key"]


def test_secret_values_are_refused_with_advice() -> None:
    found = problems({"webhooks": {"ci": {"url": "https://x", "secret": "whsec_abc"}}})
    assert "webhooks.ci.secret: secrets may not be written in the file; use secret_file or " \
           "secret_env" in found


def test_webhook_needs_exactly_one_secret_reference() -> None:
    found = problems({"webhooks": {"ci": {"url": "https://x"}}})
    assert found == ["webhooks.ci: give exactly one of secret_file or secret_env"]


def test_duplicate_triton_endpoint_names() -> None:
    endpoint = {"name": "a", "url": "http://h:8000", "metrics_url": "http://h:8002/metrics"}
    found = problems({"sources": {"triton": [endpoint, endpoint]}})
    assert found == ["sources.triton: duplicate Triton endpoint names: a"]


def test_top_level_must_be_a_mapping() -> None:
    assert problems([1, 2]) == ["the top level must be a mapping, got list"]


def test_yaml_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("daemon:\n  listen: [127.0.0.1\nsources: {}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}:3:")
    assert "YAML syntax error" in problem


def test_models_d_files_merge_and_report_their_problems(tmp_path: Path) -> None:
    (tmp_path / "models.d").mkdir()
    (tmp_path / "lifecycled.yaml").write_text("models:\n  a: {owner_team: x}\n")
    (tmp_path / "models.d" / "b.yaml").write_text("name: b\nowner_team: y\n")
    settings = load_settings(tmp_path / "lifecycled.yaml")
    assert settings.models["b"].owner_team == "y"
    (tmp_path / "models.d" / "a.yaml").write_text("name: a\n")
    (tmp_path / "models.d" / "c.yaml").write_text("owner_team: z\n")
    (tmp_path / "models.d" / "d.yaml").write_text("name: dd\nthresholds: {max_error_ratio: 2}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "lifecycled.yaml")
    text = "\n".join(info.value.problems)
    assert "a.yaml: model 'a' is already defined" in text
    assert "c.yaml: must be a mapping with a 'name' key" in text
    assert "models.dd.thresholds.max_error_ratio: must be between 0 and 1, got 2" in text


@pytest.mark.parametrize("where", [{"defaults": {"thresholds": {"max_cpu": 0.8}}},
                                   {"models": {"m": {"thresholds": {"max_cpu": 0.8}}}}])
def test_a_per_model_cpu_limit_is_refused_with_where_to_look(where: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(where)
    text = "\n".join(info.value.problems)
    assert "max_cpu: Triton's CPU utilisation is its host's" in text
    assert "LifecycledTritonHostCpuHigh" in text


def test_config_search_order(tmp_path: Path) -> None:
    assert resolve_config_path("x.yaml", {"LIFECYCLED_CONFIG": "y.yaml"}) == Path("x.yaml")
    assert resolve_config_path(None, {"LIFECYCLED_CONFIG": "y.yaml"}) == Path("y.yaml")


def test_secrets_come_from_files_or_environment(tmp_path: Path) -> None:
    (tmp_path / "s").write_text("whsec_abc\n")
    assert read_secret(str(tmp_path / "s"), None, {}) == "whsec_abc"
    assert read_secret(None, "SECRET", {"SECRET": "whsec_env"}) == "whsec_env"
    assert read_secret("s", None, {"CREDENTIALS_DIRECTORY": str(tmp_path)}) == "whsec_abc"
    with pytest.raises(ConfigError, match="SECRET is not set"):
        read_secret(None, "SECRET", {})


@pytest.mark.parametrize("written, read", [("1.10", "float 1.1"), ("0x1F", "int 31"),
                                           ("yes", "bool True"), ("3", "int 3")])
def test_an_unquoted_version_is_refused_not_changed(written: str, read: str) -> None:
    document = parse_yaml(f"name: m\nversion: {written}\n", "f.yaml")
    with pytest.raises(ConfigError) as info:
        parse_registrations(document, "f.yaml")
    assert info.value.problems == [f"version: quote it; YAML read the unquoted value as the "
                                   f"{read} (1.10 reads as 1.1)"]
    (one,) = parse_registrations(parse_yaml(f'name: m\nversion: "{written}"\n', "f"), "f")
    assert one.version == written


def test_registration_documents() -> None:
    (one,) = parse_registrations({"name": "m", "version": "3", "owner_team": "t"}, "f")
    assert one.version == "3"
    with pytest.raises(ConfigError) as info:
        parse_registrations([{"name": "m"}, "x", {"name": "n", "version": "1", "status": "gone"}],
                            "f.yaml")
    assert info.value.problems[0] == "0.version: required key is missing"
    assert info.value.problems[1] == "[1]: expected a mapping, got str"
    assert info.value.problems[2].startswith("2.status:")


def test_a_compound_duration_in_the_wrong_order_names_the_key() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_settings({"schedule": {"collect": "30m1h"}})
    assert "schedule.collect: expected the largest unit first and each unit once, got '30m1h'" \
        in raised.value.problems


def test_the_metrics_url_defaults_from_the_api_url() -> None:
    settings = parse_settings({"sources": {"triton": [
        {"name": "a", "url": "http://10.0.0.5:8000"},
        {"name": "b", "url": "https://[fd00::5]:8000", "metrics_url": "https://m:9/metrics"}]}})
    a, b = settings.sources.triton
    assert a.metrics_url == "http://10.0.0.5:8002/metrics"
    assert b.metrics_url == "https://m:9/metrics"
    six = parse_settings({"sources": {"triton": [{"name": "c", "url": "http://[fd00::5]:8000"}]}})
    assert six.sources.triton[0].metrics_url == "http://[fd00::5]:8002/metrics"


def test_quality_promql_without_prometheus_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"models m: quality\.promql needs sources\.prometheus"):
        parse_settings({"models": {"m": {"quality": {"promql": {"accuracy": "up"}}}}})


BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi",
                                                                     strict=True))


@pytest.mark.parametrize("text, problem", [
    ("schedule: {collect: .inf}", "schedule.collect: must be a finite number, got inf"),
    ("schedule: {collect: .nan}", "schedule.collect: must be a finite number, got nan"),
    ("schedule: {collect: 99999999999999d}",
     "schedule.collect: must be at most 3650d (ten years), got '99999999999999d'"),
    ('daemon: {listen: "127.0.0.1:99999"}',
     "daemon.listen: the port must be between 1 and 65535, got 99999"),
    ('daemon: {listen: "no-such-host.invalid:9877"}',
     "daemon.listen: cannot resolve the host 'no-such-host.invalid'"),
    ("daemon: {tls: {cert_file: /nonexistent/c.pem, key_file: /nonexistent/k.pem}}",
     "daemon.tls: cert_file: cannot read /nonexistent/c.pem"),
    ("defaults: {monitoring: {max_snapshots: 1.0e+26}}", "defaults.monitoring.max_snapshots:"),
    ("defaults: {monitoring: {max_snapshots: 100000000000}}",
     "defaults.monitoring.max_snapshots: input should be less than or equal to 1000000000"),
    ("webhooks: {a: {url: 'http://127.0.0.1:1/', secret_env: X, backoff_initial: .nan}}",
     "webhooks.a.backoff_initial: must be a finite number, got nan"),
    ("policies: {retirement: {max_age_days: .inf}}",
     "policies.retirement.max_age_days: input should be a finite number"),
    (BILLION_LAUGHS, "YAML aliases expand to more than 200,000 nodes"),
    ("a: " + "[" * 5000 + "]" * 5000, "nested too deeply to read"),
])
@pytest.mark.slow
def test_check_config_refuses_what_run_would_die_on(tmp_path: Path, text: str,
                                                    problem: str) -> None:
    """Each of these passed check-config before and then crashed (or hung) `run`; now it is one
    line naming the key (or the file), exit 2, no traceback."""
    config = tmp_path / "lifecycled.yaml"
    config.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "lifecycled", "check-config", "--config",
                           str(config)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert problem in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_config_that_is_not_utf8_names_the_byte(tmp_path: Path) -> None:
    config = tmp_path / "lifecycled.yaml"
    config.write_bytes(b"daemon:\n  listen: \"\xff\xfe\"\n")
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    assert info.value.problems == [f"{config}: not UTF-8 text (byte 0xff at offset 19)"]


@pytest.mark.parametrize("crontab", ["61 * * * *", "every day", "* * *", "0 0 * * mon-fry"])
def test_an_invalid_update_schedule_is_refused(crontab: str) -> None:
    """An invalid cron passed check-config, then the updates task failed at every pass, so no
    model got automatic update jobs."""
    with pytest.raises(ConfigError) as info:
        parse_settings({"policies": {"updates": {"schedule": crontab}}})
    assert "policies.updates.schedule: not a crontab expression" in "\n".join(
        info.value.problems)
    assert parse_settings({"policies": {"updates": {"schedule": "0 3 * * 1"}}})


@pytest.mark.parametrize("data, key, says", [
    ({"webhooks": {"ci": {"url": "https://ci.example/hook\r\nX-Evil: 1", "secret_env": "S"}}},
     "webhooks.ci.url", "control characters"),
    ({"webhooks": {"ci": {"url": "https://user:pw@ci.example/hook", "secret_env": "S"}}},
     "webhooks.ci.url", "credentials may not be written in a URL"),
    ({"sources": {"triton": [{"name": "t", "url": "http://t:8000",
                              "headers": {"X-Team": "risk\r\nX-Evil: 1"}}]}},
     "sources.triton.0.headers", "control characters"),
    ({"models": {"m": {"drift": {"reference": "s3://AKIA:secret@bucket/ref.csv"}}}},
     "models.m.drift.reference", "credentials may not be written in a URL"),
    ({"daemon": {"leader_lease": "1ms"}}, "daemon.leader_lease", "greater than or equal to 0.1"),
])
def test_check_config_refuses_what_would_break_later(data: dict[str, Any], key: str,
                                                     says: str) -> None:
    """Each passed check-config: a header or URL with a line break, credentials in a webhook or
    s3:// URL (shown by `webhooks list`, logged), a lease of a millisecond."""
    with pytest.raises(ConfigError) as info:
        parse_settings(data)
    problems = "\n".join(info.value.problems)
    assert key in problems and says in problems, problems


def test_duplicate_keys_and_an_empty_file_are_refused(tmp_path: Path) -> None:
    """YAML keeps the last of two equal keys silently, and SIGHUP with a truncated (empty) file
    ran the daemon on the defaults: no webhooks, no models, Triton at 127.0.0.1:8000."""
    twice = tmp_path / "twice.yaml"
    twice.write_text("webhooks: {}\ndaemon: {log_level: INFO}\ndaemon: {log_level: DEBUG}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(twice)
    assert "twice.yaml:3: key 'daemon' is written twice" in "\n".join(info.value.problems)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ConfigError) as info:
        load_settings(empty)
    assert "the file is empty" in "\n".join(info.value.problems)


def test_control_characters_in_metadata_are_refused() -> None:
    """An owner_team with a terminal escape was stored and printed raw (escape injection in
    `models list`); a description may still span lines."""
    with pytest.raises(ConfigError) as info:
        parse_registrations([{"name": "m", "version": "1", "owner_team": "risk\x1b[31mred",
                              "business_domain": "d"}], source="f.yaml")
    assert "owner_team: control characters" in "\n".join(info.value.problems)
    (entry,) = parse_registrations([{"name": "m", "version": "1", "owner_team": "risk",
                                     "business_domain": "d", "description": "one\ntwo"}],
                                   source="f.yaml")
    assert entry.description == "one\ntwo"


@pytest.mark.slow
def test_a_large_document_without_aliases_is_not_called_an_alias_bomb() -> None:
    """A file of more than 200,000 values and no alias was refused with the alias-bomb message."""
    from lifecycled.config import parse_yaml

    with pytest.raises(ConfigError) as info:
        parse_yaml("[" + "1, " * 200_001 + "]", "big.yaml")
    assert info.value.problems == ["big.yaml: more than 200,000 values; split it into several "
                                   "files"]
    bomb = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n"
        for p, c in zip("abcdef", "bcdefg", strict=True))
    with pytest.raises(ConfigError, match="YAML aliases expand to more than"):
        parse_yaml(bomb, "bomb.yaml")


def test_the_false_alarm_budget_sets_each_repeated_verdicts_significance() -> None:
    """1/30d at one drift check a day is 1/30 per check, split between the check's two families
    of tests (KS and chi-square); at one check every 5 minutes 1/8640; a model with segments
    splits it among them too; drift.alpha fixes it instead, and says so."""
    settings = parse_settings({})
    assert settings.defaults.monitoring.false_alarm_budget == (1.0, 30 * 86400.0)
    policy = settings.drift_policy("credit_scoring")
    assert policy.alpha == pytest.approx(1 / 30 / 2)
    assert policy.basis == ("from a budget of 1 false alarm per 30d at one check every 1d, split "
                            "among 2 families of tests (KS and chi-square)")
    often = parse_settings({"schedule": {"drift": "5m", "quality": "10m"}, "models": {
        "fraud": {"segment_by": ["channel"], "segment_top": 3},
        "loud": {"false_alarm_budget": "2/7d"},
        "fixed": {"drift": {"alpha": 0.01}}}})
    assert often.drift_policy("credit_scoring").alpha == pytest.approx(1 / 8640 / 2)
    fraud = often.drift_policy("fraud")
    assert fraud.alpha == pytest.approx(1 / 8640 / 10)  # the model and 4 segments, 2 tests each
    assert fraud.basis.endswith("split among 10 families of tests (KS and chi-square, for the "
                                "model and each of its 4 segments)")
    assert often.drift_policy("loud").alpha == pytest.approx(2 / (7 * 288) / 2)
    assert often.drift_policy("fixed").alpha == 0.01
    assert often.drift_policy("fixed").basis == "fixed by drift.alpha"
    quality = often.significance("credit_scoring", often.schedule.quality)
    assert quality.alpha == pytest.approx(1 / 4320)
    assert quality.basis == "from a budget of 1 false alarm per 30d at one check every 10m"
    weekly = parse_settings({"schedule": {"drift": "7d"}})
    assert weekly.drift_policy("m").alpha == 0.05 / 2
    assert "(capped at 0.05)" in weekly.drift_policy("m").basis


@pytest.mark.parametrize(("budget", "message"), [
    ("30d", "expected alarms/period like 1/30d"), ("0/30d", "greater than 0"),
    ("1/0s", "greater than 0"), ("x/30d", "expected alarms/period")])
def test_a_malformed_budget_is_refused_with_its_key(budget: str, message: str) -> None:
    found = problems({"defaults": {"monitoring": {"false_alarm_budget": budget}}})
    assert len(found) == 1 and found[0].startswith("defaults.monitoring.false_alarm_budget: ")
    assert message in found[0], found


def test_a_regression_model_has_its_own_thresholds_and_no_accuracy() -> None:
    """A model whose model_type is regression is checked against its error limits, none by
    default (they are in its target's units), and never against the default min_accuracy."""
    settings = parse_settings({"models": {"loss_given_default": {
        "model_type": "regression",
        "thresholds": {"max_mae": 0.08, "max_mape": "15%", "min_r2": 0.4, "max_bias": 0.02}}}})
    limits = settings.thresholds_for("loss_given_default")
    assert "min_accuracy" not in limits
    assert limits["max_mae"] == 0.08 and limits["max_mape_ratio"] == pytest.approx(0.15)
    assert limits["min_r_squared"] == 0.4 and limits["max_abs_mean_error"] == 0.02
    assert "max_rmse" not in limits  # not configured: not checked
    classifier = settings.thresholds_for("credit_scoring")
    assert classifier["min_accuracy"] == 0.85 and "max_mae" not in classifier
    assert problems({"defaults": {"thresholds": {"min_r2": 1.5}}}) == [
        "defaults.thresholds.min_r2: input should be less than or equal to 1, got 1.5"]


def test_estimate_features_are_refused_for_a_classifier() -> None:
    """A key that would do nothing is refused: a classifier's estimate (CBPE) learns from its
    scores, not from features."""
    found = problems({"models": {"fraud": {"model_type": "classification",
                                           "quality": {"estimate_features": ["amount"]}}}})
    assert found == ["models.fraud: quality.estimate_features: only a regression model's "
                     "estimate (DLE) learns from features; this model_type is 'classification'"]
    judged = problems({"models": {"loss": {"model_type": "regression",
                                           "quality": {"use_estimate": True}}}})
    assert len(judged) == 1 and judged[0].startswith("models.loss: quality.use_estimate: ")


TRACED = {"triton": [{"name": "t", "url": "http://127.0.0.1:8000", "trace_file": "/srv/trace"}]}


@pytest.mark.parametrize(("data", "expected"), [
    ({"models": {"m": {"drift": {"source": "triton"}}}},
     "models.m.drift.source: triton needs an endpoint in sources.triton with trace_file"),
    ({"sources": TRACED, "models": {"m": {"drift": {"source": "triton", "current": "c.csv"}}}},
     "models.m.drift.current: the current rows of source triton are the traced requests"),
    ({"models": {"m": {"drift": {"reference": "frozen", "current": "c.csv"}}}},
     "models.m.drift.reference: frozen is taken from Triton's traces"),
    ({"models": {"m": {"drift": {"reference": "r.csv", "current": "c.csv", "trace_rate": 5}}}},
     "models.m.drift.trace_rate: only with source: triton"),
    ({"models": {"m": {"drift": {"source": "prometheus"}}}},
     "models.m.drift.source: prometheus needs sources.prometheus"),
    ({"sources": {"prometheus": {"url": "http://127.0.0.1:9090"}},
      "models": {"m": {"drift": {"source": "prometheus"}}}},
     "models.m.drift.histogram: source prometheus judges a histogram"),
    ({"models": {"m": {"drift": {"histogram": {"metric": "score"}}}}},
     "models.m.drift.histogram: only with source: prometheus"),
    ({"defaults": {"drift": {"source": "triton"}}},
     "defaults.drift.source: triton needs an endpoint"),
    ({"sources": {"triton": [{"name": "t", "url": "http://127.0.0.1:8000",
                              "trace_file": "relative/trace"}]}},
     "sources.triton.0.trace_file: must be an absolute local path"),
    ({"sources": {"prometheus": {"url": "http://127.0.0.1:9090"}},
      "models": {"m": {"drift": {"source": "prometheus",
                                 "histogram": {"metric": "score-bad"}}}}},
     "models.m.drift.histogram.metric: not a Prometheus metric name: 'score-bad'"),
])
def test_where_drift_rows_come_from_is_checked_with_the_key_named(data: object,
                                                                  expected: str) -> None:
    """Every drift source key does what it says or is refused, naming the key."""
    found = problems(data)
    assert len(found) == 1 and expected in found[0], found


def test_traced_and_histogram_drift_settings_are_accepted() -> None:
    settings = parse_settings({
        "sources": {**TRACED, "prometheus": {"url": "http://127.0.0.1:9090"}},
        "defaults": {"drift": {"source": "triton"}},
        "models": {"m": {"drift": {"trace_rate": 10, "columns": {"INPUT_0": "income"}}},
                   "g": {"drift": {"source": "prometheus",
                                   "histogram": {"metric": "gateway_score",
                                                 "reference_offset": "1d"}}},
                   "f": {"drift": {"source": "files", "reference": "r.csv",
                                   "current": "c.csv"}}}})
    assert settings.drift_config("m").trace_rate == 10
    assert settings.drift_config("discovered").source == "triton"  # the opt-in default
    assert settings.drift_config("g").histogram.reference_offset == 86400  # type: ignore[union-attr]
    assert settings.drift_config("f").source == "files"


def test_reading_the_settings_imports_no_scipy() -> None:
    """Every command reads its settings; the champion and challenger policy they embed made
    each one import scipy (0.35 s) before it did anything."""
    done = subprocess.run([sys.executable, "-c", "import sys, lifecycled.config; "
                           "print(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy'))"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
