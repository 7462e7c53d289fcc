"""Registry commands: check-config, models list|show|register|set-status|history|sync-thresholds,
and run."""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lifecycled.cli.output import EXIT_OK, EXIT_PROBLEM, Formatter, add_actor, show
from lifecycled.domain import HistoryEntry, ModelRecord, ModelRef, Status
from lifecycled.errors import InputError
from lifecycled.render import fmt, table, utc


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate the configuration; compare it with the registry when the state store exists."""
    from lifecycled import app
    from lifecycled.registration import describe_difference, threshold_differences
    from lifecycled.store.engine import redact
    from lifecycled.tasks.probe import probe
    settings, path = app.load(args.config)
    notes = []
    if not settings.sources.triton and settings.sources.prometheus is None:
        notes.append("no sources configured: discovery and collection will have nothing to read")
    differences: list[dict[str, Any]] = []
    # a PostgreSQL store is connected to (an unreachable server or a wrong password is exit 1,
    # naming the cause); a SQLite file that does not exist yet is created by `run`
    store = app.existing_store(settings)
    state = {"url": redact(settings.daemon.state_url), "exists": store is not None}
    if store is not None:
        try:
            state["schema_version"] = store.schema_version()
            differences = threshold_differences(settings, store.list_models())
        finally:
            store.close()
    notes += [describe_difference(d) for d in differences]
    payload = {"config": str(path), "valid": True, "models": len(settings.models),
               "triton_endpoints": len(settings.sources.triton),
               "prometheus": settings.sources.prometheus is not None,
               "webhooks": len(settings.webhooks), "state": state,
               "threshold_differences": differences, "notes": notes}
    probes = probe(settings, os.environ) if args.probe else []
    if args.probe:
        payload["probes"] = [p.to_json() for p in probes]
    show(args, payload, lambda: "\n".join([
        f"{path}: configuration is valid",
        f"  models configured: {len(settings.models)}; Triton endpoints: "
        f"{len(settings.sources.triton)}; Prometheus: "
        f"{'yes' if settings.sources.prometheus else 'no'}; webhooks: {len(settings.webhooks)}",
        f"  state: {state['url']} "
        f"({'schema version ' + str(state['schema_version']) if store else 'not created yet'})",
        *(f"  note: {note}" for note in notes),
        *(f"  {'ok  ' if p.ok else 'FAIL'} {p.what}: {p.detail}" for p in probes)]))
    if any(not p.ok for p in probes):
        return EXIT_PROBLEM
    return EXIT_OK


def cmd_models_sync_thresholds(args: argparse.Namespace) -> int:
    """Store the configured thresholds in registered versions; each change is a history row."""
    from dataclasses import replace

    from lifecycled import app
    from lifecycled.registration import threshold_differences

    if bool(args.models) == bool(args.all):
        raise InputError("give NAME:VERSION ... or --all")
    with app.opened(args.config) as a:
        records = ([a.store.get(ModelRef.parse(m)) for m in args.models] if args.models
                   else a.store.list_models())
        differing = {d["model"] for d in threshold_differences(a.settings, records)}
        now, synced = time.time(), []
        for record in records:
            if str(record.ref) not in differing:
                continue
            spec = replace(record.spec, thresholds=a.settings.thresholds_for(
                record.ref.name, model_type=record.spec.model_type or None))
            a.store.register(spec, record.status, actor=args.actor, now=now,
                             reason=f"thresholds from the configuration: {args.reason}")
            synced.append(str(record.ref))
    show(args, {"synced": synced}, lambda: f"synced: {', '.join(synced)}" if synced
         else "every version already has the configured thresholds")
    return EXIT_OK


def cmd_models_list(args: argparse.Namespace) -> int:
    from lifecycled import app
    with app.opened(args.config, create=False) as ctx:
        records = ctx.store.list_models(status=Status(args.status) if args.status else None,
                                        domain=args.domain)
    show(args, {"models": [r.to_json() for r in records]}, lambda: table(
        ["MODEL", "VERSION", "STATUS", "OWNER", "DOMAIN", "TYPE", "UPDATED"],
        [[r.ref.name, r.ref.version, r.status, r.spec.owner_team, r.spec.business_domain,
          r.spec.model_type, utc(r.last_updated)] for r in records],
    ) if records else "no models registered")
    return EXIT_OK


def cmd_models_show(args: argparse.Namespace) -> int:
    from lifecycled import app
    from lifecycled.store.serving import serving_states, snapshots

    ref = ModelRef.parse(args.model)
    with app.opened(args.config, create=False) as ctx:
        record = ctx.store.get(ref)
        history = ctx.store.history(ref)
        states = serving_states(ctx.store, ref)
        latest = snapshots(ctx.store, ref, limit=1)
    payload = {"model": record.to_json(), "history": [h.to_json() for h in history],
               "serving": [s.to_json() for s in states],
               "latest_snapshot": latest[0].to_json() if latest else None}
    show(args, payload, lambda: _show_text(record, history, payload))
    return EXIT_OK


def _show_text(record: ModelRecord, history: list[HistoryEntry],
               payload: dict[str, Any]) -> str:
    spec = record.spec
    rows = [
        ("model", str(record.ref)), ("status", record.status.value),
        ("owner team", spec.owner_team), ("business domain", spec.business_domain),
        ("model type", spec.model_type), ("framework", spec.framework),
        ("description", spec.description), ("training dataset", spec.training_dataset),
        ("tags", ", ".join(spec.tags)), ("dependencies", ", ".join(spec.dependencies)),
        ("registered", utc(record.registered_at)), ("last updated", utc(record.last_updated)),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
    lines += ["", "thresholds:"]
    lines += [f"  {key} = {value:.10g}" for key, value in sorted(spec.thresholds.items())]
    lines += ["", "serving state:"]
    lines.append(table(["ENDPOINT", "STATE", "REASON", "SINCE"], [
        [s["endpoint"], s["state"], s["reason"], utc(s["since"])] for s in payload["serving"]])
        if payload["serving"] else "  not seen by discovery")
    snap = payload["latest_snapshot"]
    lines += ["", f"latest snapshot: {utc(snap['at']) if snap else 'none'}"]
    if snap:
        lines += [f"  {key} = {fmt(snap[key])}" for key in SNAPSHOT_FIELDS_SHOWN]
    lines += ["", "recent history:", _history_table(history[-5:])]
    return "\n".join(lines)


SNAPSHOT_FIELDS_SHOWN = (
    "requests_per_second", "inferences_per_second", "error_ratio", "latency_mean_seconds",
    "latency_p50_seconds", "latency_p95_seconds", "latency_p99_seconds", "pending_requests",
    "memory_bytes", "accuracy", "f1_ratio", "roc_auc")


def cmd_run(args: argparse.Namespace) -> int:
    from lifecycled import app
    return app.run_daemon(args.config, once=args.once, listen=args.listen,
                          web_config_file=args.web_config_file)


def _changes(entry: HistoryEntry) -> str:
    """A metadata update's changed fields, each as field: old -> new (shortened)."""
    changed = entry.evidence.get("changed")
    if not changed:
        return "-"

    def short(value: Any) -> str:
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        return text if len(text) <= 40 else text[:37] + "..."
    return "; ".join(f"{key}: {short(c['from'])} -> {short(c['to'])}"
                     for key, c in sorted(changed.items()))


