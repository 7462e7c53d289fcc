"""Evaluate: threshold breaches and performance level of every production model's latest
snapshot, stored with the snapshot they came from. Replicas share the pass by buckets of
models."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Collection, Mapping
from typing import Any

from lifecycled.context import Context
from lifecycled.core.thresholds import evaluate, evaluation_to_json
from lifecycled.domain import ModelRef, Status
from lifecycled.store.results import Evaluation, add_evaluations, latest_evaluation
from lifecycled.store.serving import Snapshot, latest_snapshots

log = logging.getLogger(__name__)


# the evaluation pass in parts, for the replicas to share: a version belongs to the bucket its
# name hashes to (stable across replicas and restarts, whatever the fleet)
BUCKETS = 16


def bucket(ref: ModelRef) -> str:
    return f"{zlib.crc32(ref.name.encode()) % BUCKETS}/{BUCKETS}"


def run_evaluate(ctx: Context) -> dict[str, Any]:
    """One evaluation pass; returns {model: evaluation} for the models evaluated (among
    replicas, those of the buckets this replica claims: ``Context.claimed``)."""
    buckets = [f"{i}/{BUCKETS}" for i in range(BUCKETS)]
    with ctx.claimed("evaluate", buckets, hold=0.9 * ctx.settings.schedule.evaluate) as mine:
        chosen = set(mine)
        refs = {ref for ref in ctx.store.statuses() if bucket(ref) in chosen}
        return evaluate_versions(ctx, refs, ctx.clock()) if refs else {}


def evaluate_versions(ctx: Context, refs: Collection[ModelRef] | None, now: float,
                      latest: Mapping[ModelRef, Snapshot] | None = None) -> dict[str, Any]:
    """Evaluate the latest snapshot of each production version in ``refs`` (None: all of them).
    Collect calls this for the versions it has just measured, with the snapshots it has just
    written as ``latest`` (else they are read), so a breach is never older than one collect
    interval; the evaluate task covers every production version."""
    if latest is None:
        latest = latest_snapshots(ctx.store)
    previous = {e.ref: e for e in latest_evaluation(ctx.store)}
    done: dict[str, Any] = {}
    evaluations, breached = [], []
    for ref, thresholds in ctx.store.thresholds(Status.PRODUCTION).items():
        if refs is not None and ref not in refs:
            continue
        snapshot = latest.get(ref)
        values = dict(snapshot.values) if snapshot else {}
        bounds = dict(snapshot.detail.get("judged_on") or {}) if snapshot else None
        result = evaluation_to_json(evaluate(values, thresholds, bounds))
        result["snapshot_at"] = snapshot.at if snapshot else None
        last = previous.get(ref)
        before = {b["threshold"] for b in last.result["breaches"]} if last else set()
        new = [b for b in result["breaches"] if b["threshold"] not in before]
        evaluations.append(Evaluation(
            ref, result, snapshot.id if snapshot else None,
            [("model.threshold_breached", {
                "breaches": new, "score": result["score"], "level": result["level"],
                "snapshot_at": result["snapshot_at"]})] if new else []))
        breached += [(ref, b) for b in new]
        done[str(ref)] = result
    add_evaluations(ctx.store, evaluations, now=now)  # the pass in one transaction
    for ref, breach in breached:
        log.warning("threshold breached model=%s threshold=%s value=%.6g limit=%.6g",
                    ref, breach["threshold"], breach["value"], breach["limit"])
    return done
