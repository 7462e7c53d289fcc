"""The HTML drift report, from the CLI (`drift --html`) and the API (latest stored check), loaded in
a real headless Chromium (Debian `chromium`): no console errors, nothing fetched from the
network, a chart per judged feature, the reason of each unjudged one; a screenshot is kept under
the test's temporary directory."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import requests
from lifecycled.core.drift import compare, result_to_json
from lifecycled.core.profile import build_profile
from lifecycled.domain import DriftPolicy, ModelRef, ModelSpec, Status
from lifecycled.http import Api, HttpServer
from lifecycled.store import open_store
from lifecycled.store.results import add_drift_result
from prometheus_client import CollectorRegistry

from tests.cli.test_drift_cli import write_sample
from tests.helpers import CliResult, chromium

REF = ModelRef("credit_scoring", "1")
def check_in_browser(url: str, tmp_path: Path, judged: set[str], unjudged: set[str]) -> None:
    dom = chromium(url, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line
               or "net::ERR" in line]
    assert console == [], console
    sections = dict(re.findall(r'<section class="feature" data-feature="([^"]+)">(.*?)</section>',
                               dom.stdout, flags=re.S))
    assert set(sections) == judged | unjudged
    for name in judged:
        assert "<svg" in sections[name], f"{name} has no chart"
    for name in unjudged:
        assert 'class="reason"' in sections[name]
    for fetch in ('src="http', 'href="http', "@import", "url(http", "<script", "<link"):
        assert fetch not in dom.stdout  # self-contained: nothing to fetch, nothing to run
    shot = tmp_path / "report.png"
    taken = chromium(url, tmp_path, f"--screenshot={shot}", "--window-size=1280,3000")
    assert taken.returncode == 0 and shot.stat().st_size > 10_000, taken.stderr[-2000:]


def drift_record() -> dict[str, object]:
    rng = np.random.default_rng(0)
    reference = {"amount": rng.lognormal(3, 1, 3000), "age": rng.normal(40, 10, 3000),
                 "channel": rng.choice(["web", "pos", "atm"], 3000),
                 "tiny": rng.normal(size=3000)}
    current = {"amount": rng.lognormal(3, 1, 3000) * 1.8 + 10, "age": rng.normal(40, 10, 3000),
               "channel": rng.choice(["web", "pos", "atm"], 3000, p=[0.6, 0.3, 0.1]),
               "tiny": rng.normal(size=50)}
    result = compare(build_profile(reference), current, DriftPolicy(), features=[
        "amount", "age", "channel", "tiny", "gone"])
    return result_to_json(result)


def test_the_cli_writes_a_report_that_chromium_renders(cli: object, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    ref = write_sample(tmp_path / "ref.csv", {"amount": rng.lognormal(3, 1, 2000),
                                              "channel": rng.choice(["web", "pos"], 2000)})
    cur = write_sample(tmp_path / "cur.csv", {"amount": rng.lognormal(3, 1, 2000) * 2,
                                              "channel": rng.choice(["web", "pos"], 2000)})
    report = tmp_path / "report.html"
    run = cli("drift", "--reference", str(ref), "--current", str(cur), "--html", str(report),
              config=None)  # type: ignore[operator]
    assert isinstance(run, CliResult) and run.code == 0, run.err
    assert f"HTML report: {report}" in run.out
    assert ("Judged at &alpha; = 0.005, the one-shot default: a stationary window is judged "
            "medium or worse in at most 0.5 % of checks.") in report.read_text()
    check_in_browser(report.as_uri(), tmp_path, {"amount", "channel"}, set())


@pytest.mark.slow
def test_the_api_serves_the_latest_stored_check(tmp_path: Path) -> None:
    store = open_store("sqlite:///s.db", tmp_path)
    store.register(ModelSpec(REF, owner_team="t", business_domain="d"), Status.PRODUCTION,
                   actor="test", reason="r", now=1.0)
    server = HttpServer(Api(store, CollectorRegistry(), lambda: (True, {})), "127.0.0.1", 0)
    server.start()
    try:
        url = f"http://127.0.0.1:{server.port}/api/v1/models/{REF.name}/{REF.version}/drift/report.html"
        assert requests.get(url, timeout=10).status_code == 404  # no check stored yet
        add_drift_result(store, REF, drift_record(), now=2.0)
        page = requests.get(url, timeout=60)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "Model severity" in page.text
        check_in_browser(url, tmp_path, {"amount", "age", "channel"}, {"tiny", "gone"})
        assert (tmp_path / "report.png").exists()
    finally:
        server.stop()
        store.close()


def test_a_report_renders_once_and_one_at_a_time() -> None:
    """Nothing was cached and every request rendered afresh: anyone who reached the port could
    keep the daemon rendering. A check never changes, so its page is kept; while one renders,
    another request is told to come back (the route's 503 with Retry-After)."""
    import threading

    from lifecycled.domain import ModelRef
    from lifecycled.http import Reports

    reports, release, started = Reports(), threading.Event(), threading.Event()
    calls: list[int] = []

    def slow() -> str:
        calls.append(1)
        started.set()
        release.wait(30)
        return "<html>report</html>"

    ref = ModelRef("credit_scoring", "1")
    first: list[str | None] = []
    worker = threading.Thread(target=lambda: first.append(reports.page(ref, 1.0, slow)))
    worker.start()
    assert started.wait(30)
    assert reports.page(ModelRef("fraud_detection", "2"), 1.0, slow) is None  # busy
    release.set()
    worker.join(30)
    assert first == ["<html>report</html>"]
    assert reports.page(ref, 1.0, slow) == "<html>report</html>" and len(calls) == 1
    assert reports.page(ref, 2.0, lambda: "newer") == "newer"  # a newer check is rendered


@pytest.mark.slow
def test_categories_with_dollars_and_long_values_are_drawn_as_written() -> None:
    """`$...$` in a category was parsed as matplotlib mathtext: an unbalanced one was a traceback
    (a 500 from the route), a balanced one drawn as a formula; a 100,000-character value made a
    276,070 pt wide chart. The labels are escaped and shortened; the table keeps the value."""
    from lifecycled.drift_report import MAX_LABEL, render, tick_label

    rng = np.random.default_rng(1)
    values = ["$x^2$", "$\\notacommand$", "$a_$", "y" * 100_000, "plain"]
    reference = {"c": rng.choice(values, 2000).astype(object)}
    current = {"c": rng.choice(values, 2000).astype(object)}
    page = render(result_to_json(compare(build_profile(reference), current, DriftPolicy())), "t")
    assert len(page) < 500_000
    assert tick_label("$x^2$") == r"\$x^2\$" and len(tick_label("y" * 100_000)) == MAX_LABEL


def test_the_report_says_which_test_judged_the_bins() -> None:
    """Bins of few rows are judged by the KS test, categories of few rows by exact tests: the
    report says so beside the chi-square p-value it still shows."""
    from lifecycled.drift_report import render

    rng = np.random.default_rng(1)
    reference = {"x": rng.normal(size=20_000),
                 "channel": rng.choice(["web", "pos", "atm"], 20_000, p=[0.6, 0.38, 0.02])}
    small = {"x": rng.normal(size=150), "channel": rng.choice(["web", "pos", "atm"], 150)}
    large = {"x": rng.normal(size=5_000),
             "channel": rng.choice(["web", "pos", "atm"], 5_000, p=[0.6, 0.3, 0.1])}
    profile = build_profile(reference, ["channel"])
    few = render(result_to_json(compare(profile, small, DriftPolicy(), categorical=["channel"])),
                 "few rows")
    many = render(result_to_json(compare(profile, large, DriftPolicy(),
                                         categorical=["channel"])), "many rows")
    assert "KS (too few rows a bin for chi-square)" in few
    assert "exact tests (too few rows a category for chi-square)" in few
    assert "exact p (few rows)" in few
    assert "too few rows" not in many and "exact p" not in many
