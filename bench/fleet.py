"""Fleet benchmark: one discovery + collect pass for 10, 100 and 1,000 models on 4 endpoints.

The endpoints are a small fake KServe v2 server (benchmark-only code) answering the repository
index, model configs, statistics and a ``/metrics`` text in Triton's exact format, whose counters
grow between scrapes. The floor, measured in the same run, is downloading and parsing the same
``/metrics`` texts with prometheus_client's parser; "read" is the same download parsed by
lifecycled's own reader (what the pass itself pays before any work of its own).

    python bench/fleet.py [--sizes 10,100,1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
from lifecycled.config import parse_settings
from lifecycled.context import Context
from lifecycled.sources.triton import parse_metrics
from lifecycled.store import open_store
from lifecycled.tasks.collect import run_collect
from lifecycled.tasks.discovery import run_discovery
from prometheus_client.parser import text_string_to_metric_families

ENDPOINTS = 4
REASONS = ("REJECTED", "CANCELED", "BACKEND", "OTHER")
QUANTILES = ("0.5", "0.9", "0.95", "0.99", "0.999")


class FakeTriton:
    """Serves ``models`` (name, version) like Triton does; counters advance on every scrape."""

    def __init__(self, models: list[tuple[str, str]]) -> None:
        self.models = models
        self.scrapes = 0
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def metrics(self) -> str:
        self.scrapes += 1
        k = self.scrapes
        lines = []
        families = [
            ("nv_inference_request_success", "counter", lambda i: 100 * k + i),
            ("nv_inference_count", "counter", lambda i: 400 * k + i),
            ("nv_inference_exec_count", "counter", lambda i: 100 * k + i),
            ("nv_inference_request_duration_us", "counter", lambda i: 250_000 * k + i),
            ("nv_inference_queue_duration_us", "counter", lambda i: 5_000 * k + i),
            ("nv_inference_compute_infer_duration_us", "counter", lambda i: 200_000 * k + i),
            ("nv_inference_pending_request_count", "gauge", lambda i: 0),
        ]
        for name, kind, value in families:
            lines += [f"# HELP {name} {name}", f"# TYPE {name} {kind}"]
            lines += [f'{name}{{model="{m}",version="{v}"}} {value(i)}'
                      for i, (m, v) in enumerate(self.models)]
        lines += ["# HELP nv_inference_request_failure failures",
                  "# TYPE nv_inference_request_failure counter"]
        lines += [f'nv_inference_request_failure{{model="{m}",reason="{r}",version="{v}"}} '
                  f'{k if r == "BACKEND" else 0}' for m, v in self.models for r in REASONS]
        lines += ["# HELP nv_inference_request_summary_us summary",
                  "# TYPE nv_inference_request_summary_us summary"]
        for m, v in self.models:
            lines.append(f'nv_inference_request_summary_us_count{{model="{m}",version="{v}"}} {k}')
            lines.append(f'nv_inference_request_summary_us_sum{{model="{m}",version="{v}"}} {k}')
            lines += [f'nv_inference_request_summary_us{{model="{m}",version="{v}",'
                      f'quantile="{q}"}} {2000 + 10 * j}' for j, q in enumerate(QUANTILES)]
        lines += ["# HELP nv_cpu_utilization cpu", "# TYPE nv_cpu_utilization gauge",
                  "nv_cpu_utilization 0.25", "# HELP nv_cpu_memory_used_bytes mem",
                  "# TYPE nv_cpu_memory_used_bytes gauge", "nv_cpu_memory_used_bytes 1e9"]
        return "\n".join(lines) + "\n"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _send(self, body: bytes, kind: str = "application/json") -> None:
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                self.rfile.read(length)
                if self.path.startswith("/v2/repository/index"):
                    self._send(json.dumps([{"name": m, "version": v, "state": "READY"}
                                           for m, v in fake.models]).encode())
                else:
                    self.send_error(404)

            def do_GET(self) -> None:
                if self.path == "/metrics":
                    self._send(fake.metrics().encode(), "text/plain; version=0.0.4")
                elif self.path.startswith("/v2/models/stats"):
                    self._send(json.dumps({"model_stats": [
                        {"name": m, "version": v, "memory_usage": []} for m, v in fake.models]
                    }).encode())
                elif self.path.endswith("/config"):
                    name = self.path.split("/")[3]
                    self._send(json.dumps({"name": name, "backend": "python",
                                           "max_batch_size": 8, "instance_group": [
                                               {"kind": "KIND_CPU", "count": 1}]}).encode())
                else:
                    self.send_error(404)

        return Handler


def floor(servers: list[FakeTriton], session: requests.Session) -> None:
    """Download and parse every endpoint's /metrics with prometheus_client's parser."""
    for server in servers:
        text = session.get(f"http://127.0.0.1:{server.port}/metrics", timeout=30).text
        for family in text_string_to_metric_families(text):
            for _ in family.samples:
                pass


def own_read(servers: list[FakeTriton], session: requests.Session) -> None:
    """Download every endpoint's /metrics and parse it as the pass does (lifecycled's reader)."""
    for server in servers:
        parse_metrics(session.get(f"http://127.0.0.1:{server.port}/metrics", timeout=30).text, 0)


def measure(size: int, repeat: int) -> tuple[float, float, float]:
    models = [(f"model_{i:04d}", "1") for i in range(size)]
    servers = [FakeTriton(models[e::ENDPOINTS]) for e in range(ENDPOINTS)]
    try:
        settings = parse_settings({"sources": {"triton": [
            {"name": f"e{i}", "url": f"http://127.0.0.1:{s.port}",
             "metrics_url": f"http://127.0.0.1:{s.port}/metrics", "timeout": "30s"}
            for i, s in enumerate(servers)]}})
        with tempfile.TemporaryDirectory() as tmp:
            ctx = Context(settings, open_store("sqlite:///state.db", Path(tmp)))
            run_discovery(ctx)  # first pass registers every model
            run_collect(ctx)  # and sets the base scrape
            passes, floors, reads = [], [], []
            for _ in range(repeat):
                start = time.perf_counter()
                run_discovery(ctx)
                report = run_collect(ctx)
                passes.append(time.perf_counter() - start)
                assert len(report.snapshots) == size
                start = time.perf_counter()
                floor(servers, ctx.session)
                floors.append(time.perf_counter() - start)
                start = time.perf_counter()
                own_read(servers, ctx.session)
                reads.append(time.perf_counter() - start)
            ctx.store.close()
        return min(passes), min(floors), min(reads)
    finally:
        for server in servers:
            server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results = {}
    print(f"{'models':>7} {'pass s':>8} {'floor s':>8} {'pass/floor':>10} {'read s':>8} "
          f"{'pass/read':>9} {'vs 100':>7}")
    for size in (int(s) for s in args.sizes.split(",")):
        results[size] = measure(size, args.repeat)
        pass_s, floor_s, read_s = results[size]
        growth = f"{pass_s / results[100][0]:7.2f}" if 100 in results and size != 100 else "      -"
        print(f"{size:>7} {pass_s:8.3f} {floor_s:8.3f} {pass_s / floor_s:10.2f} {read_s:8.3f} "
              f"{pass_s / read_s:9.2f} {growth}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
