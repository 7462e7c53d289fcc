"""Action commands: update jobs, webhooks and retirement."""

from __future__ import annotations

import argparse
import json
from typing import Any

from lifecycled.cli.output import EXIT_OK, EXIT_PROBLEM, Formatter, add_actor, show
from lifecycled.domain import UPDATE_JOB_STATES, ModelRef
from lifecycled.errors import InputError
from lifecycled.render import table, utc

# --- jobs ---------------------------------------------------------------------------------------


def cmd_jobs_list(args: argparse.Namespace) -> int:
    from lifecycled import app
    from lifecycled.store.updates import list_jobs

    with app.opened(args.config, create=False) as a:
        jobs = list_jobs(a.store, state=args.state)
    show(args, {"jobs": [j.to_json() for j in jobs]}, lambda: table(
        ["ID", "MODEL", "TARGET", "STATE", "PROGRESS", "TRIGGER", "CREATED"],
        [[j.id, str(j.ref), j.target_version, j.state, f"{j.progress:.0f}%", j.trigger_type,
          utc(j.created_at)] for j in jobs]) if jobs else "no update jobs")
    return EXIT_OK


def _job_text(job: dict[str, Any]) -> str:
    rows = [("job", job["id"]), ("model", f"{job['model']}:{job['version']}"),
            ("target version", job["target_version"]), ("state", job["state"]),
            ("progress", f"{job['progress']:.0f}%"), ("trigger", job["trigger_type"]),
            ("trigger detail", json.dumps(job["trigger"], sort_keys=True)),
            ("created", utc(job["created_at"])),
            ("finished", utc(job["finished_at"]) if job["finished_at"] else "-"),
            ("validation", json.dumps(job["validation"], sort_keys=True) or "-"),
            ("reason", job["reason"] or "-")]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
    lines += ["", "last log lines:"]
    lines += [f"  {utc(entry['at'])}  {entry['line']}" for entry in job["log"][-10:]]
    return "\n".join(lines)


def cmd_jobs_show(args: argparse.Namespace) -> int:
    from lifecycled import app
    from lifecycled.store.updates import get

    with app.opened(args.config, create=False) as a:
        job = get(a.store, args.id).to_json()
    show(args, job, lambda: _job_text(job))
    return EXIT_OK


def cmd_jobs_create(args: argparse.Namespace) -> int:
    from lifecycled import app
    from lifecycled.actions.updates import manual_job
    from lifecycled.store.updates import get

    ref = ModelRef.parse(args.model)
    with app.opened(args.config) as a:
        job_id = manual_job(a.context(), ref, args.reason, args.actor)
        job = get(a.store, job_id).to_json()
    show(args, job, lambda: f"created {job_id}: {ref} -> {job['target_version']} (dispatched)")
    return EXIT_OK


def cmd_jobs_cancel(args: argparse.Namespace) -> int:
    from lifecycled import app
    from lifecycled.actions.updates import cancel_job

    with app.opened(args.config) as a:
        job = cancel_job(a.context(), args.id, args.actor).to_json()
    show(args, job, lambda: f"cancelled {args.id}")
    return EXIT_OK


# --- webhooks -----------------------------------------------------------------------------------


def cmd_webhooks_list(args: argparse.Namespace) -> int:
    from lifecycled import app
    from lifecycled.store.outbox import endpoint_summaries

    with app.opened(args.config, create=False) as a:
        configured = a.settings.webhooks
        summaries = endpoint_summaries(a.store, list(configured))
    payload: dict[str, list[dict[str, Any]]] = {"endpoints": [{
        "endpoint": s.endpoint, "url": configured[s.endpoint].url if s.endpoint in configured
        else None, "events": list(configured[s.endpoint].events) if s.endpoint in configured
        else [], "pending": s.pending, "dead_letters": s.dead, "delivered": s.delivered,
        "disabled": s.disabled, "disabled_reason": s.disabled_reason,
        "last_success": s.last_success} for s in summaries]}
    show(args, payload, lambda: table(
        ["ENDPOINT", "URL", "PENDING", "DEAD", "DELIVERED", "LAST SUCCESS", "DISABLED"],
        [[e["endpoint"], e["url"] or "(not configured)", e["pending"], e["dead_letters"],
          e["delivered"], utc(e["last_success"]) if e["last_success"] else "-",
          e["disabled_reason"] or "no"] for e in payload["endpoints"]])
        if payload["endpoints"] else "no webhook endpoints configured")
    return EXIT_OK


