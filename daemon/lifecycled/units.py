"""Quantities as people write them: durations, sizes, ratios and false-alarm budgets parsed into
base units (seconds, bytes, 0-1) and printed back. No pydantic here: the command line parses
with these too (``fields`` holds the configuration's pydantic types built on them)."""

from __future__ import annotations

import math
import re
from typing import Any

# One or more "<number><unit>" parts, largest unit first, as in Prometheus (1h30m, 2d12h, 90s).
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_DURATION_RE = re.compile(r"^\s*(?:\d+(?:\.\d+)?\s*(?:ms|s|m|h|d|w)\s*)+$")
_DURATION_UNITS = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_DURATION_EXAMPLE = "a duration like 90s, 5m, 1h30m, 7d or 80ms"
MAX_DURATION = 3650 * 86400.0  # ten years: longer is a typo, and overflows date arithmetic
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$")
_SIZE_UNITS = {
    "B": 1.0, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
    "KiB": 2.0**10, "MiB": 2.0**20, "GiB": 2.0**30, "TiB": 2.0**40,
}


def _quantity(value: Any, pattern: re.Pattern[str], units: dict[str, float], example: str
              ) -> float:
    """A bare number, or a number with one of ``units``, in base units; finite, never
    negative."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        amount = float(value)
    elif isinstance(value, str) and (match := pattern.match(value)):
        amount = float(match.group(1)) * units[match.group(2)]
    else:
        raise ValueError(f"expected {example}, got {value!r}")
    if not math.isfinite(amount):
        raise ValueError(f"must be a finite number, got {value!r}")
    if amount < 0:
        raise ValueError(f"must not be negative, got {value!r}")
    return amount


def parse_duration(value: Any) -> float:
    """Parse ``90s``, ``5m``, ``1h30m``, ``7d``, ``80ms`` (or a bare number of seconds) to
    seconds. Compound forms put the largest unit first and each unit at most once."""
    if not isinstance(value, str):
        seconds = _quantity(value, _DURATION_RE, {}, _DURATION_EXAMPLE)
    elif not _DURATION_RE.match(value):
        raise ValueError(f"expected {_DURATION_EXAMPLE}, got {value!r}")
    else:
        parts = _DURATION_PART.findall(value.strip())
        order = [list(_DURATION_UNITS).index(unit) for _, unit in parts]
        if order != sorted(set(order)):
            raise ValueError(f"expected the largest unit first and each unit once, got {value!r}")
        seconds = sum(float(amount) * _DURATION_UNITS[unit] for amount, unit in parts)
    if seconds > MAX_DURATION:
        raise ValueError(f"must be at most 3650d (ten years), got {value!r}")
    return seconds


def parse_size(value: Any) -> float:
    """Parse ``2048MiB``, ``2GB`` (or a bare number of bytes) to bytes."""
    return _quantity(value, _SIZE_RE, _SIZE_UNITS, "a size like 512MiB or 2GB")


def parse_ratio(value: Any) -> Any:
    """Accept ``80%`` as 0.8; leave numbers for the range check."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return float(value.strip()[:-1]) / 100.0
        except ValueError:
            raise ValueError(f"expected a ratio like 0.8 or 80%, got {value!r}") from None
    return value


def check_ratio(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"must be between 0 and 1, got {value:g}")
    return value


def check_positive(value: float) -> float:
    if value <= 0:
        raise ValueError(f"must be greater than 0, got {value:g}")
    return value


def duration_text(seconds: float) -> str:
    """A duration as the configuration writes it: the largest unit that divides it (``30d``,
    ``5m``, ``90s``, ``80ms``)."""
    if seconds == 0:
        return "0s"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{round(seconds * 1000)}ms" if seconds < 1 else f"{seconds:g}s"


def parse_budget(value: Any) -> tuple[float, float]:
    """Parse a false-alarm budget ``N/DURATION`` (``1/30d``: one false alarm per 30 days) to
    (alarms, period in seconds); both must be greater than 0."""
    if isinstance(value, tuple | list) and len(value) == 2:
        alarms, period = float(value[0]), float(value[1])
    elif isinstance(value, str) and value.count("/") == 1:
        count, _, span = value.partition("/")
        try:
            alarms = float(count)
        except ValueError:
            raise ValueError(f"expected alarms/period like 1/30d, got {value!r}") from None
        period = parse_duration(span.strip())
    else:
        raise ValueError(f"expected alarms/period like 1/30d, got {value!r}")
    if not (math.isfinite(alarms) and alarms > 0 and period > 0):
        raise ValueError(f"both the alarms and the period must be greater than 0, got {value!r}")
    return alarms, period


def budget_text(budget: tuple[float, float]) -> str:
    return f"{budget[0]:g}/{duration_text(budget[1])}"
