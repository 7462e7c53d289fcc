"""p-values of the two-sided two-sample KS test, as ``scipy.stats.ks_2samp`` (method auto)
computes them: exact up to 10,000 values per sample, else the Kolmogorov distribution of
``scipy.stats.kstwo`` at the effective sample size."""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import special, stats

from lifecycled.core.ecdf import ks_statistic

try:  # the routine ks_2samp itself uses for its exact p-value
    from scipy.stats._stats_py import _attempt_exact_2kssamp
except ImportError:  # pragma: no cover
    _attempt_exact_2kssamp = None

EXACT_KS_MAX_N = 10_000  # scipy's ks_2samp 'auto' switches to the asymptotic p-value above this


def ks_two_sample(sorted_ref: np.ndarray, sorted_cur: np.ndarray) -> tuple[float, float]:
    """Two-sided two-sample KS statistic and p-value, as ``scipy.stats.ks_2samp`` (method auto):
    exact up to 10,000 values per sample, else the asymptotic Kolmogorov distribution."""
    return ks_p_value(ks_statistic(sorted_ref, sorted_cur), sorted_ref.size, sorted_cur.size)


def ks_p_value(d: float, n1: int, n2: int) -> tuple[float, float]:
    """The statistic (rounded to the exact distribution's lattice, as scipy reports it there) and
    the p-value of a two-sided two-sample KS test with sizes n1 and n2."""
    # Without scipy's routine (a future scipy may move it) the asymptotic p-value is used, as
    # scipy itself does when the exact one fails; the agreement tests would show the change.
    if max(n1, n2) <= EXACT_KS_MAX_N and _attempt_exact_2kssamp is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ok, d_exact, p = _attempt_exact_2kssamp(n1, n2, math.gcd(n1, n2), d, "two-sided")
        if ok:  # otherwise scipy, too, falls back to the asymptotic p-value
            return float(d_exact), float(np.clip(p, 0.0, 1.0))
    m, n = sorted([float(n1), float(n2)], reverse=True)
    return d, kolmogorov_sf(d, int(np.round(m * n / (m + n))))


def smirnov_sf(n: int, d: float) -> float:
    """One-sided Smirnov tail P(D+_n >= d) for 0 < d < 1, as ``scipy.special.smirnov``.

    The Birnbaum-Tingey series ``d * sum_v C(n, v) (d + v/n)^(v-1) (1 - d - v/n)^(n-v)``,
    v = 0..floor(n(1 - d)), summed in log space in one vectorised pass (``betaln`` for the
    binomial coefficients). scipy sums the same series one term at a time, which takes about
    0.6 s at n = 500,000; this agrees with it to about 1e-9 relative (tested) at a twentieth of
    the cost.
    """
    if d >= 1.0:
        return 0.0
    if d <= 0.0:
        return 1.0
    top = math.floor(n * (1.0 - d))
    v = np.arange(top + 1, dtype=np.float64)
    point = d + v / n
    with np.errstate(divide="ignore"):  # the last term is 0 when 1 - d - v/n is 0
        logs = -math.log(n + 1) - special.betaln(n - v + 1, v + 1)
        logs += (v - 1) * np.log(point)
        logs += (n - v) * np.log1p(-point)
    peak = float(logs.max())
    return float(d * math.exp(peak) * np.exp(logs - peak).sum())


def kolmogorov_sf(d: float, n: int) -> float:
    """``scipy.stats.kstwo.sf(d, n)``, the two-sided one-sample KS tail ks_2samp uses for its
    asymptotic p-value. In the range where scipy answers with 2 * smirnov(n, d) (n > 140,
    2.2 <= n d^2 < 370, d < 0.5; Simard and L'Ecuyer's choice), that is computed with
    ``smirnov_sf``; elsewhere scipy is called."""
    t = n * d * d
    if n > 140 and 2.2 <= t < 370.0 and d < 0.5 and 1.0 < n * d < n - 1:
        return min(max(2.0 * smirnov_sf(n, d), 0.0), 1.0)
    return float(np.clip(stats.kstwo.sf(d, n), 0.0, 1.0))
