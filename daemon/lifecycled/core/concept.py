"""Concept drift from labelled outcomes: the windowed-accuracy trend and Page-Hinkley on errors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from lifecycled.domain import Severity

# Indicator limits of the windowed-accuracy trend; each also needs p < alpha (SIGNIFICANCE for a
# one-shot check; the daemon's from the false-alarm budget), so that the sampling noise of
# windows of 100 outcomes is never read as drift.
SLOPE_LIMIT = -0.01  # accuracy lost per window
CV_LIMIT = 0.1  # coefficient of variation of window accuracies
DROP_LIMIT = 0.05  # the first half's accuracy minus the second half's (whole windows each)
SIGNIFICANCE = 0.05


@dataclass(frozen=True)
class AccuracyTrend:
    windows: int
    window_size: int
    accuracies: tuple[float, ...]
    slope: float
    p_value: float
    coefficient_of_variation: float
    drop: float
    indicators: tuple[str, ...]
    severity: Severity
    spread_p_value: float = 1.0  # the windows' accuracies differ by more than chance
    drop_p_value: float = 1.0  # the second half is below the first by more than chance


@dataclass(frozen=True)
class PageHinkley:
    detected: bool
    change_index: int | None  # position in the stream where the alarm was raised
    statistic: float  # the largest PH value seen
    threshold: float
    delta: float


@dataclass(frozen=True)
class ErrorTrend:
    """A regression model's windowed absolute error: the rising trend and the increase from
    the first half of the windows to the second, each beyond chance."""

    windows: int
    window_size: int
    errors: tuple[float, ...]  # each window's mean absolute error
    slope: float  # per window, relative to the mean absolute error over all windows
    p_value: float
    increase: float  # the second half's mean absolute error over the first's, minus 1
    increase_p_value: float  # one-sided Welch t-test on the halves' absolute errors
    indicators: tuple[str, ...]
    severity: Severity


RISE_LIMIT = 0.01  # a window's error grows by 1 % of the mean error per window
INCREASE_LIMIT = 0.10  # the second half's error 10 % above the first's
ERROR_PH_DELTA = 0.05  # Page-Hinkley's allowance on standardised errors


@dataclass(frozen=True)
class ConceptDrift:
    samples: int
    trend: AccuracyTrend | ErrorTrend | None  # None when fewer than 3 windows fit
    page_hinkley: PageHinkley | None
    severity: Severity | None
    reason: str = ""


def accuracy_trend(correct: np.ndarray, alpha: float = SIGNIFICANCE) -> AccuracyTrend | None:
    """Window = min(100, n // 4); at least 3 windows; slope, CV and the drop from the first half
    of the windows to the second (the middle window of an odd count in neither)."""
    n = int(correct.size)
    window = min(100, n // 4)
    if window < 1 or n // window < 3:
        return None
    count = n // window
    accuracies = correct[: count * window].reshape(count, window).mean(axis=1)
    fit = stats.linregress(np.arange(count, dtype=float), accuracies)
    mean = float(accuracies.mean())
    cv = float(accuracies.std() / mean) if mean > 0 else float("inf")
    half = count // 2
    first, second = float(accuracies[:half].mean()), float(accuracies[-half:].mean())
    drop = first - second
    slope = float(fit.slope)
    p_value = float(fit.pvalue) if np.isfinite(fit.pvalue) else 1.0
    spread_p, drop_p = _spread_p_value(accuracies, window), _drop_p_value(first, second, half * window)
    indicators = tuple(name for name, hit in (
        ("declining_trend", slope < SLOPE_LIMIT and p_value < alpha),
        ("unstable_accuracy", cv > CV_LIMIT and spread_p < alpha),
        ("accuracy_drop", drop > DROP_LIMIT and drop_p < alpha),
    ) if hit)
    severity = _of_indicators(indicators)
    return AccuracyTrend(count, window, tuple(float(a) for a in accuracies), slope, p_value, cv,
                         drop, indicators, severity, spread_p, drop_p)


def _spread_p_value(accuracies: np.ndarray, window: int) -> float:
    """Pearson's chi-square test that every window has the same accuracy (the 2 x windows table
    of right and wrong counts, as ``scipy.stats.chi2_contingency`` without continuity
    correction): the chance of a spread this wide from noise alone."""
    pooled = float(accuracies.mean())
    if pooled in (0.0, 1.0):
        return 1.0
    statistic = float(np.sum(window * (accuracies - pooled) ** 2) / (pooled * (1 - pooled)))
    return float(stats.chi2.sf(statistic, accuracies.size - 1))


def _drop_p_value(first: float, second: float, size: int) -> float:
    """One-sided two-proportion z-test that the second half's accuracy is below the first's
    (``size`` outcomes each)."""
    pooled = (first + second) / 2
    if pooled in (0.0, 1.0):
        return 1.0
    z = (first - second) / np.sqrt(pooled * (1 - pooled) * 2 / size)
    return float(stats.norm.sf(z))


def page_hinkley(errors: np.ndarray, *, delta: float = 0.005, threshold: float = 50.0
                 ) -> PageHinkley:
    """Page-Hinkley test for an increase in the mean of the error stream (1 = wrong)."""
    x = errors.astype(float)
    if x.size == 0:
        return PageHinkley(False, None, 0.0, threshold, delta)
    running_mean = np.cumsum(x) / np.arange(1, x.size + 1)
    cumulative = np.cumsum(x - running_mean - delta)
    ph = cumulative - np.minimum.accumulate(np.minimum(cumulative, 0.0))
    alarms = np.flatnonzero(ph > threshold)
    return PageHinkley(bool(alarms.size), int(alarms[0]) if alarms.size else None,
                       float(ph.max()), threshold, delta)


def concept_drift(correct: np.ndarray, *, min_samples: int = 100,
                  alpha: float = SIGNIFICANCE) -> ConceptDrift:
    """Judge concept drift from per-prediction correctness, oldest first."""
    correct = np.asarray(correct, dtype=bool)
    if correct.size < min_samples:
        return ConceptDrift(int(correct.size), None, None, None,
                            reason=f"insufficient_samples: {correct.size} outcomes, need {min_samples}")
    return _judged(int(correct.size), accuracy_trend(correct, alpha), page_hinkley(~correct))


def error_trend(error: np.ndarray, alpha: float = SIGNIFICANCE) -> ErrorTrend | None:
    """The windowed absolute error of a regression model (windows as ``accuracy_trend``'s):
    ``rising_error`` when the slope exceeds 1 % of the mean error per window with p < alpha,
    ``error_increase`` when the second half of the windows is 10 % worse than the first beyond
    chance; two indicators high, one medium."""
    n = int(error.size)
    window = min(100, n // 4)
    if window < 1 or n // window < 3:
        return None
    count = n // window
    kept = error[: count * window].reshape(count, window)
    errors = kept.mean(axis=1)
    mean = float(errors.mean())
    if mean == 0.0:  # a perfect model: nothing can rise beyond chance from 0
        return ErrorTrend(count, window, tuple(float(e) for e in errors), 0.0, 1.0, 0.0, 1.0, (),
                          Severity.LOW)
    fit = stats.linregress(np.arange(count, dtype=float), errors)
    slope = float(fit.slope) / mean
    p_value = float(fit.pvalue) if np.isfinite(fit.pvalue) else 1.0
    half = count // 2
    first, second = kept[:half].ravel(), kept[-half:].ravel()
    increase = float(second.mean() / first.mean() - 1) if first.mean() > 0 else 0.0
    test = stats.ttest_ind(second, first, equal_var=False, alternative="greater")
    increase_p = float(test.pvalue) if np.isfinite(test.pvalue) else 1.0
    indicators = tuple(name for name, hit in (
        ("rising_error", slope > RISE_LIMIT and p_value < alpha),
        ("error_increase", increase > INCREASE_LIMIT and increase_p < alpha),
    ) if hit)
    severity = _of_indicators(indicators)
    return ErrorTrend(count, window, tuple(float(e) for e in errors), slope, p_value, increase,
                      increase_p, indicators, severity)


def error_drift(error: np.ndarray, *, min_samples: int = 100,
                alpha: float = SIGNIFICANCE) -> ConceptDrift:
    """Concept drift of a regression model from its absolute errors, oldest first: the windowed
    error trend, and Page-Hinkley on the errors in units of their standard deviation (an
    increase in the mean error), its threshold from alpha."""
    error = np.abs(np.asarray(error, dtype=float))
    if error.size < min_samples:
        return ConceptDrift(int(error.size), None, None, None,
                            reason=f"insufficient_samples: {error.size} outcomes, need {min_samples}")
    trend = error_trend(error, alpha)
    spread = float(error.std())
    # on errors in units of their standard deviation, a drift of delta = 0.05 makes a chance
    # excursion past the threshold about exp(-2 delta threshold) likely: set to alpha
    ph = page_hinkley(error / spread if spread > 0 else error, delta=ERROR_PH_DELTA,
                      threshold=float(np.log(1 / alpha)) / (2 * ERROR_PH_DELTA))
    return _judged(int(error.size), trend, ph)


def _of_indicators(indicators: tuple[str, ...]) -> Severity:
    """Two indicators or more are high, one medium, none low."""
    return (Severity.HIGH if len(indicators) >= 2 else
            Severity.MEDIUM if indicators else Severity.LOW)


def _judged(samples: int, trend: AccuracyTrend | ErrorTrend | None, ph: PageHinkley
            ) -> ConceptDrift:
    """The trend's severity (low without one), at least medium when Page-Hinkley fires."""
    severity = trend.severity if trend else Severity.LOW
    if ph.detected:
        severity = max(severity, Severity.MEDIUM)
    return ConceptDrift(samples, trend, ph, severity)


def concept_to_json(result: ConceptDrift) -> dict[str, object]:
    """Stable JSON form of a concept-drift result."""
    trend = result.trend
    ph = result.page_hinkley
    return {
        "samples": result.samples,
        "severity": result.severity.label if result.severity is not None else None,
        "reason": result.reason or None,
        "trend": None if trend is None else _trend_json(trend),
        "page_hinkley": None if ph is None else {
            "detected": ph.detected, "change_index": ph.change_index, "statistic": ph.statistic,
            "threshold": ph.threshold, "delta": ph.delta,
        },
    }


def _trend_json(trend: AccuracyTrend | ErrorTrend) -> dict[str, object]:
    if isinstance(trend, ErrorTrend):
        return {"measure": "absolute_error", "windows": trend.windows,
                "window_size": trend.window_size, "errors": list(trend.errors),
                "slope": trend.slope, "p_value": trend.p_value, "increase": trend.increase,
                "increase_p_value": trend.increase_p_value,
                "indicators": list(trend.indicators), "severity": trend.severity.label}
    return {"windows": trend.windows, "window_size": trend.window_size,
            "accuracies": list(trend.accuracies), "slope": trend.slope,
            "p_value": trend.p_value, "coefficient_of_variation": trend.coefficient_of_variation,
            "drop": trend.drop, "spread_p_value": trend.spread_p_value,
            "drop_p_value": trend.drop_p_value, "indicators": list(trend.indicators),
            "severity": trend.severity.label}
