"""Update jobs: triggers become jobs (dispatched through ``model.update_requested``), the
pipeline reports progress through the API, and a validation gate decides whether the new version
is promoted (and the old one deprecated) or the job fails."""

from __future__ import annotations

import datetime as dt
import logging
import math
import sqlite3
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from lifecycled.config import drift_settings_for
from lifecycled.core.lifecycle import next_version
from lifecycled.core.triggers import Trigger, decide, drift_trigger, performance_triggers
from lifecycled.domain import ModelRef, Status
from lifecycled.errors import InputError, NotFoundError, SourceError, TransitionError
from lifecycled.jobs.context import JobContext
from lifecycled.store.results import latest_drift
from lifecycled.store.serving import serving_states, snapshots
from lifecycled.store.updates import (
    STATES,
    UpdateJob,
    active_for_in,
    create_in,
    get_in,
    last_created_in,
    list_jobs,
    log_in,
    update_in,
)

log = logging.getLogger(__name__)
REPORTED_STATES = ("training", "validating", "deploying", "completed", "failed")
MAX_LOG_LINES, MAX_LINE = 100, 2000
TO_PRODUCTION = {Status.DEVELOPING: Status.TESTING, Status.TESTING: Status.STAGING,
                 Status.STAGING: Status.PRODUCTION, Status.FAILED: Status.TESTING,
                 Status.DEPRECATED: Status.PRODUCTION}


def callback_url(ctx: JobContext, job_id: str) -> str:
    base = ctx.settings.daemon.public_url or f"http://{ctx.settings.daemon.listen}"
    return f"{base.rstrip('/')}/api/v1/jobs/{job_id}/events"


def create_job(ctx: JobContext, conn: sqlite3.Connection, ref: ModelRef, trigger: Trigger,
               now: float) -> str:
    """Create a job for ``ref`` and dispatch it (the event is written in the same transaction)."""
    target = next_version(ref.version)
    job_id = create_in(conn, ref, target, trigger.type, trigger.to_json(), "dispatched", now)
    log_in(conn, job_id, now, f"created by trigger {trigger.type}: {_describe(trigger)}",
           "dispatched: model.update_requested written to the outbox")
    ctx.store.emit_in(conn, "model.update_requested", ref, {
        "job_id": job_id, "target_version": target, "trigger": trigger.to_json(),
        "callback_url": callback_url(ctx, job_id)}, now)
    return job_id


def _describe(trigger: Trigger) -> str:
    d = trigger.detail
    if trigger.type == "performance_degradation":
        return (f"{d['threshold']} mean {d['current']:.4g} against {d['limit']:.4g} "
                f"({d['severity']}, {d['snapshots']} snapshots)")
    if trigger.type == "drift_detection":
        return f"drift severity {d['severity']} (at least {d['at_least']})"
    return str(d.get("reason", "")) or trigger.type


def manual_job(ctx: JobContext, ref: ModelRef, reason: str, actor: str) -> str:
    """``jobs create``: refused while the model has an active job; no cooldown (a person asked)."""
    now = ctx.clock()
    with ctx.store.write() as conn:
        if ctx.store.get_in(conn, ref).status == Status.RETIRED:
            raise InputError(f"{ref} is retired")
        active = active_for_in(conn, ref.name)
        if active is not None:
            raise InputError(f"{ref.name} already has an active update job {active.id} "
                             f"({active.state})")
        return create_job(ctx, conn, ref, Trigger("manual", {"reason": reason, "actor": actor}),
                          now)


def cancel_job(ctx: JobContext, job_id: str, actor: str) -> UpdateJob:
    """Cancel a job that is still pending or dispatched."""
    now = ctx.clock()
    with ctx.store.write() as conn:
        job = get_in(conn, job_id)
        if job.state not in ("pending", "dispatched"):
            raise InputError(f"cannot cancel {job_id}: it is {job.state} (only pending or "
                             "dispatched jobs can be cancelled)")
        update_in(conn, job_id, now, state="cancelled", reason=f"cancelled by {actor}")
        log_in(conn, job_id, now, f"cancelled by {actor}")
        return get_in(conn, job_id)


# --- the scheduled pass -----------------------------------------------------------------------


def _scheduled(ctx: JobContext, since: float, now: float) -> Trigger | None:
    expression = ctx.settings.policies.updates.schedule
    if not expression:
        return None
    from apscheduler.triggers.cron import CronTrigger

    cron = CronTrigger.from_crontab(expression, timezone=dt.UTC)
    fire = cron.get_next_fire_time(None, dt.datetime.fromtimestamp(since, dt.UTC))
    if fire is not None and fire.timestamp() <= now:
        return Trigger("scheduled", {"schedule": expression, "due": fire.timestamp()})
    return None


