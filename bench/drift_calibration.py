"""Shifts and severities: how each severity rule judges known shifts (the table in docs/drift.md).

Reference N(0, 1) and current windows of the same size (plus 100-row windows against a 100,000-row
reference), location shifts of 0 to 1.0 sd and a scale change x1.5. Each cell gives the share of
repeats at each severity (a fresh reference every 10 repeats, so the rate is over references too);
the no-shift rows are the false-alarm rates. Deterministic (seeded).

    python bench/drift_calibration.py              # the table in docs/drift.md (a few minutes)
    python bench/drift_calibration.py --quick      # small sizes and repeats (smoke test)
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np
from lifecycled.core.drift import compare
from lifecycled.core.profile import build_profile
from lifecycled.domain import SEVERITIES, DriftPolicy

SHIFTS: list[tuple[str, float, float]] = [
    ("0", 0.0, 1.0), ("0.02 sd", 0.02, 1.0), ("0.1 sd", 0.1, 1.0), ("0.25 sd", 0.25, 1.0),
    ("0.5 sd", 0.5, 1.0), ("1.0 sd", 1.0, 1.0), ("scale x1.5", 0.0, 1.5),
]


def shares(reference_rows: int, current_rows: int, shift: float, scale: float, repeats: int,
           policy: DriftPolicy, seed: int) -> Counter[str]:
    rng = np.random.default_rng(seed)
    found: Counter[str] = Counter()
    for repeat in range(repeats):
        if repeat % 10 == 0:
            profile = build_profile({"x": rng.normal(size=reference_rows)})
        (verdict,) = compare(profile, {"x": rng.normal(shift, scale, current_rows)},
                             policy).features
        assert verdict.severity is not None
        found[verdict.severity.label] += 1
    return found


def cell(found: Counter[str]) -> str:
    total = sum(found.values())
    return " ".join(f"{s[0].upper()}{100 * found[s] / total:.1f}" for s in SEVERITIES
                    if found[s]) or "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and repeats")
    args = parser.parse_args()
    sizes = [(1000, 1000), (10_000, 10_000)] if args.quick else [
        (1000, 1000), (10_000, 10_000), (1_000_000, 1_000_000), (100_000, 100)]
    rules = {"tiers (alpha 0.05)": DriftPolicy(alpha=0.05),
             "tiers (alpha 0.001)": DriftPolicy(alpha=0.001),
             "seed": DriftPolicy(rule="seed")}
    print("share of repeats per severity, %: L low, M medium, H high, C critical")
    header = "| rows (ref/current) | shift | repeats | " + " | ".join(rules) + " |"
    print(header)
    print("|" + "---|" * (3 + len(rules)))
    for reference_rows, current_rows in sizes:
        for label, shift, scale in SHIFTS:
            if args.quick:
                repeats = 50
            elif shift == 0 and scale == 1:
                repeats = 1000 if current_rows <= 100_000 else 200
            else:
                repeats = 100 if current_rows <= 100_000 else 10
            cells = [cell(shares(reference_rows, current_rows, shift, scale, repeats, policy,
                                 seed=7)) for policy in rules.values()]
            print(f"| {reference_rows:,}/{current_rows:,} | {label} | {repeats} | "
                  + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
