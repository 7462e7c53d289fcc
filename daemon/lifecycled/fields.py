"""The scalar field types of the configuration and the API's bodies, for pydantic: durations,
sizes, ratios and budgets parsed by ``units`` into base units, names, and text that cannot forge
a log line, a header or a table row."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

from lifecycled.units import (
    check_positive,
    check_ratio,
    parse_budget,
    parse_duration,
    parse_ratio,
    parse_size,
)

Duration = Annotated[float, BeforeValidator(parse_duration)]
PositiveDuration = Annotated[float, BeforeValidator(parse_duration), AfterValidator(check_positive)]
Size = Annotated[float, BeforeValidator(parse_size)]
Budget = Annotated[tuple[float, float], BeforeValidator(parse_budget)]  # (alarms, seconds)
Ratio = Annotated[float, BeforeValidator(parse_ratio), AfterValidator(check_ratio)]
# a share that may exceed 1 (a MAPE of 150 %): 1.5 or "150%"
Share = Annotated[float, BeforeValidator(parse_ratio), Field(ge=0)]
NonNegative = Annotated[float, Field(ge=0)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")]


def _no_control(value: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("control characters (a line break, say) are not allowed")
    return value


_CREDENTIALS = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*@")


def _no_credentials(value: str) -> str:
    if _CREDENTIALS.match(value):
        raise ValueError("credentials may not be written in a URL (they would be shown and "
                         "logged): give them in a *_file or *_env key, or the environment")
    return value


def _http(value: str) -> str:
    if not re.match(r"^https?://", value):
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
    return value


# an http(s) URL: no control characters, no user:password@
HttpUrl = Annotated[str, AfterValidator(_no_control), AfterValidator(_http),
                    AfterValidator(_no_credentials)]
# a local path, glob or URL of data (s3://, gs://, ...): no control characters or credentials
DataPath = Annotated[str, AfterValidator(_no_control), AfterValidator(_no_credentials)]
# HTTP header names and values: a line break would start another header
Header = Annotated[str, AfterValidator(_no_control)]
# metadata printed in tables and logs: a terminal escape or line break would forge output
Text = Annotated[str, AfterValidator(_no_control)]


def _prose(value: str) -> str:
    _no_control(value.replace("\n", " ").replace("\t", " "))
    return value


Prose = Annotated[str, AfterValidator(_prose)]  # as Text, with line breaks and tabs
