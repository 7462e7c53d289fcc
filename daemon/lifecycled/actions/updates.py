"""Update jobs, the action part: create and dispatch a job (``model.update_requested``), cancel
it, apply the pipeline's progress reports, and run the validation gate that promotes the new
version along the lifecycle graph (and deprecates the old one) or fails the job; or, with
``policies.updates.compare``, opens a champion/challenger comparison whose decision
(``actions.compare``) ends the job."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import replace

from lifecycled.api import JobEvent
from lifecycled.context import Context
from lifecycled.core.compare import ComparePolicy, Evidence, FailureEvidence
from lifecycled.core.lifecycle import next_version, promotion_path
from lifecycled.core.triggers import Trigger
from lifecycled.core.updates import describe, gate
from lifecycled.domain import HistoryKind, JobState, ModelRef, Status
from lifecycled.errors import InputError, NotFoundError, TransitionError
from lifecycled.store.comparisons import open_in
from lifecycled.store.core import Connection
from lifecycled.store.updates import (
    UpdateJob,
    active_for_in,
    create_in,
    get_in,
    log_in,
    update_in,
)

log = logging.getLogger(__name__)


def callback_url(ctx: Context, job_id: str) -> str:
    base = ctx.settings.daemon.public_url or f"http://{ctx.settings.daemon.listen}"
    return f"{base.rstrip('/')}/api/v1/jobs/{job_id}/events"


def create_job(ctx: Context, conn: Connection, ref: ModelRef, trigger: Trigger,
               now: float) -> str:
    """Create a job for ``ref`` and dispatch it (the event is written in the same transaction)."""
    target = next_version(ref.version)
    job_id = create_in(conn, ref, target, trigger.type, trigger.to_json(), "dispatched", now)
    log_in(conn, job_id, now, f"created by trigger {trigger.type}: {describe(trigger)}",
           "dispatched: model.update_requested written to the outbox")
    ctx.store.emit_in(conn, "model.update_requested", ref, {
        "job_id": job_id, "target_version": target, "trigger": trigger.to_json(),
        "callback_url": callback_url(ctx, job_id)}, now)
    return job_id


def no_builder(ctx: Context, ref: ModelRef) -> str | None:
    """Why an update job for ``ref`` would wait for nobody (None: a pipeline hears it)."""
    if ctx.store.subscribers("model.update_requested"):
        return None
    return (f"no webhook endpoint subscribes to model.update_requested, so nothing would build "
            f"{ref.name}:{next_version(ref.version)}; add it to a webhooks.NAME.events list")


def manual_job(ctx: Context, ref: ModelRef, reason: str, actor: str) -> str:
    """``jobs create``: refused while the model has an active job, or when no pipeline would hear
    of it; no cooldown (a person asked)."""
    now = ctx.clock()
    if (why := no_builder(ctx, ref)) is not None:
        raise InputError(f"cannot create an update job for {ref}: {why}")
    with ctx.store.write() as conn:
        if ctx.store.get_in(conn, ref).status == Status.RETIRED:
            raise InputError(f"{ref} is retired")
        active = active_for_in(conn, ref.name)
        if active is not None:
            raise InputError(f"{ref.name} already has an active update job {active.id} "
                             f"({active.state})")
        return create_job(ctx, conn, ref, Trigger("manual", {"reason": reason, "actor": actor}),
                          now)


def cancel_job(ctx: Context, job_id: str, actor: str) -> UpdateJob:
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


def fail_in(ctx: Context, conn: Connection, job: UpdateJob, reason: str,
          now: float) -> None:
    update_in(conn, job.id, now, state="failed", reason=reason)
    log_in(conn, job.id, now, f"failed: {reason}")
    ctx.store.emit_in(conn, "model.update_failed", job.ref, {
        "job_id": job.id, "target_version": job.target_version, "reason": reason}, now)
    log.warning("update job failed job=%s model=%s reason=%s", job.id, job.ref, reason)


def finish(ctx: Context, job_id: str, why: str) -> str:
    """Run the validation gate; promote the target version or fail the job. Returns the state."""
    now = ctx.clock()
    policy = ctx.settings.policies.updates
    minimums = {"accuracy": policy.min_validation_accuracy, **policy.min_validation}
    with ctx.store.write() as conn:
        job = get_in(conn, job_id)
        if not job.active or job.state == "comparing":  # the comparison ends it
            return job.state
        problems = gate(job.validation, minimums)
        if problems:
            fail_in(ctx, conn, job, "; ".join(problems), now)
            return "failed"
        if policy.compare:
            _compare(ctx, conn, job, why, now)
            return "comparing"
        _promote(ctx, conn, job, why, now)
    if policy.load_in_triton:
        _load(ctx, job)
    return "completed"


def _register_target_in(ctx: Context, conn: Connection, job: UpdateJob, now: float) -> Status:
    """The job's new version in the registry (staging when it is new); its status."""
    target = ModelRef(job.ref.name, job.target_version)
    try:
        return ctx.store.get_in(conn, target).status
    except NotFoundError:
        old = ctx.store.get_in(conn, job.ref)
        spec = replace(old.spec, ref=target,
                       tags=tuple(dict.fromkeys((*old.spec.tags, "auto_updated"))))
        ctx.store.register_in(conn, spec, Status.STAGING, actor="updates",
                              reason=f"built by update job {job.id}", now=now)
        return Status.STAGING


