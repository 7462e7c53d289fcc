"""p-values of the two-sided two-sample KS test, as ``scipy.stats.ks_2samp`` (method auto)
computes them: exact up to 10,000 values per sample (for equal sizes with a faster evaluation of
the same formula, ``prob_outside_square``; for unequal sizes ``outside_band``, scipy's method
computed here, as scipy's own routine is private), else the Kolmogorov distribution of
``scipy.stats.kstwo`` at the effective sample size."""

from __future__ import annotations

import math

import numpy as np

from lifecycled.core.ecdf import ks_statistic

EXACT_KS_MAX_N = 10_000  # scipy's ks_2samp 'auto' switches to the asymptotic p-value above this


def ks_two_sample(sorted_ref: np.ndarray, sorted_cur: np.ndarray) -> tuple[float, float]:
    """Two-sided two-sample KS statistic and p-value, as ``scipy.stats.ks_2samp`` (method auto):
    exact up to 10,000 values per sample, else the asymptotic Kolmogorov distribution."""
    return ks_p_value(ks_statistic(sorted_ref, sorted_cur), sorted_ref.size, sorted_cur.size)


def ks_p_value(d: float, n1: int, n2: int) -> tuple[float, float]:
    """The statistic (rounded to the exact distribution's lattice, as scipy reports it there) and
    the p-value of a two-sided two-sample KS test with sizes n1 and n2."""
    if n1 == n2 <= EXACT_KS_MAX_N:
        h = int(np.round(d * n1))  # the lattice of D for equal sizes: h / n
        d_exact, p = h / n1, prob_outside_square(n1, h)
        if 0.0 <= p <= 1.0:  # else (rounding above 1) scipy, too, falls back to asymptotic
            return d_exact, p
        return d_exact, kolmogorov_sf(d_exact, int(np.round(n1 / 2)))
    if max(n1, n2) <= EXACT_KS_MAX_N:
        g = math.gcd(n1, n2)
        lcm = (n1 // g) * n2
        h = int(np.round(d * lcm))  # the lattice of D: h / lcm(n1, n2)
        if h == 0:
            return 0.0, 1.0
        p = outside_band(n1, n2, g, h)
        if 0.0 <= p <= 1.0:
            return h / lcm, p
        d = h / lcm
    m, n = sorted([float(n1), float(n2)], reverse=True)
    return d, kolmogorov_sf(d, int(np.round(m * n / (m + n))))


def outside_band(n1: int, n2: int, g: int, h: int) -> float:
    """P(D >= h / lcm(n1, n2)) for samples of sizes n1 and n2 under the null: the share of the
    lattice paths from (0, 0) to (m, n) that leave the band |x/m - y/n| < h / lcm (Hodges' inside
    method computing 1 - p directly, after Viehmann, arXiv:2102.08037, as ks_2samp does for
    unequal sizes; equal to it within 1e-10, property-tested). Each column of the band is one
    recurrence, val_j = (A_j i + val_(j-1) j) / (i + j), which in path counts is a running sum,
    val_j C(i+j, j) = val_(j-1) C(i+j-1, j-1) + A_j C(i+j-1, j); it is summed in log space
    (``np.logaddexp.accumulate``), so nothing overflows, one column at a time."""
    from scipy import special  # scipy.special costs 0.15 s to import: where it is needed

    m, n = (n1, n2) if n1 >= n2 else (n2, n1)
    mg, ng = m // g, n // g
    log_factorial = special.gammaln(np.arange(m + n + 2, dtype=np.float64) + 1.0)
    low, high = 0, min(-(-h // mg), n + 1)
    length = high - low
    column = np.ones(min(2 * high + 2, n + 1))
    column[low:high] = 0.0
    for i in range(1, m + 1):
        last_low, last_length = low, length
        low = min(max((ng * i - h) // mg + 1, 0), n)
        high = min(-(-(ng * i + h) // mg), n + 1)
        if high <= low:
            return 1.0
        previous = column[low - last_low:high - last_low]
        # log C(i+j-1, j) without its -log((i-1)!), which every term shares
        base = log_factorial[i + low - 1:i + high - 1] - log_factorial[low:high]
        with np.errstate(divide="ignore"):  # a share of 0 is a term of 0
            terms = np.log(previous) + base
        if low > 0:  # the band's lower edge: val_(low-1) = 1, times C(i+low-1, low-1)
            edge = log_factorial[i + low - 1] - log_factorial[low - 1] - math.log(i)
            terms[0] = np.logaddexp(terms[0], edge)
        # divided by C(i+j, j) = C(i+j-1, j) (i+j) / i
        column[:high - low] = np.exp(np.logaddexp.accumulate(terms) - base
                                     - np.log(np.arange(i + low, i + high, dtype=np.float64))
                                     + math.log(i))
        length = high - low
        if last_length > length:
            column[length:last_length] = 1.0
    return float(column[high - low - 1])


_NEGLIGIBLE = math.log(1e-20)  # a term this far below the first cannot move the sum


def prob_outside_square(n: int, h: int) -> float:
    """P(D >= h/n) for two samples of n values each: the share of lattice paths that leave the
    band |x - y| < h, as scipy's ``_compute_prob_outside_square`` (which ks_2samp uses for equal
    sizes) computes it, to within 1e-9 (tested).

    Both evaluate ``2 * A0 (1 - A1 (1 - A2 (...)))`` by Horner's rule, where
    ``A_k = prod_{j<h} (n - kh - j) / (n + kh + j + 1)``. scipy multiplies the n factors one at a
    time in Python (about 2 ms at n = 10,000, per feature); here each A_k is four ``gammaln``
    terms, all k at once, and the terms that cannot matter (below 1e-20 of the first) are cut.
    """
    if h <= 0:
        return 1.0
    from scipy import special

    k = np.arange(n // h + 1, dtype=np.float64)
    top = n - k * h  # A_k's numerator factors run from top down to top - h + 1
    logs = (special.gammaln(top + 1) - special.gammaln(np.maximum(top - h, 0.0) + 1)
            - special.gammaln(n + (k + 1) * h + 1) + special.gammaln(n + k * h + 1))
    logs[top - h < 0] = -np.inf  # a factor of zero (top < h): the term is 0
    kept = max(int(np.searchsorted(-np.cumsum(logs), -_NEGLIGIBLE)), 1)
    total = 0.0
    for term in np.exp(logs[:kept])[::-1].tolist():
        total = term * (1.0 - total)
    return 2.0 * total


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
    from scipy import special

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
    asymptotic p-value, with Simard and L'Ecuyer's choice of method as scipy makes it. For
    n > 140 and d < 0.5: where scipy answers with 2 * smirnov(n, d) (2.2 <= n d^2 < 370), that
    is ``smirnov_sf``; beyond it (n d^2 >= 370) scipy answers 0, and so does this; below it, for
    the large samples of a drift check (n > 100,000, or n d^1.5 > 1.4), scipy takes 1 minus
    Pelz and Good's series, and so does this (``pelz_good_cdf``). Elsewhere scipy is called
    (importing scipy.stats, half a second, only then)."""
    t = n * d * d
    if n > 140 and d < 0.5 and 1.0 < n * d < n - 1:
        if t >= 370.0:  # scipy's answer there: 0 (the tail is below 2 exp(-740))
            return 0.0
        if t >= 2.2:
            return min(max(2.0 * smirnov_sf(n, d), 0.0), 1.0)
        if n > 100_000 or n * d ** 1.5 > 1.4:  # where scipy uses Pelz and Good's series
            return min(max(1.0 - pelz_good_cdf(n, d), 0.0), 1.0)
    from scipy import stats  # only in the remaining ranges: imported when needed

    return float(np.clip(stats.kstwo.sf(d, n), 0.0, 1.0))


def pelz_good_cdf(n: int, d: float) -> float:
    """P(D_n <= d) by Pelz and Good's (1976) series for the two-sided one-sample KS statistic,
    as scipy evaluates it (``_kolmogn_PelzGood``; equal to 1e-15, tested): with z = d sqrt(n),
    K0(z) + K1(z) / sqrt(n) + K2(z) / n + K3(z) / n^1.5, each K written with the
    Jacobi-theta terms exp(-(2k-1)^2 pi^2 / (8 z^2)) and exp(-k^2 pi^2 / (2 z^2)), k up to
    16 z / pi, all summed at once."""
    z = math.sqrt(n) * d
    z2 = z * z
    rate = -math.pi ** 2 / (8 * z2)
    if rate < _MIN_LOG:  # every term below the smallest float: P = 0
        return 0.0
    pi2, pi4, pi6 = math.pi ** 2, math.pi ** 4, math.pi ** 6
    k = np.arange(1, math.ceil(16 * z / math.pi) + 1, dtype=np.float64)
    m2 = (2 * k - 1) ** 2
    odd = np.exp(rate * m2)
    whole = np.exp(-(k * k) * pi2 / (2 * z2))
    root = math.sqrt(2 * math.pi)
    k0 = float(odd.sum()) * root / z
    k1 = float((pi2 / 4 * m2 - z2) @ odd) * root / (6 * z2 ** 2)
    k2 = (float((6 * z2 ** 3 + 2 * z2 ** 2 + (2 * z2 ** 2 - 5 * z2) * pi2 / 4 * m2
                 + pi4 * (1 - 2 * z2) / 16 * m2 ** 2) @ odd) * root / (72 * z ** 7)
          - pi2 * root / (36 * z2 * z) * float((k * k) @ whole))
    k3 = (float((-30 * z2 ** 3 - 90 * z2 ** 4 + pi2 * (135 * z2 ** 2 - 96 * z2 ** 3) / 4 * m2
                 + pi4 * (212 * z2 ** 2 - 60 * z2) / 16 * m2 ** 2
                 + pi6 * (5 - 30 * z2) / 64 * m2 ** 3) @ odd) * root / (6480 * z2 ** 5)
          + pi2 * root / (216 * z2 ** 3) * float(((3 * z2 - pi2 * k * k) * k * k) @ whole))
    return k0 + k1 / math.sqrt(n) + k2 / n + k3 / n ** 1.5


_MIN_LOG = math.log(np.finfo(np.float64).tiny)
