"""Champion and challenger against a real Triton serving two versions side by side: the
comparison reads each version's counters from Triton's /metrics, rolls back a challenger that
fails more (unloading it where lifecycled has model control), promotes one that does not once it
has served enough, holds one that is slower when the policy says so; each decision once, with its
evidence in the history row and one webhook event."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import requests
from lifecycled.config import parse_settings
from lifecycled.context import Context
from lifecycled.domain import HistoryKind, ModelRef, Status
from lifecycled.store import open_store
from lifecycled.store.comparisons import comparisons
from lifecycled.tasks.compare import run_compare
from lifecycled.tasks.discovery import run_discovery

from devtools import triton
from tests.helpers import endpoint, wait_for

CHAMPION, CHALLENGER = ModelRef("credit_scoring", "1"), ModelRef("credit_scoring", "2")


def two_versions(triton_factory: Any) -> triton.TritonServer:
    models = (*triton.SEED_MODELS, triton.ModelSpec("credit_scoring", "2", 4, (0.8, -0.5, 0.3, 0.1),
                                                    -0.2))
    server = triton_factory(models=models)
    config = requests.get(f"{server.url}/v2/models/credit_scoring/config", timeout=10).json()
    config["version_policy"] = {"all": {}}  # serve both versions side by side
    requests.post(f"{server.url}/v2/repository/models/credit_scoring/load", timeout=120,
                  json={"parameters": {"config": json.dumps(config)}}).raise_for_status()
    wait_for(lambda: {("credit_scoring", "1"), ("credit_scoring", "2")} <= ready(server), "both")
    return server


def ready(server: triton.TritonServer) -> set[tuple[str, str]]:
    index = requests.post(f"{server.url}/v2/repository/index", json={}, timeout=10).json()
    return {(e["name"], e.get("version")) for e in index if e.get("state") == "READY"}


def context(tmp_path: Path, server: triton.TritonServer, **compare: Any) -> Context:
    settings = parse_settings({
        "sources": {"triton": [endpoint("local", server, allow_model_control=True)]},
        "webhooks": {"router": {"url": "http://127.0.0.1:9/hooks", "secret_env": "ROUTER_SECRET"}},
        "policies": {"compare": {"min_requests": 300, "max_duration": "1h", **compare}}})
    ctx = Context(settings, open_store("sqlite:///state.db", tmp_path),
                  environ={"ROUTER_SECRET": "whsec_" + "A" * 44})
    ctx.store.subscriptions = settings.subscriptions()  # as the daemon opens it
    run_discovery(ctx)
    ctx.store.set_status(CHAMPION, Status.PRODUCTION, actor="t", reason="r", now=ctx.clock())
    return ctx


def serve(server: triton.TritonServer, count: int, failing: dict[str, float],
          slow: dict[str, float] | None = None, seed: int = 0) -> None:
    """``count`` requests to each version; a share of each fails (a value Triton's model
    refuses) and, with ``slow``, a share takes 0.3 s."""
    rng = random.Random(seed)
    for _ in range(count):
        for version in ("1", "2"):
            row = [rng.random() for _ in range(4)]
            if rng.random() < failing.get(version, 0.0):
                row[0] = 1e9
            elif slow and rng.random() < slow.get(version, 0.0):
                row[0] = 4242
            triton.infer(server.url, "credit_scoring", [row], version=version)


def decide(ctx: Context, server: triton.TritonServer, failing: dict[str, float],
           slow: dict[str, float] | None = None) -> str:
    """Traffic and passes until the comparison decides; its outcome."""
    run_compare(ctx)  # the first pass: each version's counters as the baseline
    rounds = iter(range(200))

    def decided() -> str | None:
        serve(server, 100, failing, slow, seed=next(rounds))
        report = run_compare(ctx)
        return next(iter(report["decided"].values()), None)
    outcome: str = wait_for(decided, "a decision", timeout=240)
    return outcome


def events(ctx: Context, event_type: str) -> list[dict[str, Any]]:
    """The events of ``event_type`` in the outbox, and each once for the router endpoint."""
    with ctx.store.read() as conn:
        rows = conn.execute("SELECT e.body FROM events e JOIN deliveries d ON d.event_id = e.id "
                            "WHERE e.type = ? AND d.endpoint = 'router'", (event_type,)).fetchall()
    return [json.loads(row["body"]) for row in rows]


def panel_series(ctx: Context) -> set[str]:
    """The series the model dashboard's champion and challenger panels draw, as the exporter
    writes them for ``credit_scoring`` now (the alerting end-to-end test runs no comparison)."""
    from lifecycled.exporter import LifecycleCollector
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    registry.register(LifecycleCollector(ctx.store))
    lines = generate_latest(registry).decode().splitlines()
    board = json.loads((Path(__file__).parents[2] / "grafana" / "dashboards"
                        / "lifecycled-model.json").read_text())
    names = {re.match(r"\w+", target["expr"]).group(0)  # type: ignore[union-attr]
             for panel in board["panels"] if panel["title"].startswith("Champion and challenger")
             for target in panel["targets"]}
    assert len(names) == 5, names
    return {name for name in names if any(line.startswith(name + "{") and
                                          'model="credit_scoring"' in line for line in lines)}


def test_a_challenger_that_fails_more_is_rolled_back_once_and_unloaded(
        triton_factory: Any, tmp_path: Path) -> None:
    from lifecycled.actions.compare import start_comparison

    server = two_versions(triton_factory)
    ctx = context(tmp_path, server)
    start_comparison(ctx, CHAMPION, CHALLENGER, actor="alice", reason="retrained on June")
    run_compare(ctx)
    serve(server, 20, failing={})
    run_compare(ctx)
    assert len(panel_series(ctx)) == 5  # every panel of the dashboard row has data
    assert decide(ctx, server, failing={"1": 0.02, "2": 0.25}) == "rollback"
    (comparison,) = comparisons(ctx.store)
    assert comparison.state == "rolled_back" and comparison.applied
    evidence = comparison.evidence
    assert evidence["e_values"]["failures_worse"] >= evidence["threshold"]
    assert evidence["failures"]["challenger"] > evidence["failures"]["champion"]
    assert ctx.store.get(CHALLENGER).status == Status.FAILED
    assert ctx.store.get(CHAMPION).status == Status.PRODUCTION
    moves = [h for h in ctx.store.history(CHALLENGER) if h.kind == HistoryKind.STATUS_CHANGED]
    assert len(moves) == 1 and moves[0].evidence["decision"] == "rollback"
    assert moves[0].evidence["evidence"]["requests"]["challenger"] >= 100
    (event,) = events(ctx, "model.rollback_requested")
    assert event["data"]["challenger"] == "2" and event["data"]["champion"] == "1"
    wait_for(lambda: ("credit_scoring", "2") not in ready(server), "the challenger unloaded")
    assert ("credit_scoring", "1") in ready(server)
    assert run_compare(ctx)["decided"] == {}  # decided once
    assert len(events(ctx, "model.rollback_requested")) == 1


def test_a_challenger_as_good_is_promoted_and_a_slower_one_held(
        triton_factory: Any, tmp_path: Path) -> None:
    from lifecycled.actions.compare import start_comparison

    server = two_versions(triton_factory)
    # failures block here, not latency: with a hundred requests a pass, Triton's p99 of the
    # version loaded a moment ago is its cold first request, and on this shared 2-core machine
    # (the suite runs in two processes) that read 8 of 8 passes "slower"; latency's decisions
    # are judged by the held case below and in tests/core/test_compare.py
    ctx = context(tmp_path / "a", server, failure_margin=0.5, block=["failures"])
    start_comparison(ctx, CHAMPION, CHALLENGER, actor="alice", reason="same model, new build")
    assert decide(ctx, server, failing={"1": 0.05, "2": 0.03}) == "promote"
    assert ctx.store.get(CHALLENGER).status == Status.PRODUCTION
    assert ctx.store.get(CHAMPION).status == Status.DEPRECATED
    (event,) = events(ctx, "model.promotion_requested")
    assert event["data"]["decision"] == "promote"
    assert {("credit_scoring", "1"), ("credit_scoring", "2")} <= ready(server)  # routing: theirs

    slow = context(tmp_path / "b", server, on_latency="hold", min_requests=10**6)
    start_comparison(slow, CHAMPION, CHALLENGER, actor="alice", reason="a heavier model")
    assert decide(slow, server, failing={}, slow={"2": 0.05}) == "hold"
    (held,) = comparisons(slow.store)
    assert held.state == "held" and "p99" in held.reason
    assert slow.store.get(CHALLENGER).status == Status.STAGING  # a person decides
