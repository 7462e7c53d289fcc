"""Run a command under the shipped systemd unit's system-call filter, as an unprivileged user.

Usage (with Debian's python3, which has libseccomp's binding, package python3-seccomp):

    /usr/bin/python3 devtools/sandbox.py --unit config/systemd/lifecycled.service \
        [--user nobody] -- COMMAND [ARG...]

The filter is the unit's own: its ``SystemCallFilter=`` lines (allow lists, and ``~`` lines that
take sets away) are expanded into system calls with ``systemd-analyze syscall-filter``, as systemd
expands them, and every other call fails with the unit's ``SystemCallErrorNumber=``. The user is
dropped to first (setgroups, setgid, setuid are outside the filter), then the filter is loaded,
then COMMAND is executed: it and every process it starts run under the filter, as under systemd.
This file uses only the standard library and ``seccomp``: it runs outside the project's venv.
"""

from __future__ import annotations

import argparse
import errno
import os
import pwd
import re
import subprocess
import sys
from pathlib import Path


def expand(group: str, seen: set[str] | None = None) -> set[str]:
    """The system calls of ``group`` (``@name`` or a call's own name), nested groups included."""
    if not group.startswith("@"):
        return {group}
    seen = set() if seen is None else seen
    if group in seen:
        return set()
    seen.add(group)
    out = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager", group],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    calls: set[str] = set()
    for line in out.splitlines()[1:]:  # the first line is the group's own name
        item = line.strip()
        if item and not item.startswith("#"):
            calls |= expand(item, seen)
    return calls


def unit_filter(unit: Path) -> tuple[set[str], int]:
    """The calls ``unit`` allows and the errno the others get."""
    allowed: set[str] = set()
    denied: set[str] = set()
    error = errno.EPERM
    for line in unit.read_text().splitlines():
        key, _, value = line.strip().partition("=")
        if key == "SystemCallFilter":
            negate = value.startswith("~")
            names = value.lstrip("~").split()
            calls = set().union(*(expand(name) for name in names)) if names else set()
            (denied if negate else allowed).update(calls)
        elif key == "SystemCallErrorNumber":
            error = getattr(errno, value.strip())
    if not allowed:
        raise SystemExit(f"{unit}: no SystemCallFilter allow list")
    return allowed - denied, error


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unit", type=Path, required=True)
    parser.add_argument("--user", default=None, help="drop to this user first (needs root)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command")
    import seccomp  # Debian python3-seccomp

    allowed, error = unit_filter(args.unit)
    if args.user:
        user = pwd.getpwnam(args.user)
        os.setgroups([])
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
        os.environ["HOME"] = user.pw_dir
    sandbox = seccomp.SyscallFilter(defaction=seccomp.ERRNO(error))
    for call in sorted(allowed):
        if not re.fullmatch(r"[a-z0-9_]+", call):
            continue
        try:
            sandbox.add_rule(seccomp.ALLOW, call)
        except (RuntimeError, ValueError, OSError):  # not a call of this architecture
            continue
    sandbox.load()  # sets no_new_privs first, as NoNewPrivileges=yes does
    os.execvp(command[0], command)


if __name__ == "__main__":
    sys.exit(main())
