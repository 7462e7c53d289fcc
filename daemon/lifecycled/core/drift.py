"""Data drift per feature: KS, PSI and Jensen-Shannon on reference-quantile bins with the
chi-square test on the same bin counts; chi-square, PSI and JS on category shares; the composite
score; severity by effect-size tiers gated by significance (or the seed's rule); recommendations
(DESIGN.md section 6). The statistics and the rule stay in one module (longer than most): the
rule reads every field of a feature's verdict.

The reference is summarised once into a ReferenceProfile (``lifecycled.core.profile``); each check
then makes a few passes over the current window and sorts only the small part of it where the KS
statistic can be (``lifecycled.core.ecdf``); p-values as scipy's (``lifecycled.core.kstest``).
"""

from __future__ import annotations

import enum
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from lifecycled.core.ecdf import Scratch, window_statistics
from lifecycled.core.histogram import Histogram, ks_bracket, on_shared_edges
from lifecycled.core.kstest import ks_p_value
from lifecycled.core.profile import (
    CategoricalProfile,
    NumericProfile,
    ReferenceProfile,
    categories,
    finite,
    is_numeric,
)
from lifecycled.domain import PSI_TIERS, DriftPolicy, Severity

PSI_FLOOR = 1e-4


class Reason(enum.StrEnum):
    """Why a feature could not be judged."""

    INSUFFICIENT_SAMPLES = "insufficient_samples"
    EMPTY = "empty"
    ALL_MISSING = "all_missing"
    CONSTANT = "constant"
    TYPE_MISMATCH = "type_mismatch"
    MISSING_COLUMN = "missing_column"
    HIGH_CARDINALITY = "high_cardinality"  # a text column with mostly distinct values (an id)


SCHEMA_BREAKS = (Reason.TYPE_MISMATCH, Reason.MISSING_COLUMN)


RECOMMENDATIONS: dict[Severity, tuple[str, ...]] = {
    Severity.UNKNOWN: (
        "No feature could be judged: check the reason of each feature and the current window",
        "Do not read this check as an all-clear",
    ),
    Severity.LOW: ("Continue routine monitoring",),
    Severity.MEDIUM: (
        "Increase the monitoring frequency",
        "Investigate the upstream sources of the drifted features",
        "Plan retraining if the drift persists",
    ),
    Severity.HIGH: (
        "Schedule retraining on recent data",
        "Review the feature engineering of the drifted features",
        "Notify the owning team",
    ),
    Severity.CRITICAL: (
        "Retrain the model immediately",
        "Consider rolling back to the previous version",
        "Escalate to the owning team and to risk management",
    ),
}


# --- results ----------------------------------------------------------------------------------


MAX_CATEGORIES_SHOWN = 40  # a report shows the largest categories; the rest as one "(other)"


@dataclass(frozen=True)
class Bins:
    """The reference and current shares a feature's PSI and JS compare."""

    labels: tuple[str, ...]
    reference: tuple[float, ...]
    current: tuple[float, ...]
    edges: tuple[float, ...] = ()  # numeric: the interior bin edges

    def to_json(self) -> dict[str, object]:
        return {"labels": list(self.labels), "reference": list(self.reference),
                "current": list(self.current), "edges": list(self.edges)}


def numeric_bins(edges: np.ndarray, reference: np.ndarray, current: np.ndarray) -> Bins:
    shown = [f"{e:.4g}" for e in edges]
    labels = ([f"<= {shown[0]}"] if shown else ["all"]) + [
        f"({a}, {b}]" for a, b in itertools.pairwise(shown)] + (
        [f"> {shown[-1]}"] if shown else [])
    return Bins(tuple(labels), tuple(map(float, reference)), tuple(map(float, current)),
                tuple(map(float, edges)))


