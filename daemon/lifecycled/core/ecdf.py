"""Exact two-sample KS statistic and bin counts of a current window against a sorted reference,
without sorting the whole window.

The reference carries a bucket grid. A value x is first mapped to
``t(x) = ±(bits(|x - c| + s) - bits(s))``, where bits() reads a float's IEEE pattern as an integer
(monotone for non-negative floats), c is the reference median and s its half interquartile range:
t is linear near c and logarithmic in the tails, so heavy-tailed columns spread over the buckets
too. Then ``index(x) = trunc(clip((t(x) - low) * scale, 1, B - 3/2))``, except that values below
or above the reference's range get the outer buckets 0 and B - 1. Every floating-point step is
monotone, so each bucket holds a contiguous run of values in both samples.

One pass over the window counts it per bucket. At the end of each bucket the ECDF difference is
then known exactly (it is the difference at the largest value of the bucket), which bounds D from
below; within a bucket both ECDFs can only move between their values at the bucket's ends, which
bounds the difference there from above. Only the buckets whose upper bound exceeds the lower bound
on D, and the buckets that hold a bin edge, are sorted and evaluated point by point. The result
is the same D as ``scipy.stats.ks_2samp`` bit for bit; the grid decides only how much of the
window gets sorted. A bucket tied on one value is counted instead, and the outer buckets, holding
no reference value, never need sorting; the worst case (most of the window packed into a few
buckets with many distinct values) sorts it all, as scipy does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

GRID_MIN, GRID_MAX = 256, 65_536
GRID_TAIL = 0.001  # the regular buckets span the reference's 0.1 % to 99.9 % quantiles


def _bits(value: float) -> int:
    return int(np.float64(value).view(np.int64))


class Scratch:
    """Buffers reused from one column to the next: a freshly allocated large array costs a page
    fault per page on first touch, more than the arithmetic done in it here."""

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}

    def get(self, name: str, size: int, dtype: type) -> np.ndarray:
        buffer = self._buffers.get(name)
        if buffer is None or buffer.size < size or buffer.dtype != dtype:
            buffer = self._buffers[name] = np.empty(size, dtype=dtype)
        return buffer[:size]


@dataclass(frozen=True)
class Grid:
    """Bucket grid of one reference column and the reference's cumulative count per bucket."""

    minimum: float  # the reference's range: values outside it go to the first and last bucket,
    maximum: float  # which hold no reference value and so never need sorting
    center: float
    spread: float  # > 0 and finite
    low: float
    scale: float  # >= 0 and finite; 0 puts everything in bucket 0
    cumulative: np.ndarray  # int64, number of reference values in buckets 0..j

    @property
    def buckets(self) -> int:
        return int(self.cumulative.size)

    def transform(self, values: np.ndarray, scratch: Scratch | None = None) -> np.ndarray:
        """t(x): monotone, linear near the center and logarithmic in the tails (float64)."""
        scratch = scratch or Scratch()
        with np.errstate(over="ignore"):  # near +-1.8e308 a step may round to inf: still monotone
            shifted = np.subtract(values, self.center,
                                  out=scratch.get("shifted", values.size, np.float64))
            key = np.abs(shifted, out=scratch.get("key", values.size, np.float64))
            key += self.spread
        ordinal = key.view(np.int64)
        ordinal -= _bits(self.spread)
        return np.copysign(ordinal, shifted, out=shifted)

    def index(self, values: np.ndarray, scratch: Scratch | None = None) -> np.ndarray:
        """Bucket of each finite value (a monotone function of the value). With ``scratch`` the
        result lives in its buffer until the next call."""
        scratch = scratch or Scratch()
        position = self.transform(values, scratch)
        position -= self.low
        with np.errstate(over="ignore"):
            position *= self.scale
        np.clip(position, 1.0, self.buckets - 1.5, out=position)
        index = scratch.get("index", values.size, np.intp)
        np.copyto(index, position, casting="unsafe")  # truncation, as astype
        if values.size and values.min() < self.minimum:
            np.putmask(index, values < self.minimum, 0)
        if values.size and values.max() > self.maximum:
            np.putmask(index, values > self.maximum, self.buckets - 1)
        return index


