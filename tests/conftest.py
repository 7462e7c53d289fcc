"""Shared fixtures: a configuration in a temporary directory and a CLI runner (real subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


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


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Caches commands keep for the user (``lifecycled drift``'s reference profiles) go to a
    directory of this run, never the real home; subprocesses inherit it."""
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    os.environ.pop("CACHE_DIRECTORY", None)


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path / "cfg")


@pytest.fixture
def cli(config_path: Path) -> Callable[..., CliResult]:
    """Run ``lifecycled`` as a subprocess against the temporary config."""

    def run(*args: str, config: Path | None = config_path, stdin: str | None = None) -> CliResult:
        argv = [sys.executable, "-m", "lifecycled", *args]
        if config is not None:
            argv += ["--config", str(config)]
        env = {k: v for k, v in os.environ.items() if k not in ("LIFECYCLED_CONFIG",
                                                                 "STATE_DIRECTORY")}
        proc = subprocess.run(argv, capture_output=True, text=True, input=stdin, env=env,
                              cwd=config_path.parent, timeout=120)
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    return run