def categorical_bins(names: Sequence[str], reference: np.ndarray, current: np.ndarray) -> Bins:
    order = np.argsort(-np.maximum(reference, current), kind="stable")
    keep, rest = order[:MAX_CATEGORIES_SHOWN], order[MAX_CATEGORIES_SHOWN:]
    labels = [str(names[i]) for i in keep]
    ref, cur = [float(reference[i]) for i in keep], [float(current[i]) for i in keep]
    if rest.size:
        labels.append(f"(other: {rest.size})")
        ref.append(float(reference[rest].sum()))
        cur.append(float(current[rest].sum()))
    return Bins(tuple(labels), tuple(ref), tuple(cur))


@dataclass(frozen=True)
class FeatureDrift:
    """The verdict on one feature: statistics, or a reason and no numbers."""

    feature: str
    kind: str  # numeric or categorical
    reference_rows: int
    current_rows: int
    reference_missing_share: float | None
    current_missing_share: float | None
    reason: Reason | None = None
    detail: str = ""
    statistic: float | None = None  # KS D (numeric) or total variation distance (categorical)
    p_value: float | None = None  # KS (numeric) or chi-square (categorical)
    chi2: float | None = None  # chi-square statistic on the bin (or category) counts
    chi2_p_value: float | None = None
    js: float | None = None
    psi: float | None = None
    score: float | None = None
    severity: Severity | None = None
    adjusted_p_value: float | None = None  # of p_value, after the correction
    adjusted_chi2_p_value: float | None = None
    counted: tuple[str, ...] = ()  # effects that set the severity, e.g. "psi: high"
    bins: Bins | None = None  # the shares compared, for reports
    # binned data (a Prometheus histogram): where KS D lies; statistic is the lower end
    statistic_bounds: tuple[float, float] | None = None
    # the test that decides whether the bin (or category) effects are real: the chi-square test
    # on the counts, or where they are too few for its tail to be right (``MIN_EXPECTED``) a
    # numeric feature's KS test ("ks") and a categorical feature's exact tests ("fisher",
    # ``exact_p_value``)
    bins_gate: str = "chi2"
    exact_p_value: float | None = None  # categorical, few rows: ``fisher_categories``

    @property
    def judged(self) -> bool:
        return self.reason is None


@dataclass(frozen=True)
class DriftResult:
    features: tuple[FeatureDrift, ...]
    severity: Severity
    drifted_share: float | None
    judged: int
    significant: int  # features whose (corrected) p-value is below alpha (0.0 included)
    recommendations: tuple[str, ...] = field(default=())
    alert_severity: Severity = Severity.MEDIUM  # what counts as drifted in drifted_share
    rule: str = "tiers"
    drivers: tuple[str, ...] = ()  # the features whose severity is the model's
    alpha: float = DriftPolicy.alpha  # the significance the tests were judged at
    alpha_basis: str = ""  # where it comes from, in words

    @property
    def worst(self) -> FeatureDrift | None:
        judged = [f for f in self.features if f.judged]
        return max(judged, key=lambda f: f.score or 0.0) if judged else None


def severity_of(score: float) -> Severity:
    """The seed's rule on the composite: low <= 0.3 < medium <= 0.5 < high <= 0.7 < critical."""
    if score <= 0.3:
        return Severity.LOW
    if score <= 0.5:
        return Severity.MEDIUM
    if score <= 0.7:
        return Severity.HIGH
    return Severity.CRITICAL


def psi(reference_shares: np.ndarray, current_shares: np.ndarray) -> float:
    """Population stability index on bin shares, each zero share replaced by 1e-4."""
    r = np.where(reference_shares == 0, PSI_FLOOR, reference_shares)
    c = np.where(current_shares == 0, PSI_FLOOR, current_shares)
    return float(np.sum((c - r) * np.log(c / r)))


