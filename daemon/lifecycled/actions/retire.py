"""Retiring a model version safely, as a plan of recorded, idempotent steps that resumes where it
stopped: stop traffic, back up, set retired, clean up, notify."""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lifecycled.actions.backup import stamp, verify_backup, write_backup
from lifecycled.context import Context
from lifecycled.domain import ModelRef, Status
from lifecycled.errors import ActionError, InputError, SourceError, TransitionError
from lifecycled.settings import TritonEndpoint
from lifecycled.store.retirement import (
    Plan,
    cancel_plan_in,
    claim,
    create_plan_in,
    export_version,
    get_plan_in,
    holder_in,
    latest_plan_in,
    mark_step_in,
    prune_version_in,
    release,
    resume_waiting_in,
    retry_plan_in,
)

log = logging.getLogger(__name__)
RETIRABLE = (Status.PRODUCTION, Status.DEPRECATED, Status.FAILED)


def backup_root(ctx: Context) -> Path:
    configured = Path(ctx.settings.policies.retirement.backup_dir)
    return configured if configured.is_absolute() else ctx.state_dir / configured


def blocking_dependents(ctx: Context, ref: ModelRef) -> list[str]:
    """Registered, non-retired versions that depend on ``ref``: a dependency ``name`` needs some
    version of the model to stay; ``name:version`` needs that version."""
    live = [r for r in ctx.store.list_models() if r.status != Status.RETIRED and r.ref != ref]
    another = any(r.ref.name == ref.name for r in live)
    return sorted(str(r.ref) for r in live for dep in r.spec.dependencies
                  if dep == str(ref) or (dep == ref.name and not another))


def preview(ctx: Context, ref: ModelRef) -> dict[str, Any]:
    """What ``retire`` would do (for --dry-run): nothing is changed."""
    record = ctx.store.get(ref)
    heard = ctx.store.subscribers("model.unload_requested")
    endpoints = [{"endpoint": e.name, "how": "unload through Triton's model-control API"
                  if local_control(ctx, e) else
                  f"model.unload_requested webhook to {', '.join(heard)}" if heard else
                  "refused where it serves the version: no model control and no webhook "
                  "endpoint subscribes to model.unload_requested"}
                 for e in ctx.settings.sources.triton]
    return {"model": str(ref), "status": record.status.value,
            "blocked_by": blocking_dependents(ctx, ref),
            "retirable": record.status in RETIRABLE,
            "steps": ["stop traffic on every endpoint that serves it", f"back up to "
                      f"{backup_root(ctx) / ref.name / ref.version}/<time>",
                      "set status retired", "prune snapshots and results after verifying the "
                      "backup", "notify (model.retired)"],
            "endpoints": endpoints}


def local_control(ctx: Context, endpoint: TritonEndpoint) -> bool:
    """Whether lifecycled itself may unload from ``endpoint``."""
    return endpoint.allow_model_control and ctx.settings.policies.retirement.unload_from_triton


def unheard_endpoints(ctx: Context, ref: ModelRef) -> list[str]:
    """Endpoints that serve ``ref`` where only the owning pipeline could stop it, while no
    webhook endpoint would tell that pipeline (empty when the retirement can go on)."""
    if ctx.store.subscribers("model.unload_requested"):
        return []
    serving = []
    for endpoint in ctx.settings.sources.triton:
        if local_control(ctx, endpoint):
            continue
        with ctx.triton(endpoint) as client:
            if any(e.name == ref.name and e.version == ref.version
                   and e.state in ("READY", "LOADING") for e in client.index()):
                serving.append(endpoint.name)
    return serving


def cancel(ctx: Context, ref: ModelRef, *, reason: str, actor: str) -> Plan:
    """End the unfinished retirement of ``ref`` (waiting for an unload, failed, or stopped while
    running); refused once the version is retired. Nothing done is undone."""
    if not reason.strip():
        raise InputError("a cancellation needs a reason")
    with ctx.store.write() as conn:
        plan = latest_plan_in(conn, ref)
        if plan is None or plan.state in ("completed", "cancelled"):
            raise InputError(f"{ref} has no unfinished retirement to cancel")
        if _step(plan, "set_retired")["state"] == "done":
            raise InputError(f"{ref} is already retired: the rest of its plan only cleans up; "
                             "run `lifecycled retire` again to finish it")
        holder, until = holder_in(conn, plan.id)
        if plan.state == "running" and holder is not None and until >= ctx.clock() \
                and runner_alive(holder):
            raise InputError(f"the retirement of {ref} is running in another process now; "
                             "cancel it once that step ends")
        return cancel_plan_in(conn, plan, f"cancelled by {actor}: {reason}", ctx.clock())


