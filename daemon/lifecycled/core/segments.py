"""Segments: the rows of each value of a segment column (``segment_by``), so drift, quality,
coverage and the estimate can be judged per channel or region as well as for the whole model.

Each column is segmented on its own (``channel=web``, ``region=eu``), not by combinations, so a
model with ``segment_by: [channel, region]`` has at most ``2 * (top + 1)`` segments. The ``top``
most frequent values of a column (in the rows being judged; ties by value) are segments of their
own; every other value, and a missing one, falls in ``column=other``. A value spelled ``other``
counts there too, so the label never means two things.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

OTHER = "other"


def label(column: str, value: str) -> str:
    """The ``segment`` label of a column's value: ``channel=web``."""
    return f"{column}={value}"


def top_values(values: np.ndarray, top: int) -> list[str]:
    """The ``top`` most frequent values of ``values`` (text)."""
    found, counts = np.unique(np.array([v for v in values.tolist() if v is not None],
                                       dtype=object), return_counts=True)
    return top_of(dict(zip(found.tolist(), counts.tolist(), strict=True)), top)


def top_of(counts: Mapping[str | None, int], top: int) -> list[str]:
    """The ``top`` values with the most rows (most first, ties by value), never OTHER or
    missing."""
    ranked = sorted(((-n, str(v)) for v, n in counts.items() if v is not None and v != OTHER))
    return [v for _, v in ranked[:top]]


def masks(values: np.ndarray, chosen: Sequence[str]) -> dict[str, np.ndarray]:
    """{value: row mask} of ``values`` (text): each chosen value's rows, then the rest as OTHER
    (always present, so a second sample split on the first's choice has the same segments)."""
    found: dict[str, np.ndarray] = {}
    rest = np.ones(values.size, dtype=bool)
    for value in chosen:
        found[value] = mask = values == value
        rest &= ~mask
    found[OTHER] = rest
    return found
