"""Pure text formatting for people: aligned tables and relative ages (the CLI prints them)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Return ``rows`` as an aligned plain-text table under ``headers``."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def fmt(value: object, spec: str = ".4g") -> str:
    """A number for a table, or ``-`` when it is unknown."""
    return "-" if value is None else format(value, spec)


def ago(seconds: float) -> str:
    """Return a duration in the past as ``N seconds/minutes/hours/days ago``."""
    seconds = max(0.0, seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    n = int(seconds)
    return f"{n} second{'s' if n != 1 else ''} ago"


def utc(timestamp: float) -> str:
    """Return a Unix time as ``YYYY-MM-DD HH:MM:SSZ``."""
    import datetime as dt

    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def finite_json(value: Any) -> Any:
    """``value`` with every NaN or infinity replaced by None: JSON has no such numbers, and an
    unknown value is null, never NaN."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(v) for v in value]
    return value
