"""Every ``lifecycled`` command; the only module that prints for people.

Exit codes: 0 success, 1 a check found a problem (or the state store failed), 2 bad usage, bad
configuration or bad input. Errors are one sentence on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lifecycled import __version__, app
from lifecycled.cli_actions import add_parsers, emit
from lifecycled.cli_checks import cmd_collect, cmd_discover, cmd_drift, cmd_quality, cmd_report
from lifecycled.config import read_yaml
from lifecycled.domain import HistoryEntry, ModelRecord, ModelRef, Status
from lifecycled.errors import (
    ConfigError,
    InputError,
    LifecycledError,
    NotFoundError,
    SourceError,
    StoreError,
    TransitionError,
)
from lifecycled.registration import build_spec, parse_registrations
from lifecycled.render import fmt, table, utc

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2
log = logging.getLogger(__name__)


class Exit(Exception):
    """Raised by a command to end with a given exit code (after its output)."""

    def __init__(self, code: int) -> None:
        self.code = code


# -- commands ------------------------------------------------------------------------------------


def cmd_check_config(args: argparse.Namespace) -> int:
    settings, path = app.load(args.config)
    notes = []
    if not settings.sources.triton and settings.sources.prometheus is None:
        notes.append("no sources configured: discovery and collection will have nothing to read")
    print(f"{path}: configuration is valid")
    print(f"  models configured: {len(settings.models)}; Triton endpoints: "
          f"{len(settings.sources.triton)}; Prometheus: "
          f"{'yes' if settings.sources.prometheus else 'no'}; webhooks: {len(settings.webhooks)}")
    for note in notes:
        print(f"  note: {note}")
    return EXIT_OK


def cmd_models_list(args: argparse.Namespace) -> int:
    with app.opened(args.config) as ctx:
        records = ctx.store.list_models(status=Status(args.status) if args.status else None,
                                        domain=args.domain)
    emit(args, {"models": [r.to_json() for r in records]}, lambda: table(
        ["MODEL", "VERSION", "STATUS", "OWNER", "DOMAIN", "TYPE", "UPDATED"],
        [[r.ref.name, r.ref.version, r.status, r.spec.owner_team, r.spec.business_domain,
          r.spec.model_type, utc(r.last_updated)] for r in records],
    ) if records else "no models registered")
    return EXIT_OK


def cmd_models_show(args: argparse.Namespace) -> int:
    from lifecycled.store.serving import serving_states, snapshots

    ref = ModelRef.parse(args.model)
    with app.opened(args.config) as ctx:
        record = ctx.store.get(ref)
        history = ctx.store.history(ref)
        states = serving_states(ctx.store, ref)
        latest = snapshots(ctx.store, ref, limit=1)
    payload = {"model": record.to_json(), "history": [h.to_json() for h in history],
               "serving": [s.to_json() for s in states],
               "latest_snapshot": latest[0].to_json() if latest else None}
    emit(args, payload, lambda: _show_text(record, history, payload))
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
    "memory_bytes", "cpu_utilization_ratio", "accuracy", "f1_ratio", "roc_auc")


def cmd_run(args: argparse.Namespace) -> int:
    return app.run_daemon(args.config, once=args.once)


def _history_table(history: Sequence[HistoryEntry]) -> str:
    return table(["WHEN", "KIND", "FROM", "TO", "ACTOR", "REASON"], [
        [utc(h.at), h.kind, h.from_status or "-", h.to_status, h.actor, h.reason] for h in history
    ])


def cmd_models_register(args: argparse.Namespace) -> int:
    path = Path(args.file)
    entries = parse_registrations(read_yaml(path), source=str(path))
    outcome: dict[str, list[str]] = {"registered": [], "updated": [], "unchanged": []}
    with app.opened(args.config) as ctx:
        specs = [(build_spec(ctx.settings, ModelRef(e.name, e.version), e,
                             framework=e.framework, deployment=e.deployment), e.status)
                 for e in entries]
        now = time.time()
        for spec, status in specs:
            _, kind = ctx.store.register(spec, status, actor=args.actor,
                                         reason=f"registered from {path.name}", now=now)
            key = {"registered": "registered", "metadata_updated": "updated"}.get(
                kind.value if kind else "", "unchanged")
            outcome[key].append(str(spec.ref))
    emit(args, outcome, lambda: "\n".join(
        f"{key}: {', '.join(refs)}" for key, refs in outcome.items() if refs))
    return EXIT_OK


def cmd_models_set_status(args: argparse.Namespace) -> int:
    ref = ModelRef.parse(args.model)
    if args.status == Status.RETIRED.value:
        raise InputError(f"retire {ref} with `lifecycled retire {ref} --reason TEXT`: it stops "
                         "traffic, backs up and records every step")
    with app.opened(args.config) as ctx:
        entry = ctx.store.set_status(ref, Status(args.status), actor=args.actor,
                                     reason=args.reason, now=time.time())
    emit(args, entry.to_json(), lambda: f"{ref}: {entry.from_status} -> {entry.to_status}")
    return EXIT_OK


def cmd_models_history(args: argparse.Namespace) -> int:
    ref = ModelRef.parse(args.model)
    with app.opened(args.config) as ctx:
        history = ctx.store.history(ref)
    emit(args, {"model": str(ref), "history": [h.to_json() for h in history]},
          lambda: _history_table(history))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS,
                        help="configuration file (default: $LIFECYCLED_CONFIG, "
                             "/etc/lifecycled/lifecycled.yaml, ./config/lifecycled.yaml)")
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print stable JSON")

    parser = argparse.ArgumentParser(
        prog="lifecycled",
        description="lifecycled: lifecycle of ML models served by NVIDIA Triton, for Prometheus")
    parser.add_argument("--config", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--version", action="version", version=f"lifecycled {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("check-config", parents=[common], help="validate the configuration")
    p.set_defaults(func=cmd_check_config)

    models = sub.add_parser("models", help="the model registry").add_subparsers(
        dest="models_command", required=True, metavar="SUBCOMMAND")
    p = models.add_parser("list", parents=[common, as_json], help="list model versions")
    p.add_argument("--status", choices=[s.value for s in Status])
    p.add_argument("--domain", help="business domain")
    p.set_defaults(func=cmd_models_list)
    p = models.add_parser("show", parents=[common, as_json], help="show one model version")
    p.add_argument("model", metavar="NAME:VERSION")
    p.set_defaults(func=cmd_models_show)
    p = models.add_parser("register", parents=[common, as_json],
                          help="register model versions from a YAML file (one or a list)")
    p.add_argument("--file", required=True, metavar="MODEL.yaml")
    p.add_argument("--actor", default="cli")
    p.set_defaults(func=cmd_models_register)
    p = models.add_parser("set-status", parents=[common, as_json], help="change a status")
    p.add_argument("model", metavar="NAME:VERSION")
    p.add_argument("status", choices=[s.value for s in Status])
    p.add_argument("--reason", required=True)
    p.add_argument("--actor", default="cli")
    p.set_defaults(func=cmd_models_set_status)
    p = models.add_parser("history", parents=[common, as_json], help="status and audit history")
    p.add_argument("model", metavar="NAME:VERSION")
    p.set_defaults(func=cmd_models_history)

    p = sub.add_parser("run", parents=[common], help="run the daemon (until SIGTERM)")
    p.add_argument("--once", action="store_true",
                   help="run each job once in order and exit (1 if any job failed)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("discover", parents=[common, as_json],
                       help="one discovery pass now: new, changed and missing models")
    p.set_defaults(func=cmd_discover)
    p = sub.add_parser("collect", parents=[common, as_json],
                       help="one collect pass now (two scrapes if there is no previous one)")
    p.add_argument("--wait", default="5s", help="gap between two scrapes when needed")
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("drift", parents=[common, as_json],
                       help="data drift between a reference and a current sample")
    p.add_argument("--model", metavar="NAME:VERSION", help="run the configured check and store it")
    p.add_argument("--reference", metavar="FILE", help="CSV, Parquet or JSON Lines (or a glob)")
    p.add_argument("--current", metavar="FILE")
    p.add_argument("--features", metavar="a,b", help="default: every column in both")
    p.add_argument("--categorical", metavar="c,d", help="default: the non-numeric columns")
    p.add_argument("--bins", type=int, default=10)
    p.add_argument("--min-samples", type=int, default=100)
    p.add_argument("--correction", choices=["none", "bonferroni", "bh"], default="none")
    p.add_argument("--fail-on", choices=["medium", "high", "critical"],
                   help="exit 1 when the model severity reaches this level")
    p.set_defaults(func=cmd_drift)

    p = sub.add_parser("quality", parents=[common, as_json],
                       help="quality metrics and concept drift from labelled outcomes")
    p.add_argument("--outcomes", required=True, metavar="FILE")
    p.add_argument("--prediction-column", default="prediction")
    p.add_argument("--label-column", default="label")
    p.add_argument("--score-column")
    p.add_argument("--timestamp-column")
    p.add_argument("--positive-label")
    p.set_defaults(func=cmd_quality)

    add_parsers(sub, common, as_json)

    p = sub.add_parser("report", parents=[common, as_json],
                       help="lifecycle overview, or --model: one version's performance summary")
    p.add_argument("--model", metavar="NAME:VERSION")
    p.add_argument("--days", type=float, default=7.0)
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "config"):
        args.config = None
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        return int(args.func(args))
    except Exit as exc:
        return exc.code
    except ConfigError as exc:
        print(f"lifecycled: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (InputError, NotFoundError, TransitionError) as exc:
        print(f"lifecycled: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SourceError as exc:
        print(f"lifecycled: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (StoreError, LifecycledError) as exc:
        print(f"lifecycled: {exc}", file=sys.stderr)
        return EXIT_PROBLEM
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
