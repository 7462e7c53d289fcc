"""Every ``lifecycled`` command; the CLI is the only part of lifecycled that prints for people.

Exit codes: 0 success, 1 a check found a problem (or the state store failed), 2 bad usage, bad
configuration or bad input, 3 a gate could not judge anything (``drift --fail-on``: unknown).
Errors are one sentence on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from collections.abc import Sequence

from lifecycled import __version__, logs
from lifecycled.cli import actions, alerting, checks, cluster, compare, init, registry
from lifecycled.cli.output import EXIT_PROBLEM, EXIT_USAGE, Formatter, common_parents
from lifecycled.errors import (
    ConfigError,
    InputError,
    LifecycledError,
    NotFoundError,
    SourceError,
    TransitionError,
)


def build_parser() -> argparse.ArgumentParser:
    common, as_json = common_parents()
    parser = argparse.ArgumentParser(
        prog="lifecycled", formatter_class=Formatter,
        description="lifecycled: lifecycle of ML models served by NVIDIA Triton, for Prometheus")
    parser.add_argument("--config", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--version", action="version", version=f"lifecycled {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (init, registry, checks, actions, compare, alerting, cluster):
        module.add_parsers(sub, common, as_json)
    _complete(parser)
    return parser


def _complete(parser: argparse.ArgumentParser) -> None:
    """Shell completion through argcomplete, when it is installed (docs/getting-started.md)."""
    try:
        import argcomplete
    except ImportError:
        return
    argcomplete.autocomplete(parser)


EXIT_CLOSED_PIPE = 141  # as a program killed by SIGPIPE (128 + 13): the reader stopped early


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit code; a reader that closes the pipe early (``| head``)
    ends it quietly, and output to a full device is one line."""
    try:
        return _main(argv)
    except BrokenPipeError:
        # point stdout at /dev/null so that the interpreter's last flush does not fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_CLOSED_PIPE
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print("lifecycled: cannot write the output: no space left on the device",
              file=sys.stderr)
        return EXIT_PROBLEM


def entry() -> None:
    """The ``lifecycled`` command: ``main``, then exit with its code. A read of a file behind a
    URL that passed its deadline is not waited for: pyarrow's S3 shutdown at exit would wait for
    its endpoint (a dripping one kept ``drift --timeout 1s`` 20 s more)."""
    code = main()
    files = sys.modules.get("lifecycled.sources.files")  # not imported: nothing was read
    if files is not None and files.reads_abandoned():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(actions.retire_shorthand(list(sys.argv[1:] if argv is None else argv)))
    if not hasattr(args, "config"):
        args.config = None
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logs.quiet_libraries()
    os.umask(0o077)  # state, backups, caches and reports we write are the invoking user's only
    try:
        return int(args.func(args))
    except (ConfigError, InputError, NotFoundError, TransitionError, SourceError) as exc:
        print(f"lifecycled: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except LifecycledError as exc:  # StoreError and anything else lifecycled raises on purpose
        print(f"lifecycled: {exc}", file=sys.stderr)
        return EXIT_PROBLEM
    except KeyboardInterrupt:
        return 130
    finally:
        sys.stdout.flush()  # a closed pipe or a full device shows here, inside main's handlers


if __name__ == "__main__":
    raise SystemExit(main())
