"""Data drift per feature: KS, PSI and Jensen-Shannon on reference-quantile bins; chi-square, PSI
and JS on category shares; composite score, severity and recommendations (DESIGN.md section 6).

The reference is summarised once into a ReferenceProfile (``lifecycled.core.profile``); each check
then makes a few passes over the current window and sorts only the small part of it where the KS
statistic can be (``lifecycled.core.ecdf``); p-values as scipy's (``lifecycled.core.kstest``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon

from lifecycled.core.ecdf import Scratch, window_statistics
from lifecycled.core.kstest import ks_p_value
from lifecycled.core.profile import (
    CategoricalProfile,
    NumericProfile,
    ReferenceProfile,
    categories,
    finite,
    is_numeric,
)
from lifecycled.domain import DriftPolicy, Severity

PSI_FLOOR = 1e-4


class Reason(enum.StrEnum):
    """Why a feature could not be judged."""

    INSUFFICIENT_SAMPLES = "insufficient_samples"
    EMPTY = "empty"
    ALL_MISSING = "all_missing"
    CONSTANT = "constant"
    TYPE_MISMATCH = "type_mismatch"
    MISSING_COLUMN = "missing_column"


RECOMMENDATIONS: dict[Severity, tuple[str, ...]] = {
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
    chi2: float | None = None
    js: float | None = None
    psi: float | None = None
    score: float | None = None
    severity: Severity | None = None
    adjusted_p_value: float | None = None

    @property
    def judged(self) -> bool:
        return self.reason is None


@dataclass(frozen=True)
class DriftResult:
    features: tuple[FeatureDrift, ...]
    severity: Severity
    drifted_share: float | None
    judged: int
    significant: int  # features whose (corrected) p-value is below alpha; reported, not decisive
    recommendations: tuple[str, ...] = field(default=())
    alert_severity: Severity = Severity.MEDIUM  # what counts as drifted in drifted_share

    @property
    def worst(self) -> FeatureDrift | None:
        judged = [f for f in self.features if f.judged]
        return max(judged, key=lambda f: f.score or 0.0) if judged else None


def severity_of(score: float) -> Severity:
    """low <= 0.3 < medium <= 0.5 < high <= 0.7 < critical."""
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
    """Jensen-Shannon distance, base 2, in [0, 1]."""
    with np.errstate(invalid="ignore"):  # rounding can leave the divergence a hair below 0
        value = float(jensenshannon(reference_shares, current_shares, base=2))
    return 0.0 if np.isnan(value) else min(max(value, 0.0), 1.0)


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else counts.astype(float)


def _score(statistic: float, js: float, psi_value: float, weights: tuple[float, float, float]
           ) -> tuple[float, Severity]:
    score = weights[0] * statistic + weights[1] * js + weights[2] * psi_value
    return score, severity_of(score)


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
    r = _shares(profile.counts)
    c = _shares(np.diff(window.at_most, prepend=0, append=cur.size))
    js, psi_value = js_distance(r, c), psi(r, c)
    score, severity = _score(d, js, psi_value, settings.weights)
    return FeatureDrift(**base, statistic=d, p_value=p, js=js, psi=psi_value,  # type: ignore[arg-type]
                        score=score, severity=severity)


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
    chi2, p, _, _ = stats.chi2_contingency(np.vstack([ref_counts, cur_full]), correction=False)
    r, c = _shares(ref_counts), _shares(cur_full)
    tvd = float(0.5 * np.abs(r - c).sum())
    js, psi_value = js_distance(r, c), psi(r, c)
    score, severity = _score(tvd, js, psi_value, settings.weights)
    return FeatureDrift(**base, statistic=tvd, p_value=float(p), chi2=float(chi2),  # type: ignore[arg-type]
                        js=js, psi=psi_value, score=score, severity=severity)


def _adjust(p_values: np.ndarray, method: str) -> np.ndarray:
    if method == "bonferroni":
        return np.minimum(p_values * p_values.size, 1.0)
    if method == "bh":
        return np.asarray(stats.false_discovery_control(p_values, method="bh"))
    return p_values


def compare(profile: ReferenceProfile, current: Mapping[str, np.ndarray], settings: DriftPolicy,
            features: Sequence[str] | None = None, categorical: Sequence[str] = (),
            progress: Callable[[int, int], None] | None = None) -> DriftResult:
    """Judge every feature (default: those in both samples); one bad feature never stops the
    others. ``progress(done, total)`` is called after each feature."""
    names = list(features) if features is not None else [
        name for name in profile.features if name in current]
    verdicts: list[FeatureDrift] = []
    scratch = Scratch()
    for done, name in enumerate(names, start=1):
        verdicts.append(_judge(name, profile, current, settings, categorical, scratch))
        if progress is not None:
            progress(done, len(names))
    judged = [v for v in verdicts if v.judged]
    if judged and settings.correction != "none":
        adjusted = _adjust(np.array([v.p_value for v in judged], dtype=float), settings.correction)
        replaced = {v.feature: float(a) for v, a in zip(judged, adjusted, strict=True)}
        verdicts = [_with_adjusted(v, replaced.get(v.feature)) for v in verdicts]
        judged = [v for v in verdicts if v.judged]
    severity = max((v.severity for v in judged if v.severity is not None), default=Severity.LOW)
    drifted = sum(1 for v in judged if v.severity is not None
                  and v.severity >= settings.alert_severity)
    significant = sum(1 for v in judged if (v.adjusted_p_value if v.adjusted_p_value is not None
                                             else v.p_value or 1.0) < settings.alpha)
    return DriftResult(
        features=tuple(verdicts),
        severity=severity,
        drifted_share=drifted / len(judged) if judged else None,
        judged=len(judged),
        significant=significant,
        recommendations=RECOMMENDATIONS[severity],
        alert_severity=settings.alert_severity,
    )


def _with_adjusted(verdict: FeatureDrift, adjusted: float | None) -> FeatureDrift:
    from dataclasses import replace

    return replace(verdict, adjusted_p_value=adjusted) if adjusted is not None else verdict


def _judge(name: str, profile: ReferenceProfile, current: Mapping[str, np.ndarray],
           settings: DriftPolicy, categorical: Sequence[str], scratch: Scratch) -> FeatureDrift:
    feature = profile.features.get(name)
    values = current.get(name)
    if feature is None or values is None:
        where = "reference" if feature is None else "current"
        rows = feature.rows if feature is not None else 0
        return FeatureDrift(name, "unknown", rows, 0 if values is None else int(values.size),
                            None, None, reason=Reason.MISSING_COLUMN,
                            detail=f"no column {name!r} in the {where} data")
    if isinstance(feature, NumericProfile):
        if not is_numeric(values):
            return _mismatch(name, feature.rows, values, "numeric", "non-numeric")
        return compare_numeric(name, feature, values, settings, scratch)
    if is_numeric(values) and name not in categorical:
        return _mismatch(name, feature.rows, values, "categorical", "numeric")
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
        "chi2": verdict.chi2, "js": verdict.js, "psi": verdict.psi, "score": verdict.score,
        "severity": verdict.severity.label if verdict.severity is not None else None,
    }


def result_to_json(result: DriftResult) -> dict[str, object]:
    """Stable JSON form of a model-level drift result."""
    return {
        "severity": result.severity.label,
        "drifted_share": result.drifted_share,
        "alert_severity": result.alert_severity.label,
        "judged": result.judged,
        "unjudged": len(result.features) - result.judged,
        "significant": result.significant,
        "recommendations": list(result.recommendations),
        "features": [feature_to_json(f) for f in result.features],
    }
