"""Comparisons, the scheduled pass (on the leader): each running comparison's evidence from
both versions' Triton counters since the last pass, then the policy's decision, applied once
(``actions.compare``). Rolled-back challengers whose unloading was cut short are unloaded."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from lifecycled.actions.compare import apply_decision, unload_challenger
from lifecycled.context import Context
from lifecycled.core.compare import (
    CRITERIA,
    ComparePolicy,
    decide,
    evidence_from_json,
    observe,
)
from lifecycled.core.drift import compare
from lifecycled.core.profile import build_profile
from lifecycled.domain import ModelCounters
from lifecycled.sources.triton import fetch_metrics
from lifecycled.store.comparisons import (
    ROLLED_BACK,
    RUNNING,
    Comparison,
    comparisons,
    update_evidence,
)
from lifecycled.store.results import latest_quality
from lifecycled.store.traces import traced_rows

log = logging.getLogger(__name__)
Served = dict[tuple[str, str], dict[str, Any]]


def stored_policy(comparison: Comparison) -> ComparePolicy:
    """The policy a comparison was opened with (a reload does not change a running one)."""
    data = dict(comparison.policy)
    data["block"] = tuple(c for c in data.get("block", CRITERIA) if c in CRITERIA)
    return ComparePolicy(**data)


def served(ctx: Context, now: float) -> Served:
    """Per model version, its requests and failures so far (summed over the endpoints that
    answered) and its p99 latency in seconds (the worst endpoint's)."""
    found: Served = {}
    for endpoint in ctx.settings.sources.triton:
        with ctx.source(f"triton:{endpoint.name}"):
            scrape = fetch_metrics(ctx.session, endpoint, now)
            for key, counters in scrape.models.items():
                _add(found.setdefault(key, {"requests": 0.0, "failures": 0.0, "p99": None}),
                     counters)
    return found


def _add(entry: dict[str, Any], counters: ModelCounters) -> None:
    failures = sum(counters.failure.values())
    entry["requests"] += counters.success + failures
    entry["failures"] += failures
    p99 = counters.quantiles_us.get("0.99")
    if p99 is not None:
        entry["p99"] = max(entry["p99"] or 0.0, p99 / 1e6)


def run_compare(ctx: Context) -> dict[str, Any]:
    now = ctx.clock()
    report: dict[str, Any] = {"judged": [], "decided": {}, "unloaded": []}
    for done in comparisons(ctx.store, states=(ROLLED_BACK,)):
        if not done.applied:
            unload_challenger(ctx, done.id)
            report["unloaded"].append(done.id)
    running = comparisons(ctx.store, states=(RUNNING,))
    if not running:
        return report
    now_served = served(ctx, now)
    for comparison in running:
        outcome = judge(ctx, comparison, now_served, now)
        report["judged"].append(comparison.id)
        if outcome is not None:
            report["decided"][comparison.id] = outcome
    return report


def informed(ctx: Context, comparison: Comparison) -> dict[str, Any]:
    """What is shown beside the tests and decides nothing: the drift between the two versions'
    traced rows since the comparison opened (inputs and outputs; with a random split the inputs
    agree, so a difference there is the split's), and each version's latest quality."""
    shown: dict[str, Any] = {}
    versions = (comparison.champion_ref, comparison.challenger_ref)
    if ctx.settings.drift_config(comparison.name).source == "triton":
        (base, n_base), (new, n_new) = (traced_rows(ctx.store, ref, since=comparison.opened_at)
                                        for ref in versions)
        policy = ctx.settings.drift_policy(comparison.name)
        if min(n_base, n_new) >= policy.min_samples:
            result = compare(build_profile(base, bins=policy.bins), new, policy)
            shown["outputs"] = {"severity": result.severity.label, "rows": [n_base, n_new],
                                "features": {f.feature: f.severity.label for f in result.features
                                             if f.severity is not None}}
    quality = {}
    for role, ref in zip(("champion", "challenger"), versions, strict=True):
        found = latest_quality(ctx.store, ref)
        if found:
            values = found[0].result
            quality[role] = {k: values[k] for k in ("samples", "accuracy", "mae")
                             if values.get(k) is not None}
    if quality:
        shown["quality"] = quality
    return shown


def judge(ctx: Context, comparison: Comparison, now_served: Served, now: float) -> str | None:
    """One pass of one comparison: the counts since the last pass added to its evidence, then
    the decision (returned when one was taken)."""
    policy = stored_policy(comparison)
    sides = (comparison.challenger, comparison.champion)
    seen = [now_served[(comparison.name, v)] for v in sides
            if (comparison.name, v) in now_served]
    last: Mapping[str, Any] = comparison.last
    evidence = evidence_from_json(dict(comparison.evidence), policy)
    if len(seen) == len(sides):  # a version no endpoint answered for adds nothing
        current = {v: {"requests": s["requests"], "failures": s["failures"]}
                   for v, s in zip(sides, seen, strict=True)}
        if all(v in last for v in sides):
            grown = [(current[v]["requests"] - last[v]["requests"],
                      current[v]["failures"] - last[v]["failures"]) for v in sides]
            if all(n >= 0 and f >= 0 for n, f in grown):  # else a restart: start again here
                (n_c, f_c), (n_b, f_b) = grown
                p99 = (seen[0]["p99"] if n_c > 0 else None, seen[1]["p99"] if n_b > 0 else None)
                evidence = observe(evidence, (n_c, n_b), (f_c, f_b), p99, policy)
        last = current
    decision = decide(evidence, now - comparison.opened_at, policy)
    shown = {**evidence.to_json(policy), **informed(ctx, comparison)}
    if decision.outcome is not None and apply_decision(
            ctx, comparison.id, decision.outcome, decision.reason, actor="compare",
            evidence=shown):
        return decision.outcome
    update_evidence(ctx.store, comparison.id, shown, last)
    return None
