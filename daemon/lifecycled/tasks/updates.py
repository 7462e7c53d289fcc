"""Update jobs, the scheduled pass: triggers (performance, drift, schedule) become jobs, jobs
without progress time out, and a job whose target Triton serves READY goes through the gate."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from lifecycled.actions.updates import create_job, fail_in, finish, no_builder
from lifecycled.context import Context
from lifecycled.core.triggers import Trigger, decide, drift_trigger, performance_triggers
from lifecycled.core.updates import describe
from lifecycled.domain import ModelRef, Status
from lifecycled.store.results import latest_drift
from lifecycled.store.serving import serving_states, snapshots
from lifecycled.store.updates import (
    active_for_in,
    attach_in,
    get_in,
    last_created_in,
    list_jobs,
    log_in,
)

log = logging.getLogger(__name__)


def _scheduled(ctx: Context, since: float, now: float) -> Trigger | None:
    expression = ctx.settings.policies.updates.schedule
    if not expression:
        return None
    from apscheduler.triggers.cron import CronTrigger

    cron = CronTrigger.from_crontab(expression, timezone=dt.UTC)
    fire = cron.get_next_fire_time(None, dt.datetime.fromtimestamp(since, dt.UTC))
    if fire is not None and fire.timestamp() <= now:
        return Trigger("scheduled", {"schedule": expression, "due": fire.timestamp()})
    return None


def _triggers(ctx: Context, ref: ModelRef, thresholds: Mapping[str, float],
              registered_at: float, last: float | None, now: float) -> list[Trigger]:
    recent = snapshots(ctx.store, ref, limit=10)
    found = performance_triggers([s.values for s in recent], thresholds)
    if any(s.detail.get("quality_estimated") for s in recent):  # say what the accuracy was
        found = [Trigger(t.type, {**t.detail, "accuracy_estimated": True})
                 if t.detail.get("threshold") == "min_accuracy" else t for t in found]
    drift = latest_drift(ctx.store, ref)
    if drift:
        at_least = ctx.settings.drift_policy(ref.name).alert_severity.label
        trigger = drift_trigger(drift[0].result["severity"], at_least, drift[0].at)
        if trigger is not None and (last is None or drift[0].at > last):
            found.append(trigger)  # a drift result already answered by a job does not re-fire
    scheduled = _scheduled(ctx, last or registered_at, now)
    if scheduled is not None:
        found.append(scheduled)
    return found


def run_updates(ctx: Context) -> dict[str, Any]:
    """Triggers -> jobs; timeouts; completion when the target version is READY with metrics."""
    now = ctx.clock()
    policy = ctx.settings.policies.updates
    report: dict[str, Any] = {"created": [], "not_created": [], "attached": [], "timed_out": [],
                              "finished": []}
    for record in ctx.store.list_models(status=Status.PRODUCTION):
        ref = record.ref
        with ctx.store.read() as conn:
            last = last_created_in(conn, ref.name)
        triggers = _triggers(ctx, ref, record.spec.thresholds, record.registered_at, last, now)
        if not triggers:
            continue
        with ctx.store.write() as conn:
            active = active_for_in(conn, ref.name)
            auto = {str(k): v for k, v in policy.auto_trigger.items()}
            decision = decide(triggers, auto=auto, active=active is not None,
                              last_created=last_created_in(conn, ref.name),
                              cooldown=policy.cooldown, now=now)
            why = no_builder(ctx, ref) if decision.create is not None else None
            job_id = None
            if decision.create is not None and why is not None:
                report["not_created"].append(str(ref))
                log.warning("update job not created model=%s trigger=%s reason=%s", ref,
                            decision.create.type, why)
            elif decision.create is not None:
                job_id = create_job(ctx, conn, ref, decision.create, now)
                report["created"].append(job_id)
                log.info("update job created job=%s model=%s trigger=%s", job_id, ref,
                         decision.create.type)
            job = active or (get_in(conn, job_id) if job_id else None)
            if job is not None and decision.attach:
                for trigger in decision.attach:
                    if attach_in(conn, job.id, trigger.type):  # each type once per job
                        log_in(conn, job.id, now,
                               f"also triggered by {trigger.type}: {describe(trigger)}")
                report["attached"].extend(sorted({t.type for t in decision.attach}))
    _time_out(ctx, now, policy.job_timeout, report)
    ready = {(s.ref.name, s.ref.version) for s in serving_states(ctx.store) if s.state == "ready"}
    for job in list_jobs(ctx.store):
        if job.active and job.state != "comparing" and job.validation and \
                (job.ref.name, job.target_version) in ready:
            report["finished"].append(finish(ctx, job.id, "discovery saw the target READY"))
    return report


def _time_out(ctx: Context, now: float, timeout: float, report: dict[str, Any]) -> None:
    for job in list_jobs(ctx.store):  # a comparing job waits for its comparison's decision
        if job.active and job.state != "comparing" and now - job.updated_at > timeout:
            reason = f"no progress for {now - job.updated_at:.0f}s (timeout {timeout:.0f}s)"
            with ctx.store.write() as conn:
                fail_in(ctx, conn, get_in(conn, job.id), reason, now)
            report["timed_out"].append(job.id)
