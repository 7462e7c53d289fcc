"""Secrets (webhook keys, the API token, passwords): read from a file or an environment variable,
never from the configuration itself and never logged. The composition root and the context use
this to hand sources and actions what they need; nothing else reads the environment."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from lifecycled.errors import ConfigError


def read_secret(file: str | None, env: str | None, environ: Mapping[str, str],
                what: str = "secret") -> str:
    """Read a secret from a file or an environment variable.

    A relative file is looked up in ``$CREDENTIALS_DIRECTORY`` first (systemd ``LoadCredential=``).
    """
    if env:
        value = environ.get(env)
        if not value:
            raise ConfigError([f"{what}: environment variable {env} is not set"])
        return value.strip()
    if file:
        path = Path(file)
        creds = environ.get("CREDENTIALS_DIRECTORY")
        if not path.is_absolute() and creds and (Path(creds) / path).exists():
            path = Path(creds) / path
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError([f"{what}: cannot read {path}: {exc.strerror or exc}"]) from exc
    raise ConfigError([f"{what}: neither a file nor an environment variable is configured"])
