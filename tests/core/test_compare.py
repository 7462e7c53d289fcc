"""Champion and challenger, the tests and the decision: each e-value checked against scipy on
the same counts, replays with known answers (identical versions rarely rolled back however often
they are looked at; a worse challenger rolled back; a better one promoted), and the policy's
order."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifecycled.core.compare import (
    WORSE_GRID,
    ComparePolicy,
    Evidence,
    FailureEvidence,
    LatencyEvidence,
    decide,
    evidence_from_json,
    not_worse_grid,
    observe,
)
from scipy import integrate, stats

counts = st.lists(st.tuples(st.integers(1, 2000), st.integers(0, 60), st.integers(1, 2000),
                            st.integers(0, 60)), min_size=1, max_size=8)


@settings(max_examples=60, deadline=None)
@given(counts)
def test_the_failure_evidence_is_the_binomial_likelihood_ratio(passes: list) -> None:  # type: ignore[type-arg]
    evidence = FailureEvidence(0.2)
    for n_c, f_c, n_b, f_b in passes:
        evidence = evidence.add(n_c, min(f_c, n_c), n_b, min(f_b, n_b))
    expected_worse = np.zeros(len(WORSE_GRID))
    expected_not = np.zeros(len(not_worse_grid(0.2)))
    for n_c, f_c, n_b, f_b in passes:
        f_c, f_b = min(f_c, n_c), min(f_b, n_b)
        if f_c + f_b == 0:
            continue
        for expected, grid, null in ((expected_worse, WORSE_GRID, 1.0),
                                     (expected_not, not_worse_grid(0.2), 1.2)):
            theta0 = null * n_c / (null * n_c + n_b)
            for i, rho in enumerate(grid):
                theta = rho * n_c / (rho * n_c + n_b)
                expected[i] += (stats.binom.logpmf(f_c, f_c + f_b, theta)
                                - stats.binom.logpmf(f_c, f_c + f_b, theta0))
    np.testing.assert_allclose(evidence.worse, expected_worse, atol=1e-9)
    np.testing.assert_allclose(evidence.not_worse, expected_not, atol=1e-9)


@pytest.mark.parametrize(("n", "k"), [(1, 1), (5, 0), (10, 7), (30, 12), (60, 45)])
def test_the_latency_evidence_is_the_mixture_of_the_sign_test(n: int, k: int) -> None:
    for low, high, found in ((0.5, 1.0, LatencyEvidence(n, k).log_e),
                             (0.0, 0.5, LatencyEvidence(n, k).log_e_not_worse)):
        value, _ = integrate.quad(lambda q: 2 * q**k * (1 - q) ** (n - k), low, high,
                                  epsabs=0, epsrel=1e-12)
        assert found == pytest.approx(math.log(value) + n * math.log(2), rel=1e-9)


def replay(rng: np.random.Generator, p_challenger: float, p_champion: float,
           policy: ComparePolicy, passes: int = 300) -> tuple[str | None, float]:
    """Per pass a random split of 200 to 1,200 requests, failures drawn at each version's
    ratio; the policy asked after every pass."""
    evidence = Evidence(FailureEvidence(policy.failure_margin))
    for index in range(passes):
        n_c, n_b = rng.integers(100, 600), rng.integers(100, 600)
        failed = (rng.binomial(n_c, p_challenger), rng.binomial(n_b, p_champion))
        evidence = observe(evidence, (n_c, n_b), failed, (None, None), policy)
        decision = decide(evidence, index, policy)
        if decision.outcome is not None:
            return decision.outcome, evidence.requests[0]
    return None, evidence.requests[0]


@pytest.mark.slow
def test_identical_versions_are_rarely_rolled_back_however_often_they_are_looked_at() -> None:
    """300 A/A replays, each looked at after every one of 300 passes: rolled back in at most
    alpha of them (5 %; 99 % binomial slack on the count)."""
    policy = ComparePolicy(block=("failures",), min_requests=10**9, max_duration=math.inf)
    rng = np.random.default_rng(1)
    outcomes = [replay(rng, 0.02, 0.02, policy)[0] for _ in range(300)]
    rolled_back = outcomes.count("rollback")
    assert rolled_back <= stats.binom.ppf(0.99, 300, policy.alpha)
    assert "promote" not in outcomes  # min_requests never reached


@pytest.mark.slow
def test_a_challenger_failing_twice_as_often_is_rolled_back_and_a_better_one_promoted() -> None:
    policy = ComparePolicy(block=("failures",), max_duration=math.inf)
    rng = np.random.default_rng(2)
    worse = [replay(rng, 0.04, 0.02, policy) for _ in range(20)]
    assert all(outcome == "rollback" for outcome, _ in worse)
    assert np.median([n for _, n in worse]) < 20_000
    better = [replay(rng, 0.01, 0.02, policy) for _ in range(20)]
    assert all(outcome == "promote" for outcome, _ in better)


def test_the_policy_decides_in_its_order() -> None:
    policy = ComparePolicy(min_requests=100, max_duration=600, on_latency="hold",
                           on_timeout="hold")
    quiet = Evidence(FailureEvidence(0.2))
    assert decide(quiet, 10, policy).outcome is None
    assert decide(quiet, 600, policy).outcome == "hold"
    assert decide(quiet, 600, ComparePolicy(max_duration=600, on_timeout="promote")
                  ).outcome == "promote"
    slow = quiet
    for _ in range(12):
        slow = observe(slow, (50, 50), (0, 0), (0.030, 0.010), policy)
    assert decide(slow, 10, policy).outcome == "hold"
    assert decide(slow, 10, ComparePolicy(block=("latency",), min_requests=100)
                  ).outcome == "rollback"
    assert decide(slow, 10, ComparePolicy(on_latency="rollback")).outcome == "rollback"
    assert decide(slow, 10, ComparePolicy(block=("failures",), min_requests=100)
                  ).outcome is None  # latency informs only: never promoted while it is bad
    same = quiet
    for _ in range(12):
        same = observe(same, (50, 50), (0, 0), (0.011, 0.010), policy)
    assert same.latency.worse == 0
    assert decide(same, 10, policy).outcome == "promote"  # no failure, 12 passes none slower
    assert "has not failed once" in decide(same, 10, policy).reason
    assert decide(same, 10, ComparePolicy(min_requests=601)).outcome is None
    latency_only = ComparePolicy(block=("latency",), min_requests=100)
    assert decide(same, 10, latency_only).outcome == "promote"  # 12 passes, none slower
    assert decide(observe(quiet, (600, 600), (0, 0), (0.011, 0.010), policy), 10,
                  latency_only).outcome is None  # one pass is not evidence enough


def test_evidence_survives_its_json_form() -> None:
    policy = ComparePolicy()
    evidence = observe(Evidence(FailureEvidence(0.2)), (500, 400), (12, 5), (0.02, 0.01), policy)
    again = evidence_from_json(evidence.to_json(policy), policy)
    assert again == evidence
