"""Champion and challenger: anytime-valid sequential evidence from what both versions served,
and the policy's decision from it.

The comparison is looked at every pass, hundreds of times; each test is an e-process (a
nonnegative supermartingale under its null hypothesis), so by Ville's inequality it ever reaches
``1 / alpha`` with probability at most ``alpha``, however often it is looked at and whenever
the comparison stops.

* Failures, in the style of sequential tests on request counters: given the failures of a
  pass, the number that came from the challenger is binomial with
  ``theta(rho) = rho * n_c / (rho * n_c + n_b)``, where ``n`` are the two versions' requests in
  that pass and ``rho`` is the ratio of the challenger's failure ratio to the champion's. The
  product over passes of the likelihood ratio of ``rho`` against a null ``rho0``, mixed over a
  grid of ``rho`` (equal weights), is a martingale under the null. ``worse`` tests ``rho0 = 1``
  against ``rho > 1`` (evidence for a rollback); ``not_worse`` tests ``rho0 = 1 + margin``
  against ``rho < rho0`` (evidence that the challenger fails at most ``margin`` more, for a
  promotion; valid for every ``rho >= rho0`` too, as the ratio's mean only falls there).
* Latency: a pass where both versions have a p99 is "worse" when the challenger's exceeds the
  champion's by more than the margin. With the same latency, a pass is worse with probability at
  most 1/2, so the number of worse passes is tested as a sign test against 1/2, mixed uniformly
  over ``q`` in [1/2, 1]; and, for a promotion, the other way (worse in fewer than half the
  passes), mixed over ``q`` in [0, 1/2].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

WORSE_GRID = tuple(float(r) for r in np.geomspace(1.05, 4.0, 16))


def not_worse_grid(margin: float) -> tuple[float, ...]:
    """Failure ratio ratios below the margin's ``1 + margin``, down to a quarter."""
    top = (1.0 + margin) / 1.05
    return tuple(float(r) for r in np.geomspace(0.25, max(top, 0.26), 16))


def _log_mean_exp(values: Sequence[float]) -> float:
    top = max(values)
    if top == -math.inf:
        return -math.inf
    return top + math.log(sum(math.exp(v - top) for v in values) / len(values))


@dataclass(frozen=True)
class FailureEvidence:
    """The log likelihood ratios so far, one per ``rho`` of each grid."""

    margin: float
    worse: tuple[float, ...] = field(default_factory=lambda: (0.0,) * len(WORSE_GRID))
    not_worse: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not self.not_worse:
            object.__setattr__(self, "not_worse", (0.0,) * len(not_worse_grid(self.margin)))

    def add(self, n_challenger: float, f_challenger: float, n_champion: float,
            f_champion: float) -> FailureEvidence:
        """The evidence after one pass: each version's requests and failures in it."""
        if n_challenger <= 0 or n_champion <= 0 or f_challenger + f_champion <= 0:
            return self  # no failure, or one side unserved: the pass says nothing

        def moved(grid: Sequence[float], null: float, sums: Sequence[float]) -> tuple[float, ...]:
            theta0 = null * n_challenger / (null * n_challenger + n_champion)
            out = []
            for rho, total in zip(grid, sums, strict=True):
                theta = rho * n_challenger / (rho * n_challenger + n_champion)
                out.append(total + f_challenger * math.log(theta / theta0)
                           + f_champion * math.log((1 - theta) / (1 - theta0)))
            return tuple(out)

        return replace(self, worse=moved(WORSE_GRID, 1.0, self.worse),
                       not_worse=moved(not_worse_grid(self.margin), 1.0 + self.margin,
                                       self.not_worse))

    @property
    def log_e_worse(self) -> float:
        return _log_mean_exp(self.worse)

    @property
    def log_e_not_worse(self) -> float:
        return _log_mean_exp(self.not_worse)


@dataclass(frozen=True)
class LatencyEvidence:
    """Passes with both p99s known, and those where the challenger's was worse by the margin."""

    passes: int = 0
    worse: int = 0

    def add(self, p99_challenger: float | None, p99_champion: float | None,
            margin: float) -> LatencyEvidence:
        if p99_challenger is None or p99_champion is None:
            return self
        worse = p99_challenger > (1.0 + margin) * p99_champion
        return LatencyEvidence(self.passes + 1, self.worse + int(worse))

    @property
    def log_e(self) -> float:
        """Evidence that the challenger is slower: log of 2 * the integral over q in [1/2, 1]
        of q^k (1-q)^(n-k) dq / (1/2)^n."""
        return self._mixture(above=True)

    @property
    def log_e_not_worse(self) -> float:
        """Evidence that it is not (worse passes less often than half the time): the same
        mixture over q in [0, 1/2]."""
        return self._mixture(above=False)

    def _mixture(self, *, above: bool) -> float:
        from scipy import special  # here: settings import this module, and scipy costs 0.35 s

        n, k = self.passes, self.worse
        if n == 0:
            return 0.0
        below = special.betainc(k + 1, n - k + 1, 0.5)  # the share of the beta under 1/2
        share = 1.0 - below if above else below
        if share <= 0.0:
            return -math.inf
        return (math.log(2.0) + special.betaln(k + 1, n - k + 1) + math.log(share)
                + n * math.log(2.0))


CRITERIA = ("failures", "latency")
OUTCOMES = ("promote", "rollback", "hold")