def cmd_webhooks_dead_letters(args: argparse.Namespace) -> int:
    from lifecycled import app
    from lifecycled.store.outbox import DEAD, deliveries

    with app.opened(args.config, create=False) as a:
        dead = deliveries(a.store, state=DEAD)
    show(args, {"dead_letters": [d.to_json() for d in dead]}, lambda: table(
        ["EVENT", "ENDPOINT", "TYPE", "ATTEMPTS", "LAST ERROR", "CREATED"],
        [[d.event_id, d.endpoint, d.event_type, d.attempts, d.last_error, utc(d.created_at)]
         for d in dead]) if dead else "no dead letters")
    return EXIT_OK


def cmd_webhooks_redeliver(args: argparse.Namespace) -> int:
    from lifecycled import app
    from lifecycled.store.outbox import redeliver

    if not args.all_dead and not args.event_id:
        raise InputError("give an EVENT_ID or --all-dead")
    with app.opened(args.config) as a:
        count = redeliver(a.store, event_id=args.event_id, all_dead=args.all_dead,
                          now=a.context().clock())
    if count == 0:
        raise InputError(f"no dead letter {args.event_id}" if args.event_id else "no dead letters")
    show(args, {"queued": count},
         lambda: f"{count} delivery(ies) queued again; the deliver task sends them")
    return EXIT_OK


def cmd_webhooks_enable(args: argparse.Namespace) -> int:
    """Send to an endpoint disabled by 410 Gone again (after its receiver was fixed)."""
    from lifecycled import app
    from lifecycled.store.outbox import enable_endpoint, endpoint_summaries

    with app.opened(args.config) as a:
        if args.endpoint not in a.settings.webhooks:
            raise InputError(f"no webhook endpoint {args.endpoint}; configured: "
                             f"{', '.join(a.settings.webhooks) or 'none'}")
        enable_endpoint(a.store, args.endpoint)
        (summary,) = endpoint_summaries(a.store, [args.endpoint])
    show(args, {"endpoint": args.endpoint, "disabled": summary.disabled,
                "pending": summary.pending},
         lambda: f"{args.endpoint}: enabled; {summary.pending} pending event(s) go out with the "
                 "next deliver pass")
    return EXIT_OK


def cmd_webhooks_test(args: argparse.Namespace) -> int:
    """Send a signed ``ping`` to one endpoint now (not through the outbox)."""
    from lifecycled import app
    from lifecycled.actions.webhooks import endpoint_key, ping

    with app.opened(args.config) as a:
        endpoint = a.settings.webhooks.get(args.endpoint)
        if endpoint is None:
            raise InputError(f"no webhook endpoint {args.endpoint}; configured: "
                             f"{', '.join(a.settings.webhooks) or 'none'}")
        ctx = a.context()
        status, error = ping(ctx.session, args.endpoint, endpoint,
                             endpoint_key(ctx, args.endpoint, endpoint), ctx.clock())
    payload = {"endpoint": args.endpoint, "status": status, "ok": not error, "error": error}
    show(args, payload, lambda: f"{args.endpoint}: failed: {error}" if status is None else
         f"{args.endpoint}: HTTP {status} ({'not accepted' if error else 'ok'})")
    return EXIT_PROBLEM if error else EXIT_OK


