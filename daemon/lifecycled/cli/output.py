"""What every command shares: exit codes, printing (text or ``--json``), the audit actor and the
common options. The CLI is the only part of lifecycled that prints for people."""

from __future__ import annotations

import argparse
import getpass
import json
import os
from collections.abc import Callable, Mapping
from typing import Any

from lifecycled.render import finite_json

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, EXIT_UNKNOWN = 0, 1, 2, 3


def show(args: argparse.Namespace, payload: Any, text: Callable[[], str]) -> None:
    """Print ``payload`` as stable JSON under ``--json``, else the text for people."""
    if getattr(args, "json", False):
        print(json.dumps(finite_json(payload), indent=2, sort_keys=True, allow_nan=False))
    else:
        print(text())


def default_actor(environ: Mapping[str, str] | None = None) -> str:
    """Who the audit history records for a CLI change: the user behind sudo, else the login."""
    environ = os.environ if environ is None else environ
    if environ.get("SUDO_USER"):
        return environ["SUDO_USER"]
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER: say so in the record
        return "unknown-user"


class Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help that shows each option's default (argparse adds it to options with help text)."""


def add_actor(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--actor", default=default_actor(),
                        help="who the audit history records: the invoking user by default")


def common_parents() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The ``--config`` and ``--json`` options every command takes."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS,
                        help="configuration file (default: $LIFECYCLED_CONFIG, "
                             "/etc/lifecycled/lifecycled.yaml, ./config/lifecycled.yaml)")
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print stable JSON")
    return common, as_json