def _triggers(ctx: JobContext, ref: ModelRef, thresholds: Mapping[str, float],
              registered_at: float, last: float | None, now: float) -> list[Trigger]:
    found = performance_triggers([s.values for s in snapshots(ctx.store, ref, limit=10)],
                                 thresholds)
    drift = latest_drift(ctx.store, ref)
    if drift:
        at_least = drift_settings_for(ctx.settings, ref.name).alert_severity or "medium"
        trigger = drift_trigger(drift[0].result["severity"], at_least, drift[0].at)
        if trigger is not None and (last is None or drift[0].at > last):
            found.append(trigger)  # a drift result already answered by a job does not re-fire
    scheduled = _scheduled(ctx, last or registered_at, now)
    if scheduled is not None:
        found.append(scheduled)
    return found


def run_updates(ctx: JobContext) -> dict[str, Any]:
    """Triggers -> jobs; timeouts; completion when the target version is READY with metrics."""
    now = ctx.clock()
    policy = ctx.settings.policies.updates
    report: dict[str, Any] = {"created": [], "attached": [], "timed_out": [], "finished": []}
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
            if decision.create is not None:
                job_id = create_job(ctx, conn, ref, decision.create, now)
                report["created"].append(job_id)
                log.info("update job created job=%s model=%s trigger=%s", job_id, ref,
                         decision.create.type)
            job = active or (get_in(conn, job_id) if decision.create else None)
            if job is not None and decision.attach:
                already = " ".join(line for _, line in get_in(conn, job.id).log)
                for trigger in decision.attach:
                    if trigger.type != job.trigger_type and \
                            f"also triggered by {trigger.type}" not in already:
                        log_in(conn, job.id, now,
                               f"also triggered by {trigger.type}: {_describe(trigger)}")
                report["attached"].extend(sorted({t.type for t in decision.attach}))
    _time_out(ctx, now, policy.job_timeout, report)
    ready = {(s.ref.name, s.ref.version) for s in serving_states(ctx.store) if s.state == "ready"}
    for job in list_jobs(ctx.store):
        if job.active and job.validation and (job.ref.name, job.target_version) in ready:
            report["finished"].append(finish(ctx, job.id, "discovery saw the target READY"))
    return report


def _time_out(ctx: JobContext, now: float, timeout: float, report: dict[str, Any]) -> None:
    for job in list_jobs(ctx.store):
        if job.active and now - job.updated_at > timeout:
            reason = f"no progress for {now - job.updated_at:.0f}s (timeout {timeout:.0f}s)"
            with ctx.store.write() as conn:
                _fail(ctx, conn, get_in(conn, job.id), reason, now)
            report["timed_out"].append(job.id)


def _fail(ctx: JobContext, conn: sqlite3.Connection, job: UpdateJob, reason: str,
          now: float) -> None:
    update_in(conn, job.id, now, state="failed", reason=reason)
    log_in(conn, job.id, now, f"failed: {reason}")
    ctx.store.emit_in(conn, "model.update_failed", job.ref, {
        "job_id": job.id, "target_version": job.target_version, "reason": reason}, now)
    log.warning("update job failed job=%s model=%s reason=%s", job.id, job.ref, reason)


# --- the validation gate and promotion -----------------------------------------------------------


def gate(validation: Mapping[str, float], minimums: Mapping[str, float]) -> list[str]:
    """Problems that stop a promotion (empty when the gate passes)."""
    problems = []
    for metric, minimum in sorted(minimums.items()):
        value = validation.get(metric)
        if value is None:
            problems.append(f"no validation {metric} reported (minimum {minimum:g})")
        elif value < minimum:
            problems.append(f"validation {metric} {value:.4g} below minimum {minimum:g}")
    return problems


def finish(ctx: JobContext, job_id: str, why: str) -> str:
    """Run the validation gate; promote the target version or fail the job. Returns the state."""
    now = ctx.clock()
    policy = ctx.settings.policies.updates
    minimums = {"accuracy": policy.min_validation_accuracy, **policy.min_validation}
    with ctx.store.write() as conn:
        job = get_in(conn, job_id)
        if not job.active:
            return job.state
        problems = gate(job.validation, minimums)
        if problems:
            _fail(ctx, conn, job, "; ".join(problems), now)
            return "failed"
        _promote(ctx, conn, job, why, now)
    if policy.load_in_triton:
        _load(ctx, job)
    return "completed"


def _promote(ctx: JobContext, conn: sqlite3.Connection, job: UpdateJob, why: str,
             now: float) -> None:
    store = ctx.store
    old = store.get_in(conn, job.ref)
    target = ModelRef(job.ref.name, job.target_version)
    evidence = {"job_id": job.id, "validation": dict(job.validation)}
    try:
        current = store.get_in(conn, target).status
    except NotFoundError:
        spec = replace(old.spec, ref=target,
                       tags=tuple(dict.fromkeys((*old.spec.tags, "auto_updated"))))
        store.register_in(conn, spec, Status.STAGING, actor="updates",
                          reason=f"built by update job {job.id}", now=now)
        current = Status.STAGING
    while current != Status.PRODUCTION:
        step = TO_PRODUCTION[current]
        store.set_status_in(conn, target, step, actor="updates",
                            reason=f"promoted by update job {job.id}: validation passed",
                            evidence=evidence, now=now)
        current = step
    if old.status == Status.PRODUCTION:
        store.set_status_in(conn, job.ref, Status.DEPRECATED, actor="updates",
                            reason=f"superseded by {job.target_version}", evidence=evidence,
                            now=now)
    update_in(conn, job.id, now, state="completed", progress=100.0,
              reason=f"{target} promoted; {job.ref} deprecated")
    log_in(conn, job.id, now, f"validation passed ({why}); {target} promoted to production, "
                              f"{job.ref} deprecated")
    store.emit_in(conn, "model.update_completed", job.ref, {
        "job_id": job.id, "target_version": job.target_version,
        "validation": dict(job.validation)}, now)
    log.info("update job completed job=%s promoted=%s", job.id, target)


