"""Drift from histogram buckets: PSI and JS equal the raw data's on the same edges (scipy's
Jensen-Shannon), the KS bracket holds scipy's two-sample D, native buckets read as the classic
ones, and buckets on different edges meet on the edges they share."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifecycled.core.drift import PSI_FLOOR, compare_histogram, judge
from lifecycled.core.histogram import (
    from_cumulative,
    from_intervals,
    ks_bracket,
    on_shared_edges,
)
from lifecycled.domain import DriftPolicy, Severity
from scipy import stats
from scipy.spatial.distance import jensenshannon


def classic(values: np.ndarray, edges: np.ndarray):  # type: ignore[no-untyped-def]
    """What a Prometheus classic histogram of ``values`` holds: counts of values <= each le."""
    ordered = np.sort(values)
    return from_cumulative([*edges, math.inf],
                           [*np.searchsorted(ordered, edges, side="right"), values.size])


def raw_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Shares of the raw values in (-inf, e1], (e1, e2], ..., (ek, inf), counted one by one."""
    index = np.array([int(np.sum(v > edges)) for v in values])
    return np.bincount(index, minlength=edges.size + 1) / values.size


samples = st.tuples(st.integers(0, 2**31), st.integers(50, 600), st.integers(50, 600),
                    st.floats(-1.0, 1.0), st.floats(0.5, 2.0), st.integers(2, 25))


@settings(max_examples=80, deadline=None)
@given(samples)
def test_psi_js_and_the_ks_bracket_agree_with_the_raw_data(case: tuple) -> None:  # type: ignore[type-arg]
    seed, n, m, shift, scale, k = case
    rng = np.random.default_rng(seed)
    reference = np.round(rng.normal(0, 1, n), 3)
    current = np.round(rng.normal(shift, scale, m), 3)
    edges = np.unique(np.round(rng.normal(0, 1.5, k), 2))
    verdict = compare_histogram("score", classic(reference, edges), classic(current, edges),
                                DriftPolicy(min_samples=10))
    assert verdict.judged
    r, c = raw_shares(reference, edges), raw_shares(current, edges)
    assert verdict.js == pytest.approx(float(jensenshannon(r, c, base=2)), abs=1e-12)
    rf, cf = np.where(r == 0, PSI_FLOOR, r), np.where(c == 0, PSI_FLOOR, c)
    assert verdict.psi == pytest.approx(float(np.sum((cf - rf) * np.log(cf / rf))), abs=1e-12)
    d = stats.ks_2samp(reference, current).statistic
    assert verdict.statistic_bounds is not None
    low, high = verdict.statistic_bounds
    assert low - 1e-12 <= d <= high + 1e-12
    assert verdict.statistic == low
    expected = stats.chi2_contingency(np.vstack([r * n, c * m])[:, (r + c) > 0],
                                      correction=False)
    assert verdict.chi2 == pytest.approx(expected.statistic, rel=1e-9)


def test_a_bracket_is_tight_where_every_value_sits_on_an_edge() -> None:
    reference = np.array([1.0, 1.0, 2.0, 3.0])
    current = np.array([2.0, 3.0, 3.0, 3.0])
    edges = np.array([1.0, 2.0, 3.0])
    _, r, c = on_shared_edges(classic(reference, edges), classic(current, edges))
    low, high = ks_bracket(r, c)
    d = stats.ks_2samp(reference, current).statistic
    assert low == pytest.approx(d) and low <= high


def test_native_buckets_read_as_the_classic_histogram_of_the_same_values() -> None:
    edges = [0.5, 1.0, 2.0, 4.0]
    cumulative = [3, 10, 12, 12]
    intervals = [(0.25, 0.5, 3), (0.5, 1.0, 7), (1.0, 2.0, 2)]  # a gap above 2: nothing there
    native, plain = from_intervals(intervals), from_cumulative(edges, cumulative)
    shared, a, b = on_shared_edges(native, plain)
    assert shared.tolist() == [0.5, 1.0, 2.0, math.inf]
    assert a.tolist() == b.tolist() == [3.0, 7.0, 2.0, 0.0]
    with pytest.raises(ValueError, match="overlap"):
        from_intervals([(0.0, 1.0, 1), (0.5, 2.0, 1)])


def test_histograms_on_different_edges_meet_on_the_edges_they_share() -> None:
    fine = from_cumulative([1, 2, 3, 4], [1, 5, 9, 10])
    coarse = from_cumulative([2, 4, math.inf], [4, 8, 8])
    shared, a, b = on_shared_edges(fine, coarse)
    assert shared.tolist() == [2.0, 4.0, math.inf]
    assert a.tolist() == [5.0, 5.0, 0.0] and b.tolist() == [4.0, 4.0, 0.0]