def grid_size(count: int) -> int:
    """Enough buckets that one holds a small fraction of the KS noise level 1/sqrt(n)."""
    wanted = 32 * math.sqrt(max(count, 1))
    return int(min(max(1 << math.ceil(math.log2(wanted)), GRID_MIN), GRID_MAX))


def _positive(*candidates: float) -> float:
    return next((c for c in candidates if math.isfinite(c) and c > 0), 1.0)


def grid_for(sorted_reference: np.ndarray, buckets: int | None = None) -> Grid:
    """Grid centred on the reference's median, its regular buckets spanning the 0.1 % to 99.9 %
    quantiles (the whole range if those coincide); values beyond fall into the buckets next to
    the two outer ones."""
    n = sorted_reference.size
    buckets = max(buckets or grid_size(n), 3)
    if n == 0:
        return Grid(0.0, 0.0, 0.0, 1.0, 0.0, 0.0, np.zeros(buckets, dtype=np.int64))
    def at(share: float) -> float:
        return float(sorted_reference[round(share * (n - 1))])
    with np.errstate(over="ignore", invalid="ignore"):
        spread = _positive((at(0.75) - at(0.25)) / 2, (at(1 - GRID_TAIL) - at(GRID_TAIL)) / 2,
                           (at(1.0) - at(0.0)) / 2)
        probe = Grid(at(0.0), at(1.0), at(0.5), spread, 0.0, 0.0, np.zeros(3, dtype=np.int64))
        low, high = probe.transform(np.array([at(GRID_TAIL), at(1 - GRID_TAIL)]))
        if not high > low:
            low, high = probe.transform(sorted_reference[[0, -1]])
        scale = (buckets - 2) / (high - low) if high > low else 0.0
    if math.isfinite(scale) and scale > 0:
        low -= 1 / scale  # the regular buckets are 1 .. B-2
    else:
        scale = 0.0
    grid = replace(probe, low=float(low), scale=scale, cumulative=np.zeros(buckets, dtype=np.int64))
    counts = np.bincount(grid.index(sorted_reference), minlength=buckets)
    return replace(grid, cumulative=np.cumsum(counts, dtype=np.int64))


def ks_sup(sorted_reference: np.ndarray, points: np.ndarray, n_current: int,
           before: np.ndarray | int = 0) -> float:
    """Largest |F_ref - F_cur| at the given current values and just below them.

    ``points`` is ascending and holds every copy of each value in it; ``before[i]`` is how many
    current values smaller than ``points[i]`` are not in ``points`` (0 when ``points`` is the
    whole window). F_cur - F_ref peaks at the last copy of a current value, F_ref - F_cur just
    below a current value (``#ref < v`` against ``#cur < v``). Each term is ``count / n`` as scipy
    computes it, so the maximum is bit for bit one of scipy's differences.
    """
    if points.size == 0:
        return 0.0
    n_ref = sorted_reference.size
    boundary = np.empty(points.size + 1, dtype=bool)
    boundary[0] = boundary[-1] = True
    np.not_equal(points[1:], points[:-1], out=boundary[1:-1])
    starts = np.flatnonzero(boundary[:-1])
    ends = np.flatnonzero(boundary[1:])
    values = points[starts]
    offset = before[starts] if isinstance(before, np.ndarray) else before
    cur_le = (offset + ends + 1) / n_current
    cur_lt = (offset + starts) / n_current
    ref_le = np.searchsorted(sorted_reference, values, side="right") / n_ref
    ref_lt = np.searchsorted(sorted_reference, values, side="left") / n_ref
    return float(max((cur_le - ref_le).max(), (ref_lt - cur_lt).max(), 0.0))


def ks_statistic(sorted_reference: np.ndarray, sorted_current: np.ndarray) -> float:
    """Two-sided KS statistic D of two ascending samples."""
    return ks_sup(sorted_reference, sorted_current, sorted_current.size)


@dataclass(frozen=True)
class WindowStatistics:
    statistic: float  # KS D
    at_most: np.ndarray  # number of current values <= each bin edge
    sorted_share: float  # share of the window that had to be sorted


