"""Backups of a model version as JSON files with a manifest of SHA-256 checksums, verified after
writing; retention by age."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lifecycled.errors import ActionError

MANIFEST = "manifest.json"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_synced(path: Path, text: str) -> None:
    """Write ``text`` and flush it to disk: the cleanup step deletes the originals afterwards."""
    with path.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _sync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_backup(directory: Path, parts: Mapping[str, Any], *, created_at: float,
                 about: Mapping[str, Any]) -> Path:
    """Write one JSON file per part and the manifest (written last, atomically), each flushed to
    disk, then verify."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        files = {}
        for name, value in parts.items():
            path = directory / f"{name}.json"
            _write_synced(path, json.dumps(value, indent=1, sort_keys=True, default=str))
            files[path.name] = _sha256(path)
        manifest = {"created_at": created_at, **about, "files": files}
        temporary = directory / f".{MANIFEST}.tmp"
        _write_synced(temporary, json.dumps(manifest, indent=1, sort_keys=True))
        os.replace(temporary, directory / MANIFEST)
        _sync_directory(directory)
        _sync_directory(directory.parent)
    except OSError as exc:
        raise ActionError(f"cannot write backup in {directory}: {exc}") from exc
    verify_backup(directory)
    return directory


def verify_backup(directory: Path) -> dict[str, Any]:
    """Check that every file parses and matches its checksum; return the manifest."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
        for name, digest in manifest["files"].items():
            path = directory / name
            if _sha256(path) != digest:
                raise ActionError(f"backup {path} does not match its checksum")
            json.loads(path.read_text())
    except (OSError, ValueError, KeyError) as exc:
        raise ActionError(f"backup in {directory} is unreadable: {exc}") from exc
    return dict(manifest)


def prune_backups(root: Path, *, older_than: float) -> list[Path]:
    """Delete backups whose manifest is older than ``older_than``; leave anything unreadable."""
    removed: list[Path] = []
    if not root.exists():
        return removed
    for manifest in sorted(root.glob(f"*/*/*/{MANIFEST}")):
        try:
            created = float(json.loads(manifest.read_text())["created_at"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if created < older_than:
            shutil.rmtree(manifest.parent)
            removed.append(manifest.parent)
    return removed


def stamp(timestamp: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(timestamp))
