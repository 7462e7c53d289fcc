"""Helpers the tests share (not fixtures: those are in conftest.py)."""

from __future__ import annotations

import re


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
