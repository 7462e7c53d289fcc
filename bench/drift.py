"""Drift engine benchmark: warm and cold profile against plain scipy and the cost of a sort.

Deterministic data (seed 0): reference N(0, 1) per feature; in the current window half the
features are shifted as x * 1.2 + 0.3. For each size it prints seconds and ratios measured in the
same run (the floors: one np.sort of every column, one pass over the current values, and the
counting of every current value into its bucket), and the peak memory growth of a warm check
against the size of the current window.
"p-value s" is the part of the warm time spent on the KS p-values alone (scipy's exact method up to
10,000 values per sample, which the plain scipy version pays too).

    python bench/drift.py            # all sizes
    python bench/drift.py --quick    # small sizes only (smoke test)
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from collections.abc import Callable

import numpy as np
from lifecycled.core.drift import compare
from lifecycled.core.kstest import ks_p_value
from lifecycled.core.profile import build_profile
from lifecycled.domain import DriftPolicy
from scipy import stats
from scipy.spatial.distance import jensenshannon

SIZES = [(100_000, 20), (1_000_000, 20), (10_000, 100)]
QUICK = [(20_000, 5), (10_000, 20)]


def make_data(rows: int, features: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    reference = {f"f{i}": rng.normal(0, 1, rows) for i in range(features)}
    current = {}
    for i in range(features):
        x = rng.normal(0, 1, rows)
        current[f"f{i}"] = x * 1.2 + 0.3 if i % 2 == 0 else x
    return reference, current


def plain_scipy(reference: dict[str, np.ndarray], current: dict[str, np.ndarray]) -> None:
    """What a hand-rolled script does: ks_2samp, np.histogram PSI, jensenshannon per feature."""
    for name, ref in reference.items():
        cur = current[name]
        stats.ks_2samp(ref, cur)
        edges = np.concatenate(([-np.inf], np.quantile(ref, np.arange(1, 10) / 10), [np.inf]))
        r = np.histogram(ref, edges)[0] / ref.size
        c = np.histogram(cur, edges)[0] / cur.size
        r, c = np.where(r == 0, 1e-4, r), np.where(c == 0, 1e-4, c)
        float(np.sum((c - r) * np.log(c / r)))
        jensenshannon(r, c, base=2)


def floor(reference: dict[str, np.ndarray], current: dict[str, np.ndarray]) -> None:
    """The floor: one np.sort of every reference and current column."""
    for name, ref in reference.items():
        np.sort(ref)
        np.sort(current[name])


def one_pass(current: dict[str, np.ndarray]) -> None:
    """The other floor: one pass over every current value (a sum of each column)."""
    for values in current.values():
        values.sum()


def counting(buckets: list[tuple[np.ndarray, int]]) -> None:
    """A third floor: counting every current value into its bucket (``np.bincount`` of bucket
    numbers worked out beforehand), which any histogram of the window needs, PSI and JS
    included. It is a scattered write per value, several times a sum's cost."""
    for index, size in buckets:
        np.bincount(index, minlength=size)


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(rows: int, features: int, repeat: int, settings: DriftPolicy) -> str:
    """Time every variant on one size and return the printed row."""
    reference, current = make_data(rows, features)
    profile = build_profile(reference)
    t_floor = best_of(lambda: floor(reference, current), repeat)
    t_pass = best_of(lambda: one_pass(current), repeat)
    buckets = [(profile.features[name].grid.index(values).copy(),
                profile.features[name].grid.buckets)
               for name, values in current.items()]
    t_count = best_of(lambda: counting(buckets), repeat)
    t_warm = best_of(lambda: compare(profile, current, settings), repeat)
    t_cold = best_of(lambda: compare(build_profile(reference), current, settings), repeat)
    t_scipy = best_of(lambda: plain_scipy(reference, current), repeat)
    window_bytes = sum(v.nbytes for v in current.values())
    tracemalloc.start()
    result = compare(profile, current, settings)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert result.judged == features
    t_p = best_of(lambda: [ks_p_value(f.statistic or 0.0, rows, rows) for f in result.features],
                  repeat)
    return (f"{rows:>9,} x {features:<4} {t_floor:8.3f} {t_pass:8.4f} {t_count:8.4f} "
            f"{t_warm:8.3f} {t_p:10.3f} {t_cold:8.3f} {t_scipy:8.3f} {t_warm / t_floor:10.2f} "
            f"{t_warm / t_pass:9.1f} {t_count / t_pass:10.1f} {t_warm / t_count:10.1f} "
            f"{t_scipy / t_warm:10.2f} {t_cold / t_floor:10.2f} {peak / window_bytes:11.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    settings = DriftPolicy()
    print(f"{'size':>16} {'floor s':>8} {'1-pass s':>8} {'count s':>8} {'warm s':>8} "
          f"{'p-value s':>10} {'cold s':>8} {'scipy s':>8} {'warm/floor':>10} {'warm/pass':>9} "
          f"{'count/pass':>10} {'warm/count':>10} {'scipy/warm':>10} {'cold/floor':>10} "
          f"{'peak/window':>11}")
    for rows, features in QUICK if args.quick else SIZES:
        print(measure(rows, features, args.repeat, settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
