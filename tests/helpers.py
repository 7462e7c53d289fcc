"""Helpers the tests share (not fixtures: those are in conftest.py)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest


class Clock:
    """A clock a test sets and advances: ``now`` seconds since the epoch (a fixed day unless
    given), returned by calling it, as ``Context.clock`` is called."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def shell_blocks(markdown: str) -> list[list[str]]:
    """The commands of each ```sh block of a Markdown text: one string per command, its
    backslash continuations joined and its trailing comment removed."""
    blocks = []
    for block in re.findall(r"^```sh\n(.*?)^```", markdown, re.MULTILINE | re.DOTALL):
        commands: list[str] = []
        pending = ""
        for line in block.splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).rstrip()
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line.endswith("\\"):
                pending += line[:-1].strip() + " "
                continue
            commands.append(" ".join((pending + line.strip()).split()))
            pending = ""
        blocks.append(commands)
    return blocks


def section(markdown: str, heading: str) -> str:
    """The text under ``heading`` (a whole heading line) up to the next heading of its level."""
    level = heading.split(" ", 1)[0]
    body = markdown.split(heading + "\n", 1)[1]
    return re.split(rf"^{re.escape(level)} ", body, maxsplit=1, flags=re.MULTILINE)[0]


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--enable-logging=stderr",
                  "--v=0"]


def chromium(url: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Debian's Chromium, headless, on ``url`` with a new profile under ``tmp_path``; the
    flags keep it off the network (this machine's network is closed) and log the console."""
    binary = shutil.which("chromium")
    if binary is None:
        pytest.fail("Debian's chromium is required (scripts/setup-system.sh installs it)")
    profile = tmp_path / f"chromium-profile-{len(list(tmp_path.glob('chromium-profile-*')))}"
    return subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, url],
                          capture_output=True, text=True, timeout=180)
