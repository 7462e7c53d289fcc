"""Replicas share the collect and evaluate passes on a real PostgreSQL, against real Triton
servers: each replica collects the groups of endpoints it claims, every model gets one snapshot
a pass (a model served by two endpoints: one snapshot of both), and each production version is
evaluated once a pass."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from lifecycled.config import parse_settings
from lifecycled.context import Context
from lifecycled.domain import ModelRef, Status
from lifecycled.store import Store, open_store
from lifecycled.store.cluster import Replica, heartbeat
from lifecycled.tasks.collect import run_collect
from lifecycled.tasks.discovery import run_discovery
from lifecycled.tasks.evaluate import run_evaluate

from devtools import triton
from devtools.postgres import Postgres
from tests.helpers import ROOT, endpoint, wait_for

CREDIT = ModelRef("credit_scoring", "1")
SPARES = tuple(triton.ModelSpec(f"spare_{i}", "1", 4, (0.1 * i, 0.1, 0.1, 0.1))
               for i in range(1, 3))


@pytest.fixture
def store(postgres: Postgres, tmp_path: Path) -> Iterator[Store]:
    name = f"shared_{os.getpid()}_{int(time.monotonic() * 1000)}"
    opened = open_store(postgres.create_database(name), tmp_path)
    yield opened
    opened.close()
    postgres.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def claims_free(store: Store, task: str) -> bool:
    """Every claim of ``task`` has run out (its hold ended), in the database's clock."""
    with store.read() as conn:
        row = conn.execute(f"SELECT COUNT(*) FROM work_claims WHERE task = ? AND "
                           f"until >= {store.engine.now_sql}", (task,)).fetchone()
    return int(row[0]) == 0


def snapshots_per_model(store: Store, since: float) -> Counter[str]:
    with store.read() as conn:
        rows = conn.execute("SELECT name, version FROM snapshots WHERE at >= ?",
                            (since,)).fetchall()
    return Counter(f"{r[0]}:{r[1]}" for r in rows)


def test_replicas_share_collect_by_endpoint_groups_and_evaluate_by_buckets(
        triton_factory: Any, store: Store, tmp_path: Path) -> None:
    east, west = triton_factory("east"), triton_factory("west")  # both serve the seed models
    solo = triton_factory("solo", models=SPARES)
    models: dict[str, Any] = {}
    for file in (ROOT / "config" / "models.d").glob("*.yaml"):
        data = yaml.safe_load(file.read_text())
        models[data.pop("name")] = data
    settings = parse_settings({
        "daemon": {"leader_lease": "1s"},
        "defaults": {"monitoring": {"initial_status": "production"}},  # a promoted fleet
        # a short interval: a part is held for 0.9 of it, then the next pass may take it
        "schedule": {"collect": "1s", "evaluate": "1s"},
        "sources": {"triton": [endpoint("east", east), endpoint("west", west),
                               endpoint("solo", solo)]},
        "models": models})
    contexts = {}
    for who in ("a", "b"):
        heartbeat(store, Replica(who, who, "host", 1, "0", 0.0, 0.0, None))
        contexts[who] = Context(settings, store, claim_as=who)
    run_discovery(contexts["a"])
    production = sorted(str(r.ref) for r in store.list_models(status=Status.PRODUCTION))
    watched = sorted(str(ref) for ref in store.statuses())
    assert len(watched) == 5 and production
    # the first pass: no scrape stored yet, so each endpoint is a part of its own
    first = {who: run_collect(ctx) for who, ctx in contexts.items()}
    assert not set(first["a"].endpoints) & set(first["b"].endpoints)
    assert sorted([*first["a"].endpoints, *first["b"].endpoints]) == ["east", "solo", "west"]
    wait_for(lambda: claims_free(store, "collect"), "the first pass's parts to be free")

    for _ in range(6):
        triton.infer(east.url, "credit_scoring", [[0.1, 0.2, 0.3, 0.4]])
    for _ in range(4):
        triton.infer(west.url, "credit_scoring", [[0.1, 0.2, 0.3, 0.4]])
    since = time.time() - 1
    second = {who: run_collect(ctx) for who, ctx in contexts.items()}
    # east and west serve models in common: one part; solo another; each replica took one
    scraped = {who: sorted(report.endpoints) for who, report in second.items()}
    assert sorted(scraped.values()) == [["east", "west"], ["solo"]]
    # every model once, from one replica; the shared model from both of its endpoints
    assert not set(second["a"].snapshots) & set(second["b"].snapshots)
    assert sorted([*second["a"].snapshots, *second["b"].snapshots]) == watched
    assert snapshots_per_model(store, since) == Counter(dict.fromkeys(watched, 1))
    credit = {**second["a"].snapshots, **second["b"].snapshots}[str(CREDIT)]
    assert sorted(credit["endpoints"]) == ["east", "west"] and credit["requests"] == 10
    # collect evaluated what it measured, each production version once
    assert sorted([*second["a"].evaluated, *second["b"].evaluated]) == production
    # a second pass within the interval finds every part held: nothing is collected twice
    assert run_collect(contexts["a"]).snapshots == {}

    # the evaluate pass: buckets of models, each claimed by one replica
    done = {who: run_evaluate(ctx) for who, ctx in contexts.items()}
    assert not set(done["a"]) & set(done["b"])
    assert sorted([*done["a"], *done["b"]]) == production
    assert run_evaluate(contexts["a"]) == {} and run_evaluate(contexts["b"]) == {}
