"""Evaluate: threshold breaches and performance level of every production model's latest
snapshot, stored with the snapshot they came from."""

from __future__ import annotations

import logging
from typing import Any

from lifecycled.context import Context
from lifecycled.core.thresholds import evaluate, evaluation_to_json
from lifecycled.domain import Status
from lifecycled.store.results import add_evaluation, latest_evaluation
from lifecycled.store.serving import latest_snapshots

log = logging.getLogger(__name__)


def run_evaluate(ctx: Context) -> dict[str, Any]:
    """One evaluation pass; returns {model: evaluation} for the models evaluated."""
    now = ctx.clock()
    latest = latest_snapshots(ctx.store)
    done: dict[str, Any] = {}
    for record in ctx.store.list_models(status=Status.PRODUCTION):
        snapshot = latest.get(record.ref)
        values = dict(snapshot.values) if snapshot else {}
        result = evaluation_to_json(evaluate(values, record.spec.thresholds))
        result["snapshot_at"] = snapshot.at if snapshot else None
        previous = latest_evaluation(ctx.store, record.ref)
        before = {b["threshold"] for b in previous[0].result["breaches"]} if previous else set()
        new = [b for b in result["breaches"] if b["threshold"] not in before]
        add_evaluation(ctx.store, record.ref, result,
                       snapshot_id=snapshot.id if snapshot else None, now=now,
                       events=[("model.threshold_breached", {
                           "breaches": new, "score": result["score"], "level": result["level"],
                           "snapshot_at": result["snapshot_at"]})] if new else [])
        for breach in new:
            log.warning("threshold breached model=%s threshold=%s value=%.6g limit=%.6g",
                        record.ref, breach["threshold"], breach["value"], breach["limit"])
        done[str(record.ref)] = result
    return done
