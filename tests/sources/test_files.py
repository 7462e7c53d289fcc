"""Data files behind a URL: references, samples and outcomes read from an S3-compatible server.

The server is moto's server mode on 127.0.0.1 (``devtools.s3``), with IAM authentication on: it
stands in for S3, which cannot run here. The reads go through pyarrow's AWS SDK as they would to
S3: signed requests, credentials from the environment."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from lifecycled.config import parse_settings
from lifecycled.context import Context
from lifecycled.domain import DriftPolicy, ModelRef, ModelSpec, Status
from lifecycled.errors import SourceError
from lifecycled.sources.files import expand, reads_abandoned
from lifecycled.sources.samples import read_sample
from lifecycled.store.results import latest_quality
from lifecycled.store.serving import source_health
from lifecycled.tasks.drift import DriftInputs, check_drift, check_to_json
from lifecycled.tasks.quality import run_quality

from devtools.s3 import S3, dripping_endpoint, failing_endpoint, silent_endpoint, start_s3
from tests.helpers import wait_for, write_outcomes
from tests.stores import open_test_store


@pytest.fixture(scope="module")
def s3() -> Iterator[S3]:
    server = start_s3()
    yield server
    server.stop()


@pytest.fixture
def credentials(s3: S3, monkeypatch: pytest.MonkeyPatch) -> S3:
    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    return s3


def parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def csv(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pa_csv.write_csv(table, sink)
    return sink.getvalue()


def sample(shift: float, seed: int, n: int = 2000) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({"a": rng.normal(shift, 1, n), "b": rng.exponential(1 + shift, n),
                     "c": rng.choice(["x", "y", "z"], n)})


def test_a_url_reads_as_the_same_file_on_disk_does(credentials: S3, tmp_path: Path) -> None:
    table = sample(0.0, 1)
    for name, data in (("same.parquet", parquet(table)), ("same.csv", csv(table))):
        credentials.put(f"read/{name}", data)
        (tmp_path / name).write_bytes(data)
        remote = read_sample(credentials.url(f"read/{name}"))
        local = read_sample(str(tmp_path / name))
        assert remote.rows == local.rows == 2000
        assert remote.files == (f"s3://models/read/{name}",)  # the URL without its options
        for column, values in local.columns.items():
            assert list(remote.columns[column]) == list(values)


def test_a_glob_on_an_object_store_matches_its_keys(credentials: S3) -> None:
    for day in (1, 2, 3):
        credentials.put(f"glob/day{day}.csv", csv(sample(0.0, day, 10)))
    credentials.put("glob/other.csv", csv(sample(0.0, 9, 10)))
    files = expand(credentials.url("glob/day*.csv"))
    assert [str(f) for f in files] == [f"s3://models/glob/day{d}.csv" for d in (1, 2, 3)]
    assert read_sample(credentials.url("glob/day*.csv")).rows == 30
    with pytest.raises(SourceError, match="no file matches"):
        expand(credentials.url("glob/none*.csv"))


def test_drift_from_an_object_store_judges_as_from_disk_and_caches_by_version(
        credentials: S3, tmp_path: Path) -> None:
    reference, current = parquet(sample(0.0, 1)), parquet(sample(0.4, 2))
    credentials.put("drift/reference.parquet", reference)
    credentials.put("drift/current.parquet", current)
    (tmp_path / "reference.parquet").write_bytes(reference)
    (tmp_path / "current.parquet").write_bytes(current)
    policy, cache = DriftPolicy(), tmp_path / "profiles"

    def judged(inputs: DriftInputs) -> tuple[dict[str, Any], bool]:
        check = check_drift(inputs, policy, cache_dir=cache, now=1.0)
        record = check_to_json(check, now=1.0)
        return {k: record[k] for k in ("severity", "drifted_share", "features")}, \
            check.profile_cached

    remote = DriftInputs(reference=credentials.url("drift/reference.parquet"),
                         current=credentials.url("drift/current.parquet"), categorical=("c",))
    local = DriftInputs(reference=str(tmp_path / "reference.parquet"),
                        current=str(tmp_path / "current.parquet"), categorical=("c",))
    first, cached_first = judged(remote)
    assert first == judged(local)[0]
    assert first["severity"] != "low"  # a real shift, judged the same way
    again, cached_again = judged(remote)
    assert (cached_first, cached_again, again) == (False, True, first)
    credentials.put("drift/reference.parquet", parquet(sample(0.4, 3)))  # a new version
    _, cached_new = judged(remote)
    assert not cached_new


def test_a_missing_object_wrong_credentials_and_a_hung_endpoint_are_one_clear_error(
        credentials: S3, monkeypatch: pytest.MonkeyPatch) -> None:
    credentials.put("errors/ref.csv", csv(sample(0.0, 1, 10)))
    with pytest.raises(SourceError, match=r"^s3://models/errors/absent\.csv: file not found$"):
        read_sample(credentials.url("errors/absent.csv"))
    began = time.monotonic()
    with silent_endpoint() as hung, pytest.raises(
            SourceError, match=r"s3://models/errors/ref\.csv.*(Timeout|timed out|too slow)"):
        read_sample(credentials.url("errors/ref.csv", endpoint=hung), timeout=2.0)
    # one deadline and slack for a loaded machine, not two deadlines
    assert time.monotonic() - began < 3.5, "a hung endpoint costs one deadline, not two"
    # the endpoint is closed: its abandoned read ends (until it does the file is not read again,
    # which the dripping endpoint's test checks; a loaded machine takes a moment)
    wait_for(lambda: not reads_abandoned(), "the abandoned read to end", timeout=30)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(SourceError, match=r"s3://models/errors/ref\.csv: access denied"):
        read_sample(credentials.url("errors/ref.csv"))


def test_an_endpoint_that_drips_its_answer_is_cut_at_the_total_deadline(
        credentials: S3) -> None:
    """Each byte restarted the SDK's read timeout: a read with a 5 s timeout from an endpoint
    that sent 20 bytes a second was still running at 90 s. The deadline is total, and
    the file is not read again while the abandoned read has not ended."""
    with dripping_endpoint() as slow:
        url = credentials.url("drip/ref.csv", endpoint=slow)
        for _ in range(2):
            began = time.monotonic()
            with pytest.raises(SourceError, match=r"^s3://models/drip/ref\.csv: (timed out: not "
                                                  r"read within 2 s|an earlier read timed out)"):
                read_sample(url, timeout=2.0)
            assert time.monotonic() - began < 3.5  # one deadline and slack, not two
        # the command does not wait for the abandoned read at exit either (pyarrow's S3
        # shutdown did, until the endpoint's 20 s answer was over)
        began = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "lifecycled", "drift", "--reference", url,
                               "--current", url, "--timeout", "1s"],
                              capture_output=True, text=True, timeout=60)
        assert (done.returncode, done.stderr.splitlines()[-1:]) == (2, [
            "lifecycled: s3://models/drip/ref.csv: timed out: not read within 1 s (the "
            "deadline is for the whole read)"])
        assert time.monotonic() - began < 10


def test_a_read_that_fails_on_the_network_is_not_read_again(credentials: S3) -> None:
    """A CSV that failed to read was read a second time to find its bad line, even when the
    failure was the network's: a hung endpoint whose SDK timeout fired a moment before the
    deadline cost two deadlines. Only a file that was read and did not parse is searched."""
    requests: list[str] = []
    with failing_endpoint(requests) as failing, pytest.raises(
            SourceError, match=r"^s3://models/fail/ref\.csv: cannot read csv"):
        read_sample(credentials.url("fail/ref.csv", endpoint=failing), timeout=5.0)
    # each read opens the object once (a HEAD), then GETs it (the HTTP client tries a dropped
    # kept-alive connection once more, as it does for any request)
    opened = [line for line in requests if line.startswith("HEAD")]
    assert len(opened) == 1, requests


@pytest.mark.parametrize(("url", "message"), [
    ("s3://key:secret@models/ref.csv", "credentials in the URL are refused"),
    ("s3://models/ref.csv?secret_key=x", "secret_key in the URL is refused"),
    ("s3://models/ref.csv?color=blue", "unknown S3 URL option"),
    ("ftp://host/ref.csv", "unsupported URL scheme 'ftp'"),
])
def test_a_url_with_credentials_or_unknown_options_is_refused(url: str, message: str) -> None:
    with pytest.raises(SourceError, match=message) as raised:
        expand(url)
    assert "secret" not in str(raised.value).replace("secret_key in", "")


def test_the_cli_reads_urls_and_names_a_missing_object_in_one_line(
        s3: S3, cli: Any) -> None:
    s3.put("cli/reference.parquet", parquet(sample(0.0, 1)))
    s3.put("cli/current.parquet", parquet(sample(0.0, 2)))
    env = s3.env()
    ran = cli("drift", "--reference", s3.url("cli/reference.parquet"), "--current",
              s3.url("cli/current.parquet"), "--categorical", "c", "--json", config=None,
              env=env)
    assert ran.code == 0, ran.err
    assert json.loads(ran.out)["severity"] == "low"
    missing = cli("drift", "--reference", s3.url("cli/absent.parquet"), "--current",
                  s3.url("cli/current.parquet"), config=None, env=env)
    assert missing.code == 2
    assert missing.err.strip().splitlines() == [
        "lifecycled: s3://models/cli/absent.parquet: file not found"], missing.err


def test_the_quality_task_reports_an_absent_object_as_its_source_down_then_recovers(
        credentials: S3, tmp_path: Path) -> None:
    ref = ModelRef("credit_scoring", "1")
    settings = parse_settings({"models": {ref.name: {"quality": {
        "outcomes": credentials.url("quality/outcomes.csv")}}}})
    store = open_test_store(tmp_path)
    store.register(ModelSpec(ref, owner_team="t", business_domain="d"), Status.PRODUCTION,
                   actor="test", reason="r", now=1.0)
    ctx = Context(settings, store, clock=lambda: 2.0, environ=dict(os.environ))
    done = run_quality(ctx)
    assert "file not found" in done[str(ref)]
    (health,) = source_health(store)
    assert (health.source, health.up) == ("outcomes:credit_scoring", False)
    assert "s3://models/quality/outcomes.csv: file not found" in health.last_error
    assert latest_quality(store) == []  # nothing made up
    outcomes = tmp_path / "outcomes.csv"
    write_outcomes(outcomes, accuracy=0.8)
    credentials.put("quality/outcomes.csv", outcomes.read_bytes())
    assert run_quality(ctx) == {str(ref): "ok"}
    (stored,) = latest_quality(store)
    assert stored.result["accuracy"] == 0.8
    store.close()


def test_the_endpoint_may_come_from_the_environment(
        credentials: S3, monkeypatch: pytest.MonkeyPatch) -> None:
    credentials.put("env/ref.csv", csv(sample(0.0, 1, 10)))
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{credentials.endpoint}")
    assert read_sample("s3://models/env/ref.csv?region=us-east-1").rows == 10
