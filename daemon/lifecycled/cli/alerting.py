"""``lifecycled alerting render``: the Prometheus rules for the user's environment."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from lifecycled import alerting
from lifecycled.cli.output import EXIT_OK, Formatter
from lifecycled.errors import InputError


def cmd_render(args: argparse.Namespace) -> int:
    env = alerting.Environment(args.selector, args.triton_selector, args.runbook_url_pattern)
    text = alerting.render(env, args.format)
    if args.out is None:
        sys.stdout.write(text)
        return EXIT_OK
    out = Path(args.out)
    if not out.is_dir():
        raise InputError(f"--out {out}: not a directory")
    path = out / alerting.FILE_NAMES[args.format]
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.chmod(temporary, 0o644)  # Prometheus (another user) reads it; nothing secret in it
    temporary.replace(path)
    print(f"wrote {path}")
    return EXIT_OK


def add_parsers(sub: Any, common: argparse.ArgumentParser, as_json: argparse.ArgumentParser
                ) -> None:
    group = sub.add_parser("alerting", formatter_class=Formatter,
                           help="Prometheus rules for your environment")
    commands = group.add_subparsers(dest="alerting_command", required=True, metavar="COMMAND")
    p = commands.add_parser(
        "render", formatter_class=Formatter,
        help="write the recording rules and alerts with your selectors and runbook links",
        description="Render lifecycled's recording rules and alerts. The shipped "
                    "alerting/rules/lifecycled.yml is the output with the defaults.")
    p.add_argument("--selector", default=alerting.DEFAULT_SELECTOR,
                   help="label matchers of lifecycled's series (your scrape job), added to every "
                        "lifecycled_* series; '' for none")
    p.add_argument("--triton-selector", default=alerting.DEFAULT_TRITON_SELECTOR,
                   help="label matchers of Triton's series, added to every nv_* series")
    p.add_argument("--runbook-url-pattern", default=alerting.DEFAULT_RUNBOOK,
                   help="each alert's runbook_url; %%s is the alert name")
    p.add_argument("--format", choices=alerting.FORMATS, default="rules",
                   help="a Prometheus rule file, or a prometheus-operator PrometheusRule manifest")
    p.add_argument("--out", metavar="DIR",
                   help="write lifecycled.yml (or lifecycled-prometheusrule.yaml) into DIR "
                        "instead of printing")
    p.set_defaults(func=cmd_render)
