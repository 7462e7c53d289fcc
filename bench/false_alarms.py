"""False alarms of repeated verdicts against the false-alarm budget (the tables in
docs/benchmarks.md).

The daemon judges each model at the significance its budget gives for its schedule (here the
default 1/30d, a drift check and a quality pass every 5 minutes); peers judge every check at a
fixed alpha of 0.05. Everything below runs lifecycled's own engine and settings:

1. Stationary drift: models of 20 features, each with its own 100,000-row N(0, 1) reference,
   checked on fresh stationary windows of 100, 1,000 and 10,000 rows. A false alarm is a check
   judged medium or worse (a model.drift_detected event). Fresh windows make every check a new
   chance, the most a sliding window's overlapping checks could give. The rate per model per
   30 days is the measured rate per check times the checks in 30 days (8,640), with its
   one-sided 95 % (Clopper-Pearson) upper bound, beside the same at alpha 0.05.
   A bound that tight needs millions of checks at 100 rows (the rate sits near the budget by
   design), so each window first goes through an exact screen (``Screen``): a check can be
   judged medium or worse only if some feature is significant, which under any correction
   needs a raw KS or chi-square p-value at most alpha; windows whose every p-value is above
   twice alpha are low without the engine's full check, every other window gets it. The screen
   is verified against the full check on the first windows of every size (printed).
2. Shifted drift: one feature of each model shifts by 0.5 sd; the window slides, so after k
   checks k/12 of a one-hour window holds shifted rows. Share detected (medium or worse) within
   36 checks (3 hours) and the delay in checks, median and p90.
3. Accuracy from labels: a model steadily 90 % right against a minimum of 0.85, 50-500 labels a
   window (drawn per model), a verdict every 5 minutes for the whole replay: breaches of the
   point estimate (what a plain threshold does) against breaches judged on the upper confidence
   bound at the budget's alpha.

    python bench/false_alarms.py              # the tables (about 40 minutes on 1 core)
    python bench/false_alarms.py --quick      # tiny sizes (smoke test)
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from lifecycled.config import parse_settings
from lifecycled.core.drift import compare
from lifecycled.core.kstest import ks_p_value
from lifecycled.core.profile import NumericProfile, ReferenceProfile, build_profile
from lifecycled.core.quality import accuracy_upper_bound
from lifecycled.domain import DriftPolicy, Severity
from scipy import special, stats

PERIOD_CHECKS = 30 * 288  # checks in 30 days at one every 5 minutes
WINDOW_CHECKS = 12  # a one-hour sliding window holds 12 checks' worth of rows
FEATURES = 20
REFERENCE_ROWS = 100_000


def upper(events: int, trials: int, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound of a rate."""
    if events >= trials:
        return 1.0
    return float(stats.beta.ppf(confidence, events + 1, trials - events))


def profile(rng: np.random.Generator, features: int, rows: int) -> ReferenceProfile:
    return build_profile({f"f{i}": rng.normal(size=rows) for i in range(features)})