def _compare(ctx: Context, conn: Connection, job: UpdateJob, why: str, now: float) -> None:
    """Past the gate, with ``policies.updates.compare``: the new version is judged on live
    traffic beside the production one; the comparison's decision ends the job."""
    _register_target_in(ctx, conn, job, now)
    target = ModelRef(job.ref.name, job.target_version)
    comparison_id = open_comparison_in(ctx, conn, job.ref, target, actor="updates",
                                       reason=f"update job {job.id} passed its validation gate",
                                       now=now, job_id=job.id)
    update_in(conn, job.id, now, state="comparing")
    log_in(conn, job.id, now, f"validation passed ({why}); {target} compared with {job.ref} on "
                              f"live traffic (comparison {comparison_id}) before promotion")


def _promote(ctx: Context, conn: Connection, job: UpdateJob, why: str,
             now: float) -> None:
    store = ctx.store
    old = store.get_in(conn, job.ref)
    target = ModelRef(job.ref.name, job.target_version)
    evidence = {"job_id": job.id, "validation": dict(job.validation)}
    current = _register_target_in(ctx, conn, job, now)
    for step in promotion_path(current, Status.PRODUCTION):
        store.set_status_in(conn, target, step, actor="updates",
                            reason=f"promoted by update job {job.id}: validation passed",
                            evidence=evidence, now=now)
    if old.status == Status.PRODUCTION:
        store.set_status_in(conn, job.ref, Status.DEPRECATED, actor="updates",
                            reason=f"superseded by {job.target_version}", evidence=evidence,
                            now=now)
    complete_in(ctx, conn, job, f"validation passed ({why}); {target} promoted to production, "
                                f"{job.ref} deprecated", now)


def complete_in(ctx: Context, conn: Connection, job: UpdateJob, line: str, now: float) -> None:
    """The job's end once its version is promoted: completed, and model.update_completed."""
    target = ModelRef(job.ref.name, job.target_version)
    update_in(conn, job.id, now, state="completed", progress=100.0,
              reason=f"{target} promoted; {job.ref} deprecated")
    log_in(conn, job.id, now, line)
    ctx.store.emit_in(conn, "model.update_completed", job.ref, {
        "job_id": job.id, "target_version": job.target_version,
        "validation": dict(job.validation)}, now)
    log.info("update job completed job=%s promoted=%s", job.id, target)


