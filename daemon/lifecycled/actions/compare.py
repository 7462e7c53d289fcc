"""Champion and challenger, the action part: open a comparison by hand (a job opens its own:
``actions.updates``) and apply its decision, once.

A decision is one transaction: the comparison's state (only a running one decides; a held one
only by a person), the registry moves with the evidence in their history rows, the update job's
end and the webhook event. Among replicas only the leader judges, under its lease; across a kill
-9 the transaction either happened or not, so each comparison decides once, with one history row
and one event. The one step outside it, unloading a rolled-back challenger where lifecycled has
model control, is marked done afterwards and retried by the next pass until it is.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from lifecycled.actions.retire import local_control
from lifecycled.actions.updates import complete_in, fail_in, open_comparison_in
from lifecycled.context import Context
from lifecycled.core.lifecycle import promotion_path
from lifecycled.domain import HistoryKind, ModelRef, Status
from lifecycled.store.comparisons import (
    HELD,
    PROMOTED,
    ROLLED_BACK,
    RUNNING,
    Comparison,
    decide_in,
    get_in,
    mark_applied,
)
from lifecycled.store.core import Connection
from lifecycled.store.updates import get_in as get_job_in
from lifecycled.store.updates import log_in

log = logging.getLogger(__name__)
STATE_OF = {"promote": PROMOTED, "rollback": ROLLED_BACK, "hold": HELD}


def start_comparison(ctx: Context, champion: ModelRef, challenger: ModelRef, *, actor: str,
                     reason: str) -> str:
    """``compare start``."""
    with ctx.store.write() as conn:
        return open_comparison_in(ctx, conn, champion, challenger, actor=actor, reason=reason,
                                  now=ctx.clock())


def apply_decision(ctx: Context, comparison_id: str, outcome: str, reason: str, *,
                   actor: str, evidence: dict[str, Any]) -> bool:
    """Take ``outcome`` (promote, rollback, hold) once; False when the comparison was decided
    already (by another pass, replica or person). The daemon decides running comparisons; a
    person (``compare decide``) also held ones."""
    now = ctx.clock()
    by_person = actor != "compare"
    with ctx.store.write() as conn:
        comparison = get_in(conn, comparison_id)
        unload = outcome == "rollback" and _controlled(ctx)
        record = {"comparison_id": comparison.id, "champion": comparison.champion,
                  "challenger": comparison.challenger, "decision": outcome, "reason": reason,
                  "policy": dict(comparison.policy), "evidence": _shown(evidence)}
        if not decide_in(conn, comparison.id, STATE_OF[outcome], actor=actor, reason=reason,
                         evidence=evidence, now=now, applied=not unload,
                         from_states=(RUNNING, HELD) if by_person else (RUNNING,)):
            return False
        if outcome == "promote":
            _promote_in(ctx, conn, comparison, actor, reason, record, now)
        elif outcome == "rollback":
            _rollback_in(ctx, conn, comparison, actor, reason, record, now)
        else:
            status = ctx.store.get_in(conn, comparison.challenger_ref).status
            ctx.store.append_history_in(conn, comparison.challenger_ref, HistoryKind.COMPARISON,
                                        status, status, actor, f"held for a person: {reason}",
                                        record, now)
            if comparison.job_id is not None:
                log_in(conn, comparison.job_id, now, f"comparison {comparison.id} held for a "
                                                     f"person: {reason}")
    log.info("comparison decided id=%s decision=%s reason=%s", comparison_id, outcome, reason)
    if unload:
        unload_challenger(ctx, comparison_id)
    return True


def _shown(evidence: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in evidence.items() if k != "log_lr"}


def _promote_in(ctx: Context, conn: Connection, comparison: Comparison, actor: str, reason: str,
                record: dict[str, Any], now: float) -> None:
    store = ctx.store
    challenger, champion = comparison.challenger_ref, comparison.champion_ref
    current = store.get_in(conn, challenger).status
    for step in promotion_path(current, Status.PRODUCTION):
        store.set_status_in(conn, challenger, step, actor=actor,
                            reason=f"promoted by comparison {comparison.id}: {reason}",
                            evidence=record, now=now)
    if store.get_in(conn, champion).status == Status.PRODUCTION:
        store.set_status_in(conn, champion, Status.DEPRECATED, actor=actor,
                            reason=f"superseded by {challenger.version} (comparison "
                                   f"{comparison.id})", evidence=record, now=now)
    store.emit_in(conn, "model.promotion_requested", challenger,
                  {**record, "action": "route the model's traffic to the challenger"}, now)
    if comparison.job_id is not None:
        complete_in(ctx, conn, get_job_in(conn, comparison.job_id),
                    f"the comparison with {champion} promoted it: {reason}", now)


def _rollback_in(ctx: Context, conn: Connection, comparison: Comparison, actor: str,
                 reason: str, record: dict[str, Any], now: float) -> None:
    challenger = comparison.challenger_ref
    ctx.store.set_status_in(conn, challenger, Status.FAILED, actor=actor,
                            reason=f"rolled back by comparison {comparison.id}: {reason}",
                            evidence=record, now=now)
    ctx.store.emit_in(conn, "model.rollback_requested", challenger,
                      {**record, "action": f"stop sending traffic to {challenger}"}, now)
    if comparison.job_id is not None:
        fail_in(ctx, conn, get_job_in(conn, comparison.job_id),
                f"the comparison with {comparison.champion_ref} rolled it back: {reason}", now)


def _controlled(ctx: Context) -> bool:
    return any(local_control(ctx, endpoint) for endpoint in ctx.settings.sources.triton)


def unload_challenger(ctx: Context, comparison_id: str) -> None:
    """Stop Triton serving a rolled-back challenger where lifecycled has model control (the
    model reloaded with its other versions); marked done once every such endpoint is."""
    with ctx.store.read() as conn:
        comparison = get_in(conn, comparison_id)
    challenger = comparison.challenger_ref
    for endpoint in ctx.settings.sources.triton:
        if not local_control(ctx, endpoint):
            continue
        with ctx.source(f"triton:{endpoint.name}") as call, ctx.triton(endpoint) as client:
            ready = {e.version for e in client.index() if e.name == challenger.name
                     and e.version is not None and e.state in ("READY", "LOADING")}
            if challenger.version in ready:
                others = sorted(ready - {challenger.version}, key=lambda v: (len(v), v))
                config = client.raw_config(challenger.name)
                config["version_policy"] = {"specific": {"versions": [int(v) for v in others]}}
                client.load(challenger.name, config=json.dumps(config))
        if call.failed:
            return  # the next pass tries again
    mark_applied(ctx.store, comparison_id)
    log.info("rolled-back challenger unloaded model=%s", challenger)


__all__ = ["apply_decision", "open_comparison_in", "start_comparison", "unload_challenger"]
