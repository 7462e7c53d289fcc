"""The bucket grid behind the KS statistic: exact against scipy whatever the data, monotone,
and sorting little of a typical window; the Smirnov series against scipy's."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from lifecycled.core.ecdf import Scratch, grid_for, window_statistics
from lifecycled.core.kstest import (
    kolmogorov_sf,
    ks_two_sample,
    pelz_good_cdf,
    prob_outside_square,
    smirnov_sf,
)
from lifecycled.core.profile import bin_edges
from scipy import special, stats


def scipy_d(reference: np.ndarray, current: np.ndarray) -> float:
    """scipy's D before the exact method rounds it (method='asymp' reports it unrounded)."""
    with warnings.catch_warnings():  # its p-value for one-row samples divides by zero
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ks_2samp(reference, current, method="asymp").statistic)


def check(reference: np.ndarray, current: np.ndarray, buckets: int | None = None) -> float:
    """Assert D and the bin-edge counts are exact; return the share of the window sorted."""
    ordered = np.sort(reference)
    edges = bin_edges(ordered, 10)
    result = window_statistics(ordered, grid_for(ordered, buckets), edges, current)
    assert result.statistic == scipy_d(reference, current)
    expected = np.searchsorted(np.sort(current), edges, side="right")
    assert result.at_most.tolist() == expected.tolist()
    return result.sorted_share


def cases() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(7)
    return {
        "shifted": (rng.normal(0, 1, 20000), rng.normal(0.3, 1.2, 15000)),
        "same": (rng.normal(0, 1, 20000), rng.normal(0, 1, 20000)),
        "integers": (rng.integers(0, 10, 20000).astype(float),
                     rng.integers(0, 12, 9000).astype(float)),
        "zero_inflated": (np.where(rng.random(20000) < 0.9, 0.0, rng.normal(0, 1, 20000)),
                          np.where(rng.random(8000) < 0.8, 0.0, rng.normal(0, 1, 8000))),
        "lognormal": (rng.lognormal(0, 3, 20000), rng.lognormal(0.2, 3, 20000)),
        "cauchy": (rng.standard_cauchy(20000), rng.standard_cauchy(10000)),
        "disjoint": (rng.normal(0, 1, 3000), rng.normal(100, 1, 3000)),
        "extremes": (np.r_[rng.normal(0, 1, 3000), 1e300, -1e300, 5e-324],
                     np.r_[rng.normal(0, 1, 3000), 1.7e308, -1.7e308, -0.0, 0.0]),
        "constant_reference": (np.full(500, 2.0), rng.normal(2, 1, 400)),
        "two_values": (np.r_[np.zeros(600), np.ones(400)], np.r_[np.zeros(300), np.ones(700)]),
    }


@pytest.mark.parametrize("name", list(cases()))
@pytest.mark.parametrize("buckets", [None, 3, 7, 256])
def test_statistic_and_edge_counts_are_exact(name: str, buckets: int | None) -> None:
    reference, current = cases()[name]
    check(reference, current, buckets)


@pytest.mark.parametrize(("name", "at_most"), [
    ("shifted", 0.02), ("same", 0.02), ("integers", 0.01), ("zero_inflated", 0.02),
    ("lognormal", 0.2), ("cauchy", 0.1), ("disjoint", 0.0),
])
def test_the_grid_keeps_most_of_a_typical_window_unsorted(name: str, at_most: float) -> None:
    """Deterministic data: how much of the window the default grid had to sort. The
    statistic is exact whatever this share is; the share is what makes a check cheap."""
    reference, current = cases()[name]
    assert check(reference, current) <= at_most


values = st.one_of(
    st.integers(-5, 5).map(float),  # many ties
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.floats(-3, 3),
)


@settings(max_examples=300, deadline=None)
@given(arrays(np.float64, st.integers(1, 60), elements=values),
       arrays(np.float64, st.integers(1, 60), elements=values),
       st.sampled_from([None, 3, 4, 16, 1024]))
@pytest.mark.slow
def test_any_data_any_grid_gives_scipys_statistic(reference: np.ndarray, current: np.ndarray,
                                                  buckets: int | None) -> None:
    check(reference, current, buckets)


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, st.integers(1, 40), elements=values),
       arrays(np.float64, st.integers(1, 200), elements=values))
@pytest.mark.slow
def test_the_bucket_index_is_monotone(reference: np.ndarray, probe: np.ndarray) -> None:
    grid = grid_for(np.sort(reference))
    index = grid.index(np.sort(probe))
    assert np.all(np.diff(index) >= 0)
    assert index.min() >= 0 and index.max() < grid.buckets


def test_scratch_buffers_are_reused_without_changing_results() -> None:
    rng = np.random.default_rng(3)
    ordered = np.sort(rng.normal(0, 1, 5000))
    grid, edges, scratch = grid_for(ordered), bin_edges(ordered, 10), Scratch()
    for size in (4000, 1000, 4000):
        current = rng.normal(0.2, 1, size)
        shared = window_statistics(ordered, grid, edges, current, scratch)
        fresh = window_statistics(ordered, grid, edges, current)
        assert shared.statistic == fresh.statistic == scipy_d(ordered, current)
        assert shared.at_most.tolist() == fresh.at_most.tolist()


