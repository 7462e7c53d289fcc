"""Champion and challenger commands: open a comparison, follow it, decide a held one."""

from __future__ import annotations

import argparse
from typing import Any

from lifecycled.cli.output import EXIT_OK, Formatter, add_actor, show
from lifecycled.domain import ModelRef
from lifecycled.errors import InputError
from lifecycled.render import fmt, table, utc


def cmd_compare_start(args: argparse.Namespace) -> int:
    from lifecycled import app
    from lifecycled.actions.compare import start_comparison

    champion, challenger = ModelRef.parse(args.champion), ModelRef.parse(args.challenger)
    with app.opened(args.config) as a:
        comparison_id = start_comparison(a.context(), champion, challenger, actor=args.actor,
                                         reason=args.reason)
    show(args, {"id": comparison_id, "champion": str(champion), "challenger": str(challenger)},
         lambda: f"comparison {comparison_id}: {challenger} judged against {champion} on live "
                 f"traffic (route part of it to {challenger}: the client, an ensemble or the "
                 f"mesh decides)")
    return EXIT_OK


def _evidence_cells(evidence: dict[str, Any]) -> list[str]:
    requests, failures = evidence.get("requests", {}), evidence.get("failures", {})
    e = evidence.get("e_values", {})
    return [f"{fmt(requests.get('challenger'))} / {fmt(requests.get('champion'))}",
            f"{fmt(failures.get('challenger'))} / {fmt(failures.get('champion'))}",
            fmt(e.get("failures_worse")), fmt(e.get("failures_not_worse")),
            fmt(e.get("latency_worse")), fmt(evidence.get("threshold"))]


def cmd_compare_status(args: argparse.Namespace) -> int:
    from lifecycled import app
    from lifecycled.store.comparisons import comparisons

    with app.opened(args.config, create=False) as a:
        found = comparisons(a.store, name=args.model)
    if not args.all:
        newest: dict[str, Any] = {}
        for comparison in found:
            newest[comparison.name] = comparison
        found = list(newest.values())
    payload = {"comparisons": [c.to_json() for c in found]}
    show(args, payload, lambda: table(
        ["ID", "MODEL", "CHAMPION", "CHALLENGER", "STATE", "OPENED", "REQUESTS C/B",
         "FAILURES C/B", "E WORSE", "E NOT WORSE", "E LATENCY", "BAR", "REASON"],
        [[c.id, c.name, c.champion, c.challenger, c.state, utc(c.opened_at),
          *_evidence_cells(dict(c.evidence)), c.reason or "-"] for c in found])
        if found else "no comparisons")
    return EXIT_OK


def cmd_compare_decide(args: argparse.Namespace) -> int:
    from lifecycled import app
    from lifecycled.actions.compare import apply_decision
    from lifecycled.store.comparisons import OPEN, comparisons

    with app.opened(args.config) as a:
        mine = [c for c in comparisons(a.store, states=OPEN)
                if args.comparison in (c.id, c.name)]
        if not mine:
            raise InputError(f"no running or held comparison {args.comparison}")
        (comparison,) = mine
        if not apply_decision(a.context(), comparison.id, args.decision, args.reason,
                              actor=args.actor, evidence=dict(comparison.evidence)):
            raise InputError(f"comparison {comparison.id} was decided meanwhile")
    show(args, {"id": comparison.id, "decision": args.decision},
         lambda: f"comparison {comparison.id}: {args.decision} ({comparison.name}:"
                 f"{comparison.challenger})")
    return EXIT_OK


def add_parsers(sub: Any, common: argparse.ArgumentParser, as_json: argparse.ArgumentParser
                ) -> None:
    parents = [common, as_json]
    compare = sub.add_parser("compare", help="champion and challenger on live traffic"
                             ).add_subparsers(dest="compare_command", required=True,
                                              metavar="SUBCOMMAND")
    p = compare.add_parser("start", parents=parents, formatter_class=Formatter,
                           help="judge a challenger version against the production one")
    p.add_argument("champion", metavar="NAME:CHAMPION", help="the production version")
    p.add_argument("challenger", metavar="NAME:CHALLENGER",
                   help="the version beside it (developing, testing or staging)")
    p.add_argument("--reason", required=True, help="why (kept in the audit history)")
    add_actor(p)
    p.set_defaults(func=cmd_compare_start)
    p = compare.add_parser("status", parents=parents, formatter_class=Formatter,
                           help="each model's latest comparison: counts, evidence, state")
    p.add_argument("model", nargs="?", default=None, metavar="NAME", help="only this model")
    p.add_argument("--all", action="store_true", help="every comparison, not only the latest")
    p.set_defaults(func=cmd_compare_status)
    p = compare.add_parser("decide", parents=parents, formatter_class=Formatter,
                           help="promote or roll back a running or held comparison's challenger")
    p.add_argument("comparison", metavar="ID|NAME", help="the comparison, or its model")
    p.add_argument("decision", choices=["promote", "rollback"], help="what to do")
    p.add_argument("--reason", required=True, help="why (kept in the audit history)")
    add_actor(p)
    p.set_defaults(func=cmd_compare_decide)