def _load(ctx: JobContext, job: UpdateJob) -> None:
    from lifecycled.sources.triton import TritonClient

    for endpoint in ctx.settings.sources.triton:
        if not endpoint.allow_model_control:
            continue
        try:
            with TritonClient(endpoint) as client:
                client.load(job.ref.name)
            line = f"asked {endpoint.name} to load {job.ref.name}"
        except SourceError as exc:
            line = f"could not load {job.ref.name} on {endpoint.name}: {exc}"
            log.warning("triton load failed job=%s error=%s", job.id, exc)
        with ctx.store.write() as conn:
            log_in(conn, job.id, ctx.clock(), line)


# --- pipeline reports (POST /api/v1/jobs/{id}/events) -------------------------------------------


def _validate_report(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InputError("the body must be a JSON object")
    unknown = set(body) - {"state", "progress", "log", "validation_metrics", "message"}
    if unknown:
        raise InputError(f"unknown field(s): {', '.join(sorted(unknown))}")
    state = body.get("state")
    if state is not None and state not in REPORTED_STATES:
        raise InputError(f"state must be one of {', '.join(REPORTED_STATES)}")
    progress = body.get("progress")
    if progress is not None and (not isinstance(progress, int | float) or isinstance(progress, bool)
                                 or not 0 <= progress <= 100):
        raise InputError("progress must be a number from 0 to 100")
    lines = body.get("log", [])
    lines = [lines] if isinstance(lines, str) else lines
    if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
        raise InputError("log must be a string or a list of strings")
    if len(lines) > MAX_LOG_LINES or any(len(x) > MAX_LINE for x in lines):
        raise InputError(f"log: at most {MAX_LOG_LINES} lines of {MAX_LINE} characters")
    metrics = body.get("validation_metrics", {})
    if not isinstance(metrics, dict) or not all(
            isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool)
            and math.isfinite(v) for k, v in metrics.items()):
        raise InputError("validation_metrics must map names to finite numbers")
    return {"state": state, "progress": progress, "log": lines, "metrics": metrics,
            "message": str(body.get("message", ""))[:MAX_LINE]}


def report_event(ctx: JobContext, job_id: str, body: Any) -> UpdateJob:
    """Apply one progress report from the pipeline; no backwards moves, no moves after the end."""
    report = _validate_report(body)
    now = ctx.clock()
    finish_now = False
    with ctx.store.write() as conn:
        job = get_in(conn, job_id)
        if not job.active:
            raise TransitionError(f"job {job_id} is already {job.state}")
        state = report["state"]
        if state is not None and state not in ("failed",) and \
                STATES.index(state) < STATES.index(job.state):
            raise TransitionError(f"job {job_id} cannot move back from {job.state} to {state}")
        if report["progress"] is not None and report["progress"] < job.progress:
            raise TransitionError(f"progress cannot go down ({job.progress:g} -> "
                                  f"{report['progress']:g})")
        metrics = {**job.validation, **report["metrics"]} if report["metrics"] else None
        update_in(conn, job_id, now, progress=report["progress"], validation=metrics,
                  state=state if state in ("training", "validating", "deploying") else None)
        lines = [f"pipeline: {line}" for line in report["log"]]
        if state:
            lines.append(f"pipeline reported {state}" + (f": {report['message']}"
                                                          if report["message"] else ""))
        if lines:
            log_in(conn, job_id, now, *lines)
        if state == "failed":
            _fail(ctx, conn, get_in(conn, job_id),
                  f"pipeline reported failure: {report['message'] or 'no message'}", now)
        finish_now = state == "completed"
    if finish_now:
        finish(ctx, job_id, "the pipeline reported completion")
    with ctx.store.read() as conn:
        return get_in(conn, job_id)


def update_targets(ctx: JobContext) -> dict[ModelRef, UpdateJob]:
    """The newest update job for each target version (discovery asks: an active job's target is
    the gate's to register; a failed job's target must not become production on its own)."""
    targets: dict[ModelRef, UpdateJob] = {}
    for job in list_jobs(ctx.store):  # oldest first: the newest job wins
        targets[ModelRef(job.ref.name, job.target_version)] = job
    return targets
