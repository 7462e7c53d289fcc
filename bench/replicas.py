"""Replica benchmark: 3,000 models on the fake KServe endpoints of ``bench/fleet.py``, a full
collect + evaluate pass with 1, 2 and 3 replicas sharing one PostgreSQL store, beside the same
pass of one daemon on SQLite (the baseline of the same run). The models are registered once and
the prepared state copied to each store (``state migrate``'s copy, a PostgreSQL template).

Every replica is asked to run each task, as its scheduler would; only the lease holder runs it.
For each replica count the script prints the pass time, the duplicate work (task runs beyond one
per pass: must be 0) and the database round trips per model (statements sent by the pass, a
batch of ``executemany`` counted once since psycopg pipelines it, divided by the models).

    python bench/replicas.py [--models 3000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
        def transaction(*, write: bool) -> Iterator[Any]:
            counter.statements += 2  # BEGIN and COMMIT
            with real(write=write) as conn:
                yield Counting(conn)
        store.engine.transaction = transaction
        try:
            yield
        finally:
            store.engine.transaction = real


def settings_for(servers: list[FakeTriton], name: str) -> Any:
    return parse_settings({"daemon": {"replica": name, "leader_lease": "30s"},
                           "sources": {"triton": [
                               {"name": f"e{i}", "url": f"http://127.0.0.1:{s.port}",
                                "metrics_url": f"http://127.0.0.1:{s.port}/metrics",
                                "timeout": "60s"} for i, s in enumerate(servers)]}})


def runtimes_on(url: str, replicas: int, servers: list[FakeTriton], work: Path
                ) -> list[Runtime]:
    runtimes = []
    for index in range(replicas):
        settings = settings_for(servers, f"r{index}")
        store = open_store(url, work)
        runtime = Runtime(Context(settings, store), replication=Replication(store, settings))
        runtime.replication.start()
        runtimes.append(runtime)
    return runtimes


def prepare(url: str, servers: list[FakeTriton], work: Path) -> None:
    """The first passes: every model registered, the base scrape stored (once, then copied)."""
    (runtime,) = runtimes_on(url, 1, servers, work)
    for task in ("discovery", "collect"):
        runtime.run_job(task)
    runtime.replication.stop()
    runtime.ctx.store.close()


def measure(url: str, replicas: int, servers: list[FakeTriton], models: int, repeat: int,
            work: Path) -> tuple[float, int, float]:
    runtimes = runtimes_on(url, replicas, servers, work)
    try:
        counted = Counted()
        times, duplicates, statements = [], 0, 0
        for _ in range(repeat):
            ran: dict[str, int] = dict.fromkeys(PASS, 0)
            started = time.perf_counter()
            for runtime in runtimes:
                with counted.around(runtime.ctx.store):
                    before = counted.statements
                    for task in PASS:
                        if runtime.replication.runs(task):
                            ran[task] += 1
                        runtime.run_job(task)
                    statements += counted.statements - before
            times.append(time.perf_counter() - started)
            duplicates += sum(max(0, n - 1) for n in ran.values())
        return min(times), duplicates, statements / repeat / models
    finally:
        for runtime in runtimes:
            runtime.replication.stop()
            runtime.ctx.store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    assert set(PASS) <= set(TASKS)
    logging.getLogger("lifecycled").setLevel(logging.ERROR)  # 3,000 breaches are logged
    work = Path(tempfile.mkdtemp(prefix="lifecycled-bench-replicas-"))
    stack = contextlib.ExitStack()
    server = stack.enter_context(temporary_postgres())
    os.environ["PGPASSWORD"] = server.password
    names = [(f"model_{i:05d}", "1") for i in range(args.models)]
    fakes = [FakeTriton(names[e::ENDPOINTS]) for e in range(ENDPOINTS)]
    try:
        prepared = server.create_database("prepared")
        prepare(prepared, fakes, work)
        sqlite_url = f"sqlite:///{work / 'one.db'}"
        source, target = open_store(prepared, work), open_store(sqlite_url, work)
        copy_store(source, target)
        source.close()
        target.close()
        base, _, base_trips = measure(sqlite_url, 1, fakes, args.models, args.repeat, work)
        print(f"{args.models} models, a collect + evaluate pass")
        print(f"{'store':24} {'pass s':>8} {'vs SQLite':>10} {'duplicate runs':>15} "
              f"{'round trips/model':>17}")
        print(f"{'SQLite, one daemon':24} {base:8.2f} {1.0:9.2f}x {0:15d} {base_trips:17.1f}")
        for replicas in (1, 2, 3):
            url = server.create_database(f"replicas{replicas}", template="prepared")
            seconds, duplicates, trips = measure(url, replicas, fakes, args.models, args.repeat,
                                                 work)
            print(f"{f'PostgreSQL, {replicas} replica(s)':24} {seconds:8.2f} "
                  f"{seconds / base:9.2f}x {duplicates:15d} {trips:17.1f}")
    finally:
        for fake in fakes:
            fake.stop()
        stack.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
