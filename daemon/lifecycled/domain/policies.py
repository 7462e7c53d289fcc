"""Policies: the drift effect tiers and policy, the significance a false-alarm budget gives,
and retirement's policy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lifecycled.domain.vocabularies import Severity


@dataclass(frozen=True)
class Tiers:
    """Where an effect size becomes medium, high and critical."""

    medium: float
    high: float
    critical: float

    def of(self, value: float) -> Severity:
        for limit, severity in ((self.critical, Severity.CRITICAL), (self.high, Severity.HIGH),
                                (self.medium, Severity.MEDIUM)):
            if value >= limit:
                return severity
        return Severity.LOW


# The effect sizes of a feature: PSI and JS distance on bin (or category) shares, and the distance
# D (KS statistic, numeric) or total variation distance (categorical).
EFFECTS = ("psi", "js", "distance")
DEFAULT_TIERS = {"psi": Tiers(0.10, 0.25, 1.0), "js": Tiers(0.10, 0.20, 0.40),
                 "distance": Tiers(0.10, 0.20, 0.40)}


PSI_TIERS = ((0.25, "significant"), (0.10, "moderate"), (0.0, "stable"))  # the PSI's own words


@dataclass(frozen=True)
class DriftPolicy:
    """How data drift is judged (DESIGN.md section 6); the defaults are the documented ones.

    rule ``tiers``: a feature's severity is the highest tier reached by an effect whose test is
    significant at ``alpha`` after ``correction`` across the model's features (D by the KS test;
    PSI and JS by the chi-square test on the same bin counts; categoricals: the chi-square test
    on category counts). Rule ``seed``: the seed's composite score with cut points 0.3/0.5/0.7.
    """

    bins: int = 10
    min_samples: int = 100
    weights: tuple[float, float, float] = (0.4, 0.3, 0.3)  # ks (or tvd), js, psi
    alert_severity: Severity = Severity.MEDIUM
    correction: Literal["none", "bonferroni", "bh"] = "bh"
    alpha: float = 0.005  # ONE_SHOT_ALPHA; the daemon derives it from its false-alarm budget
    rule: Literal["tiers", "seed"] = "tiers"
    psi_tiers: Tiers = DEFAULT_TIERS["psi"]
    js_tiers: Tiers = DEFAULT_TIERS["js"]
    distance_tiers: Tiers = DEFAULT_TIERS["distance"]
    schema_break: Severity = Severity.HIGH  # a column missing or of another type
    basis: str = "the one-shot default"  # where alpha comes from, in words, for the result

    def tiers(self, effect: str) -> Tiers:
        return {"psi": self.psi_tiers, "js": self.js_tiers, "distance": self.distance_tiers}[effect]


# A one-shot check's significance (the CLI's --alpha default): with the correction across
# features, a stationary window of any size is judged medium or worse in at most 0.5 % of checks.
ONE_SHOT_ALPHA = 0.005
# A repeated check's significance comes from its false-alarm budget and its schedule, never
# looser than this in all (a budget that allows more than one false alarm in 20 checks).
ALPHA_CAP = 0.05


@dataclass(frozen=True)
class Significance:
    """The significance a repeated verdict is judged at, and where it comes from in words."""

    alpha: float
    basis: str


def budget_significance(alarms: float, period: float, interval: float, shares: int,
                        shared_by: str, period_text: str, interval_text: str) -> Significance:
    """The per-check significance that keeps the expected false alarms of a verdict repeated
    every ``interval`` within ``alarms`` per ``period`` (a union bound over the checks), split
    among the ``shares`` families of tests one check runs (``shared_by`` says which)."""
    checks = max(1.0, period / interval)
    raw = alarms / checks
    alpha = min(raw, ALPHA_CAP) / max(1, shares)
    basis = (f"from a budget of {alarms:g} false alarm{'s' if alarms != 1 else ''} per "
             f"{period_text} at one check every {interval_text}")
    if raw > ALPHA_CAP:
        basis += f" (capped at {ALPHA_CAP:g})"
    if shares > 1:
        basis += f", split among {shares} {shared_by}"
    return Significance(alpha, basis)


@dataclass(frozen=True)
class RetirementPolicy:
    """The limits of the retirement score (the seed's weights are fixed in core)."""

    max_age_days: float = 730.0
    min_accuracy: float = 0.8
    min_requests_per_month: float = 50.0
    normal_weekly_requests: float = 1000.0
    candidate_score: float = 0.6

