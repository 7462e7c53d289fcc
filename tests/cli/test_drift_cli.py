"""`lifecycled drift` and `lifecycled quality` through a subprocess: tables, JSON, exit codes."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from lifecycled.domain import ModelRef
from lifecycled.store import open_store
from lifecycled.store.results import latest_drift

from tests.helpers import ROOT, CliResult, write_config

Cli = Callable[..., CliResult]


def write_sample(path: Path, columns: dict[str, np.ndarray]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(zip(*columns.values(), strict=False))
    return path


@pytest.fixture
def samples(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    n = 2000
    reference = {"amount": rng.lognormal(3, 1, n), "age": rng.normal(40, 10, n),
                 "channel": rng.choice(["web", "pos", "atm"], n)}
    current = {"amount": rng.lognormal(3, 1, n) * 1.8 + 10, "age": rng.normal(40, 10, n),
               "channel": rng.choice(["web", "pos", "atm"], n)}
    return (write_sample(tmp_path / "ref.csv", reference),
            write_sample(tmp_path / "cur.csv", current))


def test_drift_json_and_fail_on(cli: Cli, samples: tuple[Path, Path]) -> None:
    ref, cur = samples
    result = cli("drift", "--reference", str(ref), "--current", str(cur), "--json", config=None)
    assert result.code == 0, result.err
    data = result.json()
    features = {f["feature"]: f for f in data["features"]}
    assert set(features) == {"amount", "age", "channel"}
    assert features["amount"]["severity"] in ("high", "critical")
    assert features["age"]["severity"] == "low"
    assert features["channel"]["kind"] == "categorical"
    assert data["severity"] == features["amount"]["severity"]
    assert data["recommendations"]
    assert data["alert_severity"] == "medium"  # what drifted_share counts
    assert data["drifted_share"] == pytest.approx(
        sum(f["severity"] in ("medium", "high", "critical") for f in data["features"]) / 3)
    failing = cli("drift", "--reference", str(ref), "--current", str(cur), "--fail-on", "high",
                  config=None)
    assert failing.code == 1
    assert "model severity:" in failing.out
    assert "drifted features (at or above medium):" in failing.out
    only_age = cli("drift", "--reference", str(ref), "--current", str(cur), "--features", "age",
                   "--fail-on", "medium", "--json", config=None)
    assert only_age.code == 0
    assert [f["feature"] for f in only_age.json()["features"]] == ["age"]


def test_drift_on_a_missing_file_is_a_clear_error(cli: Cli, samples: tuple[Path, Path]) -> None:
    result = cli("drift", "--reference", "missing.csv", "--current", str(samples[1]), config=None)
    assert result.code == 2
    assert "missing.csv: file not found" in result.err
    assert "Traceback" not in result.err


def test_drift_for_a_configured_model_is_stored(tmp_path: Path, samples: tuple[Path, Path],
                                               cli: Cli) -> None:
    ref, cur = samples
    config = write_config(tmp_path / "cfg2", {"models": {"credit_scoring": {
        "owner_team": "risk_ml", "business_domain": "credit_risk",
        "drift": {"reference": str(ref), "current": str(cur), "alert_severity": "high"}}}},
        models_d=False)
    (tmp_path / "cfg2" / "m.yaml").write_text(yaml.safe_dump(
        {"name": "credit_scoring", "version": "1", "status": "production"}))
    assert cli("models", "register", "--file", str(tmp_path / "cfg2" / "m.yaml"),
               config=config).code == 0
    first = cli("drift", "--model", "credit_scoring:1", "--json", config=config)
    assert first.code == 0, first.err
    assert first.json()["profile_cached"] is False
    # judged as the daemon judges it: the budget (1/30d) over the drift schedule (daily)
    assert first.json()["alpha"] == pytest.approx(1 / 60)
    assert first.json()["alpha_basis"] == ("from a budget of 1 false alarm per 30d at one check "
                                           "every 1d, split among 2 families of tests (KS and "
                                           "chi-square)")
    text = cli("drift", "--model", "credit_scoring:1", config=config)
    assert "judged at alpha = 0.0167, from a budget of 1 false alarm per 30d" in text.out
    fixed = cli("drift", "--model", "credit_scoring:1", "--alpha", "0.01", config=config)
    assert fixed.code == 2 and "false-alarm budget" in fixed.err
    second = cli("drift", "--model", "credit_scoring:1", "--json", config=config)
    assert second.json()["profile_cached"] is True
    assert second.json()["features"] == first.json()["features"]
    store = open_store(yaml.safe_load(config.read_text())["daemon"]["state_url"], tmp_path)
    (stored,) = latest_drift(store, ModelRef("credit_scoring", "1"))
    assert stored.result["severity"] == first.json()["severity"]
    store.close()
    unknown = cli("drift", "--model", "fraud_detection:2", config=config)
    assert unknown.code == 2 and "no model fraud_detection:2" in unknown.err


def test_quality_command(cli: Cli, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 1000)
    predictions = np.where(rng.random(1000) < 0.85, labels, 1 - labels)
    path = write_sample(tmp_path / "outcomes.csv", {
        "prediction": predictions, "label": labels, "score": rng.random(1000)})
    result = cli("quality", "--outcomes", str(path), "--score-column", "score", "--json",
                 config=None)
    assert result.code == 0, result.err
    data = result.json()
    assert data["accuracy"] == pytest.approx(float(np.mean(predictions == labels)))
    assert data["samples"] == 1000 and data["concept"]["severity"] == "low"
    text = cli("quality", "--outcomes", str(path), config=None)
    assert "accuracy" in text.out and "concept drift" in text.out
    bad = cli("quality", "--outcomes", str(path), "--label-column", "truth", config=None)
    assert bad.code == 2 and "missing column(s) truth" in bad.err


def test_quality_of_a_regression_model(cli: Cli, tmp_path: Path) -> None:
    """`--model-type regression`: the error metrics (equal to scikit-learn's), never accuracy;
    a classifier's options and words as labels are refused by name."""
    from sklearn.metrics import mean_absolute_error, r2_score

    rng = np.random.default_rng(3)
    labels = rng.lognormal(7, 1, 800)
    predictions = labels * rng.normal(1.0, 0.2, 800)
    path = write_sample(tmp_path / "losses.csv", {"prediction": predictions, "label": labels})
    result = cli("quality", "--outcomes", str(path), "--model-type", "regression", "--json",
                 config=None)
    assert result.code == 0, result.err
    data = result.json()
    assert data["model_type"] == "regression" and "accuracy" not in data
    assert data["mae"] == pytest.approx(mean_absolute_error(labels, predictions), rel=1e-9)
    assert data["r2"] == pytest.approx(r2_score(labels, predictions), rel=1e-9)
    text = cli("quality", "--outcomes", str(path), "--model-type", "regression", config=None)
    assert "rmse" in text.out and "absolute error over" in text.out
    assert "accuracy" not in text.out
    scored = cli("quality", "--outcomes", str(path), "--model-type", "regression",
                 "--score-column", "label", config=None)
    assert scored.code == 2 and "a classifier's" in scored.err
    words = write_sample(tmp_path / "words.csv", {"prediction": np.array([1.0, 2.0]),
                                                  "label": np.array(["low", "high"])})
    refused = cli("quality", "--outcomes", str(words), "--model-type", "regression",
                  config=None)
    assert refused.code == 2 and "column 'label' holds 'low', not a number" in refused.err
    as_classes = cli("quality", "--outcomes", str(path), config=None)
    assert as_classes.code == 2 and "model_type: regression" in as_classes.err


def test_nothing_judged_is_unknown_and_fail_on_exits_3(cli: Cli, samples: tuple[Path, Path],
                                                      tmp_path: Path) -> None:
    ref, _ = samples
    empty = tmp_path / "empty.csv"
    empty.write_text("amount,age,channel\n")
    result = cli("drift", "--reference", str(ref), "--current", str(empty), "--fail-on",
                 "medium", "--json", config=None)
    assert result.code == 3, result.err
    record = json.loads(result.out, parse_constant=_no_constants)  # strict: no NaN in the JSON
    assert record["severity"] == "unknown"
    assert "Continue routine monitoring" not in record["recommendations"]
    text = cli("drift", "--reference", str(ref), "--current", str(empty), config=None)
    assert text.code == 0 and "model severity: unknown" in text.out


def test_a_misspelled_feature_is_a_usage_error_naming_the_columns(
        cli: Cli, samples: tuple[Path, Path]) -> None:
    """A --features name the reference does not have is a typo on the command line (exit 2,
    naming the columns there are), not a high-severity schema break of the data."""
    ref, _ = samples
    result = cli("drift", "--reference", str(ref), "--current", str(ref), "--features",
                 "amount,agee", "--fail-on", "medium", config=None)
    assert result.code == 2, result.out + result.err
    assert "agee" in result.err and "age, amount, channel" in result.err


def test_nothing_judged_exits_3_at_every_fail_on_level(cli: Cli, samples: tuple[Path, Path],
                                                      tmp_path: Path) -> None:
    """Every feature below min_samples, or every feature a schema break: nothing was judged,
    so the gate says unknown (3) whatever its level. `--fail-on critical` exited 0 on a
    current sample whose every column had changed type (severity high, below critical)."""
    ref, _ = samples
    few = write_sample(tmp_path / "few.csv", {"amount": np.arange(10.0), "age": np.arange(10.0),
                                              "channel": np.array(["web"] * 10)})
    text = write_sample(tmp_path / "text.csv", {"amount": np.array(["x"] * 500),
                                                "age": np.array(["y"] * 500),
                                                "channel": np.array(["web"] * 500)})
    for current in (few, text):
        for level in ("medium", "high", "critical"):
            result = cli("drift", "--reference", str(ref), "--current", str(current),
                         "--features", "amount,age", "--fail-on", level, config=None)
            assert result.code == 3, (current.name, level, result.out, result.err)


def test_the_text_table_names_tiers_and_drivers(cli: Cli, samples: tuple[Path, Path]) -> None:
    ref, cur = samples
    out = cli("drift", "--reference", str(ref), "--current", str(cur), config=None).out
    assert "driven by amount" in out
    assert "significant" in out  # the PSI tier of amount
    assert "MISSING" in out and "0.0% -> 0.0%" in out


def _no_constants(name: str) -> None:
    raise AssertionError(f"invalid JSON constant {name}")


def test_ad_hoc_drift_reuses_the_reference_profile_by_content(
        cli: Cli, samples: tuple[Path, Path], tmp_path: Path) -> None:
    """The CLI built the reference profile afresh on every run; now it is cached like the
    daemon's, keyed by the reference's bytes and the binning, and gives the same verdicts."""
    ref, cur = samples
    cache = tmp_path / "profiles"
    argv = ["drift", "--reference", str(ref), "--current", str(cur), "--json",
            "--cache-dir", str(cache)]
    first, second = cli(*argv, config=None), cli(*argv, config=None)
    assert first.code == second.code == 0, first.err + second.err
    assert (first.json()["profile_cached"], second.json()["profile_cached"]) == (False, True)
    assert [f["p_value"] for f in first.json()["features"]] == \
        [f["p_value"] for f in second.json()["features"]]
    assert len(list(cache.glob("*.npz"))) == 1
    assert cli(*argv, "--bins", "20", config=None).json()["profile_cached"] is False  # binning
    ref.write_text(ref.read_text().replace("web", "app"))  # new content: a new profile
    assert cli(*argv, config=None).json()["profile_cached"] is False
    fresh = cli("drift", "--reference", str(ref), "--current", str(cur), "--json", "--no-cache",
                "--cache-dir", str(tmp_path / "unused"), config=None)
    assert fresh.json()["profile_cached"] is False and not (tmp_path / "unused").exists()
    default = ["drift", "--reference", str(ref), "--current", str(cur), "--json"]
    assert cli(*default, config=None).json()["profile_cached"] is False
    assert cli(*default, config=None).json()["profile_cached"] is True
    user_cache = Path(os.environ["XDG_CACHE_HOME"]) / "lifecycled" / "profiles"
    assert list(user_cache.glob("*.npz"))  # $XDG_CACHE_HOME/lifecycled/profiles


@pytest.mark.slow
def test_a_large_check_does_not_import_scipy_stats(tmp_path: Path) -> None:
    """Importing scipy.stats costs about half a second, which every `lifecycled drift` paid
    (for the Benjamini-Hochberg correction and the Kolmogorov tail): a check of large samples
    (effective size above 100,000, where the tail is Pelz and Good's series) now needs none of
    it, with the p-values still scipy's (tests/core/test_ecdf.py)."""
    import subprocess
    import sys

    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(1)
    for name, n, shift in (("reference", 300_000, 0.0), ("current", 250_000, 0.002)):
        pq.write_table(pa.table({"a": rng.normal(shift, 1, n), "b": rng.normal(0, 1, n)}),
                       tmp_path / f"{name}.parquet")
    script = (
        "import sys, json, io, contextlib\n"
        "from lifecycled.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    code = main(['drift', '--reference', {str(tmp_path / 'reference.parquet')!r}, "
        f"'--current', {str(tmp_path / 'current.parquet')!r}, '--json', '--no-cache'])\n"
        "print(json.dumps({'code': code, 'stats': 'scipy.stats' in sys.modules, "
        "'p': [f['p_value'] for f in json.loads(out.getvalue())['features']]}))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])
    assert found["code"] == 0 and found["stats"] is False
    assert all(0.0 < p <= 1.0 for p in found["p"])  # judged: the tail of these sizes


def test_a_traced_models_reference_is_shown_frozen_again_and_judged(
        cli: Cli, tmp_path: Path) -> None:
    """``reference show``, ``reference freeze`` (a chosen window, replacing the one before,
    with a history row) and ``drift --model`` on a model whose rows are Triton's traces (rows
    put in the store here as the traces task would)."""
    import time

    from lifecycled.domain import ModelSpec, Status
    from lifecycled.store.traces import add_trace_file

    config = write_config(tmp_path / "traced", {
        "sources": {"triton": [{"name": "local", "url": "http://127.0.0.1:9",
                                "trace_file": str(tmp_path / "trace.json")}]},
        "models": {"credit_scoring": {"drift": {"source": "triton", "reference_rows": 300,
                                                "min_samples": 50, "window": "1h"}}}},
        models_d=False)
    ref = ModelRef("credit_scoring", "1")
    store = open_store(f"sqlite:///{tmp_path / 'traced' / 'state' / 'lifecycled.db'}", tmp_path)
    store.register(ModelSpec(ref, owner_team="risk_ml", business_domain="credit_risk"),
                   Status.PRODUCTION, actor="test", reason="test", now=1.0)
    rng = np.random.default_rng(1)
    now = time.time()
    for index, (shift, at) in enumerate(((0.0, now - 7200), (2.0, now - 60))):
        columns = {"INPUT": rng.normal(shift, 1.0, 400), "OUTPUT": rng.random(400)}
        assert add_trace_file(store, "local", f"digest-{index}", f"trace.json.{index}",
                              requests=50, batches={ref: columns}, at=at, now=at)
    store.close()

    shown = cli("reference", "show", "credit_scoring:1", "--json", config=config)
    assert shown.code == 0, shown.err
    assert shown.json() == {"model": "credit_scoring:1", "frozen": None, "sampled": 800,
                            "wanted": 300}
    refused = cli("reference", "freeze", "credit_scoring:1", "--since", "10m", "--until", "5m",
                  "--reason", "r", config=config)
    assert refused.code == 2 and "no rows Triton sampled in that window" in refused.err
    frozen = cli("reference", "freeze", "credit_scoring:1", "--until", "1h", "--rows", "300",
                 "--reason", "the quiet week before the campaign", "--actor", "risk_ml",
                 config=config)
    assert frozen.code == 0, frozen.err
    assert "frozen from 300 traced rows (INPUT, OUTPUT)" in frozen.out
    history = cli("models", "history", "credit_scoring:1", "--json", config=config).json()
    entry = history["history"][-1]
    assert (entry["kind"], entry["actor"], entry["evidence"]["rows"]) == (
        "reference_frozen", "risk_ml", 300)

    drift = cli("drift", "--model", "credit_scoring:1", config=config)
    assert drift.code == 0, drift.err
    assert "current: triton traces of the last 1h; reference: reference frozen from 300 " \
           "traced rows" in drift.out
    judged = cli("drift", "--model", "credit_scoring:1", "--json", "--fail-on", "high",
                 config=config)
    assert judged.code == 1  # the last hour's rows moved by 2 sd
    features = {f["feature"]: f["severity"] for f in judged.json()["features"]}
    assert features["INPUT"] == "critical" and features["OUTPUT"] == "low"
