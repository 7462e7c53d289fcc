"""The retirement score against hand-computed cases."""

from __future__ import annotations

import pytest
from lifecycled.core.retirement import Usage, retirement_score
from lifecycled.domain import RetirementPolicy

POLICY = RetirementPolicy()


def test_each_component_by_hand() -> None:
    young = retirement_score(Usage(age_days=0, status="production"), POLICY)
    assert young is not None and young.score == 0 and not young.candidate
    old = retirement_score(Usage(age_days=800, status="production"), POLICY)
    assert old.score == pytest.approx(0.3)  # full age weight past 365 days
    assert old.reasons == ("too old: 800 days (maximum 730)",)
    half = retirement_score(Usage(age_days=182.5, status="production"), POLICY)
    assert half.score == pytest.approx(0.15)
    poor = retirement_score(Usage(age_days=0, status="production", mean_accuracy=0.72), POLICY)
    assert poor.score == pytest.approx(0.4 * (0.08 / 0.8) / 0.2)  # 10 % short = half weight
    idle = retirement_score(Usage(age_days=0, status="production", requests_7d=250,
                                  requests_30d=20), POLICY)
    assert idle.score == pytest.approx(0.2 * 0.75)
    assert idle.reasons == ("too little use: 20 requests in 30 days (minimum 50)",)
    deprecated = retirement_score(Usage(age_days=0, status="deprecated"), POLICY)
    assert deprecated.score == pytest.approx(0.1) and deprecated.reasons == ("deprecated",)


def test_candidate_above_the_policy_score() -> None:
    usage = Usage(age_days=900, status="deprecated", mean_accuracy=0.6, requests_7d=0,
                  requests_30d=0)
    result = retirement_score(usage, POLICY)
    assert result.score == pytest.approx(1.0) and result.candidate
    assert len(result.reasons) == 4
    borderline = retirement_score(Usage(age_days=400, status="failed", requests_7d=0,
                                        requests_30d=0), POLICY)
    assert borderline.score == pytest.approx(0.6) and not borderline.candidate  # not above


def test_retired_models_are_never_candidates_and_unknowns_add_nothing() -> None:
    assert retirement_score(Usage(age_days=5000, status="retired"), POLICY) is None
    unknown = retirement_score(Usage(age_days=10, status="production"), POLICY)
    assert set(unknown.components) == {"age"}