def retire(ctx: Context, ref: ModelRef, *, reason: str, actor: str) -> Plan:
    """Start (or resume, or retry) the retirement of ``ref`` and run it as far as it goes."""
    if not reason.strip():
        raise InputError("a retirement needs a reason")
    now = ctx.clock()
    blockers = blocking_dependents(ctx, ref)
    with ctx.store.write() as conn:
        record = ctx.store.get_in(conn, ref)
        plan = latest_plan_in(conn, ref)
    if plan is None or plan.state in ("failed", "completed", "cancelled"):
        unheard = unheard_endpoints(ctx, ref) \
            if plan is None or _step(plan, "stop_traffic")["state"] != "done" else []
        if unheard:
            raise InputError(
                f"cannot retire {ref}: {', '.join(unheard)} serve(s) it without model control "
                "(sources.triton[].allow_model_control) and no webhook endpoint subscribes to "
                "model.unload_requested, so nobody would stop its traffic; subscribe the "
                "owning pipeline in a webhooks.NAME.events list")
    with ctx.store.write() as conn:
        record = ctx.store.get_in(conn, ref)
        plan = latest_plan_in(conn, ref)
        if plan is not None and plan.state == "failed":
            plan = retry_plan_in(conn, plan, now)
        elif plan is None or plan.state in ("completed", "cancelled"):
            if record.status == Status.RETIRED:
                raise InputError(f"{ref} is already retired")
            if record.status not in RETIRABLE:
                raise TransitionError(
                    f"cannot retire {ref} from {record.status.value}: only production, "
                    "deprecated or failed versions are retired")
            if blockers:
                raise InputError(f"cannot retire {ref}: {', '.join(blockers)} depend(s) on it")
            plan = create_plan_in(conn, ref, actor, reason, now)
    return run_plan(ctx, plan)


LEASE_SECONDS = 120.0


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return "?"


def runner_token() -> str:
    """Who runs a plan: host, PID namespace and process id, and a random part."""
    return f"{socket.gethostname()}|{_pid_namespace()}|{os.getpid()}|{uuid.uuid4().hex[:8]}"


def runner_alive(token: str) -> bool:
    """False only when the runner is certainly gone: same host and PID namespace, and no process
    with its id. Anything else (another host, an old token, a reused id) waits for the lease."""
    parts = token.split("|")
    if len(parts) != 4 or parts[0] != socket.gethostname() or parts[1] != _pid_namespace() \
            or parts[1] == "?":
        return True
    try:
        os.kill(int(parts[2]), 0)
    except ProcessLookupError:
        return False
    except (OSError, ValueError):
        return True
    return True


def run_plan(ctx: Context, plan: Plan) -> Plan:
    """Run the remaining steps; a failure stops the plan with the error (retry resumes it).

    One runner at a time (the daemon's job and a CLI call may both try): each step is run under
    a lease on the plan, so no step is done twice. A runner that died loses its lease when it
    runs out, or at once when it died on this host (killed, say)."""
    owner = runner_token()
    if plan.state == "waiting_for_unload":
        with ctx.store.write() as conn:
            plan = resume_waiting_in(conn, plan, ctx.clock())
    try:
        while (step := plan.next_step()) is not None and plan.state == "running":
            if not claim(ctx.store, plan.id, owner, ctx.clock(), LEASE_SECONDS, runner_alive):
                log.info("retirement plan is being run elsewhere plan=%s", plan.id)
                break
            with ctx.store.read() as conn:
                plan = get_plan_in(conn, plan.id)  # what the previous holder finished
            step = plan.next_step()
            if step is None or plan.state != "running":
                break
            try:
                plan = STEPS[step["name"]](ctx, plan)
            except (SourceError, ActionError, TransitionError, InputError) as exc:
                with ctx.store.write() as conn:
                    plan = mark_step_in(conn, plan, step["name"], "failed", str(exc),
                                        ctx.clock())
                log.error("retirement step failed model=%s step=%s error=%s", plan.ref,
                          step["name"], exc)
                break
            log.info("retirement step %s model=%s step=%s", _step(plan, step["name"])["state"],
                     plan.ref, step["name"])
    finally:
        release(ctx.store, plan.id, owner)
    with ctx.store.read() as conn:
        return get_plan_in(conn, plan.id)


