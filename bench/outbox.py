"""Outbox benchmark: 10,000 events to a local receiver that fails 30 % of attempts at random.

The receiver (verifying every signature with the standardwebhooks library) runs in its own
process, as a real one would: on asyncio when it answers at once (about 7,800 requests a
second, so the sender is what is measured), threaded when it takes its time. Prints events
delivered per second with the endpoint's concurrency and with one request at a time (the
baseline, measured in the same run) with the CPU the sender's and the receiver's processes used
(a share of one core), and checks, after de-duplication on webhook-id, that no
event was lost and none arrived twice (at-least-once delivery with a stable id gives
exactly-once processing to a receiver that de-duplicates).

    python bench/outbox.py [--events 10000] [--failure-rate 0.3] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import base64
import logging
import multiprocessing
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lifecycled.actions.webhooks import deliver_once, secret_key
from lifecycled.net import DeadlineSession
from lifecycled.settings import WebhookEndpoint
from lifecycled.store import Store, open_store
from lifecycled.store.events import PENDING, emit_in
from lifecycled.store.outbox import deliveries

from devtools.receiver import AsyncReceiver, Receiver

SECRET = "whsec_" + base64.b64encode(b"b" * 32).decode()


def serve(failure_rate: float, latency: float, ready: Any, done: Any, results: Any) -> None:
    """The receiver process: answer (after ``latency`` seconds, as a receiver across a network
    would) until told to stop, then report what it saw."""
    chance = random.Random(0)

    def respond(_n: int, _headers: dict[str, str]) -> tuple[int, dict[str, str]]:
        if latency:
            time.sleep(latency)
        return (500, {}) if chance.random() < failure_rate else (200, {})

    # answering at once: the asyncio receiver, fast enough not to be the limit; a receiver that
    # takes its time: the threaded one, which waits in many requests at once
    receiver = (Receiver if latency else AsyncReceiver)(SECRET, respond=respond)
    ready.put(receiver.url)
    started = time.process_time()  # from here on it works only while the sender sends
    done.wait()
    results.put((sorted(receiver.unique()), len(receiver.accepted), len(receiver.attempts),
                 len(receiver.rejected), time.process_time() - started))
    receiver.stop()


def pending(store: Store) -> bool:
    with store.read() as conn:
        return conn.execute("SELECT 1 FROM deliveries WHERE state = ? LIMIT 1",
                            (PENDING,)).fetchone() is not None


def run(events: int, failure_rate: float, latency: float, concurrency: int
        ) -> tuple[float, bool]:
    """Deliver ``events`` through the outbox; print the line and return (events/s, all good)."""
    spawn = multiprocessing.get_context("spawn")
    ready, results, done = spawn.Queue(), spawn.Queue(), spawn.Event()
    process = spawn.Process(target=serve, args=(failure_rate, latency, ready, done, results))
    process.start()
    url = ready.get(timeout=60)
    endpoint = WebhookEndpoint(url=url, secret_env="BENCH_SECRET", backoff_initial=0.01,
                               backoff_max=0.05, max_attempts=100, timeout=10,
                               concurrency=concurrency)
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store("sqlite:///bench.db", Path(tmp))
        subscriptions = {"ci": ("model.status_changed",)}
        now = time.time()
        with store.write() as conn:
            ids = [emit_in(conn, subscriptions, "model.status_changed",
                           {"model": "m", "version": str(i), "n": i}, now)
                   for i in range(events)]
        session = DeadlineSession()  # the daemon's
        key = secret_key(SECRET)
        start, cpu = time.perf_counter(), time.process_time()
        rounds = 0
        while pending(store):
            deliver_once(store, {"ci": endpoint}, session, jitter_source=random.Random(1),
                         key_for=lambda _name, _endpoint: key, batch=500)
            rounds += 1
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        dead = len(deliveries(store, state="dead"))
        store.close()
    done.set()
    unique, accepted, attempts, rejected, receiver_cpu = results.get(timeout=60)
    process.join(timeout=60)
    lost = set(ids) - set(unique)
    duplicates = accepted - len(unique)
    print(f"latency {latency * 1000:.0f} ms, concurrency {concurrency}: {len(unique):,} "
          f"delivered in {elapsed:.2f} s = "
          f"{len(unique) / elapsed:,.0f} events/s; attempts {attempts:,} "
          f"({attempts / events:.2f} per event), passes {rounds}; lost {len(lost)}, dead "
          f"{dead}, duplicates {duplicates}, bad signatures {rejected}; CPU: sender "
          f"{cpu / elapsed:.0%} of a core, receiver {receiver_cpu / elapsed:.0%}")
    return len(unique) / elapsed, not lost and not dead and not duplicates and not rejected


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--failure-rate", type=float, default=0.3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency", type=float, nargs="+", default=[0.0],
                        help="seconds the receiver takes per request (0: localhost as fast as "
                             "it goes; 0.02: a receiver 20 ms away)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    print(f"{args.events:,} events, failure rate {args.failure_rate:.0%}, receiver in its own "
          "process")
    good = True
    for latency in args.latency:
        baseline, ok_one = run(args.events, args.failure_rate, latency, 1)
        rate, ok = run(args.events, args.failure_rate, latency, args.concurrency)
        print(f"  ratio at {latency * 1000:.0f} ms: {rate / baseline:.2f}x the one-at-a-time "
              "baseline")
        good = good and ok and ok_one
    return 0 if good else 1


if __name__ == "__main__":
    raise SystemExit(main())