def _history_table(history: Sequence[HistoryEntry]) -> str:
    return table(["WHEN", "KIND", "FROM", "TO", "ACTOR", "REASON", "CHANGES"], [
        [utc(h.at), h.kind, h.from_status or "-", h.to_status, h.actor, h.reason, _changes(h)]
        for h in history
    ])


def cmd_models_register(args: argparse.Namespace) -> int:
    from lifecycled import app
    from lifecycled.config import read_yaml
    from lifecycled.registration import build_spec, merge_with_stored, parse_registrations
    path = Path(args.file)
    entries = parse_registrations(read_yaml(path), source=str(path))
    outcome: dict[str, list[str]] = {"registered": [], "updated": [], "unchanged": []}
    with app.opened(args.config) as ctx:
        stored = {r.ref: r.spec for r in ctx.store.list_models()}
        specs = []
        for e in entries:
            ref = ModelRef(e.name, e.version)
            before = stored.get(ref)
            spec = build_spec(ctx.settings, ref, e, framework=e.framework,
                              deployment=e.deployment,
                              fallback_owner=before.owner_team if before else None,
                              fallback_domain=before.business_domain if before else None)
            specs.append((merge_with_stored(ctx.settings, spec, e, before) if before else spec,
                          e.status))
        now = time.time()
        for spec, status in specs:
            _, kind = ctx.store.register(spec, status, actor=args.actor,
                                         reason=f"registered from {path.name}", now=now)
            key = {"registered": "registered", "metadata_updated": "updated"}.get(
                kind.value if kind else "", "unchanged")
            outcome[key].append(str(spec.ref))
    show(args, outcome, lambda: "\n".join(
        f"{key}: {', '.join(refs)}" for key, refs in outcome.items() if refs))
    return EXIT_OK


