"""Distributions known only as histogram buckets (Prometheus classic ``_bucket{le}`` series or
native histograms): brought onto the edges both sides share, and the KS distance bracketed from
the cumulative counts at those edges.

A bucket with upper edge ``e`` counts the values ``<= e`` (classic ``le``); the last edge is
``+Inf``. Counts may be fractional (PromQL's ``increase`` extrapolates).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Histogram:
    """Cumulative counts at ascending upper edges; the last edge is +inf (all values)."""

    edges: np.ndarray
    cumulative: np.ndarray

    @property
    def total(self) -> float:
        return float(self.cumulative[-1]) if self.cumulative.size else 0.0


def from_cumulative(edges: Sequence[float], cumulative: Sequence[float]) -> Histogram:
    """A classic histogram from its ``le`` edges and cumulative counts (any order; +Inf added
    with the largest count when missing). ValueError for counts that are not finite and
    non-negative. A count below the one before (series scraped at different moments) is raised
    to it."""
    pairs = sorted(zip((float(e) for e in edges), (float(c) for c in cumulative), strict=True))
    if any(math.isnan(e) for e, _ in pairs):
        raise ValueError("a bucket edge is NaN")
    if any(not math.isfinite(c) or c < 0 for _, c in pairs):
        raise ValueError("a bucket count is not a finite non-negative number")
    found = np.array([e for e, _ in pairs], dtype=float)
    counts = np.maximum.accumulate(np.array([c for _, c in pairs], dtype=float)) \
        if pairs else np.zeros(0)
    if not found.size or found[-1] != math.inf:
        found = np.append(found, math.inf)
        counts = np.append(counts, counts[-1] if counts.size else 0.0)
    return Histogram(found, counts)


def from_intervals(intervals: Sequence[tuple[float, float, float]]) -> Histogram:
    """A histogram from (lower, upper, count) intervals that do not overlap (a native
    histogram's buckets; gaps hold nothing). Each interval counts as ``(lower, upper]``."""
    ordered = sorted((float(lo), float(hi), float(n)) for lo, hi, n in intervals)
    for (_, hi, _), (lo, _, _) in itertools.pairwise(ordered):
        if lo < hi:
            raise ValueError("histogram buckets overlap")
    if any(not math.isfinite(n) or n < 0 for _, _, n in ordered):
        raise ValueError("a bucket count is not a finite non-negative number")
    edges: list[float] = []
    cumulative: list[float] = []
    total = 0.0
    for lower, upper, count in ordered:
        if not edges or edges[-1] < lower:
            edges.append(lower)  # nothing at or below the bucket's lower edge beyond the total
            cumulative.append(total)
        total += count
        edges.append(upper)
        cumulative.append(total)
    return from_cumulative(edges, cumulative)


def on_shared_edges(a: Histogram, b: Histogram) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The edges both histograms have (+inf always), and each side's bucket counts between
    them: exact, as a cumulative count at a shared edge is known on both sides."""
    shared = np.intersect1d(a.edges, b.edges)
    counts = []
    for side in (a, b):
        at = side.cumulative[np.searchsorted(side.edges, shared)]
        counts.append(np.diff(at, prepend=0.0))
    return shared, counts[0], counts[1]


def ks_bracket(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Where the KS distance D between the two samples lies, from their bucket counts on the
    same edges: at least the largest gap between the cumulative shares at an edge, at most the
    largest gap a bucket allows (one side's share at its upper edge against the other's at its
    lower edge)."""
    f = np.concatenate(([0.0], np.cumsum(reference) / reference.sum()))
    g = np.concatenate(([0.0], np.cumsum(current) / current.sum()))
    f[-1] = g[-1] = 1.0
    low = float(np.max(np.abs(f - g)))
    high = float(max(np.max(f[1:] - g[:-1]), np.max(g[1:] - f[:-1])))
    return low, max(low, min(1.0, high))