def js_distance(reference_shares: np.ndarray, current_shares: np.ndarray) -> float:
    """Jensen-Shannon distance, base 2, in [0, 1]: ``scipy.spatial.distance.jensenshannon``'s
    formula (equal to it to 1e-12, property-tested), written here because importing
    scipy.spatial costs every ``lifecycled drift`` 0.2 s."""
    with np.errstate(divide="ignore", invalid="ignore"):  # empty shares: nan, said as 0 below
        p = reference_shares / reference_shares.sum()
        q = current_shares / current_shares.sum()
        m = (p + q) / 2.0
        # relative entropy x log(x / m), 0 where x is 0 (m > 0 wherever x > 0)
        divergence = (np.where(p > 0, p * np.log(p / m), 0.0).sum()
                      + np.where(q > 0, q * np.log(q / m), 0.0).sum())
        value = float(np.sqrt(divergence / math.log(2.0) / 2.0))
    return 0.0 if np.isnan(value) else min(max(value, 0.0), 1.0)


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else counts.astype(float)


def _score(statistic: float, js: float, psi_value: float, weights: tuple[float, float, float]
           ) -> float:
    return weights[0] * statistic + weights[1] * js + weights[2] * psi_value


# The smallest expected count of a bin (or category) for its chi-square p-value to gate the
# effects. Below it the chi-square tail is too light at the small significances a budget gives
# (stationary windows against a 100,000-row reference at alpha 5.8e-5, ten million each: 10
# equal bins 1.42 times alpha at 100 rows, 1.14 at 300, 0.87 at 1,000; categories of shares
# 0.4, 0.3, 0.2, 0.08, 0.02 5.6 times alpha at 100 rows, 1.24 at 1,000). A numeric feature's
# KS test, right at any size, gates them instead; a categorical feature's exact tests
# (``fisher_categories``).
MIN_EXPECTED = 100.0


