"""Retirement: score every version, announce new candidates, retire automatically when policy
says so, and resume plans that stopped (after a crash or a failed step that was retried)."""

from __future__ import annotations

import logging
from typing import Any

from lifecycled.actions.retire import retire, run_plan
from lifecycled.context import Context
from lifecycled.core.retirement import Usage, retirement_score
from lifecycled.domain import ModelRecord, Status
from lifecycled.errors import LifecycledError
from lifecycled.store.retirement import put_scores, scores, unfinished_plans
from lifecycled.store.serving import snapshots

log = logging.getLogger(__name__)
DAY = 86400.0


def usage_of(ctx: Context, record: ModelRecord, now: float) -> Usage:
    """Age, status, mean accuracy of the last 10 snapshots and requests served (from Triton's
    counters, summed over the snapshots of the last 7 and 30 days)."""
    recent = snapshots(ctx.store, record.ref, since=now - 30 * DAY)
    accuracy = [a for s in recent[:10] if (a := s.values.get("accuracy")) is not None]
    counted = [s for s in recent if "requests" in s.detail]
    week = [s for s in counted if s.at >= now - 7 * DAY]
    return Usage(
        age_days=(now - record.registered_at) / DAY,
        status=record.status.value,
        mean_accuracy=sum(accuracy) / len(accuracy) if accuracy else None,
        requests_7d=sum(float(s.detail["requests"]) for s in week) if week else None,
        requests_30d=sum(float(s.detail["requests"]) for s in counted) if counted else None,
    )


def run_retirement(ctx: Context) -> dict[str, Any]:
    now = ctx.clock()
    settings = ctx.settings.policies.retirement
    policy = settings.policy()
    report: dict[str, Any] = {"resumed": [], "candidates": [], "retired": [], "errors": {}}
    for plan in unfinished_plans(ctx.store):
        report["resumed"].append(run_plan(ctx, plan).state)
    before = scores(ctx.store)
    results, events, automatic = [], [], []
    for record in ctx.store.list_models():
        result = retirement_score(usage_of(ctx, record, now), policy)
        if result is None:
            continue
        data = result.to_json()
        results.append((record.ref, data))
        if result.candidate:
            report["candidates"].append(str(record.ref))
            if not before.get(record.ref, {}).get("candidate"):
                events.append((record.ref, "model.retirement_candidate", data))
            if settings.auto_retire and result.score >= settings.auto_retire_score:
                automatic.append((record.ref, f"automatic: score {result.score:.2f} "
                                              f"({'; '.join(result.reasons)})"))
        if settings.auto_retire_failed and record.status == Status.FAILED and not any(
                ref == record.ref for ref, _ in automatic):
            automatic.append((record.ref, "automatic: failed model"))
    put_scores(ctx.store, results, now, events)
    for ref, reason in automatic:
        try:
            plan = retire(ctx, ref, reason=reason, actor="retirement")
            if plan.state == "completed":
                report["retired"].append(str(ref))
            else:
                report["errors"][str(ref)] = plan.error
        except LifecycledError as exc:
            report["errors"][str(ref)] = str(exc)
            log.warning("automatic retirement refused model=%s error=%s", ref, exc)
    return report
