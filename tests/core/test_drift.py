"""Drift statistics: agreement with scipy and with the definitions, properties, reason codes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from lifecycled.core.drift import (
    Reason,
    chi_square,
    compare,
    compare_categorical,
    js_distance,
    psi,
    severity_of,
)
from lifecycled.core.kstest import ks_two_sample
from lifecycled.core.profile import (
    bin_counts,
    bin_edges,
    build_profile,
    categories,
    profile_feature,
)
from lifecycled.domain import DriftPolicy, Severity
from scipy import stats
from scipy.spatial.distance import jensenshannon

SETTINGS = DriftPolicy(min_samples=1)


def judge(reference: np.ndarray, current: np.ndarray, **kw: object) -> object:
    s = DriftPolicy(**{"min_samples": 1, **kw})  # type: ignore[arg-type]
    (verdict,) = compare(build_profile({"x": reference}, bins=s.bins), {"x": current}, s).features
    return verdict


def plain_psi(reference: np.ndarray, current: np.ndarray, bins: int = 10,
              edges: np.ndarray | None = None) -> float:
    """PSI written from DESIGN.md's definition, independently of the engine (on the reference's
    quantile edges unless ``edges`` are given)."""
    if edges is None:
        edges = np.unique(np.quantile(reference, [k / bins for k in range(1, bins)]))
    def shares(values: np.ndarray) -> np.ndarray:
        counts = [np.sum(values <= edges[0])]
        counts += [np.sum((values > lo) & (values <= hi)) for lo, hi in itertools.pairwise(edges)]
        counts += [np.sum(values > edges[-1])]
        return np.array(counts) / len(values)
    r, c = shares(reference), shares(current)
    r = np.where(r == 0, 1e-4, r)
    c = np.where(c == 0, 1e-4, c)
    return float(sum((ci - ri) * np.log(ci / ri) for ri, ci in zip(r, c, strict=False)))


# --- agreement ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("n_ref", "n_cur", "shift"), [
    (200, 300, 0.1), (1000, 1000, 0.1), (5000, 20000, 0.1), (30000, 12000, 0.1),
    (30000, 30000, 0.05),  # asymptotic p-value in the Smirnov-series range (2.2 <= n D^2 < 370)
    (200_000, 150_000, 0.01),
])
def test_ks_equals_scipy_exact_and_asymptotic(n_ref: int, n_cur: int, shift: float) -> None:
    rng = np.random.default_rng(n_ref + n_cur)
    reference, current = rng.normal(0, 1, n_ref), rng.normal(shift, 1.1, n_cur)
    expected = stats.ks_2samp(reference, current)
    verdict = judge(reference, current)  # the engine's path: bucket grid, partial sort
    assert abs(verdict.statistic - expected.statistic) <= 1e-12
    assert abs(verdict.p_value - expected.pvalue) <= 1e-9
    d, p = ks_two_sample(np.sort(reference), np.sort(current))  # both samples sorted
    assert (d, p) == (verdict.statistic, verdict.p_value)


@pytest.mark.parametrize("kind", ["integers", "zero_inflated", "lognormal", "outside_range"])
def test_ks_with_ties_heavy_tails_and_new_ranges_equals_scipy(kind: str) -> None:
    rng = np.random.default_rng(1)
    if kind == "integers":
        reference = rng.integers(0, 20, 40000).astype(float)
        current = rng.integers(0, 22, 15000).astype(float)
    elif kind == "zero_inflated":
        reference = np.where(rng.random(40000) < 0.8, 0.0, rng.lognormal(3, 1, 40000))
        current = np.where(rng.random(15000) < 0.7, 0.0, rng.lognormal(3.2, 1, 15000))
    elif kind == "lognormal":
        reference, current = rng.lognormal(0, 3, 40000), rng.lognormal(0.1, 3, 15000)
    else:
        reference = rng.normal(0, 1, 40000)
        current = np.concatenate([rng.normal(-8, 1, 5000), rng.normal(0, 1, 5000),
                                  rng.normal(9, 1, 5000)])
    expected = stats.ks_2samp(reference, current)
    verdict = judge(reference, current)
    assert abs(verdict.statistic - expected.statistic) <= 1e-12
    assert abs(verdict.p_value - expected.pvalue) <= 1e-9
    edges = None
    if kind == "zero_inflated":  # 0 holds 80 %: its own bin, and the rest binned as if alone
        shares = [k / 10 for k in range(1, 10)]
        rest = reference[reference != 0]
        edges = np.unique(np.concatenate((np.quantile(reference, shares),
                                          np.quantile(rest, shares), [np.nextafter(0, -1), 0])))
    assert verdict.psi == pytest.approx(plain_psi(reference, current, edges=edges), abs=1e-12)


def test_psi_and_js_match_their_definitions() -> None:
    rng = np.random.default_rng(2)
    reference, current = rng.normal(0, 1, 4000), rng.normal(0.5, 1.3, 3000)
    verdict = judge(reference, current)
    assert verdict.psi == pytest.approx(plain_psi(reference, current), abs=1e-12)
    edges = bin_edges(np.sort(reference), 10)
    r = bin_counts(np.sort(reference), edges) / reference.size
    c = bin_counts(np.sort(current), edges) / current.size
    assert verdict.js == pytest.approx(jensenshannon(r, c, base=2), abs=1e-12)


def test_edges_values_fall_in_the_lower_bin_and_outer_bins_are_open() -> None:
    edges = np.array([1.0, 2.0])
    assert list(bin_counts(np.array([-100.0, 1.0, 1.5, 2.0, 2.5, 1e9]), edges)) == [2, 2, 2]


def test_duplicate_edges_are_removed_and_few_values_get_a_bin_each() -> None:
    reference = np.sort(np.array([0.0] * 80 + [1.0] * 20))
    # deciles 0.1..0.7 are 0, 0.8 interpolates to 0.2, 0.9 is 1: three edges after de-duplication,
    # fewer than asked; two distinct values <= 10 bins: each value is a bin of its own
    assert list(bin_edges(reference, 10)) == [0.0, 1.0]
    assert list(bin_counts(reference, bin_edges(reference, 10))) == [80, 20, 0]


def test_continuous_data_keep_the_quantile_edges() -> None:
    rng = np.random.default_rng(3)
    for values in (rng.normal(size=1000), rng.exponential(size=5000), rng.uniform(size=37)):
        ordered = np.sort(values)
        expected = np.unique(np.quantile(ordered, np.arange(1, 10) / 10))
        assert np.array_equal(bin_edges(ordered, 10), expected)


def test_a_heavy_value_among_many_gets_a_bin_of_its_own() -> None:
    rng = np.random.default_rng(4)
    reference = np.sort(np.concatenate([np.zeros(6000), rng.normal(size=4000)]))
    edges = bin_edges(reference, 10)
    counts = bin_counts(reference, edges)
    zero_bin = int(np.searchsorted(edges, 0.0))  # the bin (nextafter(0, -inf), 0]
    assert edges[zero_bin] == 0.0 and edges[zero_bin - 1] == np.nextafter(0.0, -np.inf)
    assert counts[zero_bin] == 6000


def test_a_shift_onto_a_majority_value_shows_in_psi_and_js() -> None:
    """A 0/1 column whose share of 0 rises from 5 % to 30 % (issue: PSI = JS = 0 before)."""
    rng = np.random.default_rng(5)
    reference = (rng.random(10_000) >= 0.05).astype(float)
    current = (rng.random(10_000) >= 0.30).astype(float)
    (verdict,) = compare(build_profile({"x": reference}), {"x": current}, SETTINGS).features
    assert verdict.psi is not None and verdict.psi > 0.25
    assert verdict.js is not None and verdict.js > 0.2
    assert verdict.severity is not None and verdict.severity >= Severity.HIGH


def test_psi_floors_zero_shares() -> None:
    value = psi(np.array([0.5, 0.5, 0.0]), np.array([0.5, 0.0, 0.5]))
    expected = (1e-4 - 0.5) * np.log(1e-4 / 0.5) + (0.5 - 1e-4) * np.log(0.5 / 1e-4)
    assert value == pytest.approx(expected)


def test_seed_demo_case() -> None:
    """Reference N(0, 1) vs current N(0.3, 1.2), 1000 each, seed 42: the seed's rule calls its
    composite of 0.13 low; the tiers see D, PSI and JS all past 0.10 with p < 1e-6: medium."""
    rng = np.random.default_rng(42)
    reference, current = rng.normal(0, 1, 1000), rng.normal(0.3, 1.2, 1000)
    seed = judge(reference, current, min_samples=100, rule="seed")
    assert seed.statistic == pytest.approx(stats.ks_2samp(reference, current).statistic,
                                           abs=1e-12)
    assert seed.severity == Severity.LOW
    assert 0.12 < seed.score < 0.14
    tiers = judge(reference, current, min_samples=100)
    assert tiers.severity == Severity.MEDIUM
    assert set(tiers.counted) == {"D: medium", "PSI: medium", "JS: medium"}
    assert tiers.score == seed.score


def test_a_million_stationary_rows_stay_low_even_with_a_small_p_value() -> None:
    rng = np.random.default_rng(7)
    reference = rng.normal(0, 1, 1_000_000)
    current = rng.normal(0.01, 1, 1_000_000)  # tiny real shift: KS p-value is tiny at this n
    verdict = judge(reference, current)
    assert verdict.p_value < 1e-3
    assert verdict.severity == Severity.LOW


@pytest.mark.parametrize(("score", "expected"), [
    (0.0, Severity.LOW), (0.3, Severity.LOW), (0.31, Severity.MEDIUM), (0.5, Severity.MEDIUM),
    (0.51, Severity.HIGH), (0.7, Severity.HIGH), (0.71, Severity.CRITICAL), (5.0, Severity.CRITICAL),
])
def test_severity_tiers(score: float, expected: Severity) -> None:
    assert severity_of(score) == expected


# --- properties -----------------------------------------------------------------------------------

samples = arrays(np.float64, st.integers(5, 300),
                 elements=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False))


@settings(max_examples=60, deadline=None)
@given(samples)
def test_identical_samples_never_drift(values: np.ndarray) -> None:
    assume(np.unique(values).size > 1)
    verdict = judge(values, values.copy())
    assert (verdict.statistic, verdict.psi, verdict.js) == (0.0, 0.0, 0.0)
    assert verdict.severity == Severity.LOW


@pytest.mark.filterwarnings("ignore:ks_2samp. Exact calculation unsuccessful")
@settings(max_examples=60, deadline=None)
@given(samples, samples, st.randoms(use_true_random=False))
@pytest.mark.slow
def test_row_order_does_not_matter(reference: np.ndarray, current: np.ndarray, rnd: object) -> None:
    assume(np.unique(reference).size > 1)
    first = judge(reference, current)
    shuffled = current.copy()
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    again = judge(reference[::-1].copy(), shuffled)
    assert (first.statistic, first.psi, first.js) == (again.statistic, again.psi, again.js)


@settings(max_examples=80, deadline=None)
@given(arrays(np.float64, 6, elements=st.floats(0, 1)), arrays(np.float64, 6, elements=st.floats(0, 1)))
def test_js_is_symmetric_and_bounded(a: np.ndarray, b: np.ndarray) -> None:
    assume(a.sum() > 0 and b.sum() > 0)
    value = js_distance(a / a.sum(), b / b.sum())
    assert 0.0 <= value <= 1.0
    assert value == pytest.approx(js_distance(b / b.sum(), a / a.sum()), abs=1e-12)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(arrays(np.float64, st.integers(1, 40), elements=st.floats(0, 1e6)),
       st.integers(0, 2**32 - 1))
def test_js_equals_scipy_on_any_shares(a: np.ndarray, seed: int) -> None:
    """js_distance is computed here (importing scipy.spatial cost every drift command 0.2 s):
    it equals scipy's jensenshannon, base 2, zeros and unnormalised counts included."""
    rng = np.random.default_rng(seed)
    b = rng.permutation(a) * rng.choice([0.0, 1.0, 2.5], a.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = float(jensenshannon(a, b, base=2))
    expected = 0.0 if np.isnan(expected) else min(max(expected, 0.0), 1.0)
    assert js_distance(a, b) == pytest.approx(expected, abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.0, 2.0), st.floats(0.01, 1.0))