def min_expected(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """The smallest expected count of the chi-square test's table (bins empty in both samples
    dropped, as ``chi_square`` does)."""
    table = np.vstack([reference_counts, current_counts]).astype(float)
    columns = table.sum(axis=0)
    columns = columns[columns > 0]
    if columns.size == 0:
        return 0.0
    return float(table.sum(axis=1).min() * columns.min() / columns.sum())


def chi_square(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float]:
    """The chi-square test of homogeneity on two count vectors (bins or categories empty in both
    samples dropped); (0, 1) when fewer than two bins hold anything."""
    table = np.vstack([reference_counts, current_counts]).astype(float)
    columns = table.sum(axis=0)
    table, columns = table[:, columns > 0], columns[columns > 0]
    if table.shape[1] < 2:
        return 0.0, 1.0
    # scipy's chi2_contingency(table, correction=False) computes the same Pearson statistic and
    # tail (tested to agree); its argument handling costs ~1 ms per call, more than the test
    expected = np.outer(table.sum(axis=1), columns) / columns.sum()
    chi2 = float(((table - expected) ** 2 / expected).sum())
    return chi2, chi2_sf(chi2, table.shape[1] - 1)


def chi2_sf(x: float, df: int) -> float:
    """P(X >= x) for X chi-square with a whole number ``df`` of degrees of freedom, as
    ``scipy.special.chdtrc(df, x)`` (property-tested to 1e-10 relative): for even df the
    Poisson sum exp(-x/2) sum_(i < df/2) (x/2)^i / i!, for odd df erfc(sqrt(x/2)) plus
    sqrt(2x/pi) exp(-x/2) sum_(1 <= i <= (df-1)/2) x^(i-1) / (2i-1)!!; every term positive,
    summed in log space. Written here because importing scipy.special costs 0.15 to 0.3 s,
    which every ``lifecycled drift`` would pay for this one number."""
    if math.isnan(x):
        return math.nan
    if x <= 0.0:
        return 1.0
    if math.isinf(x):
        return 0.0
    half = x / 2.0
    if half == 0.0:  # below the smallest float: the tail is 1 to double precision
        return 1.0
    if df % 2 == 0:
        i = np.arange(df // 2, dtype=np.float64)
        log_factorial = np.concatenate(([0.0], np.cumsum(np.log(i[1:]))))
        logs = -half + i * math.log(half) - log_factorial
        head = 0.0
    else:
        i = np.arange(1, (df - 1) // 2 + 1, dtype=np.float64)
        log_double_factorial = np.cumsum(np.log(2 * i - 1))
        logs = 0.5 * math.log(2 * x / math.pi) - half + (i - 1) * math.log(x) \
            - log_double_factorial
        head = math.erfc(math.sqrt(half))
    if logs.size == 0:
        return head
    peak = float(logs.max())
    return min(1.0, head + math.exp(peak) * float(np.exp(logs - peak).sum()))


def _base(name: str, kind: str, ref_rows: int, ref_missing: int, cur_rows: int,
          cur_missing: int) -> dict[str, object]:
    return {
        "feature": name, "kind": kind, "reference_rows": ref_rows, "current_rows": cur_rows,
        "reference_missing_share": ref_missing / ref_rows if ref_rows else None,
        "current_missing_share": cur_missing / cur_rows if cur_rows else None,
    }


def _unjudgeable(kept_ref: int, ref_rows: int, kept_cur: int, cur_rows: int,
                 min_samples: int) -> tuple[Reason, str] | None:
    for label, kept, rows in (("reference", kept_ref, ref_rows), ("current", kept_cur, cur_rows)):
        if rows == 0:
            return Reason.EMPTY, f"the {label} sample has no rows"
        if kept == 0:
            return Reason.ALL_MISSING, f"every {label} value is missing or infinite"
    for label, kept in (("reference", kept_ref), ("current", kept_cur)):
        if kept < min_samples:
            return Reason.INSUFFICIENT_SAMPLES, f"{kept} {label} values, need {min_samples}"
    return None


def compare_numeric(name: str, profile: NumericProfile, current: np.ndarray,
                    settings: DriftPolicy, scratch: Scratch | None = None) -> FeatureDrift:
    """Judge one numeric feature against its reference profile."""
    cur = finite(current)
    base = _base(name, "numeric", profile.rows, profile.missing, int(current.size),
                 int(current.size - cur.size))
    problem = _unjudgeable(profile.sorted_values.size, profile.rows, cur.size, int(current.size),
                           settings.min_samples)
    if problem is None and profile.sorted_values[0] == profile.sorted_values[-1]:
        same = float(np.mean(cur == profile.sorted_values[0]))
        problem = (Reason.CONSTANT, f"the reference is constant ({profile.sorted_values[0]:g}); "
                                    f"{same:.1%} of current values equal it")
    if problem is not None:
        return FeatureDrift(**base, reason=problem[0], detail=problem[1])  # type: ignore[arg-type]
    window = window_statistics(profile.sorted_values, profile.grid, profile.edges, cur, scratch)
    d, p = ks_p_value(window.statistic, profile.sorted_values.size, cur.size)
    current_counts = np.diff(window.at_most, prepend=0, append=cur.size)
    r, c = _shares(profile.counts), _shares(current_counts)
    js, psi_value = js_distance(r, c), psi(r, c)
    chi2, chi2_p = chi_square(profile.counts, current_counts)
    return FeatureDrift(**base, statistic=d, p_value=p, chi2=chi2,  # type: ignore[arg-type]
                        chi2_p_value=chi2_p, js=js, psi=psi_value,
                        score=_score(d, js, psi_value, settings.weights),
                        bins=numeric_bins(profile.edges, r, c),
                        bins_gate=_bins_gate(profile.counts, current_counts))


def _bins_gate(reference_counts: np.ndarray, current_counts: np.ndarray) -> str:
    return "chi2" if min_expected(reference_counts, current_counts) >= MIN_EXPECTED else "ks"


def compare_histogram(name: str, reference: Histogram, current: Histogram,
                      settings: DriftPolicy) -> FeatureDrift:
    """Judge a feature known only as histogram buckets, on the edges both sides share: PSI, JS
    and chi-square on the bucket counts (what raw data on the same edges gives), and KS D
    bracketed from the cumulative counts; the verdict takes D's lower end and its p-value (an
    effect the buckets prove, never more)."""
    edges, ref_counts, cur_counts = on_shared_edges(reference, current)
    n_ref, n_cur = round(reference.total), round(current.total)
    base = _base(name, "numeric", n_ref, 0, n_cur, 0)
    problem = _unjudgeable(n_ref, n_ref, n_cur, n_cur, settings.min_samples)
    if problem is None and edges.size < 2:
        problem = (Reason.CONSTANT, "the two histograms share no bucket edge but +Inf")
    if problem is not None:
        return FeatureDrift(**base, reason=problem[0], detail=problem[1])  # type: ignore[arg-type]
    low, high = ks_bracket(ref_counts, cur_counts)
    p = ks_p_value(low, n_ref, n_cur)[1]
    r, c = _shares(ref_counts), _shares(cur_counts)
    js, psi_value = js_distance(r, c), psi(r, c)
    chi2, chi2_p = chi_square(ref_counts, cur_counts)
    return FeatureDrift(**base, statistic=low, p_value=p, chi2=chi2,  # type: ignore[arg-type]
                        chi2_p_value=chi2_p, js=js, psi=psi_value,
                        score=_score(low, js, psi_value, settings.weights),
                        bins=numeric_bins(edges[:-1], r, c), statistic_bounds=(low, high),
                        bins_gate=_bins_gate(ref_counts, cur_counts))


def compare_categorical(name: str, profile: CategoricalProfile, current: np.ndarray,
                        settings: DriftPolicy) -> FeatureDrift:
    """Judge one categorical feature: chi-square homogeneity, PSI and JS on category shares."""
    labels, cur_missing = categories(current)
    base = _base(name, "categorical", profile.rows, profile.missing, int(current.size), cur_missing)
    problem = _unjudgeable(int(profile.counts.sum()), profile.rows, labels.size, int(current.size),
                           settings.min_samples)
    cur_cats, cur_counts = np.unique(labels, return_counts=True)
    union = sorted(set(profile.categories) | {str(c) for c in cur_cats})  # unseen kept
    if problem is None and len(union) < 2:
        problem = (Reason.CONSTANT, f"only one category ({union[0]}) in both samples")
    if problem is not None:
        return FeatureDrift(**base, reason=problem[0], detail=problem[1])  # type: ignore[arg-type]
    index = {c: i for i, c in enumerate(union)}
    ref_counts = np.zeros(len(union))
    cur_full = np.zeros(len(union))
    ref_counts[[index[c] for c in profile.categories]] = profile.counts
    cur_full[[index[str(c)] for c in cur_cats]] = cur_counts
    chi2, p = chi_square(ref_counts, cur_full)
    r, c = _shares(ref_counts), _shares(cur_full)
    tvd = float(0.5 * np.abs(r - c).sum())
    js, psi_value = js_distance(r, c), psi(r, c)
    few = min_expected(ref_counts, cur_full) < MIN_EXPECTED
    return FeatureDrift(**base, statistic=tvd, p_value=p, chi2=chi2,  # type: ignore[arg-type]
                        chi2_p_value=p, js=js, psi=psi_value,
                        score=_score(tvd, js, psi_value, settings.weights),
                        bins=categorical_bins(union, r, c), bins_gate="fisher" if few else "chi2",
                        exact_p_value=fisher_categories(ref_counts, cur_full) if few else None)


def fisher_categories(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """An exact p-value for "the current sample's categories are shared as the reference's",
    right at any count: each category against the rest by Fisher's exact test (two-sided, as
    ``scipy.stats.fisher_exact``: the hypergeometric probability of every table at most as
    likely as the one seen, given both samples' sizes and the category's total), the smallest
    times the number of categories (Bonferroni; a two-category feature has one test)."""
    from scipy import special

    table = np.vstack([reference_counts, current_counts]).astype(np.int64)
    columns = table.sum(axis=0)
    keep = columns > 0
    totals, seen = columns[keep], table[1][keep]
    if totals.size < 2:
        return 1.0
    everything, drawn = int(totals.sum()), int(seen.sum())

    def log_choose(top: np.ndarray | int, pick: np.ndarray | int) -> np.ndarray:
        return np.asarray(special.gammaln(np.add(top, 1)) - special.gammaln(np.add(pick, 1))
                          - special.gammaln(np.subtract(top, pick) + 1))

    whole = log_choose(everything, drawn)
    smallest = 1.0
    tests = totals[:1] if totals.size == 2 else totals
    for total, observed in zip(tests.tolist(), seen.tolist(), strict=False):
        x = np.arange(max(0, drawn - (everything - total)), min(total, drawn) + 1)
        logs = log_choose(total, x) + log_choose(everything - total, drawn - x) - whole
        at = logs[observed - x[0]]
        p = float(np.exp(logs[logs <= at + 1e-7]).sum())
        smallest = min(smallest, p)
    return min(1.0, smallest * tests.size)


def _adjust(p_values: np.ndarray, method: str) -> np.ndarray:
    if method == "bonferroni":
        return np.minimum(p_values * p_values.size, 1.0)
    if method == "bh":
        return benjamini_hochberg(p_values)
    return p_values


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values, as ``scipy.stats.false_discovery_control`` (method
    bh) gives them (tested): the i-th smallest of m becomes min over j >= i of p_(j) m / j,
    at most 1. Written here because importing scipy.stats costs half a second, which every
    ``lifecycled drift`` would pay for this one line."""
    m = p_values.size
    if m == 0:
        return p_values.astype(float)
    order = np.argsort(p_values, kind="stable")
    scaled = p_values[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    out = np.empty(m, dtype=float)
    out[order] = adjusted
    return out


def compare(profile: ReferenceProfile, current: Mapping[str, np.ndarray], settings: DriftPolicy,
            features: Sequence[str] | None = None, categorical: Sequence[str] = (),
            progress: Callable[[int, int], None] | None = None,
            exclude: Sequence[str] = ()) -> DriftResult:
    """Judge every feature (default: those in both samples, less ``exclude``); one bad feature
    never stops the others. ``progress(done, total)`` is called after each feature."""
    names = list(features) if features is not None else [
        name for name in profile.features if name in current]
    names = [name for name in names if name not in exclude]
    verdicts: list[FeatureDrift] = []
    scratch = Scratch()
    for done, name in enumerate(names, start=1):
        verdicts.append(_judge(name, profile, current, settings, categorical, scratch,
                               explicit=features is not None))
        if progress is not None:
            progress(done, len(names))
    return judge(verdicts, settings)


def judge(verdicts: Sequence[FeatureDrift], settings: DriftPolicy) -> DriftResult:
    """The model's verdict from its features' numbers: p-values corrected across the features,
    each feature's severity from its effects gated by significance, then the worst."""
    corrected = _corrected(list(verdicts), settings.correction)
    return _verdict([_with_severity(v, settings) for v in corrected], settings)


def _corrected(verdicts: list[FeatureDrift], method: str) -> list[FeatureDrift]:
    """Adjust each test's p-values across the judged features (KS: the numeric ones; chi-square:
    the categorical ones and the numeric ones whose bin effects it gates)."""
    if method == "none":
        return verdicts
    adjusted: dict[str, dict[str, float]] = {}
    for test, kind in (("p_value", "numeric"), ("chi2_p_value", None)):
        family = [v for v in verdicts if v.judged and (
            v.kind == kind if kind is not None else v.kind != "numeric" or v.bins_gate == "chi2")]
        if family:
            values = _adjust(np.array([v.exact_p_value if test == "chi2_p_value"
                                       and v.exact_p_value is not None else getattr(v, test)
                                       for v in family], dtype=float), method)
            for v, a in zip(family, values, strict=True):
                adjusted.setdefault(v.feature, {})[test] = float(a)
    out = []
    for v in verdicts:
        found = adjusted.get(v.feature)
        if not found:
            out.append(v)
            continue
        chi2 = found.get("chi2_p_value")
        main = found.get("p_value", chi2) if v.kind == "numeric" else chi2
        out.append(replace(v, adjusted_p_value=main, adjusted_chi2_p_value=chi2))
    return out


def _gate(verdict: FeatureDrift) -> tuple[float | None, float | None]:
    """The p-values that gate the distance and the bin effects (adjusted where corrected)."""
    chi2 = (verdict.adjusted_chi2_p_value if verdict.adjusted_chi2_p_value is not None
            else verdict.exact_p_value if verdict.exact_p_value is not None
            else verdict.chi2_p_value)
    if verdict.kind != "numeric":
        return chi2, chi2
    ks = verdict.adjusted_p_value if verdict.adjusted_p_value is not None else verdict.p_value
    return ks, (chi2 if verdict.bins_gate == "chi2" else ks)


def _with_severity(verdict: FeatureDrift, settings: DriftPolicy) -> FeatureDrift:
    if not verdict.judged:
        return verdict
    assert verdict.score is not None
    if settings.rule == "seed":
        return replace(verdict, severity=severity_of(verdict.score))
    distance_p, bins_p = _gate(verdict)
    counted: list[tuple[Severity, str]] = []
    for effect, value, p in (("distance", verdict.statistic, distance_p),
                             ("psi", verdict.psi, bins_p), ("js", verdict.js, bins_p)):
        if value is None or p is None or p >= settings.alpha:
            continue
        tier = settings.tiers(effect).of(value)
        if tier > Severity.LOW:
            counted.append((tier, f"{_effect_name(effect, verdict.kind)}: {tier.label}"))
    severity = max((tier for tier, _ in counted), default=Severity.LOW)
    return replace(verdict, severity=severity,
                   counted=tuple(text for tier, text in counted if tier == severity))


def _effect_name(effect: str, kind: str) -> str:
    if effect == "distance":
        return "D" if kind == "numeric" else "TVD"
    return effect.upper()


def _verdict(verdicts: list[FeatureDrift], settings: DriftPolicy) -> DriftResult:
    """The model-level verdict: the worst feature; a schema break counts as ``schema_break``;
    nothing judged (and no schema break) is unknown, never low."""
    judged = [v for v in verdicts if v.judged]
    broken = [v for v in verdicts if v.reason in SCHEMA_BREAKS]
    ranked = [(v.severity, v.feature) for v in judged if v.severity is not None]
    ranked += [(settings.schema_break, v.feature) for v in broken]
    severity = max((s for s, _ in ranked), default=Severity.UNKNOWN)
    drivers = tuple(name for s, name in ranked if s == severity and s > Severity.LOW)
    drifted = sum(1 for v in judged if v.severity is not None
                  and v.severity >= settings.alert_severity)
    significant = sum(1 for v in judged if (p := (v.adjusted_p_value if v.adjusted_p_value
                                                  is not None else v.p_value)) is not None
                      and p < settings.alpha)
    return DriftResult(
        features=tuple(verdicts),
        severity=severity,
        drifted_share=drifted / len(judged) if judged else None,
        judged=len(judged),
        significant=significant,
        recommendations=RECOMMENDATIONS[severity],
        alert_severity=settings.alert_severity,
        rule=settings.rule,
        drivers=drivers,
        alpha=settings.alpha,
        alpha_basis=settings.basis,
    )


def _judge(name: str, profile: ReferenceProfile, current: Mapping[str, np.ndarray],
           settings: DriftPolicy, categorical: Sequence[str], scratch: Scratch, *,
           explicit: bool) -> FeatureDrift:
    """``explicit``: the feature was named by the caller (a high-cardinality column is judged)."""
    feature = profile.features.get(name)
    values = current.get(name)
    if feature is None or values is None:
        where = "reference" if feature is None else "current"
        rows = feature.rows if feature is not None else 0
        return FeatureDrift(name, "unknown", rows, 0 if values is None else int(values.size),
                            None, None, reason=Reason.MISSING_COLUMN,
                            detail=f"no column {name!r} in the {where} data")
    if isinstance(feature, NumericProfile):
        if not is_numeric(values) and categories(values)[0].size:
            return _mismatch(name, feature.rows, values, "numeric", "non-numeric")
        if not is_numeric(values):  # nothing but missing values: no type to compare
            values = np.full(values.size, np.nan)
        return compare_numeric(name, feature, values, settings, scratch)
    if is_numeric(values) and name not in categorical and np.isfinite(values).any():
        return _mismatch(name, feature.rows, values, "categorical", "numeric")
    present = feature.rows - feature.missing
    if not explicit and name not in categorical and 2 * len(feature.categories) > present > 0:
        return FeatureDrift(name, "categorical", feature.rows, int(values.size), None, None,
                            reason=Reason.HIGH_CARDINALITY,
                            detail=f"{len(feature.categories)} distinct values in {present} "
                                   "reference rows (an identifier?); name it in drift.features "
                                   "to judge it")
    return compare_categorical(name, feature, values, settings)


def _mismatch(name: str, ref_rows: int, values: np.ndarray, was: str, now: str) -> FeatureDrift:
    return FeatureDrift(name, was, ref_rows, int(values.size), None, None,
                        reason=Reason.TYPE_MISMATCH,
                        detail=f"{name!r} is {was} in the reference but {now} in the current data")


def feature_to_json(verdict: FeatureDrift) -> dict[str, object]:
    """Stable JSON form of one feature's verdict."""
    return {
        "feature": verdict.feature, "kind": verdict.kind, "judged": verdict.judged,
        "reason": verdict.reason.value if verdict.reason else None, "detail": verdict.detail,
        "reference_rows": verdict.reference_rows, "current_rows": verdict.current_rows,
        "reference_missing_share": verdict.reference_missing_share,
        "current_missing_share": verdict.current_missing_share,
        "statistic": verdict.statistic,
        "statistic_name": "ks" if verdict.kind == "numeric" else "tvd",
        "p_value": verdict.p_value, "adjusted_p_value": verdict.adjusted_p_value,
        "chi2": verdict.chi2, "chi2_p_value": verdict.chi2_p_value,
        "adjusted_chi2_p_value": verdict.adjusted_chi2_p_value,
        "js": verdict.js, "psi": verdict.psi, "psi_tier": psi_tier(verdict.psi),
        "score": verdict.score,
        "severity": verdict.severity.label if verdict.severity is not None else None,
        "counted": list(verdict.counted),
        "bins": verdict.bins.to_json() if verdict.bins is not None else None,
        **({"statistic_bounds": list(verdict.statistic_bounds)}
           if verdict.statistic_bounds is not None else {}),
        **({"bins_gated_by": verdict.bins_gate} if verdict.judged else {}),
        **({"exact_p_value": verdict.exact_p_value}
           if verdict.exact_p_value is not None else {}),
    }


def psi_tier(value: float | None) -> str | None:
    """The PSI's own words: stable (< 0.1), moderate (0.1-0.25), significant (>= 0.25)."""
    if value is None:
        return None
    return next(name for limit, name in PSI_TIERS if value >= limit)


def result_to_json(result: DriftResult) -> dict[str, object]:
    """Stable JSON form of a model-level drift result."""
    return {
        "severity": result.severity.label,
        "rule": result.rule,
        "drivers": list(result.drivers),
        "drifted_share": result.drifted_share,
        "alert_severity": result.alert_severity.label,
        "alpha": result.alpha,
        "alpha_basis": result.alpha_basis,
        "judged": result.judged,
        "unjudged": len(result.features) - result.judged,
        "significant": result.significant,
        "recommendations": list(result.recommendations),
        "features": [feature_to_json(f) for f in result.features],
    }