@dataclass(frozen=True)
class ComparePolicy:
    """When a comparison decides (``policies.compare``)."""

    alpha: float = 0.05  # each decision's error, however often the comparison is looked at
    min_requests: int = 1000  # of the challenger, before a promotion
    max_duration: float = 86400.0
    failure_margin: float = 0.2  # a promotion needs evidence of at most 20 % more failures
    latency_margin: float = 0.2  # a pass is worse when the challenger's p99 is 20 % higher
    block: tuple[str, ...] = CRITERIA  # the others only inform
    on_latency: str = "rollback"  # or hold
    on_timeout: str = "hold"  # or promote, rollback


@dataclass(frozen=True)
class Evidence:
    """Everything a comparison has seen: counts since it opened and the tests' evidence."""

    failures: FailureEvidence
    latency: LatencyEvidence = LatencyEvidence()
    requests: tuple[float, float] = (0.0, 0.0)  # (challenger, champion)
    failed: tuple[float, float] = (0.0, 0.0)

    def to_json(self, policy: ComparePolicy) -> dict[str, object]:
        n_c, n_b = self.requests
        f_c, f_b = self.failed
        return {
            "requests": {"challenger": n_c, "champion": n_b},
            "failures": {"challenger": f_c, "champion": f_b},
            "failure_ratio": {"challenger": f_c / n_c if n_c else None,
                              "champion": f_b / n_b if n_b else None},
            "e_values": {"failures_worse": _e(self.failures.log_e_worse),
                         "failures_not_worse": _e(self.failures.log_e_not_worse),
                         "latency_worse": _e(self.latency.log_e),
                         "latency_not_worse": _e(self.latency.log_e_not_worse)},
            "threshold": threshold(policy),
            "latency": {"passes": self.latency.passes, "worse": self.latency.worse},
            "log_lr": {"worse": list(self.failures.worse),
                       "not_worse": list(self.failures.not_worse)},
        }


def observe(evidence: Evidence, requests: tuple[float, float], failed: tuple[float, float],
            p99: tuple[float | None, float | None], policy: ComparePolicy) -> Evidence:
    """The evidence after one pass: each version's (challenger, champion) requests and failures
    in it, and their p99 latency over it (None: unknown)."""
    return Evidence(
        evidence.failures.add(requests[0], failed[0], requests[1], failed[1]),
        evidence.latency.add(p99[0], p99[1], policy.latency_margin),
        (evidence.requests[0] + requests[0], evidence.requests[1] + requests[1]),
        (evidence.failed[0] + failed[0], evidence.failed[1] + failed[1]))


def _e(log_value: float) -> float:
    return math.exp(min(log_value, 700.0))


def evidence_from_json(data: dict[str, object], policy: ComparePolicy) -> Evidence:
    requests, failures = data["requests"], data["failures"]
    latency, log_lr = data["latency"], data["log_lr"]
    assert isinstance(requests, dict) and isinstance(failures, dict)
    assert isinstance(latency, dict) and isinstance(log_lr, dict)
    return Evidence(
        FailureEvidence(policy.failure_margin, tuple(log_lr["worse"]), tuple(log_lr["not_worse"])),
        LatencyEvidence(int(latency["passes"]), int(latency["worse"])),
        (float(requests["challenger"]), float(requests["champion"])),
        (float(failures["challenger"]), float(failures["champion"])))


def threshold(policy: ComparePolicy) -> float:
    """The e-value a blocking criterion must reach: 1 / alpha, alpha split among them."""
    return len(policy.block) / policy.alpha if policy.block else 1.0 / policy.alpha


@dataclass(frozen=True)
class Decision:
    outcome: str | None  # promote, rollback, hold; None: keep comparing
    reason: str


def decide(evidence: Evidence, elapsed: float, policy: ComparePolicy) -> Decision:
    """The policy's decision now: a blocking criterion's evidence against the challenger rolls
    it back (latency: or holds it, as the policy says); enough requests and evidence that it
    fails no more than the margin (or no failure at all) and is not slower promote it; time
    running out gives ``on_timeout``."""
    bar = math.log(threshold(policy))
    f_c, f_b = evidence.failed
    n_c, n_b = evidence.requests
    if "failures" in policy.block and evidence.failures.log_e_worse >= bar:
        return Decision("rollback", f"the challenger fails more: {f_c:.0f} of {n_c:.0f} "
                                    f"requests against {f_b:.0f} of {n_b:.0f} (evidence "
                                    f"{_e(evidence.failures.log_e_worse):.3g} >= "
                                    f"{threshold(policy):.3g})")
    latency_bad = evidence.latency.log_e >= bar
    if "latency" in policy.block and latency_bad:
        return Decision(policy.on_latency, f"the challenger's p99 latency was over "
                                           f"{1 + policy.latency_margin:g} times the champion's "
                                           f"in {evidence.latency.worse} of "
                                           f"{evidence.latency.passes} passes")
    enough = n_c >= policy.min_requests
    # a challenger that has not failed once cannot fail more: no ratio of failure ratios can
    # be measured then, and none is needed
    no_worse = f_c == 0 or evidence.failures.log_e_not_worse >= bar
    safe = ("failures" not in policy.block or no_worse) and (
        "latency" not in policy.block or evidence.latency.log_e_not_worse >= bar)
    if enough and safe and not latency_bad:
        failing = ("it has not failed once" if f_c == 0 else
                   f"it fails at most {policy.failure_margin:.0%} more than the champion "
                   f"({f_c:.0f} against {f_b:.0f} failures of {n_b:.0f})")
        return Decision("promote", f"{n_c:.0f} challenger requests; {failing}")
    if elapsed >= policy.max_duration:
        return Decision(policy.on_timeout, f"no decision after {elapsed:.0f} s "
                                           f"(max_duration); {n_c:.0f} challenger requests")
    return Decision(None, "comparing")