class Screen:
    """Which windows may be judged medium or worse: a feature is significant only if its raw
    KS or chi-square p-value is at most alpha (Bonferroni and Benjamini-Hochberg adjust upwards,
    so none of them makes a larger p-value significant). The KS p-value falls as D grows for
    given sample sizes, so "p at most twice alpha" is "D at least ``critical``", found once by
    bisection on the engine's own p-value (``ks_p_value``). Twice alpha: a margin, so rounding
    never decides. Many windows of a model are screened at once: each feature's reference and
    each window's rows are laid end to end with offsets that keep them apart, so one sort and
    one ``searchsorted`` give every window's D (at the window's own points, where the two-sample
    supremum is reached); a comparison with the profile's bin edges gives its counts, for the
    chi-square test."""

    OFFSET = 1_000.0  # apart from N(0, 1) values by far more than any draw

    def __init__(self, policy: DriftPolicy, rows: int, reference_rows: int) -> None:
        self.level = 2 * policy.alpha
        low, high = 0.0, 1.0
        for _ in range(60):
            middle = (low + high) / 2
            if ks_p_value(middle, reference_rows, rows)[1] <= self.level:
                high = middle
            else:
                low = middle
        self.critical = low  # below it, p > twice alpha

    def may_alarm(self, reference: ReferenceProfile, windows: np.ndarray) -> np.ndarray:
        """For windows shaped (windows, features, rows), True where a feature may be
        significant."""
        _, features, rows = windows.shape
        profiles = [reference.features[f"f{i}"] for i in range(features)]
        assert all(isinstance(p, NumericProfile) for p in profiles)
        numeric = [p for p in profiles if isinstance(p, NumericProfile)]
        size = numeric[0].sorted_values.size
        shift = self.OFFSET * np.arange(features)
        laid = np.concatenate([p.sorted_values + shift[i] for i, p in enumerate(numeric)])
        ordered = np.sort(windows, axis=2)
        # feature by feature (each reference block stays in cache); values of two independent
        # continuous samples never tie, so "below" and "at most" are one count
        points = np.ascontiguousarray((ordered + shift[None, :, None]).transpose(1, 0, 2))
        below = (np.searchsorted(laid, points) - (np.arange(features) * size)[:, None, None]
                 ).transpose(1, 0, 2)
        j = np.arange(1, rows + 1)
        d = np.maximum(j / rows - below / size, below / size - (j - 1) / rows).max(axis=2)
        flagged = (d >= self.critical).any(axis=1)
        edges = np.stack([p.edges for p in numeric])  # equal bins: the same count each
        cuts = (windows[:, :, :, None] <= edges[None, :, None, :]).sum(axis=2)
        current = np.diff(cuts, axis=2, prepend=0, append=rows)
        table = np.stack([np.broadcast_to(np.stack([p.counts for p in numeric]), current.shape),
                          current], axis=2).astype(float)  # (windows, features, 2, bins)
        columns = table.sum(axis=2, keepdims=True)
        expected = table.sum(axis=3, keepdims=True) * columns / columns.sum(axis=3,
                                                                            keepdims=True)
        chi2 = ((table - expected) ** 2 / expected).sum(axis=(2, 3))
        flagged |= (special.chdtrc(edges.shape[1], chi2) <= self.level).any(axis=1)
        return flagged


BATCH_VALUES = 50_000  # values screened at once per feature (windows times rows)


