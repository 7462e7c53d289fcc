"""Helpers the tests share (not fixtures: those are in conftest.py)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools import triton


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


ROOT = Path(__file__).resolve().parent.parent  # the checkout


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def write_config(directory: Path, extra: dict[str, Any] | None = None,
                 models_d: bool = True) -> Path:
    """Write a config (state in ``directory``) plus the shipped models.d files; return its path."""
    data: dict[str, Any] = {
        "daemon": {"state_url": f"sqlite:///{directory / 'state' / 'lifecycled.db'}"},
        "sources": {"triton": []},
    }
    for key, value in (extra or {}).items():
        data[key] = value
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "lifecycled.yaml"
    path.write_text(yaml.safe_dump(data))
    if models_d:
        target = directory / "models.d"
        target.mkdir(exist_ok=True)
        for file in (ROOT / "config" / "models.d").glob("*.yaml"):
            (target / file.name).write_text(file.read_text())
    return path


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 120.0) -> Any:
    """Poll ``predicate`` until it returns something true, or fail after ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def write_outcomes(path: Path, accuracy: float, n: int = 400) -> None:
    """A labelled-outcomes CSV (prediction, label, channel) whose accuracy is exactly
    ``accuracy``, in each channel (web, app) as a whole."""
    import csv

    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prediction", "label", "channel"])
        correct = int(n * accuracy)
        rows = [[1, 1]] * correct + [[1, 0]] * (n - correct)
        writer.writerows([[*row, "web" if i % 2 else "app"] for i, row in enumerate(rows)])


def endpoint(name: str, server: triton.TritonServer, **extra: object) -> dict[str, object]:
    """A sources.triton entry for ``server``."""
    return {"name": name, "url": server.url, "metrics_url": server.metrics_url, "timeout": "5s",
            **extra}
