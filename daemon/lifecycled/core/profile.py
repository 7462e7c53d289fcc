"""Reference profiles: each reference column summarised once (sorted finite values, bin edges and
counts, the bucket grid of ``lifecycled.core.ecdf``; category counts for categorical columns), so a
drift check pays only for the current window."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from lifecycled.core.ecdf import Grid, grid_for
from lifecycled.domain import DriftPolicy


@dataclass(frozen=True)
class NumericProfile:
    sorted_values: np.ndarray  # finite reference values, ascending
    edges: np.ndarray  # interior bin edges (reference quantiles, de-duplicated)
    counts: np.ndarray  # reference counts per bin (len(edges) + 1)
    rows: int  # rows including missing
    missing: int  # NaN and +-inf removed
    grid: Grid  # buckets that let a check avoid sorting the current window


@dataclass(frozen=True)
class CategoricalProfile:
    categories: tuple[str, ...]
    counts: np.ndarray
    rows: int
    missing: int


Profile = NumericProfile | CategoricalProfile


@dataclass(frozen=True)
class ReferenceProfile:
    features: Mapping[str, Profile]
    bins: int


def is_numeric(values: np.ndarray) -> bool:
    """Return True when ``values`` holds numbers (bool counts as categorical)."""
    return values.dtype.kind in "iuf"


def bin_edges(sorted_reference: np.ndarray, bins: int) -> np.ndarray:
    """Interior edges: reference quantiles at k/B, k = 1..B-1 (numpy default), de-duplicated.

    Ties: when de-duplication leaves fewer edges than asked, a reference with at most B distinct
    values is binned on those values (each value a bin of its own), and otherwise every value
    holding more than 1/B of the reference becomes a bin of its own (edges just below it and at
    it), so a shift onto or off a majority value shows, and the rest of the values get quantile
    bins of their own, so a change among them shows too (92 % zeros: the amounts are binned as
    if alone). Continuous data keep the quantile edges.
    """
    if sorted_reference.size == 0:
        return np.empty(0)
    edges = _quantile_edges(sorted_reference, bins)
    if edges.size >= bins - 1:
        return edges
    values, counts = np.unique(sorted_reference, return_counts=True)
    if values.size <= bins:
        return values
    heavy = values[counts * bins > sorted_reference.size]
    rest = sorted_reference[~np.isin(sorted_reference, heavy)]
    return np.unique(np.concatenate((edges, _quantile_edges(rest, bins), heavy,
                                     np.nextafter(heavy, -np.inf))))


def _quantile_edges(sorted_values: np.ndarray, bins: int) -> np.ndarray:
    """The de-duplicated quantiles at k/B, k = 1..B-1, of an ascending array (none if empty)."""
    if sorted_values.size == 0:
        return np.empty(0)
    shares = np.arange(1, bins) / bins
    with np.errstate(over="ignore", invalid="ignore"):
        edges = np.quantile(sorted_values, shares)
    if not np.isfinite(edges).all():  # interpolating between values near +-1.8e308 overflowed
        edges = np.quantile(sorted_values, shares, method="lower")
    return np.unique(edges)


def bin_counts(sorted_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin (-inf, e1], (e1, e2], ..., (e_last, inf) of an ascending array."""
    cumulative = np.searchsorted(sorted_values, edges, side="right")
    return np.diff(np.concatenate(([0], cumulative, [sorted_values.size])))


def categories(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Return the present category labels (as str) and how many values were missing."""
    labels = np.asarray(values, dtype=object)
    present = np.array([v is not None and not (isinstance(v, float) and np.isnan(v))
                        and v != "" for v in labels], dtype=bool) if labels.size else np.zeros(0, bool)
    # Python strings in an object array: a fixed-width str array would hold every row at the
    # width of the longest value (one 40,000-character cell made a 256 KB file take 3 GB)
    kept = np.fromiter((str(v) for v in labels[present]), dtype=object, count=int(present.sum()))
    return kept, int(labels.size - present.sum())


def profile_feature(values: np.ndarray, *, categorical: bool, bins: int) -> Profile:
    """Summarise one reference column."""
    if categorical:
        labels, missing = categories(values)
        cats, counts = np.unique(labels, return_counts=True)
        return CategoricalProfile(tuple(str(c) for c in cats), counts, int(values.size), missing)
    kept = sorted_finite(values)
    edges = bin_edges(kept, bins)
    return NumericProfile(kept, edges, bin_counts(kept, edges), int(values.size),
                          int(values.size - kept.size), grid_for(kept))


def build_profile(reference: Mapping[str, np.ndarray], categorical: Sequence[str] = (), *,
                  bins: int = DriftPolicy.bins) -> ReferenceProfile:
    """Summarise every reference column; non-numeric columns are always categorical."""
    features = {
        name: profile_feature(values, categorical=name in categorical or not is_numeric(values),
                              bins=bins)
        for name, values in reference.items()
    }
    return ReferenceProfile(features, bins)


def sorted_finite(values: np.ndarray) -> np.ndarray:
    """Sort ``values`` as float64 and drop -inf (first), +inf and NaN (last) by slicing."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    low = np.searchsorted(ordered, -np.inf, side="right")
    high = np.searchsorted(ordered, np.inf, side="left")
    return ordered[low:high]


def finite(values: np.ndarray) -> np.ndarray:
    """``values`` as float64 without NaN and +-inf (no copy when there is nothing to drop)."""
    numbers = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(numbers)
    return numbers if keep.all() else numbers[keep]
