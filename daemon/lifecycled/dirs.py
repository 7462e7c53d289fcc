"""Where commands and the daemon keep their files when no path is given: the state (a relative
``state_url`` resolves against it) and the caches, by systemd's directories, else the XDG base
directories, else the home directory; never the working directory."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def state_base_dir(environ: Mapping[str, str]) -> Path:
    """Directory that relative state paths resolve against: systemd's $STATE_DIRECTORY, else
    $XDG_STATE_HOME/lifecycled, else ~/.local/state/lifecycled; never the working directory,
    so every folder a command runs from sees the same registry."""
    return _base_dir(environ, "STATE_DIRECTORY", "XDG_STATE_HOME", (".local", "state"))


def cache_base_dir(environ: Mapping[str, str]) -> Path:
    """Where commands keep caches (reference profiles of ``lifecycled drift``): systemd's
    $CACHE_DIRECTORY, else $XDG_CACHE_HOME/lifecycled, else ~/.cache/lifecycled."""
    return _base_dir(environ, "CACHE_DIRECTORY", "XDG_CACHE_HOME", (".cache",))


def _base_dir(environ: Mapping[str, str], systemd: str, xdg: str, home_parts: tuple[str, ...]
              ) -> Path:
    given = environ.get(systemd, "").split(":")[0]
    if given:
        return Path(given)
    base = environ.get(xdg, "")
    if base and Path(base).is_absolute():
        return Path(base) / "lifecycled"
    home = environ.get("HOME") or str(Path.home())
    return Path(home).joinpath(*home_parts, "lifecycled")