def _stop_traffic(ctx: Context, plan: Plan) -> Plan:
    """Unload the version where lifecycled has model control; elsewhere ask the owning pipeline
    (model.unload_requested, once) and wait: the step is done only when no endpoint serves it."""
    ref = plan.ref
    asked_before = _step(plan, "stop_traffic")["state"] == "waiting"
    done: list[str] = []
    asked: list[str] = []
    for endpoint in ctx.settings.sources.triton:
        with ctx.triton(endpoint) as client:
            ready = {e.version for e in client.index() if e.name == ref.name
                     and e.version is not None and e.state in ("READY", "LOADING")}
            if ref.version not in ready:
                done.append(f"{endpoint.name}: not serving it")
                continue
            if not local_control(ctx, endpoint):
                if not asked_before:
                    with ctx.store.write() as conn:
                        ctx.store.emit_in(conn, "model.unload_requested", ref, {
                            "endpoint": endpoint.name, "plan_id": plan.id,
                            "reason": plan.reason}, ctx.clock())
                asked.append(endpoint.name)
                continue
            others = sorted(ready - {ref.version}, key=lambda v: (len(v), v))
            if others:  # keep the other versions: reload with an explicit version policy
                config = client.raw_config(ref.name)
                config["version_policy"] = {"specific": {"versions": [int(v) for v in others]}}
                client.load(ref.name, config=json.dumps(config))
                done.append(f"{endpoint.name}: reloaded with versions {', '.join(others)} only")
            else:
                client.unload(ref.name)
                done.append(f"{endpoint.name}: unloaded")
    if asked:
        with ctx.store.write() as conn:
            return mark_step_in(
                conn, get_plan_in(conn, plan.id), "stop_traffic", "waiting",
                f"asked the owning pipeline to stop serving it (model.unload_requested) on "
                f"{', '.join(asked)}; waiting until Triton no longer serves it", ctx.clock())
    return _done(ctx, plan, "stop_traffic", "; ".join(done) or "no Triton endpoint configured")


def _backup(ctx: Context, plan: Plan) -> Plan:
    directory = backup_root(ctx) / plan.ref.name / plan.ref.version / stamp(plan.created_at)
    if (directory / "manifest.json").exists():
        verify_backup(directory)  # an earlier run finished it: nothing to redo
    else:
        data = export_version(ctx.store, plan.ref)
        write_backup(directory, data, created_at=ctx.clock(),
                     about={"model": plan.ref.name, "version": plan.ref.version,
                            "plan_id": plan.id, "reason": plan.reason})
    return _done(ctx, plan, "backup", str(directory))


def _set_retired(ctx: Context, plan: Plan) -> Plan:
    now = ctx.clock()
    with ctx.store.write() as conn:
        status = ctx.store.get_in(conn, plan.ref).status
        evidence = {"plan_id": plan.id, "backup": _step(plan, "backup")["detail"]}
        if status == Status.PRODUCTION:
            ctx.store.set_status_in(conn, plan.ref, Status.DEPRECATED, actor=plan.actor,
                                    reason=f"retiring: {plan.reason}", evidence=evidence, now=now)
            status = Status.DEPRECATED
        if status != Status.RETIRED:
            ctx.store.set_status_in(conn, plan.ref, Status.RETIRED, actor=plan.actor,
                                    reason=plan.reason, evidence=evidence, now=now)
        return mark_step_in(conn, plan, "set_retired", "done", "status retired", now)


def _cleanup(ctx: Context, plan: Plan) -> Plan:
    verify_backup(Path(_step(plan, "backup")["detail"]))
    with ctx.store.write() as conn:
        removed = prune_version_in(conn, plan.ref)
        return mark_step_in(conn, plan, "cleanup", "done", f"{removed} rows pruned", ctx.clock())


def _notify(ctx: Context, plan: Plan) -> Plan:
    now = ctx.clock()
    with ctx.store.write() as conn:
        ctx.store.emit_in(conn, "model.retired", plan.ref, {
            "reason": plan.reason, "actor": plan.actor, "plan_id": plan.id,
            "backup": _step(plan, "backup")["detail"],
            "stop_traffic": _step(plan, "stop_traffic")["detail"]}, now)
        return mark_step_in(conn, plan, "notify", "done", "model.retired written", now)


def _step(plan: Plan, name: str) -> dict[str, Any]:
    return next(s for s in plan.steps if s["name"] == name)


def _done(ctx: Context, plan: Plan, step: str, detail: str) -> Plan:
    with ctx.store.write() as conn:
        return mark_step_in(conn, get_plan_in(conn, plan.id), step, "done", detail, ctx.clock())


STEPS: dict[str, Callable[[Context, Plan], Plan]] = {
    "stop_traffic": _stop_traffic,
    "backup": _backup,
    "set_retired": _set_retired,
    "cleanup": _cleanup,
    "notify": _notify,
}
