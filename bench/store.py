"""State store benchmark: the hot paths on SQLite and on PostgreSQL, measured in one run.

- snapshot insert: one collect pass's writes, ``--batch`` snapshots per transaction;
- outbox claim + mark: claim ``--batch`` due deliveries, then record their answers;
- history append: status changes, one transaction each (what an API call or a task does).

Each line prints operations per second on both engines and PostgreSQL's time relative to
SQLite's (the baseline of the same run). PostgreSQL runs in a temporary folder on this machine
(``devtools.postgres``), over TCP on 127.0.0.1, fsync off as in the tests; SQLite uses WAL with
``synchronous = NORMAL`` as the daemon does.

    python bench/store.py [--rows 5000] [--batch 200]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lifecycled.domain import ModelRef, ModelSpec, Status  # noqa: E402
from lifecycled.store import Store, open_store  # noqa: E402
from lifecycled.store.events import emit_in  # noqa: E402
from lifecycled.store.outbox import Attempt, claim_due, record_attempts  # noqa: E402
from lifecycled.store.serving import add_snapshot  # noqa: E402

from devtools.postgres import temporary_postgres  # noqa: E402

VALUES = {"interval_seconds": 300.0, "requests_per_second": 12.5, "error_ratio": 0.01,
          "latency_p99_seconds": 0.05, "accuracy": 0.9}


def snapshots(store: Store, rows: int, batch: int) -> float:
    refs = [ModelRef(f"m{i % 500}", "1") for i in range(rows)]
    started = time.perf_counter()
    for start in range(0, rows, batch):
        with store.write() as conn:
            for offset, ref in enumerate(refs[start:start + batch]):
                add_snapshot(conn, ref, float(start + offset), VALUES, {"requests": 10})
    return time.perf_counter() - started


def outbox(store: Store, rows: int, batch: int) -> float:
    subscriptions = {"ci": ("model.status_changed",)}
    with store.write() as conn:
        for i in range(rows):
            emit_in(conn, subscriptions, "model.status_changed",
                    {"model": f"m{i}", "version": "1"}, 1.0)
    started = time.perf_counter()
    while True:
        claimed = claim_due(store, "bench", 10.0, batch, ttl=60.0).deliveries
        if not claimed:
            break
        record_attempts(store, [Attempt(d, 11.0, 200, "", "delivered") for d in claimed])
    return time.perf_counter() - started


def history(store: Store, rows: int, batch: int) -> float:
    ref = ModelRef("flip", "1")
    store.register(ModelSpec(ref, owner_team="t", business_domain="d"), Status.DEVELOPING,
                   actor="bench", reason="r", now=0.0)
    started = time.perf_counter()
    for i in range(rows):
        target = Status.TESTING if i % 2 == 0 else Status.DEVELOPING
        store.set_status(ref, target, actor="bench", reason="flip", now=float(i))
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lifecycled-bench-store-"))
    stack = contextlib.ExitStack()
    server = stack.enter_context(temporary_postgres())
    os.environ["PGPASSWORD"] = server.password
    cases: list[tuple[str, Callable[[Store, int, int], float], int]] = [
        ("snapshot insert", snapshots, args.rows), ("outbox claim + mark", outbox, args.rows),
        ("history append (1 per transaction)", history, max(1, args.rows // 5))]
    try:
        print(f"{'hot path':38} {'SQLite ops/s':>13} {'PostgreSQL ops/s':>17} {'PG / SQLite time':>17}")
        for index, (name, run, rows) in enumerate(cases):
            sqlite = open_store(f"sqlite:///{work / f'bench{index}.db'}", work)
            pg = open_store(server.create_database(f"bench{index}"), work)
            try:
                seconds = {engine: run(store, rows, args.batch)
                           for engine, store in (("sqlite", sqlite), ("pg", pg))}
            finally:
                sqlite.close()
                pg.close()
            print(f"{name:38} {rows / seconds['sqlite']:13,.0f} {rows / seconds['pg']:17,.0f} "
                  f"{seconds['pg'] / seconds['sqlite']:16.2f}x")
    finally:
        stack.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
