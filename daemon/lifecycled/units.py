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
    "B": 1.0, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
    "KiB": 2.0**10, "MiB": 2.0**20, "GiB": 2.0**30, "TiB": 2.0**40,
}


def _quantity(value: Any, pattern: re.Pattern[str], units: dict[str, float], example: str
              ) -> float:
    """A bare number, or a number with one of ``units``, in base units; never negative."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        amount = float(value)
    elif isinstance(value, str) and (match := pattern.match(value)):
        amount = float(match.group(1)) * units[match.group(2)]
    else:
        raise ValueError(f"expected {example}, got {value!r}")
    if amount < 0:
        raise ValueError(f"must not be negative, got {value!r}")
    return amount


def parse_duration(value: Any) -> float:
    """Parse ``90s``, ``5m``, ``12h``, ``7d``, ``80ms`` (or a bare number of seconds) to seconds."""
    return _quantity(value, _DURATION_RE, _DURATION_UNITS,
                     "a duration like 90s, 5m, 12h, 7d or 80ms")


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