def cmd_models_set_status(args: argparse.Namespace) -> int:
    from lifecycled import app
    ref = ModelRef.parse(args.model)
    if args.status == Status.RETIRED.value:
        raise InputError(f"retire {ref} with `lifecycled retire {ref} --reason TEXT`: it stops "
                         "traffic, backs up and records every step")
    with app.opened(args.config) as ctx:
        entry = ctx.store.set_status(ref, Status(args.status), actor=args.actor,
                                     reason=args.reason, now=time.time())
    show(args, entry.to_json(), lambda: f"{ref}: {entry.from_status} -> {entry.to_status}")
    return EXIT_OK


def cmd_models_history(args: argparse.Namespace) -> int:
    from lifecycled import app
    ref = ModelRef.parse(args.model)
    with app.opened(args.config, create=False) as ctx:
        history = ctx.store.history(ref)
    show(args, {"model": str(ref), "history": [h.to_json() for h in history]},
          lambda: _history_table(history))
    return EXIT_OK


def add_parsers(sub: Any, common: argparse.ArgumentParser, as_json: argparse.ArgumentParser
                ) -> None:
    parents = [common, as_json]
    p = sub.add_parser("check-config", parents=parents, formatter_class=Formatter,
                       help="validate the configuration; list versions whose stored thresholds "
                            "differ from it")
    p.add_argument("--probe", action="store_true",
                   help="also reach every Triton, Prometheus and webhook endpoint and read every "
                        "secret now; exit 1 when one fails")
    p.set_defaults(func=cmd_check_config)

    models = sub.add_parser("models", help="the model registry").add_subparsers(
        dest="models_command", required=True, metavar="SUBCOMMAND")
    p = models.add_parser("list", parents=parents, formatter_class=Formatter,
                          help="list model versions")
    p.add_argument("--status", choices=[s.value for s in Status], help="only this status")
    p.add_argument("--domain", help="only this business domain")
    p.set_defaults(func=cmd_models_list)
    p = models.add_parser("show", parents=parents, formatter_class=Formatter,
                          help="show one model version")
    p.add_argument("model", metavar="NAME:VERSION", help="the model version")
    p.set_defaults(func=cmd_models_show)
    p = models.add_parser("register", parents=parents, formatter_class=Formatter,
                          help="register model versions from a YAML file (one or a list)")
    p.add_argument("--file", required=True, metavar="MODEL.yaml", help="the registration file")
    add_actor(p)
    p.set_defaults(func=cmd_models_register)
    p = models.add_parser("set-status", parents=parents, formatter_class=Formatter,
                          help="change a status along the lifecycle graph")
    p.add_argument("model", metavar="NAME:VERSION", help="the model version")
    p.add_argument("status", choices=[s.value for s in Status], help="the new status")
    p.add_argument("--reason", required=True, help="why (kept in the audit history)")
    add_actor(p)
    p.set_defaults(func=cmd_models_set_status)
    p = models.add_parser("history", parents=parents, formatter_class=Formatter,
                          help="status and audit history")
    p.add_argument("model", metavar="NAME:VERSION", help="the model version")
    p.set_defaults(func=cmd_models_history)
    p = models.add_parser("sync-thresholds", parents=parents, formatter_class=Formatter,
                          help="store the configured thresholds in registered versions "
                               "(each change is a history row)")
    p.add_argument("models", nargs="*", metavar="NAME:VERSION",
                   help="the versions to update (default with --all: every differing version)")
    p.add_argument("--all", action="store_true", help="every version whose thresholds differ")
    p.add_argument("--reason", required=True, help="why (kept in the audit history)")
    add_actor(p)
    p.set_defaults(func=cmd_models_sync_thresholds)

    p = sub.add_parser("run", parents=[common], formatter_class=Formatter,
                       help="run the daemon (until SIGTERM)")
    p.add_argument("--once", action="store_true",
                   help="run each task once in order and exit (1 if any task failed)")
    p.add_argument("--web.listen-address", dest="listen", default=None, metavar="HOST:PORT",
                   help="address to listen on (overrides daemon.listen)")
    p.add_argument("--web.config.file", dest="web_config_file", default=None, metavar="PATH",
                   help="TLS, client certificates and basic auth in the exporter-toolkit format "
                        "(overrides daemon.web_config_file)")
    p.set_defaults(func=cmd_run)

