"""Quality benchmark: multiclass metrics over many distinct labels, against the floor of what
any count of them must do (one ``np.unique`` over both columns of the same outcomes).

    python bench/quality.py [--outcomes 100000] [--classes 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse

import numpy as np
from lifecycled.core.quality import evaluate_quality

from bench.exporter import best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outcomes", type=int, default=100_000)
    parser.add_argument("--classes", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    true = rng.integers(0, args.classes, args.outcomes).astype(str)
    pred = np.where(rng.uniform(size=args.outcomes) < 0.7, true,
                    rng.integers(0, args.classes, args.outcomes).astype(str))
    floor = best(lambda: np.unique(np.concatenate([pred, true]).astype(object),
                                   return_inverse=True), args.repeat)
    quality = best(lambda: evaluate_quality(pred, true), args.repeat)
    print(f"{args.outcomes} outcomes, {args.classes} classes: evaluate_quality {quality:.3f} s, "
          f"floor (np.unique) {floor:.3f} s, ratio {quality / floor:.1f}x")


if __name__ == "__main__":
    main()
