"""Composition root: builds the store, clients and jobs from Settings and owns their lifetimes."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from daemon.config import Settings, load_settings, resolve_config_path
from daemon.jobs.context import JobContext
from daemon.store import Store, open_store


def state_base_dir(environ: Mapping[str, str]) -> Path:
    """Directory that relative state paths resolve against: systemd's $STATE_DIRECTORY or cwd."""
    state_dir = environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(state_dir) if state_dir else Path.cwd()


@dataclass
class App:
    """What a command or the daemon needs: the settings, where they came from, the store."""

    settings: Settings
    config_path: Path
    store: Store

    @property
    def state_dir(self) -> Path:
        """Folder of the state file: profile caches and backups live beside it."""
        return self.store.path.parent

    def context(self) -> JobContext:
        """The context jobs run with (real clock and HTTP session)."""
        return JobContext(self.settings, self.store)

    def close(self) -> None:
        self.store.close()


def load(config: str | None, environ: Mapping[str, str] | None = None) -> tuple[Settings, Path]:
    """Find and load the configuration."""
    environ = os.environ if environ is None else environ
    path = resolve_config_path(config, environ)
    return load_settings(path), path


def open_app(config: str | None, environ: Mapping[str, str] | None = None) -> App:
    """Load the configuration and open the store it names."""
    environ = os.environ if environ is None else environ
    settings, path = load(config, environ)
    store = open_store(settings.daemon.state_url, state_base_dir(environ))
    return App(settings, path, store)
