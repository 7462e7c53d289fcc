"""Champion and challenger benchmark: how many challenger requests a decision takes, and how
often identical versions are rolled back, with the shipped policy (alpha 0.05 split between
the failure and latency tests, a promotion needing evidence of at most 20 % more failures).

1. Replays of the counts a pass sees (each version's requests and failures, drawn per pass as
   Triton would count them; 500 to 1,500 requests per version per pass), the policy asked after
   every pass: 200 A/A replays (both at a 2 % failure ratio), 200 with a challenger failing 20 %
   more (2.4 %), and 200 with a challenger whose p99 is 50 % higher (the p99 of a pass drawn
   around its version's own, 10 % noise), against the fixed-sample test of the same error and
   80 % power as the baseline.
2. Replays against a real Triton serving both versions (``--real N``): requests sent to each
   version, failures at the given ratios (a value the model refuses), lifecycled's compare pass
   reading Triton's /metrics every 1,000 requests per version until it decides.

    python bench/compare.py [--replays 200] [--real 3]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
from pathlib import Path

import numpy as np
import requests
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lifecycled.core.compare import ComparePolicy, Evidence, FailureEvidence, decide, observe

from devtools import triton

POLICY = ComparePolicy(min_requests=1000, max_duration=math.inf)


def replay(rng: np.random.Generator, p_challenger: float, p_champion: float,
           p99: tuple[float, float] = (0.010, 0.010), passes: int = 400
           ) -> tuple[str | None, float]:
    evidence = Evidence(FailureEvidence(POLICY.failure_margin))
    for index in range(passes):
        n_c, n_b = int(rng.integers(500, 1500)), int(rng.integers(500, 1500))
        failed = (rng.binomial(n_c, p_challenger), rng.binomial(n_b, p_champion))
        seen = (p99[0] * rng.lognormal(0, 0.1), p99[1] * rng.lognormal(0, 0.1))
        evidence = observe(evidence, (n_c, n_b), failed, seen, POLICY)
        decision = decide(evidence, index, POLICY)
        if decision.outcome is not None:
            return decision.outcome, evidence.requests[0]
    return None, evidence.requests[0]


def fixed_sample(p0: float, p1: float, alpha: float, power: float = 0.8) -> float:
    """Requests per version a one-sided two-proportion z-test needs (normal approximation)."""
    z_a, z_b = stats.norm.ppf(1 - alpha), stats.norm.ppf(power)
    bar = (p0 + p1) / 2
    return ((z_a * math.sqrt(2 * bar * (1 - bar)) + z_b * math.sqrt(p0 * (1 - p0)
                                                                     + p1 * (1 - p1))) ** 2
            / (p1 - p0) ** 2)


def summary(name: str, runs: list[tuple[str | None, float]]) -> None:
    outcomes = {k: sum(1 for o, _ in runs if o == k) for k in ("promote", "rollback", "hold")}
    for outcome in ("rollback", "promote"):
        needed = [n for o, n in runs if o == outcome]
        if needed:
            print(f"{name:<34}{outcome:<10}{outcomes[outcome]:>5} of {len(runs):<5}"
                  f"{np.median(needed):>10.0f}{np.quantile(needed, 0.9):>10.0f}")
    undecided = len(runs) - sum(outcomes.values())
    if undecided or outcomes["hold"]:
        print(f"{name:<34}{'other':<10}{undecided + outcomes['hold']:>5} of {len(runs)}")


def simulated(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(7)
    print(f"Replays of pass counts, the policy asked after each pass ({args.replays} each):")
    print(f"{'challenger':<34}{'decision':<10}{'count':>14}{'median':>10}{'p90':>10}"
          "   (challenger requests)")
    summary("same as the champion (A/A, 2 %)", [replay(rng, 0.02, 0.02)
                                                for _ in range(args.replays)])
    summary("20 % more failures (2.4 % vs 2 %)", [replay(rng, 0.024, 0.02, passes=2000)
                                                  for _ in range(args.replays)])
    summary("50 % higher p99 (same failures)", [replay(rng, 0.02, 0.02, p99=(0.015, 0.010))
                                                for _ in range(args.replays)])
    needed = fixed_sample(0.02, 0.024, POLICY.alpha / 2)
    print(f"baseline: a fixed-sample test at the same error (alpha {POLICY.alpha / 2:g}) with "
          f"80 % power needs {needed:,.0f} requests per version for 2 % vs 2.4 %, looked at once")


def real(args: argparse.Namespace) -> None:
    """Replays against a real Triton serving credit_scoring 1 and 2 side by side."""
    from lifecycled.actions.compare import start_comparison
    from lifecycled.config import parse_settings
    from lifecycled.context import Context
    from lifecycled.domain import ModelRef, Status
    from lifecycled.store import open_store
    from lifecycled.store.comparisons import comparisons
    from lifecycled.tasks.compare import run_compare
    from lifecycled.tasks.discovery import run_discovery

    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        repository = work / "models"
        for model in (*triton.SEED_MODELS, triton.ModelSpec("credit_scoring", "2", 4,
                                                            (0.8, -0.5, 0.3, 0.1), -0.2)):
            triton.write_model(repository, model)
        server = triton.start(repository, work)
        try:
            config = requests.get(f"{server.url}/v2/models/credit_scoring/config",
                                  timeout=10).json()
            config["version_policy"] = {"all": {}}
            requests.post(f"{server.url}/v2/repository/models/credit_scoring/load",
                          json={"parameters": {"config": json.dumps(config)}},
                          timeout=120).raise_for_status()
            print(f"\nReplays against a real Triton (2.4 % vs 2 % failures, a pass every 1,000 "
                  f"requests per version), {args.real}:")
            session = requests.Session()
            needed = []
            for index in range(args.real):
                settings = parse_settings({"sources": {"triton": [{
                    "name": "local", "url": server.url, "metrics_url": server.metrics_url}]}})
                ctx = Context(settings, open_store(f"sqlite:///replay-{index}.db", work))
                run_discovery(ctx)
                champion, challenger = ModelRef("credit_scoring", "1"), ModelRef(
                    "credit_scoring", "2")
                ctx.store.set_status(champion, Status.PRODUCTION, actor="b", reason="b",
                                     now=ctx.clock())
                start_comparison(ctx, champion, challenger, actor="bench", reason="replay")
                rng = random.Random(index)
                run_compare(ctx)
                outcome = None
                while outcome is None:
                    for _ in range(1000):
                        for version, failing in (("1", 0.02), ("2", 0.024)):
                            row = [1e9 if rng.random() < failing else rng.random(), 0, 0, 0]
                            session.post(f"{server.url}/v2/models/credit_scoring/versions/"
                                         f"{version}/infer", timeout=30, json={"inputs": [{
                                             "name": "INPUT", "shape": [1, 4],
                                             "datatype": "FP32", "data": row}]})
                    outcome = next(iter(run_compare(ctx)["decided"].values()), None)
                (done,) = comparisons(ctx.store)
                n = done.evidence["requests"]["challenger"]
                needed.append(n)
                print(f"  replay {index + 1}: {outcome} after {n:,.0f} challenger requests")
                ctx.store.close()
            print(f"  median {np.median(needed):,.0f} challenger requests")
        finally:
            server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replays", type=int, default=200, help="simulated replays per case")
    parser.add_argument("--real", type=int, default=0,
                        help="replays against a real Triton (each about a minute)")
    args = parser.parse_args()
    simulated(args)
    if args.real:
        real(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
