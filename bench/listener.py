"""Listener benchmark: /metrics under 1, 5 and 20 concurrent scrapers over a fleet of 3,000
production models (20 drift features each), beside evaluate passes in the same daemon process.

The daemon's parts are assembled as `lifecycled run` assembles them (the listener and renderer
processes, and the runtime running evaluate and invalidating the exposition after each pass).
The scrapers run in another process, as Prometheus would, asking for gzip, back to back. They
stand in for Prometheus servers on other machines: on a small machine they would take CPU from
the evaluate passes that no daemon could give back, so they run at the listener's priority
(nice 10; ``--nice-scrapers 0`` for the default priority). Printed per concurrency: scrape p50
and p99, the median evaluate pass with nobody scraping (measured just before) and beside the
scrapers, the slowdown, and the /readyz replies seen.

    python bench/listener.py [--models 3000] [--features 20] [--clients 1,5,20] [--seconds 20]
                             [--nice-scrapers 10]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np


def scrape(port: int, clients: int, seconds: float) -> dict[str, object]:
    """The scraper process: ``clients`` threads fetching /metrics (gzip) back to back, and one
    thread asking /readyz every 0.2 s, for ``seconds``."""
    latencies: list[float] = []
    ready: Counter[int] = Counter()
    end = time.monotonic() + seconds

    def scraper() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while time.monotonic() < end:
            start = time.perf_counter()
            conn.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
            reply = conn.getresponse()
            body = reply.read()
            latencies.append(time.perf_counter() - start)
            assert reply.status == 200 and body, reply.status

    def readyz() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while time.monotonic() < end:
            conn.request("GET", "/readyz")
            reply = conn.getresponse()
            reply.read()
            ready[reply.status] += 1
            time.sleep(0.2)

    threads = [threading.Thread(target=scraper) for _ in range(clients)]
    threads.append(threading.Thread(target=readyz))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"latencies": latencies, "readyz": dict(ready)}


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=3000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--clients", default="1,5,20")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--nice-scrapers", type=int, default=10)
    parser.add_argument("--scrape", type=int, help=argparse.SUPPRESS)  # the scraper process
    args = parser.parse_args()
    if args.scrape:
        if args.nice_scrapers:
            os.nice(args.nice_scrapers)
        print(json.dumps(scrape(args.scrape, int(args.clients), args.seconds)))
        return 0

    from apscheduler.schedulers.background import BackgroundScheduler
    from lifecycled.context import Context
    from lifecycled.http import Api
    from lifecycled.listener import ListenerProcess
    from lifecycled.scheduler import Runtime
    from lifecycled.settings import Settings
    from lifecycled.store import open_store
    from lifecycled.tasks.evaluate import run_evaluate
    from prometheus_client import CollectorRegistry

    from bench.exporter import fill

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        store = open_store("sqlite:///state.db", work)
        fill(store, args.models, args.features)
        runtime = Runtime(Context(Settings(), store), jobs={"evaluate": run_evaluate})
        runtime.scheduler = BackgroundScheduler()
        runtime.scheduler.start()
        server = ListenerProcess(Api(store, CollectorRegistry(), runtime.readiness),
                                 "127.0.0.1", 0, state_url="sqlite:///state.db", base_dir=work)
        runtime.after_run.append(server.invalidate)
        server.start()
        try:
            first = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
            first.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
            size = len(first.getresponse().read())  # the first render, before anything is timed

            def evaluate_passes(until: float) -> list[float]:
                times = []
                while time.monotonic() < until or not times:
                    start = time.perf_counter()
                    assert runtime.run_job("evaluate")
                    times.append(time.perf_counter() - start)
                return times

            print(f"models {args.models}, features {args.features}, /metrics gzip {size / 1e6:.1f} MB")
            print(f"{'clients':>7}  {'scrapes':>7}  {'p50 ms':>7}  {'p99 ms':>7}  "
                  f"{'alone s':>7}  {'beside s':>8}  {'slowdown':>8}  readyz")
            for clients in [int(c) for c in args.clients.split(",")]:
                # nobody scraping, just before: the history the passes add is the same
                alone = statistics.median(evaluate_passes(time.monotonic() + args.seconds / 2))
                proc = subprocess.Popen(
                    [sys.executable, __file__, "--scrape", str(server.port), "--clients",
                     str(clients), "--seconds", str(args.seconds), "--nice-scrapers",
                     str(args.nice_scrapers)], stdout=subprocess.PIPE,
                    text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)})
                time.sleep(min(1.0, args.seconds / 10))  # let the scrapers start
                passes = evaluate_passes(time.monotonic() + args.seconds * 0.8)
                out, _ = proc.communicate(timeout=args.seconds * 5 + 120)
                assert proc.returncode == 0
                result = json.loads(out)
                latencies = result["latencies"]
                beside = statistics.median(passes)
                print(f"{clients:>7}  {len(latencies):>7}  {percentile(latencies, 50) * 1e3:>7.1f}  "
                      f"{percentile(latencies, 99) * 1e3:>7.1f}  {alone:>7.3f}  {beside:>8.3f}  "
                      f"{beside / alone - 1:>+8.1%}  {result['readyz']}")
        finally:
            server.stop()
            runtime.scheduler.shutdown(wait=False)
            store.close()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PROMETHEUS_DISABLE_CREATED_SERIES", "True")
    raise SystemExit(main())