def test_bad_counts_are_refused_and_a_count_that_went_back_is_raised() -> None:
    for counts in ([1, math.nan], [1, -1], [1, math.inf]):
        with pytest.raises(ValueError, match="count"):
            from_cumulative([1, 2], counts)
    assert from_cumulative([1, 2, math.inf], [5, 4, 6]).cumulative.tolist() == [5, 5, 6]


def test_too_few_values_or_no_shared_edge_is_unknown_never_low() -> None:
    policy = DriftPolicy(min_samples=100)
    few = compare_histogram("score", from_cumulative([1], [10]), from_cumulative([1], [10]),
                            policy)
    assert few.reason is not None and few.reason.value == "insufficient_samples"
    apart = compare_histogram("score", from_cumulative([1], [500]), from_cumulative([2], [500]),
                              policy)
    assert apart.reason is not None and apart.reason.value == "constant"
    assert judge([few, apart], policy).severity == Severity.UNKNOWN


def test_a_shifted_score_distribution_is_judged_from_its_buckets() -> None:
    rng = np.random.default_rng(4)
    edges = np.linspace(0.05, 0.95, 10)
    reference = classic(rng.beta(2, 5, 20_000), edges)
    same = classic(rng.beta(2, 5, 20_000), edges)
    shifted = classic(rng.beta(3, 4, 20_000), edges)
    policy = DriftPolicy()
    assert judge([compare_histogram("score", reference, same, policy)],
                 policy).severity == Severity.LOW
    assert judge([compare_histogram("score", reference, shifted, policy)],
                 policy).severity >= Severity.HIGH


class Answers:
    """Prometheus's query answers by (expression kind, time), in its HTTP API's result shapes
    (no server: the real one is in tests/integration/test_histogram_drift.py)."""

    def __init__(self, answers: dict[tuple[str, float], list[dict[str, object]]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def query(self, expr: str, at: float | None = None) -> list[dict[str, object]]:
        self.asked.append(expr)
        kind = "increase" if "increase(" in expr else "plain"
        return self.answers[(kind, at if at is not None else -1.0)]


def classic_answer(counts: dict[str, float]) -> list[dict[str, object]]:
    return [{"metric": {"le": le}, "value": [0, str(n)]} for le, n in counts.items()]


def native_answer(buckets: list[tuple[float, float, float]]) -> list[dict[str, object]]:
    return [{"metric": {}, "histogram": [0, {"count": str(sum(b[2] for b in buckets)),
                                             "sum": "1", "buckets": [
                                                 [0, str(lo), str(hi), str(n)]
                                                 for lo, hi, n in buckets]}]}]


def test_a_window_is_the_difference_of_its_ends_or_increase_after_a_reset() -> None:
    from lifecycled.tasks.drift import histogram_window

    labels = {"model": "m", "version": "1"}
    plain = Answers({("plain", 10.0): classic_answer({"1": 5, "2": 9, "+Inf": 10}),
                     ("plain", 0.0): classic_answer({"1": 1, "2": 2, "+Inf": 2})})
    found, exact = histogram_window(plain, "score", labels, 0.0, 10.0, native=False)
    assert exact and found.cumulative.tolist() == [4.0, 7.0, 8.0]
    assert plain.asked == ['sum by (le) (score_bucket{model="m",version="1"})'] * 2

    reset = Answers({("plain", 10.0): classic_answer({"1": 1, "+Inf": 1}),
                     ("plain", 0.0): classic_answer({"1": 5, "+Inf": 9}),
                     ("increase", 10.0): classic_answer({"1": 1.5, "+Inf": 2.5})})
    found, exact = histogram_window(reset, "score", labels, 0.0, 10.0, native=False)
    assert not exact and found.cumulative.tolist() == [1.5, 2.5]
    assert reset.asked[-1] == 'sum by (le) (increase(score_bucket{model="m",version="1"}[10s]))'

    native = Answers({("plain", 10.0): native_answer([(0.5, 1.0, 4), (1.0, 2.0, 6)]),
                      ("plain", 0.0): native_answer([(0.5, 1.0, 1)])})
    found, exact = histogram_window(native, "score", labels, 0.0, 10.0, native=True)
    assert exact and found.edges.tolist() == [0.5, 1.0, 2.0, math.inf]
    assert found.cumulative.tolist() == [0.0, 3.0, 9.0, 9.0]
    assert native.asked[0] == 'sum(score{model="m",version="1"})'