@pytest.mark.parametrize(("n", "nd2"), [
    (n, nd2) for n in (141, 1013, 5000, 50_000, 400_000)
    for nd2 in (2.2, 3.0, 10.0, 50.0, 150.0, 369.0) if nd2 < n  # D = sqrt(nd2 / n) < 1
])
@pytest.mark.slow
def test_smirnov_series_agrees_with_scipy(n: int, nd2: float) -> None:
    d = math.sqrt(nd2 / n)
    expected = special.smirnov(n, d)
    assert smirnov_sf(n, d) == pytest.approx(expected, rel=2e-9, abs=1e-300)


@pytest.mark.parametrize("n", [50, 141, 3000, 60_000, 500_000])
@pytest.mark.parametrize("nd2", [0.05, 0.5, 1.0, 2.19, 2.2, 5.0, 100.0, 369.9, 370.0, 5000.0])
@pytest.mark.slow
def test_kolmogorov_tail_agrees_with_scipy_in_every_range(n: int, nd2: float) -> None:
    d = min(math.sqrt(nd2 / n), 0.999)
    assert abs(kolmogorov_sf(d, n) - stats.kstwo.sf(d, n)) <= 1e-10


def test_values_near_the_float_limit_give_no_warning() -> None:
    reference = np.sort(np.r_[np.full(60, -1e308), np.linspace(-1, 1, 40) * 1e308])  # median -1e308
    current = np.array([1.7976931348623157e308, -1.7976931348623157e308, 1e308, -1e-308] * 30)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check(reference, current)
        check(reference, current, 3)


@settings(max_examples=400, deadline=None)
@given(n=st.integers(1, 10_000), share=st.floats(0.0, 1.0))
def test_exact_equal_size_tail_agrees_with_scipy(n: int, share: float) -> None:
    """ks_2samp's exact p-value for equal sizes, the same formula evaluated faster."""
    from scipy.stats._stats_py import _compute_prob_outside_square
    h = max(1, round(share * share * n))  # small h (p near 1) as often as large
    assert abs(prob_outside_square(n, h) - _compute_prob_outside_square(n, h)) <= 1e-9


@pytest.mark.parametrize(("n", "shift"), [(10_000, 0.0), (10_000, 0.02), (10_000, 0.3),
                                          (3001, 0.05), (17, 0.5)])
def test_equal_size_p_values_equal_ks_2samp(n: int, shift: float) -> None:
    rng = np.random.default_rng(n)
    reference, current = rng.normal(0, 1, n), rng.normal(shift, 1, n)
    expected = stats.ks_2samp(reference, current)
    d, p = ks_two_sample(np.sort(reference), np.sort(current))
    assert d == expected.statistic
    assert abs(p - expected.pvalue) <= 1e-9


@pytest.mark.parametrize("n", [141, 5000, 100_001, 500_000, 5_000_000])
@pytest.mark.parametrize("nd2", [0.001, 0.01, 0.1, 0.5, 1.0, 1.5, 2.19])
def test_pelz_good_series_agrees_with_scipy(n: int, nd2: float) -> None:
    from scipy.stats._ksstats import _kolmogn_PelzGood

    d = math.sqrt(nd2 / n)
    assert abs(pelz_good_cdf(n, d) - float(_kolmogn_PelzGood(n, d))) <= 1e-13


@given(arrays(np.float64, st.integers(0, 80), elements=st.floats(0.0, 1.0)))
def test_benjamini_hochberg_equals_scipy(p_values: np.ndarray) -> None:
    from lifecycled.core.drift import benjamini_hochberg

    found = benjamini_hochberg(p_values)
    if p_values.size:
        assert np.abs(found - stats.false_discovery_control(p_values)).max() <= 1e-12
    else:
        assert found.size == 0


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.integers(1, 400), st.integers(1, 400), st.floats(0.0, 1.5), st.integers(0, 2**32 - 1))
@pytest.mark.slow
def test_unequal_size_p_values_equal_ks_2samp(n1: int, n2: int, shift: float, seed: int) -> None:
    """The exact p-value of unequal sizes came from scipy's private routine; it is computed here
    (``outside_band``) and equals the public ks_2samp on the same data."""
    if n1 == n2:
        n2 += 1
    rng = np.random.default_rng(seed)
    reference, current = rng.normal(0, 1, n1), rng.normal(shift, 1, n2)
    expected = stats.ks_2samp(reference, current)
    d, p = ks_two_sample(np.sort(reference), np.sort(current))
    assert d == pytest.approx(expected.statistic, abs=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=1e-10, abs=1e-14)


@pytest.mark.parametrize(("n1", "n2", "share"), [(5000, 3000, 0.03), (10_000, 9_999, 0.03),
                                                 (10_000, 200, 0.03), (7, 10_000, 0.5)])
def test_unequal_size_tail_at_the_largest_exact_sizes_equals_ks_2samp(
        n1: int, n2: int, share: float) -> None:
    rng = np.random.default_rng(n1 + n2)
    reference, current = rng.normal(0, 1, n1), rng.normal(share, 1, n2)
    expected = stats.ks_2samp(reference, current)
    d, p = ks_two_sample(np.sort(reference), np.sort(current))
    assert d == pytest.approx(expected.statistic, abs=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-14)
