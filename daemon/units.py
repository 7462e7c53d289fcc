"""Scalar types of the configuration: durations, sizes and ratios as written in YAML, turned
into base units (seconds, bytes, 0-1) by pydantic validators."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$")
_SIZE_UNITS = {
    "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
    "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40,
}


def parse_duration(value: Any) -> float:
    """Parse ``90s``, ``5m``, ``12h``, ``7d``, ``80ms`` (or a bare number of seconds) to seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 90s, 5m, 12h, 7d or 80ms, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION_RE.match(value)):
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    else:
        raise ValueError(f"expected a duration like 90s, 5m, 12h, 7d or 80ms, got {value!r}")
    if seconds < 0:
        raise ValueError(f"must not be negative, got {value!r}")
    return seconds


def parse_size(value: Any) -> float:
    """Parse ``2048MiB``, ``2GB`` (or a bare number of bytes) to bytes."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size like 512MiB or 2GB, got {value!r}")
    if isinstance(value, int | float):
        size = float(value)
    elif isinstance(value, str) and (match := _SIZE_RE.match(value)):
        size = float(match.group(1)) * _SIZE_UNITS[match.group(2)]
    else:
        raise ValueError(f"expected a size like 512MiB or 2GB, got {value!r}")
    if size < 0:
        raise ValueError(f"must not be negative, got {value!r}")
    return size


def parse_ratio(value: Any) -> Any:
    """Accept ``80%`` as 0.8; leave numbers for the range check."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return float(value.strip()[:-1]) / 100.0
        except ValueError:
            raise ValueError(f"expected a ratio like 0.8 or 80%, got {value!r}") from None
    return value


def _check_ratio(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"must be between 0 and 1, got {value:g}")
    return value


def _check_positive(value: float) -> float:
    if value <= 0:
        raise ValueError(f"must be greater than 0, got {value:g}")
    return value


Duration = Annotated[float, BeforeValidator(parse_duration)]
PositiveDuration = Annotated[float, BeforeValidator(parse_duration), AfterValidator(_check_positive)]
Size = Annotated[float, BeforeValidator(parse_size)]
Ratio = Annotated[float, BeforeValidator(parse_ratio), AfterValidator(_check_ratio)]
NonNegative = Annotated[float, Field(ge=0)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")]