def _load(ctx: Context, job: UpdateJob) -> None:
    for endpoint in ctx.settings.sources.triton:
        if not endpoint.allow_model_control:
            continue
        with ctx.source(f"triton:{endpoint.name}") as call, ctx.triton(endpoint) as client:
            client.load(job.ref.name)
        line = (f"could not load {job.ref.name} on {endpoint.name}: {call.error}" if call.failed
                else f"asked {endpoint.name} to load {job.ref.name}")
        with ctx.store.write() as conn:
            log_in(conn, job.id, ctx.clock(), line)


def apply_job_event(ctx: Context, job_id: str, event: JobEvent) -> UpdateJob:
    """Apply one progress report from the pipeline; no backwards moves, no moves after the end."""
    now = ctx.clock()
    finish_now = False
    with ctx.store.write() as conn:
        job = get_in(conn, job_id)
        if not job.active:
            raise TransitionError(f"job {job_id} is already {job.state}")
        state = event.state
        if state is not None and state != JobState.FAILED and \
                JobState(state).order < job.state.order:
            raise TransitionError(f"job {job_id} cannot move back from {job.state} to {state}")
        if event.progress is not None and event.progress < job.progress:
            raise TransitionError(f"progress cannot go down ({job.progress:g} -> "
                                  f"{event.progress:g})")
        metrics = ({**job.validation, **event.validation_metrics} if event.validation_metrics
                   else None)
        update_in(conn, job_id, now, progress=event.progress, validation=metrics,
                  state=state if state in ("training", "validating", "deploying") else None)
        lines = [f"pipeline: {line}" for line in event.log]
        if state:
            lines.append(f"pipeline reported {state}" + (f": {event.message}"
                                                          if event.message else ""))
        if lines:
            log_in(conn, job_id, now, *lines)
        if state == "failed":
            fail_in(ctx, conn, get_in(conn, job_id),
                    f"pipeline reported failure: {event.message or 'no message'}", now)
        finish_now = state == "completed"
    if finish_now:
        finish(ctx, job_id, "the pipeline reported completion")
    with ctx.store.read() as conn:
        return get_in(conn, job_id)


# --- comparisons: opened here (by hand or by a job), decided in actions.compare -------------


def policy_of(ctx: Context) -> ComparePolicy:
    return ctx.settings.policies.compare.policy()


def open_comparison_in(ctx: Context, conn: Connection, champion: ModelRef,
                       challenger: ModelRef, *, actor: str, reason: str, now: float,
                       job_id: str | None = None) -> str:
    """Open a comparison of two versions of one model: the champion in production, the
    challenger live beside it (developing, testing or staging)."""
    if champion.name != challenger.name or champion.version == challenger.version:
        raise InputError("compare two versions of the same model: NAME:CHAMPION NAME:CHALLENGER")
    if ctx.store.get_in(conn, champion).status != Status.PRODUCTION:
        raise InputError(f"the champion {champion} is not in production")
    status = ctx.store.get_in(conn, challenger).status
    if status not in (Status.DEVELOPING, Status.TESTING, Status.STAGING):
        raise InputError(f"the challenger {challenger} is {status.value}: it must be developing, "
                         "testing or staging")
    policy = policy_of(ctx)
    evidence = Evidence(FailureEvidence(policy.failure_margin)).to_json(policy)
    comparison_id = open_in(conn, champion, challenger, policy=dataclasses.asdict(policy),
                            evidence=evidence, actor=actor, reason=reason, now=now,
                            job_id=job_id)
    ctx.store.append_history_in(conn, challenger, HistoryKind.COMPARISON, status, status, actor,
                                f"compared with {champion} on live traffic: {reason}",
                                {"comparison_id": comparison_id, "champion": champion.version,
                                 "policy": dataclasses.asdict(policy)}, now)
    log.info("comparison opened id=%s champion=%s challenger=%s", comparison_id, champion,
             challenger)
    return comparison_id
