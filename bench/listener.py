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

Then the mixed load (``--mixed-seconds``, 0 to skip): 20 scrapers and 20 API clients (the model
list and a model's detail, back to back), one push of a 60 MiB JSON Lines body and one render of
a 300-feature drift report, beside the evaluate passes; a prober asks /healthz every 50 ms and
/readyz every 200 ms, each with a 10 s client timeout. Printed: /healthz p50, p99 and max,
/readyz replies and timeouts, the API's and the scrapes' p50 and p99, the push's and the
report's status and time. Targets: /healthz p99 under 100 ms, no /readyz timeout.

    python bench/listener.py [--models 3000] [--features 20] [--clients 1,5,20] [--seconds 20]
                             [--nice-scrapers 10] [--mixed-seconds 30] [--push-mib 60]
"""

from __future__ import annotations

import argparse
import http.client
import itertools
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


def mixed(port: int, clients: int, seconds: float) -> dict[str, object]:
    """The client process of the mixed load: ``clients`` scrapers and ``clients`` API readers
    back to back, and the health prober, for ``seconds``."""
    found: dict[str, list[float]] = {"scrape": [], "api": [], "healthz": []}
    ready: Counter[str] = Counter()
    end = time.monotonic() + seconds

    def loop(kind: str, paths: list[str], pause: float = 0.0) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=PROBE_TIMEOUT)
        for i in itertools.count():
            if time.monotonic() >= end:
                return
            start = time.perf_counter()
            try:
                conn.request("GET", paths[i % len(paths)], headers={"Accept-Encoding": "gzip"})
                reply = conn.getresponse()
                reply.read()
            except (TimeoutError, OSError):
                ready[f"{kind} timeout"] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=PROBE_TIMEOUT)
                continue
            if kind == "readyz":
                ready[str(reply.status)] += 1
            else:
                found[kind].append(time.perf_counter() - start)
                assert reply.status == 200, (kind, reply.status)
            time.sleep(pause)

    threads = [threading.Thread(target=loop, args=("scrape", ["/metrics"]))
               for _ in range(clients)]
    threads += [threading.Thread(target=loop, args=("api", [
        "/api/v1/models", f"/api/v1/models/model_{i:04d}/1"])) for i in range(clients)]
    threads.append(threading.Thread(target=loop, args=("healthz", ["/healthz"], 0.05)))
    threads.append(threading.Thread(target=loop, args=("readyz", ["/readyz"], 0.2)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {**found, "readyz": dict(ready)}


PROBE_TIMEOUT = 10.0  # seconds: a liveness or readiness probe's client timeout


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=3000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--clients", default="1,5,20")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--nice-scrapers", type=int, default=10)
    parser.add_argument("--mixed-seconds", type=float, default=30.0)
    parser.add_argument("--push-mib", type=float, default=60.0)
    parser.add_argument("--scrape", type=int, help=argparse.SUPPRESS)  # the scraper process
    parser.add_argument("--mixed", type=int, help=argparse.SUPPRESS)  # the mixed clients
    args = parser.parse_args()
    if args.scrape or args.mixed:
        if args.nice_scrapers:
            os.nice(args.nice_scrapers)
        if args.scrape:
            print(json.dumps(scrape(args.scrape, int(args.clients), args.seconds)))
        else:
            print(json.dumps(mixed(args.mixed, int(args.clients), args.seconds)))
        return 0

    from apscheduler.schedulers.background import BackgroundScheduler
    from lifecycled.api import push_handler
    from lifecycled.context import Context
    from lifecycled.http import Api
    from lifecycled.listener import ListenerProcess
    from lifecycled.scheduler import Runtime
    from lifecycled.settings import Settings
    from lifecycled.store import open_store
    from lifecycled.tasks.evaluate import run_evaluate
    from lifecycled.tasks.streams import push
    from prometheus_client import CollectorRegistry

    from bench.exporter import fill

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        store = open_store("sqlite:///state.db", work)
        fill(store, args.models, args.features)
        report_model(store)
        ctx = Context(Settings(), store)
        runtime = Runtime(ctx, jobs={"evaluate": run_evaluate})
        runtime.scheduler = BackgroundScheduler()
        runtime.scheduler.start()
        (work / "token").write_text(TOKEN)
        api = Api(store, CollectorRegistry(), runtime.readiness, lambda: TOKEN,
                  posts={"models": push_handler(lambda ref, kind, columns: push(
                      ctx, ref, kind, columns))})
        server = ListenerProcess(api, "127.0.0.1", 0, state_url="sqlite:///state.db",
                                 base_dir=work, token_source=(str(work / "token"), None))
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
            if args.mixed_seconds:
                mixed_load(args, server.port, evaluate_passes)
        finally:
            server.stop()
            runtime.scheduler.shutdown(wait=False)
            store.close()
    return 0


TOKEN = "bench-token"


def report_model(store: object) -> None:
    """One more production version, with a drift result of 300 features (its HTML report is the
    mixed load's render)."""
    from lifecycled.core.drift import compare, result_to_json
    from lifecycled.core.profile import build_profile
    from lifecycled.domain import DriftPolicy, ModelRef, ModelSpec, Status
    from lifecycled.store.results import add_drift_result

    rng = np.random.default_rng(1)
    reference = {f"feature_{i:03d}": rng.normal(0, 1, 500) for i in range(300)}
    current = {name: values + rng.normal(0, 0.3) for name, values in reference.items()}
    ref = ModelRef("report_model", "1")
    store.register(ModelSpec(ref, owner_team="t", business_domain="d"),  # type: ignore[attr-defined]
                   Status.PRODUCTION, actor="bench", reason="bench", now=time.time())
    add_drift_result(store, ref, {**result_to_json(compare(build_profile(reference), current,
                                                           DriftPolicy())),
                                  "current_rows": 500}, now=time.time())  # type: ignore[arg-type]


def push_body(mib: float) -> bytes:
    """JSON Lines predictions of about ``mib`` MiB."""
    row = ('{"id": "tx-%09d", "timestamp": %d, "prediction": 1, "score": 0.73, "merchant": "'
           + "m" * 180 + '"}\n')
    rows = int(mib * 2**20 / len(row % (0, 0)))
    now = int(time.time())
    return "".join(row % (i, now - 3600) for i in range(rows)).encode()


def mixed_load(args: argparse.Namespace, port: int, evaluate_passes: object) -> None:
    body = push_body(args.push_mib)
    timed: dict[str, tuple[int, float]] = {}

    def request(name: str, method: str, path: str, data: bytes | None = None) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        start = time.perf_counter()
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"}
        conn.request(method, path, body=data, headers=headers if data else {})
        reply = conn.getresponse()
        reply.read()
        timed[name] = (reply.status, time.perf_counter() - start)

    clients = max(int(c) for c in args.clients.split(","))
    proc = subprocess.Popen(
        [sys.executable, __file__, "--mixed", str(port), "--clients", str(clients),
         "--seconds", str(args.mixed_seconds), "--nice-scrapers", str(args.nice_scrapers)],
        stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)})
    time.sleep(1.0)  # let the clients start
    heavy = [threading.Thread(target=request, args=(
                 "push", "POST", "/api/v1/models/model_0000/1/predictions", body)),
             threading.Thread(target=request, args=(
                 "report", "GET", "/api/v1/models/report_model/1/drift/report.html"))]
    for thread in heavy:
        thread.start()
    evaluate_passes(time.monotonic() + args.mixed_seconds * 0.8)  # type: ignore[operator]
    out, _ = proc.communicate(timeout=args.mixed_seconds * 5 + 120)
    for thread in heavy:
        thread.join()
    assert proc.returncode == 0
    result = json.loads(out)
    health, api, scrapes = result["healthz"], result["api"], result["scrape"]
    print(f"\nmixed load, {args.mixed_seconds:.0f} s: {clients} scrapers + {clients} API clients, "
          f"a {len(body) / 2**20:.0f} MiB push, a 300-feature report")
    print(f"  /healthz: {len(health)} probes, p50 {percentile(health, 50) * 1e3:.1f} ms, "
          f"p99 {percentile(health, 99) * 1e3:.1f} ms, max {max(health) * 1e3:.1f} ms "
          f"(target p99 < 100 ms)")
    print(f"  /readyz: {result['readyz']} (target: no timeout)")
    print(f"  API: {len(api)} replies, p50 {percentile(api, 50) * 1e3:.1f} ms, "
          f"p99 {percentile(api, 99) * 1e3:.1f} ms; /metrics: {len(scrapes)} scrapes, "
          f"p50 {percentile(scrapes, 50) * 1e3:.1f} ms, p99 {percentile(scrapes, 99) * 1e3:.1f} ms")
    for name, (status, seconds) in sorted(timed.items()):
        print(f"  {name}: {status} in {seconds:.1f} s")


if __name__ == "__main__":
    os.environ.setdefault("PROMETHEUS_DISABLE_CREATED_SERIES", "True")
    raise SystemExit(main())
