"""Outbox benchmark: 10,000 events to a local receiver that fails 30 % of attempts at random.

Prints events delivered per second and checks, after de-duplication on webhook-id, that no event
was lost and none arrived twice (at-least-once delivery with a stable id gives exactly-once
processing to a receiver that de-duplicates).

    python bench/outbox.py [--events 10000] [--failure-rate 0.3]
"""

from __future__ import annotations

import argparse
import base64
import logging
import random
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lifecycled.actions.webhooks import deliver_once, secret_key
from lifecycled.settings import WebhookEndpoint
from lifecycled.store import open_store
from lifecycled.store.events import emit_in
from lifecycled.store.outbox import deliveries

from devtools.receiver import Receiver

SECRET = "whsec_" + base64.b64encode(b"b" * 32).decode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--failure-rate", type=float, default=0.3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    chance = random.Random(0)
    receiver = Receiver(SECRET, respond=lambda n, h: (500, {}) if chance.random() < args.failure_rate
                        else (200, {}))
    endpoint = WebhookEndpoint(url=receiver.url, secret_env="BENCH_SECRET", backoff_initial=0.01,
                               backoff_max=0.05, max_attempts=100, timeout=10)
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store("sqlite:///bench.db", Path(tmp))
        subscriptions = {"ci": ("model.status_changed",)}
        now = time.time()
        with store.write() as conn:
            ids = [emit_in(conn, subscriptions, "model.status_changed",
                           {"model": "m", "version": str(i), "n": i}, now)
                   for i in range(args.events)]
        session = requests.Session()
        key = secret_key(SECRET)
        start = time.perf_counter()
        rounds = 0
        while any(d.state == "pending" for d in deliveries(store, state="pending")[:1]):
            deliver_once(store, {"ci": endpoint}, session, jitter_source=random.Random(1),
                         key_for=lambda _name, _endpoint: key, batch=500)
            rounds += 1
        elapsed = time.perf_counter() - start
        unique = receiver.unique()
        lost = set(ids) - set(unique)
        duplicates = len(receiver.accepted) - len(unique)
        dead = len(deliveries(store, state="dead"))
        store.close()
    receiver.stop()
    attempts = len(receiver.attempts)
    print(f"events {args.events:,}; attempts {attempts:,} ({attempts / args.events:.2f} per "
          f"event, failure rate {args.failure_rate:.0%}); passes {rounds}")
    print(f"delivered {len(unique):,} in {elapsed:.2f} s = {len(unique) / elapsed:,.0f} events/s")
    print(f"lost {len(lost)}; dead letters {dead}; accepted deliveries {len(receiver.accepted):,} "
          f"for {len(unique):,} ids: duplicates {duplicates}")
    return 0 if not lost and not dead and not duplicates else 1


if __name__ == "__main__":
    raise SystemExit(main())
