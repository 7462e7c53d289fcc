"""Exporter benchmark: one /metrics scrape over a store of 1,000 models (20 drift features each)
against the floor (generate_latest over the same, prebuilt metric families), and the resident
memory of a real daemon serving that store.

    python bench/exporter.py [--models 1000] [--features 20] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import requests
import yaml
from lifecycled.core.drift import compare, result_to_json
from lifecycled.core.profile import build_profile
from lifecycled.core.thresholds import evaluate, evaluation_to_json
from lifecycled.domain import DriftPolicy, ModelRef, ModelSpec, Status
from lifecycled.exporter import LifecycleCollector
from lifecycled.store import Store, open_store
from lifecycled.store.results import add_drift_result, add_evaluation, add_quality_result
from lifecycled.store.serving import add_snapshot, put_serving_state, record_source
from prometheus_client import CollectorRegistry, generate_latest

THRESHOLDS = {"min_accuracy": 0.85, "max_latency_p99_seconds": 0.1, "min_throughput_rps": 10.0,
              "max_error_ratio": 0.01, "max_memory_bytes": 2.0**31}


def fill(store: Store, models: int, features: int) -> None:
    rng = np.random.default_rng(0)
    reference = {f"feature_{i:02d}": rng.normal(0, 1, 300) for i in range(features)}
    current = {name: values + rng.normal(0, 0.3) for name, values in reference.items()}
    drift = {**result_to_json(compare(build_profile(reference), current, DriftPolicy())),
             "current_rows": 300}
    now = time.time()
    values = {"interval_seconds": 300.0, "requests_per_second": 25.0, "inferences_per_second": 90.0,
              "error_ratio": 0.002, "latency_mean_seconds": 0.01, "latency_p50_seconds": 0.008,
              "latency_p95_seconds": 0.03, "latency_p99_seconds": 0.05,
              "accuracy": 0.9}
    evaluation = evaluation_to_json(evaluate(values, THRESHOLDS))
    quality = {"samples": 1000, "accuracy": 0.9, "precision": 0.88, "recall": 0.86, "f1": 0.87,
               "roc_auc": 0.93, "concept": {"severity": "low"}}
    for i in range(models):
        ref = ModelRef(f"model_{i:04d}", "1")
        spec = ModelSpec(ref, owner_team=f"team_{i % 20}", business_domain=f"domain_{i % 7}",
                         model_type="classification", framework="python", thresholds=THRESHOLDS)
        store.register(spec, Status.PRODUCTION, actor="bench", reason="bench", now=now)
        with store.write() as conn:
            put_serving_state(conn, ref, "triton-a", "ready", "", now)
            add_snapshot(conn, ref, now, values, {})
        add_evaluation(store, ref, evaluation, snapshot_id=None, now=now)
        add_drift_result(store, ref, drift, now=now)
        add_quality_result(store, ref, quality, now=now)
    with store.write() as conn:
        record_source(conn, "triton:triton-a", ok=True, now=now)


class Prebuilt:
    def __init__(self, families: list[object]) -> None:
        self.families = families

    def collect(self) -> list[object]:
        return self.families


def best(fn: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def daemon_rss(state: Path, work: Path) -> tuple[float, float]:
    """Start `lifecycled run` on the store; return (resident MB after a scrape, scrape seconds)."""
    port = free_port()
    config = work / "lifecycled.yaml"
    config.write_text(yaml.safe_dump({
        "daemon": {"listen": f"127.0.0.1:{port}", "state_url": f"sqlite:///{state}"},
        "sources": {"triton": []}, "schedule": {"housekeeping": "1h"}}))
    proc = subprocess.Popen([sys.executable, "-m", "lifecycled", "run", "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        start = time.perf_counter()
        size = len(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=60).content)
        elapsed = time.perf_counter() - start
        assert size > 0
        status = Path(f"/proc/{proc.pid}/status").read_text()
        rss_kb = int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1])
        return rss_kb / 1024, elapsed
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        store = open_store("sqlite:///state.db", work)
        fill(store, args.models, args.features)
        collector = LifecycleCollector(store)
        registry = CollectorRegistry()
        registry.register(collector)
        floor_registry = CollectorRegistry()
        floor_registry.register(Prebuilt(list(collector.collect())))  # type: ignore[arg-type]
        samples = generate_latest(registry).count(b"\n")
        t_scrape = best(lambda: generate_latest(registry), args.repeat)
        t_floor = best(lambda: generate_latest(floor_registry), args.repeat)
        store.close()
        rss, http_scrape = daemon_rss(work / "state.db", work)
    print(f"models {args.models}, features {args.features}, exposition lines {samples:,}")
    print(f"scrape {t_scrape:.3f} s   floor {t_floor:.3f} s   ratio {t_scrape / t_floor:.2f}")
    print(f"daemon: first /metrics over HTTP {http_scrape:.3f} s, resident memory {rss:.0f} MB")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PROMETHEUS_DISABLE_CREATED_SERIES", "True")
    raise SystemExit(main())
