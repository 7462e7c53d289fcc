"""Prometheus as a source, against a real Prometheus scraping a real Triton; outages."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from lifecycled.config import parse_settings
from lifecycled.context import Context
from lifecycled.domain import ModelRef
from lifecycled.sources.prometheus import PrometheusSource
from lifecycled.store import open_store
from lifecycled.store.serving import snapshots, source_health
from lifecycled.tasks.collect import run_collect
from lifecycled.tasks.discovery import run_discovery

from devtools import triton
from tests.helpers import endpoint, wait_for

CREDIT = ModelRef("credit_scoring", "1")


def scrape_config(server: triton.TritonServer) -> dict[str, Any]:
    return {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "triton", "static_configs": [
                {"targets": [server.metrics_url.split("/")[2]]}]}]}




def instant(prometheus: Any, expr: str) -> list[dict[str, Any]]:
    body = requests.get(f"{prometheus.url}/api/v1/query", params={"query": expr}, timeout=10).json()
    return body["data"]["result"]


def test_batched_queries_return_every_model_and_agree_with_triton(
        triton_factory: Any, servers: Any, tmp_path: Path) -> None:
    server = triton_factory()
    prometheus = servers("prometheus", scrape_config(server))
    wait_for(lambda: instant(prometheus, "nv_inference_count"), "first scrape")

    def counts() -> tuple[int, int]:
        stats = requests.get(f"{server.url}/v2/models/credit_scoring/stats", timeout=10).json()
        inference = stats["model_stats"][0]["inference_stats"]
        return inference["success"]["count"], inference["fail"]["count"]
    before = counts()  # the helper's own check inference is one of them
    for _ in range(30):
        triton.infer(server.url, "credit_scoring", [[0.1, 0.2, 0.3, 0.4]])
    for _ in range(10):
        triton.infer(server.url, "credit_scoring", [[5e6, 0, 0, 0]])
    wait_for(lambda: [r for r in instant(prometheus, 'sum(nv_inference_request_failure'
                                                     '{model="credit_scoring"})')
                      if float(r["value"][1]) == 10], "failures scraped")
    settings = parse_settings({"sources": {"prometheus": {"url": prometheus.url,
                                                          "window": "2m"}}})
    source = PrometheusSource(settings.sources.prometheus)  # type: ignore[arg-type]
    found = source.serving(interval=60)
    assert set(found) >= {("credit_scoring", "1"), ("fraud_detection", "2"),
                          ("risk_assessment", "3")}
    credit = found[("credit_scoring", "1")]
    # rate() extrapolates each counter from its own first sample in the window, and the failure
    # counter is born at the first failure: the ratio agrees to a few percent, not exactly
    assert credit["error_ratio"] == pytest.approx(10 / 40, rel=0.05)
    after = counts()
    assert (after[0] - before[0], after[1] - before[1]) == (30, 10)
    direct = triton.parse_metrics_text(requests.get(server.metrics_url, timeout=10).text)
    assert credit["latency_p99_seconds"] == pytest.approx(
        direct[("credit_scoring", "1")].quantiles_us["0.99"] * 1e-6)
    assert found[("fraud_detection", "2")]["error_ratio"] is None  # no traffic: unknown, not 0
    assert credit["requests_per_second"] is not None and credit["requests_per_second"] > 0
    source.close()


class Failing(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.mark.parametrize("kind", ["down", "http_500", "fallback"])
def test_prometheus_outages_invent_nothing(triton_factory: Any, tmp_path: Path, kind: str) -> None:
    server = triton_factory()
    broken = ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=broken.serve_forever, daemon=True).start()
    url = (f"http://127.0.0.1:{broken.server_address[1]}" if kind == "http_500"
           else f"http://127.0.0.1:{triton.free_port()}")
    settings = parse_settings({
        "sources": {"triton": [endpoint("local", server)],
                    "prometheus": {"url": url, "timeout": "2s",
                                   "fallback_to_triton": kind == "fallback"}}})
    ctx = Context(settings, open_store("sqlite:///s.db", tmp_path))
    try:
        run_discovery(ctx)
        first = run_collect(ctx)
        assert first.endpoints["prometheus"] != "up"
        health = {h.source: h for h in source_health(ctx.store)}
        assert not health["prometheus"].up and health["prometheus"].last_error
        triton.infer(server.url, "credit_scoring", [[0.1, 0.2, 0.3, 0.4]])
        second = run_collect(ctx)
        if kind == "fallback":
            assert second.snapshots[str(CREDIT)]["requests"] == 1  # straight from Triton
        else:
            assert second.snapshots == {} and snapshots(ctx.store, CREDIT) == []
            assert "local" not in second.endpoints  # Triton is not scraped without fallback
    finally:
        broken.shutdown()
        broken.server_close()