def test_a_growing_mean_shift_never_lowers_d(seed: int, shift: float, more: float) -> None:
    rng = np.random.default_rng(seed)
    reference = rng.normal(0, 1, 400)
    smaller = judge(reference, reference + shift).statistic
    larger = judge(reference, reference + shift + more).statistic
    assert larger >= smaller - 1e-12


# --- robustness and reason codes ------------------------------------------------------------------

def test_nan_and_inf_are_removed_and_counted() -> None:
    rng = np.random.default_rng(3)
    reference = rng.normal(0, 1, 1000)
    current = np.concatenate([rng.normal(0, 1, 900), [np.nan] * 50, [np.inf, -np.inf] * 25])
    verdict = judge(reference, current)
    assert verdict.current_missing_share == pytest.approx(0.1)
    assert verdict.reference_missing_share == 0.0
    finite = current[np.isfinite(current)]
    assert verdict.statistic == pytest.approx(stats.ks_2samp(reference, finite).statistic, abs=1e-12)


def reasons(reference: dict[str, np.ndarray], current: dict[str, np.ndarray],
            features: list[str] | None = None, min_samples: int = 100) -> dict[str, Reason | None]:
    s = DriftPolicy(min_samples=min_samples)
    result = compare(build_profile(reference), current, s, features=features)
    return {f.feature: f.reason for f in result.features}


