"""What every command shares: exit codes, printing (text or ``--json``), the audit actor and the
common options. The CLI is the only part of lifecycled that prints for people."""

from __future__ import annotations

import argparse
import getpass
import json
import math
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
    """Help that shows each option's default (argparse adds it to options with help text),
    except where the help already names it, or there is none (None) or it is a flag's off."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text or action.default is None or action.default is False:
            return text
        return super()._get_help_string(action)


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


def number(kind: type[int] | type[float], low: float, high: float, *, low_open: bool = False,
           high_open: bool = False) -> Callable[[str], int | float]:
    """An argparse type: a finite ``kind`` within [low, high] (an open end excludes its bound);
    anything else is argparse's one-line usage error, exit 2."""
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}"
                                             f", got {text!r}") from None
        if not math.isfinite(value) or value < low or value > high \
                or (low_open and value == low) or (high_open and value == high):
            raise argparse.ArgumentTypeError(
                f"must be in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
                f", got {text}")
        return value
    return parse


def duration(text: str) -> float:
    """An argparse type: a duration (90s, 5m, 1h30m) in seconds."""
    from lifecycled.units import parse_duration
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
