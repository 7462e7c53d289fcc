"""Value cleaning shared by every reader of a table's columns (outcome files, prediction logs,
pushed batches, drift samples, segments): the columns a reader needs, labels and segment values
as text, numbers, timestamps and ids, each refusal naming the source, the column and the row."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from lifecycled.errors import SourceError

LATEST_TIME = 32_503_680_000.0  # 3000-01-01 in seconds since the epoch
MAX_ID = 256  # characters of a prediction id


def require(where: str, data: Mapping[str, np.ndarray], needed: Iterable[str | None]) -> None:
    """SourceError naming the columns of ``needed`` (None: not needed) that ``data`` lacks."""
    missing = [c for c in needed if c and c not in data]
    if missing:
        raise SourceError(where, f"missing column(s) {', '.join(missing)}; found "
                                 f"{', '.join(data) or 'none'}")


def label_text(values: np.ndarray) -> np.ndarray:
    """Labels (or segment values) as str: 1.0 -> '1'; NaN/None -> None."""
    if values.dtype.kind == "f":
        out = np.empty(values.size, dtype=object)
        finite = np.isfinite(values)
        whole = finite & (values == np.round(values))
        out[whole] = values[whole].astype(np.int64).astype(str)
        out[finite & ~whole] = values[finite & ~whole].astype(str)
        out[~finite] = None
        return out
    return values.astype(object)


def text(values: np.ndarray) -> np.ndarray:
    """Segment values as str (1.0 -> '1'); missing (None, NaN, '') -> None."""
    out = label_text(values)
    out[out == ""] = None
    return out


def numeric(where: str, values: np.ndarray, column: str, what: str = "score") -> np.ndarray:
    """A column stored as numbers, as floats (NaN stays NaN); any other type names the
    column as ``what``."""
    if values.dtype.kind in "iu":
        return values.astype(float)
    if values.dtype.kind != "f":
        raise SourceError(where, f"{what} column {column!r} is not numeric")
    return values


def numbers(where: str, values: np.ndarray, column: str) -> np.ndarray:
    """A column of numbers as floats, numbers written as text included (None: NaN); anything
    else names the column: a regression model's outcomes are numbers."""
    if values.dtype.kind in "iuf":
        return values.astype(float)
    if values.dtype.kind == "b":
        raise SourceError(where, f"column {column!r} holds true/false values: a classifier's "
                                 "outcomes, not a regression model's")
    out = np.full(values.size, np.nan)
    for i, value in enumerate(values.tolist()):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            continue
        number = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):  # a stored prediction log holds its values as text
            try:
                number = float(value)
            except ValueError:
                number = None
        if number is None:
            raise SourceError(where, f"column {column!r} holds {value!r}, not a number: a "
                                     "regression model's outcomes are numbers")
        out[i] = number
    return out


def classes(where: str, values: np.ndarray, column: str) -> np.ndarray:
    """A classifier's labels as text; fractional numbers are refused: they are a regression
    model's outcomes."""
    if values.dtype.kind == "f":
        finite = values[np.isfinite(values)]
        if finite.size and not np.all(finite == np.round(finite)):
            raise SourceError(where, f"column {column!r} holds continuous values (such as "
                                     f"{finite[finite != np.round(finite)][0]:g}): a "
                                     "regression model's outcomes; set its model_type: "
                                     "regression")
    return label_text(values)


def timestamps(where: str, values: np.ndarray, column: str) -> np.ndarray:
    """Seconds since the epoch, each row a time between 1970 and 3000."""
    if values.dtype.kind != "f":
        raise SourceError(where, f"timestamp column {column!r} is not numeric or a time")
    bad = ~np.isfinite(values)
    if bad.any():
        raise SourceError(where, f"timestamp column {column!r} row {int(np.argmax(bad)) + 1} "
                                 f"has no time")
    outside = (values < 0) | (values > LATEST_TIME)
    if outside.any():
        row = int(np.argmax(outside))
        raise SourceError(where, f"timestamp column {column!r} row {row + 1} is "
                                 f"{values[row]:g}, not a time between 1970 and 3000 in "
                                 "seconds since the epoch (milliseconds?)")
    return values


def ids(where: str, values: np.ndarray, column: str) -> list[str]:
    """Row ids as text, none empty, none longer than ``MAX_ID`` characters."""
    found = label_text(values)
    missing = np.array([i is None for i in found], dtype=bool)
    if missing.any():
        raise SourceError(where, f"id column {column!r} row {int(np.argmax(missing)) + 1} is "
                                 f"empty")
    long = [n for n, i in enumerate(found) if len(str(i)) > MAX_ID]
    if long:
        raise SourceError(where, f"id column {column!r} row {long[0] + 1} is longer than "
                                 f"{MAX_ID} characters")
    return [str(i) for i in found]
