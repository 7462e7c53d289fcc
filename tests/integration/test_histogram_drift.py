"""Drift from a score histogram a real Prometheus holds (a serving gateway's classic histogram
per model and version, exported here with prometheus_client): the counts of a window are exact,
PSI and JS equal the raw scores' on the same edges, the KS bracket holds the raw D, and the
shifted window is judged so; no raw score is read."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from lifecycled.config import parse_settings
from lifecycled.context import Context
from lifecycled.core.drift import PSI_FLOOR
from lifecycled.domain import ModelRef, ModelSpec, Status
from lifecycled.sources.prometheus import PrometheusSource
from lifecycled.store import open_store
from lifecycled.tasks.drift import histogram_window, run_model_drift
from prometheus_client import CollectorRegistry, Histogram, start_http_server
from scipy import stats
from scipy.spatial.distance import jensenshannon

from devtools import triton
from tests.helpers import wait_for

REF = ModelRef("credit_scoring", "1")
EDGES = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@pytest.fixture
def gateway() -> Iterator[tuple[Histogram, int]]:
    registry = CollectorRegistry()
    score = Histogram("gateway_score", "Scores served, per model and version.",
                      ["model", "version"], buckets=EDGES, registry=registry)
    score.labels("credit_scoring", "1")  # the series exist (at 0) before the first score
    port = triton.free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    yield score, port
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def scraped(prometheus: Any, count: int) -> float | None:
    """The time by which Prometheus holds ``count`` scores (None until then)."""
    reply = requests.get(f"{prometheus.url}/api/v1/query", timeout=10, params={
        "query": 'sum(gateway_score_count{model="credit_scoring"})'}).json()
    result = reply["data"]["result"]
    return time.time() if result and float(result[0]["value"][1]) == count else None


def raw_counts(values: np.ndarray) -> np.ndarray:
    """The scores in (-inf, e1], (e1, e2], ..., (e10, inf), counted one by one."""
    edges = np.array(EDGES)
    index = np.array([int(np.sum(v > edges)) for v in values])
    return np.bincount(index, minlength=edges.size + 1)


def test_a_shifted_score_histogram_is_judged_from_its_buckets(
        gateway: tuple[Histogram, int], servers: Any, tmp_path: Path) -> None:
    score, port = gateway
    prometheus = servers("prometheus", {
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [{"job_name": "gateway",
                            "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}]})
    wait_for(lambda: scraped(prometheus, 0), "the first scrape", timeout=60)
    rng = np.random.default_rng(11)
    before_a = time.time()
    reference = np.round(rng.beta(2, 5, 3000), 4)
    for value in reference:
        score.labels("credit_scoring", "1").observe(value)
    scraped_a = wait_for(lambda: scraped(prometheus, 3000), "the reference scores", timeout=60)
    # the current window (scraped_a, scraped_b] is at least as long as the reference's need:
    # the reference window of the same length, ending at scraped_a, begins before before_a
    wait_for(lambda: time.time() > scraped_a + (scraped_a - before_a) + 1.0, "a gap", timeout=60)
    current = np.round(rng.beta(3, 4, 3000), 4)
    for value in current:
        score.labels("credit_scoring", "1").observe(value)
    scraped_b = wait_for(lambda: scraped(prometheus, 6000), "the current scores", timeout=60)
    window = scraped_b - scraped_a
    assert scraped_a - window < before_a

    settings = parse_settings({
        "sources": {"prometheus": {"url": prometheus.url}},
        "models": {"credit_scoring": {"drift": {
            "source": "prometheus", "window": window,
            "histogram": {"metric": "gateway_score", "matchers": {"job": "gateway"},
                          "reference_offset": window}}}}})
    ctx = Context(settings, open_store("sqlite:///state.db", tmp_path))
    ctx.store.register(ModelSpec(REF, owner_team="risk_ml", business_domain="credit_risk"),
                       Status.PRODUCTION, actor="test", reason="test", now=1.0)

    with PrometheusSource(settings.sources.prometheus) as source:  # type: ignore[arg-type]
        found, exact = histogram_window(source, "gateway_score", {"model": "credit_scoring",
                                                                  "version": "1"},
                                        before_a, scraped_a, native=False)
    assert exact
    assert found.edges.tolist() == [*EDGES, math.inf]
    assert np.diff(found.cumulative, prepend=0).tolist() == raw_counts(reference).tolist()

    _, record = run_model_drift(ctx, REF, now=scraped_b)
    assert record["source"] == "prometheus" and record["reference"]["extrapolated"] == []
    (feature,) = record["features"]
    assert feature["feature"] == "gateway_score"
    assert (feature["reference_rows"], feature["current_rows"]) == (3000, 3000)
    r, c = raw_counts(reference) / 3000, raw_counts(current) / 3000
    assert feature["js"] == pytest.approx(float(jensenshannon(r, c, base=2)), abs=1e-12)
    rf, cf = np.where(r == 0, PSI_FLOOR, r), np.where(c == 0, PSI_FLOOR, c)
    assert feature["psi"] == pytest.approx(float(np.sum((cf - rf) * np.log(cf / rf))),
                                           abs=1e-12)
    low, high = feature["statistic_bounds"]
    assert low <= stats.ks_2samp(reference, current).statistic <= high
    assert record["severity"] in ("high", "critical")