def window_statistics(sorted_reference: np.ndarray, grid: Grid, edges: np.ndarray,
                      values: np.ndarray, scratch: Scratch | None = None) -> WindowStatistics:
    """KS D of finite ``values`` (any order) against the reference, and counts at the bin edges."""
    n_ref, n_cur = sorted_reference.size, values.size
    scratch = scratch or Scratch()
    index = grid.index(values, scratch)
    in_bucket = np.bincount(index, minlength=grid.buckets)
    cur_count = np.cumsum(in_bucket)
    smaller = cur_count - in_bucket  # current values in earlier buckets
    ref_cdf, cur_cdf = grid.cumulative / n_ref, cur_count / n_cur
    at_ends = ref_cdf - cur_cdf
    lower = max(float(at_ends.max()), float(-at_ends.min()), 0.0)
    ref_prev = np.concatenate(([0.0], ref_cdf[:-1]))
    cur_prev = np.concatenate(([0.0], cur_cdf[:-1]))
    # Rounding is monotone, so these float bounds hold for every float term inside the bucket.
    candidate = np.maximum(ref_cdf - cur_prev, cur_cdf - ref_prev) > lower
    edge_buckets = grid.index(edges)
    candidate[edge_buckets] = True
    chosen = np.take(candidate, index, out=scratch.get("chosen", n_cur, np.bool_))
    chosen_values, chosen_index = values[chosen], index[chosen]
    # A bucket's atom (a value tied many times, common in discrete and zero-inflated columns) is
    # counted, not sorted: its terms need only how many current values are below it and equal.
    atom = _atoms(sorted_reference, grid, candidate, chosen_values, chosen_index)
    is_atom = chosen_values == atom[chosen_index]
    copies = np.bincount(chosen_index[is_atom], minlength=grid.buckets)
    points = np.sort(chosen_values[~is_atom])
    point_buckets = grid.index(points)
    first = np.searchsorted(point_buckets, point_buckets, side="left")
    after_atom = np.where(points > atom[point_buckets], copies[point_buckets], 0)
    statistic = ks_sup(sorted_reference, points, n_cur, smaller[point_buckets] - first + after_atom)

    def below(limits: np.ndarray, buckets: np.ndarray, side: str) -> np.ndarray:
        """Current values below (side left) or up to (right) each limit in the given bucket."""
        in_points = (np.searchsorted(points, limits, side=side)  # type: ignore[call-overload]
                     - np.searchsorted(point_buckets, buckets, side="left"))
        counted = atom[buckets] <= limits if side == "right" else atom[buckets] < limits
        return smaller[buckets] + in_points + np.where(counted, copies[buckets], 0)

    tied = np.flatnonzero(copies)
    if tied.size:
        value = atom[tied]
        cur_lt = below(value, tied, "left") / n_cur
        cur_le = (below(value, tied, "left") + copies[tied]) / n_cur
        ref_le = np.searchsorted(sorted_reference, value, side="right") / n_ref
        ref_lt = np.searchsorted(sorted_reference, value, side="left") / n_ref
        statistic = max(statistic, float((cur_le - ref_le).max()), float((ref_lt - cur_lt).max()))
    return WindowStatistics(max(lower, statistic), below(edges, edge_buckets, "right"),
                            points.size / n_cur if n_cur else 0.0)


def _atoms(sorted_reference: np.ndarray, grid: Grid, candidate: np.ndarray, values: np.ndarray,
           index: np.ndarray) -> np.ndarray:
    """Per bucket, the value it is tied on, else NaN: the reference's only value in the bucket,
    or, where the reference has none there, the current window's only value there."""
    atom = np.full(grid.buckets, np.nan)
    buckets = np.flatnonzero(candidate)
    end = grid.cumulative[buckets]
    start = end - np.diff(grid.cumulative, prepend=0)[buckets]
    has_ref = end > start
    ref_low = sorted_reference[np.where(has_ref, start, 0)]
    ref_high = sorted_reference[np.where(has_ref, end - 1, 0)]
    atom[buckets[has_ref & (ref_low == ref_high)]] = ref_low[has_ref & (ref_low == ref_high)]
    smallest = np.full(grid.buckets, np.inf)
    largest = np.full(grid.buckets, -np.inf)
    np.minimum.at(smallest, index, values)
    np.maximum.at(largest, index, values)
    only = buckets[~has_ref & (smallest[buckets] == largest[buckets])]
    atom[only] = smallest[only]
    return atom