def test_every_reason_code_and_the_other_features_are_still_judged() -> None:
    rng = np.random.default_rng(4)
    good = rng.normal(0, 1, 500)
    reference = {
        "good": good, "few": rng.normal(0, 1, 500), "empty_cur": good,
        "nan": good, "const": np.full(500, 3.0), "typed": good, "only_ref": good,
    }
    current = {
        "good": rng.normal(0, 1, 500), "few": rng.normal(0, 1, 50),
        "empty_cur": np.empty(0), "nan": np.full(500, np.nan), "const": np.full(500, 3.0),
        "typed": np.array(["a"] * 500, dtype=object), "only_cur": good,
    }
    found = reasons(reference, current, features=[
        "good", "few", "empty_cur", "nan", "const", "typed", "only_ref", "only_cur"])
    assert found == {
        "good": None, "few": Reason.INSUFFICIENT_SAMPLES, "empty_cur": Reason.EMPTY,
        "nan": Reason.ALL_MISSING, "const": Reason.CONSTANT, "typed": Reason.TYPE_MISMATCH,
        "only_ref": Reason.MISSING_COLUMN, "only_cur": Reason.MISSING_COLUMN,
    }


def test_unjudged_features_carry_no_numbers() -> None:
    result = compare(build_profile({"x": np.full(200, 1.0)}), {"x": np.full(200, 1.0)},
                     DriftPolicy())
    (verdict,) = result.features
    assert verdict.reason == Reason.CONSTANT
    assert (verdict.statistic, verdict.p_value, verdict.psi, verdict.js, verdict.score) == (
        None, None, None, None, None)
    assert result.drifted_share is None and result.judged == 0


