"""Trace sampling benchmark: what Triton's trace extension costs the served models, and what
reading its files costs lifecycled.

1. A real Triton (CPU, Python backend, the demo's three models) started with the documented
   trace flags serves the same requests with tracing off (the baseline, measured in the same
   run) and with each model traced at one request in 1,000, 100, 10 and 1 (levels TIMESTAMPS and
   TENSORS, as lifecycled sets them). Prints throughput and client-side p99 latency, each as a
   ratio to tracing off; settings are measured in turn, ``--repeat`` times, median kept.
2. Every request traced, 1,000 sampled requests of 8 rows: lifecycled's cost to read the files
   into the store (decode, rows kept per version, the file deleted), per 1,000 sampled requests,
   against parsing the same bytes with ``json.loads`` alone (the baseline).

    python bench/traces.py [--requests 3000] [--clients 4] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lifecycled.config import parse_settings
from lifecycled.context import Context
from lifecycled.domain import ModelRef, ModelSpec, Status
from lifecycled.store import open_store
from lifecycled.store.traces import traced_rows
from lifecycled.tasks.traces import EndpointPass, consume_files

from devtools import triton

MODELS = [m.name for m in triton.SEED_MODELS]
ROWS = 8


def set_tracing(server: triton.TritonServer, rate: int | None) -> None:
    """Trace every model at one request in ``rate`` (None: off, the global setting again)."""
    settings: dict[str, Any] = ({"trace_level": ["TIMESTAMPS", "TENSORS"],
                                 "trace_rate": str(rate), "log_frequency": "100"}
                                if rate else dict.fromkeys(("trace_level", "trace_rate",
                                                            "log_frequency")))
    for model in MODELS:
        reply = requests.post(f"{server.url}/v2/models/{model}/trace/setting", json=settings,
                              timeout=10)
        reply.raise_for_status()


def load(server: triton.TritonServer, count: int, clients: int) -> tuple[float, float]:
    """Send ``count`` requests of ROWS rows from ``clients`` threads, round robin over the
    models: (requests per second, p99 latency in seconds)."""
    latencies: list[float] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        rng = np.random.default_rng(index)
        session = requests.Session()
        path = [f"{server.url}/v2/models/{m}/infer" for m in MODELS]
        mine: list[float] = []
        for n in range(index, count, clients):
            rows = rng.normal(0, 1, (ROWS, 4))
            body = {"inputs": [{"name": "INPUT", "shape": [ROWS, 4], "datatype": "FP32",
                                "data": rows.ravel().tolist()}]}
            started = time.perf_counter()
            reply = session.post(path[n % len(path)], json=body, timeout=30)
            mine.append(time.perf_counter() - started)
            reply.raise_for_status()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return count / elapsed, float(np.quantile(latencies, 0.99))


def clear(trace_file: Path) -> None:
    for path in trace_file.parent.glob(trace_file.name + ".*"):
        path.unlink()


def overhead(server: triton.TritonServer, trace_file: Path, args: argparse.Namespace) -> None:
    rates: list[int | None] = [None, 1000, 100, 10, 1]
    found: dict[int | None, list[tuple[float, float]]] = {rate: [] for rate in rates}
    load(server, min(300, args.requests), args.clients)  # warm the stubs and the connections
    for _ in range(args.repeat):
        for rate in rates:  # in turn, so that a slow moment of the machine hits every setting
            set_tracing(server, rate)
            found[rate].append(load(server, args.requests, args.clients))
            clear(trace_file)
    set_tracing(server, None)
    base_rps = statistics.median(r for r, _ in found[None])
    base_p99 = statistics.median(p for _, p in found[None])
    print(f"Triton overhead: {args.requests} requests of {ROWS} rows from {args.clients} clients, "
          f"3 models, median of {args.repeat}")
    print(f"{'tracing':<16}{'requests/s':>12}{'ratio':>8}{'p99 ms':>10}{'ratio':>8}")
    for rate in rates:
        rps = statistics.median(r for r, _ in found[rate])
        p99 = statistics.median(p for _, p in found[rate])
        label = "off (baseline)" if rate is None else f"1 in {rate}"
        print(f"{label:<16}{rps:>12.0f}{rps / base_rps:>8.2f}{p99 * 1000:>10.1f}"
              f"{p99 / base_p99:>8.2f}")


def reading(server: triton.TritonServer, trace_file: Path, work: Path,
            args: argparse.Namespace) -> None:
    clear(trace_file)
    set_tracing(server, 1)
    load(server, args.sampled, args.clients)
    set_tracing(server, None)  # writes nothing more; the last partial file is written at exit
    files = sorted(trace_file.parent.glob(trace_file.name + ".*"))
    data = [path.read_bytes() for path in files]
    size = sum(len(d) for d in data)
    import json

    started = time.perf_counter()
    for chunk in data:
        json.loads(chunk)
    baseline = time.perf_counter() - started

    settings = parse_settings({"sources": {"triton": [
        {"name": "local", "url": server.url, "trace_file": str(trace_file)}]},
        "defaults": {"drift": {"source": "triton"}}})
    ctx = Context(settings, open_store("sqlite:///bench.db", work))
    versions = {}
    for model in triton.SEED_MODELS:
        ref = ModelRef(model.name, model.version)
        ctx.store.register(ModelSpec(ref, owner_team="bench", business_domain="bench",
                                     deployment={"max_batch_size": 64}),
                           Status.PRODUCTION, actor="bench", reason="bench", now=1.0)
        versions[ref] = ctx.store.get(ref)
    report = EndpointPass()
    started = time.perf_counter()
    consume_files(ctx, settings.sources.triton[0], versions, report, now=time.time())
    spent = time.perf_counter() - started
    rows = sum(traced_rows(ctx.store, ref)[1] for ref in versions)
    per_thousand = spent / report.requests * 1000
    print(f"\nReading the trace files: {len(files)} files, {size / 1e6:.1f} MB, "
          f"{report.requests} sampled requests, {rows} rows kept")
    print(f"  lifecycled (decode, store, delete): {per_thousand * 1000:.0f} ms per 1,000 sampled "
          f"requests; json.loads of the same bytes (baseline): "
          f"{baseline / report.requests * 1e6:.0f} ms per 1,000; ratio {spent / baseline:.1f}")
    ctx.store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="requests per setting")
    parser.add_argument("--sampled", type=int, default=1000, help="requests traced in part 2")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients")
    parser.add_argument("--repeat", type=int, default=3, help="rounds over the settings")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        repository = work / "models"
        for model in triton.SEED_MODELS:
            triton.write_model(repository, model)
        trace_file = work / "traces" / "trace.json"
        trace_file.parent.mkdir()
        server = triton.start(repository, work, trace_file=trace_file)
        try:
            overhead(server, trace_file, args)
            reading(server, trace_file, work, args)
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
