"""Replica benchmark: 3,000 models on the fake KServe endpoints of ``bench/fleet.py``, a full
collect + evaluate pass with 1, 2 and 3 replicas sharing one PostgreSQL store, beside the same
pass of one daemon on SQLite (the baseline of the same run). The models are registered once and
the prepared state copied to each store (``state migrate``'s copy, a PostgreSQL template).

Each replica is a process of its own, as in production; all are asked to run the pass at once,
as their schedulers would, and share it by their claims (collect by groups of endpoints, evaluate
by buckets of models). For each replica count the script prints the pass time (until the last
replica is done), the duplicate work (snapshots beyond one per model and pass, evaluations
beyond collect's and the evaluate pass's one each: must be 0), the models left without a
snapshot (must be 0) and the database round trips per model (statements sent by the pass over
all replicas, a batch of ``executemany`` counted once since psycopg pipelines it, divided by the
models). Between passes the claims are let go, as the end of an interval would.

    python bench/replicas.py [--models 3000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from fleet import ENDPOINTS, FakeTriton  # noqa: E402
from lifecycled.config import parse_settings  # noqa: E402
from lifecycled.context import Context  # noqa: E402
from lifecycled.replica import Replication  # noqa: E402
from lifecycled.scheduler import Runtime  # noqa: E402
from lifecycled.store import open_store  # noqa: E402
from lifecycled.store.copy import copy_store  # noqa: E402
from lifecycled.tasks.registry import TASKS  # noqa: E402

from devtools.postgres import temporary_postgres  # noqa: E402

PASS = ("collect", "evaluate")


class Counted:
    """Counts the statements every connection sends (SQLite and PostgreSQL alike)."""

    def __init__(self) -> None:
        self.statements = 0

    @contextmanager
    def around(self, store: Any) -> Iterator[None]:
        real = store.engine.transaction
        counter = self

        class Counting:
            def __init__(self, conn: Any) -> None:
                self.conn = conn

            def execute(self, *args: Any) -> Any:
                counter.statements += 1
                return self.conn.execute(*args)

            def executemany(self, sql: str, rows: Any) -> Any:
                rows = list(rows)
                counter.statements += 1  # one round trip per batch (psycopg pipelines them)
                return self.conn.executemany(sql, rows)

        @contextmanager
        def transaction(**options: Any) -> Iterator[Any]:
            counter.statements += 2  # BEGIN and COMMIT
            with real(**options) as conn:
                yield Counting(conn)
        store.engine.transaction = transaction
        try:
            yield
        finally:
            store.engine.transaction = real


def settings_for(servers: list[int], name: str) -> Any:
    return parse_settings({"daemon": {"replica": name, "leader_lease": "30s"},
                           "schedule": {"collect": "1h", "evaluate": "1h"},
                           "sources": {"triton": [
                               {"name": f"e{i}", "url": f"http://127.0.0.1:{port}",
                                "metrics_url": f"http://127.0.0.1:{port}/metrics",
                                "timeout": "60s"} for i, port in enumerate(servers)]}})


def replica(url: str, name: str, ports: list[int], work: str, pipe: Connection) -> None:
    """One replica in its own process: runs the pass when asked, answers with its statements."""
    logging.getLogger("lifecycled").setLevel(logging.ERROR)  # 3,000 breaches are logged
    settings = settings_for(ports, name)
    store = open_store(url, Path(work))
    runtime = Runtime(Context(settings, store), replication=Replication(store, settings))
    runtime.replication.start()
    counted = Counted()
    try:
        while pipe.recv() == "pass":
            with counted.around(store):
                before = counted.statements
                failed = [task for task in PASS if not runtime.run_job(task)]
            pipe.send((counted.statements - before, failed))
    finally:
        runtime.replication.stop()
        store.close()


def prepare(url: str, ports: list[int], work: Path) -> None:
    """The first passes: every model registered, the base scrape stored (once, then copied)."""
    settings = settings_for(ports, "prepare")
    store = open_store(url, work)
    runtime = Runtime(Context(settings, store), replication=Replication(store, settings))
    runtime.replication.start()
    for task in ("discovery", "collect"):
        if not runtime.run_job(task):
            raise SystemExit(f"preparing the store: {task} failed (see the log above)")
    runtime.replication.stop()
    let_claims_go(store)
    store.close()


def let_claims_go(store: Any) -> None:
    """The interval ends: every part may be claimed again."""
    with store.write() as conn:
        conn.execute("UPDATE work_claims SET until = 0")


def work_done(url: str, work: Path, since: float, models: int) -> tuple[int, int]:
    """(duplicate snapshots and evaluations, models without a snapshot) since ``since``."""
    store = open_store(url, work)
    try:
        let_claims_go(store)
        with store.read() as conn:
            snaps = [int(r[0]) for r in conn.execute(
                "SELECT COUNT(*) FROM snapshots WHERE at >= ? GROUP BY name, version",
                (since,)).fetchall()]
            evals = [int(r[0]) for r in conn.execute(
                "SELECT COUNT(*) FROM evaluations WHERE at >= ? GROUP BY name, version",
                (since,)).fetchall()]
    finally:
        store.close()
    # collect evaluates what it measured and the evaluate pass every production version: 2
    duplicates = sum(n - 1 for n in snaps) + sum(max(0, n - 2) for n in evals)
    return duplicates, models - len(snaps)


def measure(url: str, replicas: int, ports: list[int], models: int, repeat: int,
            work: Path) -> tuple[float, int, int, float]:
    spawn = mp.get_context("spawn")
    pipes, processes = [], []
    for index in range(replicas):
        ours, theirs = spawn.Pipe()
        process = spawn.Process(target=replica, args=(url, f"r{index}", ports, str(work),
                                                      theirs))
        process.start()
        pipes.append(ours)
        processes.append(process)
    try:
        times, duplicates, missing, statements = [], 0, 0, 0
        for _ in range(repeat):
            since = time.time()
            started = time.perf_counter()
            for pipe in pipes:
                pipe.send("pass")
            answers = [pipe.recv() for pipe in pipes]
            times.append(time.perf_counter() - started)
            failed = [task for _, tasks in answers for task in tasks]
            if failed:
                raise SystemExit(f"the pass failed: {failed} (see the log above)")
            statements += sum(count for count, _ in answers)
            extra, left = work_done(url, work, since, models)
            duplicates += extra
            missing += left
        return min(times), duplicates, missing, statements / repeat / models
    finally:
        for pipe in pipes:
            pipe.send("stop")
        for process in processes:
            process.join(timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    assert set(PASS) <= set(TASKS)
    logging.getLogger("lifecycled").setLevel(logging.ERROR)
    work = Path(tempfile.mkdtemp(prefix="lifecycled-bench-replicas-"))
    stack = contextlib.ExitStack()
    server = stack.enter_context(temporary_postgres())
    os.environ["PGPASSWORD"] = server.password
    names = [(f"model_{i:05d}", "1") for i in range(args.models)]
    fakes = [FakeTriton(names[e::ENDPOINTS]) for e in range(ENDPOINTS)]
    ports = [fake.port for fake in fakes]
    try:
        prepared = server.create_database("prepared")
        prepare(prepared, ports, work)
        sqlite_url = f"sqlite:///{work / 'one.db'}"
        source, target = open_store(prepared, work), open_store(sqlite_url, work)
        copy_store(source, target)
        source.close()
        target.close()
        base, extra, left, base_trips = measure(sqlite_url, 1, ports, args.models, args.repeat,
                                                work)
        print(f"{args.models} models on {ENDPOINTS} endpoints, a collect + evaluate pass, "
              f"{os.cpu_count()} cores")
        print(f"{'store':26} {'pass s':>8} {'vs SQLite':>10} {'duplicates':>11} "
              f"{'missing':>8} {'round trips/model':>17}")
        print(f"{'SQLite, one daemon':26} {base:8.2f} {1.0:9.2f}x {extra:11d} {left:8d} "
              f"{base_trips:17.1f}")
        for replicas in (1, 2, 3):
            url = server.create_database(f"replicas{replicas}", template="prepared")
            seconds, extra, left, trips = measure(url, replicas, ports, args.models,
                                                  args.repeat, work)
            print(f"{f'PostgreSQL, {replicas} replica(s)':26} {seconds:8.2f} "
                  f"{seconds / base:9.2f}x {extra:11d} {left:8d} {trips:17.1f}")
    finally:
        for fake in fakes:
            fake.stop()
        stack.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