def add_parsers(sub: Any, common: argparse.ArgumentParser, as_json: argparse.ArgumentParser
                ) -> None:
    parents = [common, as_json]
    jobs = sub.add_parser("jobs", help="model update jobs").add_subparsers(
        dest="jobs_command", required=True, metavar="SUBCOMMAND")
    p = jobs.add_parser("list", parents=parents, formatter_class=Formatter,
                        help="list update jobs")
    p.add_argument("--state", choices=UPDATE_JOB_STATES, help="only jobs in this state")
    p.set_defaults(func=cmd_jobs_list)
    p = jobs.add_parser("show", parents=parents, formatter_class=Formatter,
                        help="one job in detail")
    p.add_argument("id", help="the job id")
    p.set_defaults(func=cmd_jobs_show)
    p = jobs.add_parser("create", parents=parents, formatter_class=Formatter,
                        help="request an update now")
    p.add_argument("model", metavar="NAME:VERSION", help="the model version to update")
    p.add_argument("--reason", required=True, help="why (kept in the job and its event)")
    add_actor(p)
    p.set_defaults(func=cmd_jobs_create)
    p = jobs.add_parser("cancel", parents=parents, formatter_class=Formatter,
                        help="cancel a pending or dispatched job")
    p.add_argument("id", help="the job id")
    add_actor(p)
    p.set_defaults(func=cmd_jobs_cancel)

    hooks = sub.add_parser("webhooks", help="webhook endpoints and the outbox").add_subparsers(
        dest="webhooks_command", required=True, metavar="SUBCOMMAND")
    p = hooks.add_parser("list", parents=parents, formatter_class=Formatter,
                         help="endpoints, pending, dead letters, last success")
    p.set_defaults(func=cmd_webhooks_list)
    p = hooks.add_parser("dead-letters", parents=parents, formatter_class=Formatter,
                         help="undeliverable events")
    p.set_defaults(func=cmd_webhooks_dead_letters)
    p = hooks.add_parser("redeliver", parents=parents, formatter_class=Formatter,
                         help="queue dead letters again")
    p.add_argument("event_id", nargs="?", metavar="EVENT_ID", help="one dead letter")
    p.add_argument("--all-dead", action="store_true", help="every dead letter")
    p.set_defaults(func=cmd_webhooks_redeliver)
    p = hooks.add_parser("enable", parents=parents, formatter_class=Formatter,
                         help="send again to an endpoint disabled by 410 Gone")
    p.add_argument("endpoint", metavar="ENDPOINT", help="the configured endpoint's name")
    p.set_defaults(func=cmd_webhooks_enable)
    p = hooks.add_parser("test", parents=parents, formatter_class=Formatter,
                         help="send a signed ping to an endpoint")
    p.add_argument("endpoint", metavar="ENDPOINT", help="the configured endpoint's name")
    p.set_defaults(func=cmd_webhooks_test)
    add_retire_parser(sub, common, as_json)



def retire_shorthand(argv: list[str]) -> list[str]:
    """``retire NAME:VERSION ...`` is short for ``retire version NAME:VERSION ...``."""
    if argv[:1] == ["retire"] and len(argv) > 1 and not argv[1].startswith("-") \
            and argv[1] not in RETIRE_SUBCOMMANDS:
        return ["retire", "version", *argv[1:]]
    return argv


def cmd_retire(args: argparse.Namespace) -> int:
    """``retire version NAME:VERSION --reason TEXT [--dry-run]``."""
    from lifecycled import app
    ref = ModelRef.parse(args.model)
    from lifecycled.actions.retire import preview, retire

    with app.opened(args.config) as a:
        ctx = a.context()
        if args.dry_run:
            plan = preview(ctx, ref)
            show(args, plan, lambda: "\n".join(
                [f"would retire {ref} (now {plan['status']})"]
                + [f"  blocked by: {', '.join(plan['blocked_by'])}"] * bool(plan["blocked_by"])
                + ["  not retirable from this status"] * (not plan["retirable"])
                + [f"  {n}. {step}" for n, step in enumerate(plan["steps"], start=1)]
                + [f"  {e['endpoint']}: {e['how']}" for e in plan["endpoints"]]))
            return EXIT_OK
        if not args.reason:
            raise InputError("a retirement needs --reason")
        result = retire(ctx, ref, reason=args.reason, actor=args.actor).to_json()
    show(args, result, lambda: _plan_text(result))
    return EXIT_OK if result["state"] == "completed" else EXIT_PROBLEM


def _plan_text(plan: dict[str, Any]) -> str:
    lines = [f"retirement of {plan['model']}:{plan['version']}: {plan['state']}"
             + (f" ({plan['error']})" if plan["error"] else "")]
    lines += [f"  {s['name']:<13} {s['state']:<8} {s['detail']}" for s in plan["steps"]]
    if plan["state"] == "failed":
        lines.append("  run the same command again to retry from the failed step")
    elif plan["state"] == "running":
        lines.append("  another process is running it; `lifecycled retire status` follows it")
    elif plan["state"] == "waiting_for_unload":
        lines.append("  the daemon goes on once discovery sees Triton no longer serving it "
                     "(or run the same command again; `lifecycled retire cancel` ends it)")
    return "\n".join(lines)