def stationary(rows: int, checks: int, models: int, policy: DriftPolicy, features: int,
               reference_rows: int, seed: int, verify: int = 0) -> tuple[int, int]:
    """Checks judged medium or worse among ``checks`` fresh stationary windows, spread over
    ``models`` models (one reference each, built in turn so that one is in memory at a time).
    The first ``verify`` windows get the full check whatever the screen says, and a window the
    screen passed over but the check judged medium or worse stops the run. Returns the alarms
    and the windows given the full check."""
    rng = np.random.default_rng(seed)
    screen = Screen(policy, rows, reference_rows)
    alarms = checked = 0
    per_model = math.ceil(checks / models)
    done = 0
    for _ in range(models):
        reference = profile(rng, features, reference_rows)
        left = min(per_model, checks - done)
        while left > 0:
            windows = rng.normal(size=(min(max(1, BATCH_VALUES // rows), left), features, rows))
            flagged = screen.may_alarm(reference, windows)
            for k in range(windows.shape[0]):
                if flagged[k] or done < verify:
                    window = {f"f{i}": windows[k, i] for i in range(features)}
                    alarmed = compare(reference, window, policy).severity >= Severity.MEDIUM
                    checked += 1
                    if alarmed and not flagged[k]:
                        raise SystemExit(f"the screen passed over an alarm at {rows} rows")
                    alarms += alarmed
                done += 1
            left -= windows.shape[0]
    return alarms, checked


def shifted(rows: int, models: int, policy: DriftPolicy, features: int, reference_rows: int,
            seed: int, limit: int = 36) -> list[int | None]:
    """Per model, the checks after a 0.5 sd shift of one feature until it is judged medium or
    worse (None: not within ``limit``)."""
    rng = np.random.default_rng(seed)
    delays: list[int | None] = []
    for _ in range(models):
        reference = profile(rng, features, reference_rows)
        found = None
        for k in range(1, limit + 1):
            window = {f"f{i}": rng.normal(size=rows) for i in range(features)}
            moved = int(rows * min(1.0, k / WINDOW_CHECKS))
            window["f0"][:moved] += 0.5
            if compare(reference, window, policy).severity >= Severity.MEDIUM:
                found = k
                break
        delays.append(found)
    return delays


def accuracy_replay(models: int, days: int, alpha: float, seed: int) -> tuple[int, int, int]:
    """(verdicts, point-estimate breaches, bound breaches) of a model 90 % right against 0.85."""
    rng = np.random.default_rng(seed)
    verdicts = point = bound = 0
    for _ in range(models):
        labels = int(rng.integers(50, 501))
        right = rng.binomial(labels, 0.90, days * 288)
        verdicts += right.size
        point += int(np.sum(right / labels < 0.85))
        bounds = {r: accuracy_upper_bound(int(r), labels, alpha) for r in np.unique(right)}
        bound += sum((bounds[int(r)] or 1.0) < 0.85 for r in right)  # None: no labels
    return verdicts, point, bound


def per_30_days(events: int, trials: int) -> str:
    return f"{events / trials * PERIOD_CHECKS:.3g} (95 % upper {upper(events, trials) * PERIOD_CHECKS:.3g})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--checks", type=int, default=30_000,
                        help="stationary checks of 1,000 and 10,000 rows at the budget's alpha")
    parser.add_argument("--small-checks", type=int, default=1_000_000,
                        help="stationary checks of 100 rows at the budget's alpha (the rate "
                             "there sits near the budget: its bound needs many)")
    parser.add_argument("--verify", type=int, default=1_000,
                        help="windows per size given the full check whatever the screen says")
    parser.add_argument("--fixed-checks", type=int, default=2_000,
                        help="stationary checks per window size at alpha 0.05")
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--shifted-models", type=int, default=20)
    parser.add_argument("--days", type=int, default=7, help="days of the accuracy replay")
    parser.add_argument("--sizes", default="100,1000,10000", help="window rows, comma-separated")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    features, reference_rows = FEATURES, REFERENCE_ROWS
    if args.quick:
        args.checks, args.fixed_checks, args.models, args.shifted_models, args.days = (
            20, 20, 2, 2, 1)
        args.small_checks, args.verify = 2_000, 200
        # above 10,000 reference rows the KS p-value is asymptotic: the quick run stays quick
        sizes, features, reference_rows = [100], 4, 20_000
    settings = parse_settings({"schedule": {"drift": "5m", "quality": "5m"}})
    budgeted = settings.drift_policy("model")
    fixed = DriftPolicy(alpha=0.05, basis="fixed at 0.05 per check")
    alarms, period = settings.false_alarm_budget("model")
    print(f"budget: {alarms:g} false alarm per {period / 86400:g} days per model; one check every "
          f"5 minutes ({PERIOD_CHECKS} per 30 days); drift judged at alpha {budgeted.alpha:.3g} "
          f"per family of tests ({budgeted.basis})")
    print()
    print("stationary drift: false alarms per model per 30 days")
    print("| window rows | checks (budget) | alarms | per model per 30 days | budget | checks "
          "(alpha 0.05) | alarms | per model per 30 days | fully checked | seconds |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for rows in sizes:
        started = time.perf_counter()
        checks = args.small_checks if rows == 100 else args.checks
        found, checked = stationary(rows, checks, args.models, budgeted, features,
                                   reference_rows, seed=rows, verify=args.verify)
        loose, _ = stationary(rows, args.fixed_checks, max(1, args.models // 10), fixed,
                              features, reference_rows, seed=rows + 1,
                              verify=args.fixed_checks)
        print(f"| {rows:,} | {checks:,} | {found} | {per_30_days(found, checks)} | "
              f"{alarms:g} | {args.fixed_checks:,} | {loose} | "
              f"{per_30_days(loose, args.fixed_checks)} | "
              f"{checked:,} | "
              f"{time.perf_counter() - started:.0f} |", flush=True)
    print()
    print(f"a 0.5 sd shift of one feature, the window sliding over it: {args.shifted_models} "
          f"models per size, detection (medium or worse) within 36 checks")
    print("| window rows | detected | delay in checks, median | p90 |")
    print("|---|---|---|---|")
    for rows in sizes:
        delays = shifted(rows, args.shifted_models, budgeted, features, reference_rows,
                         seed=rows + 2)
        found_delays = [d for d in delays if d is not None]
        median = f"{np.median(found_delays):g}" if found_delays else "-"
        p90 = f"{np.percentile(found_delays, 90):g}" if found_delays else "-"
        print(f"| {rows:,} | {len(found_delays)}/{len(delays)} | {median} | {p90} |", flush=True)
    print()
    quality = settings.significance("model", settings.schedule.quality)
    verdicts, point, bound = accuracy_replay(args.models, args.days, quality.alpha, seed=3)
    print(f"accuracy from labels: {args.models} models steadily 90 % right, minimum 0.85, "
          f"50-500 labels a window, a verdict every 5 minutes for {args.days} days "
          f"({verdicts:,} verdicts); the bound at alpha {quality.alpha:.3g}")
    print("| judged on | breaches | per model per 30 days | budget |")
    print("|---|---|---|---|")
    print(f"| the point estimate | {point:,} | {per_30_days(point, verdicts)} | {alarms:g} |")
    print(f"| the upper confidence bound | {bound:,} | {per_30_days(bound, verdicts)} | "
          f"{alarms:g} |")


if __name__ == "__main__":
    main()