def test_categorical_chi_square_keeps_unseen_categories() -> None:
    reference = np.array(["a"] * 300 + ["b"] * 300, dtype=object)
    current = np.array(["a"] * 250 + ["b"] * 250 + ["new"] * 100, dtype=object)
    (verdict,) = compare(build_profile({"c": reference}), {"c": current}, DriftPolicy()).features
    table = np.array([[300, 300, 0], [250, 250, 100]])
    chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
    assert verdict.chi2 == pytest.approx(chi2) and verdict.p_value == pytest.approx(p)
    r, c = table[0] / 600, table[1] / 600
    assert verdict.js == pytest.approx(jensenshannon(r, c, base=2))
    assert verdict.statistic == pytest.approx(0.5 * np.abs(r - c).sum())
    assert verdict.severity is not None and verdict.severity >= Severity.MEDIUM


def test_model_level_severity_share_and_corrections() -> None:
    rng = np.random.default_rng(5)
    reference = {f"f{i}": rng.normal(0, 1, 2000) for i in range(4)}
    current = {"f0": rng.normal(3, 1, 2000), "f1": rng.normal(0, 1, 2000),
               "f2": rng.normal(0, 1, 2000), "f3": rng.normal(0, 1, 2000)}
    profile = build_profile(reference)
    plain = compare(profile, current, DriftPolicy())
    assert plain.severity == Severity.CRITICAL
    assert plain.drifted_share == 0.25
    bonf = compare(profile, current, DriftPolicy(correction="bonferroni"))
    bh = compare(profile, current, DriftPolicy(correction="bh"))
    raw = np.array([f.p_value for f in plain.features])
    assert [f.adjusted_p_value for f in bonf.features] == pytest.approx(np.minimum(raw * 4, 1))
    assert [f.adjusted_p_value for f in bh.features] == pytest.approx(
        stats.false_discovery_control(raw, method="bh"))
    assert bonf.severity == plain.severity  # corrections never change the severity


@settings(max_examples=200, deadline=None)
@given(counts=st.lists(st.tuples(st.integers(0, 5000), st.integers(0, 5000)), min_size=1,
                       max_size=40))
def test_chi_square_equals_scipy_chi2_contingency(counts: list[tuple[int, int]]) -> None:
    reference = np.array([r for r, _ in counts], dtype=float)
    current = np.array([c for _, c in counts], dtype=float)
    table = np.vstack([reference, current])
    table = table[:, table.sum(axis=0) > 0]
    assume(reference.sum() > 0 and current.sum() > 0)  # the engine never compares an empty side
    chi2, p = chi_square(reference, current)
    if table.shape[1] < 2:  # one bin holds everything: nothing to compare
        assert (chi2, p) == (0.0, 1.0)
        return
    expected_chi2, expected_p, _, _ = stats.chi2_contingency(table, correction=False)
    assert chi2 == pytest.approx(expected_chi2, rel=1e-12, abs=1e-12)
    assert p == pytest.approx(expected_p, rel=1e-9, abs=1e-12)