def cmd_retire_status(args: argparse.Namespace) -> int:
    from lifecycled import app
    from lifecycled.errors import NotFoundError
    from lifecycled.store.retirement import latest_plan

    ref = ModelRef.parse(args.model)
    with app.opened(args.config, create=False) as a:
        a.store.get(ref)
        plan = latest_plan(a.store, ref)
    if plan is None:
        raise NotFoundError(f"no retirement plan for {ref}")
    data = plan.to_json()
    show(args, data, lambda: _plan_text(data))
    return EXIT_OK


def cmd_retire_candidates(args: argparse.Namespace) -> int:
    import time

    from lifecycled import app
    from lifecycled.store.retirement import scores

    now = time.time()
    with app.opened(args.config, create=False) as a:
        records = {r.ref: r for r in a.store.list_models()}
        known = scores(a.store)
    rows = sorted(((ref, s) for ref, s in known.items() if ref in records),
                  key=lambda item: -item[1]["score"])
    payload = {"candidates": [{
        "model": ref.name, "version": ref.version, "score": s["score"],
        "candidate": s["candidate"], "reasons": s["reasons"],
        "status": records[ref].status.value,
        "age_days": (now - records[ref].registered_at) / 86400, "scored_at": s["at"],
        "components": s["components"]} for ref, s in rows]}
    show(args, payload, lambda: table(
        ["MODEL", "SCORE", "CANDIDATE", "STATUS", "AGE (DAYS)", "REASONS"],
        [[f"{c['model']}:{c['version']}", f"{c['score']:.2f}", "yes" if c["candidate"] else "no",
          c["status"], f"{c['age_days']:.0f}", "; ".join(c["reasons"]) or "-"]
         for c in payload["candidates"]]) if rows else
        "no retirement scores yet (the retirement job computes them)")
    return EXIT_OK


def cmd_retire_cancel(args: argparse.Namespace) -> int:
    from lifecycled import app
    from lifecycled.actions.retire import cancel

    ref = ModelRef.parse(args.model)
    with app.opened(args.config) as a:
        result = cancel(a.context(), ref, reason=args.reason, actor=args.actor).to_json()
    show(args, result, lambda: _plan_text(result))
    return EXIT_OK


RETIRE_SUBCOMMANDS = ("cancel", "candidates", "status", "version")


def add_retire_parser(sub: Any, common: argparse.ArgumentParser,
                      as_json: argparse.ArgumentParser) -> None:
    retire = sub.add_parser("retire", formatter_class=Formatter,
                            help="retirement: candidates | status NAME:VERSION | NAME:VERSION",
                            description="``retire NAME:VERSION`` is short for "
                                        "``retire version NAME:VERSION``.")
    words = retire.add_subparsers(dest="retire_command", required=True, metavar="SUBCOMMAND")
    p = words.add_parser("candidates", parents=[common, as_json], formatter_class=Formatter,
                         help="retirement scores, reasons, status and age, worst first")
    p.set_defaults(func=cmd_retire_candidates)
    p = words.add_parser("status", parents=[common, as_json], formatter_class=Formatter,
                         help="the latest retirement plan of a version and each step's outcome")
    p.add_argument("model", metavar="NAME:VERSION", help="the model version")
    p.set_defaults(func=cmd_retire_status)
    p = words.add_parser("cancel", parents=[common, as_json], formatter_class=Formatter,
                         help="end an unfinished retirement (waiting, failed or stopped); what "
                              "was done stays recorded")
    p.add_argument("model", metavar="NAME:VERSION", help="the model version")
    p.add_argument("--reason", required=True, help="why")
    add_actor(p)
    p.set_defaults(func=cmd_retire_cancel)
    p = words.add_parser("version", parents=[common, as_json], formatter_class=Formatter,
                         help="retire a version: stop traffic, back up, record every step")
    p.add_argument("model", metavar="NAME:VERSION", help="the model version to retire")
    p.add_argument("--reason", help="why (required unless --dry-run)")
    add_actor(p)
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan and what blocks it; change nothing")
    p.set_defaults(func=cmd_retire)