def test_one_long_category_value_costs_its_own_length_not_every_rows() -> None:
    """`labels.astype(str)` made a fixed-width array: rows x longest value x 4 bytes (one
    40,000-character cell in a 256 KB CSV took `drift` to 3.3 GB)."""
    import tracemalloc

    rng = np.random.default_rng(3)
    reference = rng.choice(["a", "b", "c"], 20_000).astype(object)
    current = rng.choice(["a", "b", "c"], 20_000).astype(object)
    current[7] = "x" * 100_000
    tracemalloc.start()
    try:
        labels, missing = categories(current)
        compare_categorical("f", profile_feature(reference, categorical=True, bins=10), current,
                            DriftPolicy())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert missing == 0 and labels[7] == "x" * 100_000 and labels[0] in ("a", "b", "c")
    assert peak < 50 * 2**20, f"peak {peak / 2**20:.0f} MiB"  # was 20,000 x 100,000 x 4 bytes


def test_a_dominant_value_leaves_the_rest_of_the_mass_its_own_bins() -> None:
    """92 % zeros and 8 % amounts: every amount fell into one bin, so amounts ten times larger
    stayed low (PSI 0.000); Evidently flags it. The rest of the mass gets its own quantile bins."""
    rng = np.random.default_rng(3)
    n = 20_000
    reference = np.where(rng.random(n) < 0.92, 0.0, rng.lognormal(3, 1, n))
    current = np.where(rng.random(n) < 0.92, 0.0, rng.lognormal(3, 1, n) * 10)
    result = compare(build_profile({"amount": reference}), {"amount": current}, DriftPolicy())
    (feature,) = result.features
    assert feature.psi is not None and feature.psi > 0.25
    assert result.severity >= Severity.MEDIUM
    same = np.where(rng.random(n) < 0.92, 0.0, rng.lognormal(3, 1, n))
    stable = compare(build_profile({"amount": reference}), {"amount": same}, DriftPolicy())
    assert stable.severity == Severity.LOW


@given(st.integers(1, 3_000), st.one_of(st.floats(0.0, 200.0), st.floats(0.0, 20_000.0)))
@settings(max_examples=400, deadline=None)
def test_the_chi_square_tail_equals_scipys(df: int, x: float) -> None:
    """The chi-square p-value is computed without scipy.special (its import was a third of a
    ``lifecycled drift`` run); it equals ``scipy.special.chdtrc`` wherever scipy's is a normal
    float, and is below 1e-280 where scipy's is not."""
    from lifecycled.core.drift import chi2_sf
    from scipy import special

    ours, theirs = chi2_sf(x, df), float(special.chdtrc(df, x))
    if theirs > 1e-290:
        assert ours == pytest.approx(theirs, rel=1e-10, abs=0.0)
    else:
        assert ours < 1e-280


def test_the_chi_square_tail_at_its_edges() -> None:
    from lifecycled.core.drift import chi2_sf

    assert chi2_sf(0.0, 9) == 1.0 and chi2_sf(float("inf"), 9) == 0.0
    assert np.isnan(chi2_sf(float("nan"), 9))
    assert chi2_sf(3.0, 1) == pytest.approx(stats.chi2.sf(3.0, 1), rel=1e-13)


@given(st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), min_size=2, max_size=6))
@settings(max_examples=150, deadline=None)
def test_the_exact_category_test_is_fishers_test_of_each_category_bonferroni(
        counts: list[tuple[int, int]]) -> None:
    """Each category against the rest by ``scipy.stats.fisher_exact``, the smallest p-value
    times the categories (a two-category feature: one test)."""
    from lifecycled.core.drift import fisher_categories

    reference = np.array([r for r, _ in counts])
    current = np.array([c for _, c in counts])
    kept = (reference + current) > 0
    assume(reference.sum() > 0 and current.sum() > 0 and kept.sum() >= 2)
    ref, cur = reference[kept], current[kept]
    tests = [stats.fisher_exact([[ref[j], ref.sum() - ref[j]], [cur[j], cur.sum() - cur[j]]])[1]
             for j in range(1 if ref.size == 2 else ref.size)]
    expected = min(1.0, min(tests) * len(tests))
    assert fisher_categories(reference, current) == pytest.approx(expected, rel=1e-9, abs=1e-12)
