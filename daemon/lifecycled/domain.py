"""Value types shared by every room of the package: statuses and the lifecycle graph, model
identities and records, and every vocabulary (severities, levels, thresholds, quantities, quality
metrics, policies). Longer than most modules on purpose: each table is written here once, and
settings, core, store, exporter, CLI and docs read it."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from lifecycled.errors import InputError, TransitionError

MAX_COUNT = 10**9  # the largest count a key or an option takes (rows, samples, snapshots)
# an update job's states, in the order a job moves through them
UPDATE_JOB_STATES = ("pending", "dispatched", "training", "validating", "deploying",
                     "comparing", "completed", "failed", "cancelled")


class Status(enum.StrEnum):
    """Lifecycle status of a model version."""

    DEVELOPING = "developing"
    TESTING = "testing"
    STAGING = "staging"
    PRODUCTION = "production"
    DEPRECATED = "deprecated"
    RETIRED = "retired"
    FAILED = "failed"


S = Status

# The lifecycle graph (DESIGN.md section 5). Any status but retired may also move to failed.
_FORWARD: dict[Status, frozenset[Status]] = {
    S.DEVELOPING: frozenset({S.TESTING}),
    S.TESTING: frozenset({S.DEVELOPING, S.STAGING}),
    S.STAGING: frozenset({S.TESTING, S.PRODUCTION}),
    S.PRODUCTION: frozenset({S.DEPRECATED}),
    S.DEPRECATED: frozenset({S.PRODUCTION, S.RETIRED}),
    S.FAILED: frozenset({S.TESTING, S.RETIRED}),
    S.RETIRED: frozenset(),
}
TRANSITIONS: dict[Status, frozenset[Status]] = {
    status: targets | ({S.FAILED} if status not in (S.RETIRED, S.FAILED) else frozenset())
    for status, targets in _FORWARD.items()
}


def check_transition(what: str, current: Status, target: Status) -> None:
    """Raise TransitionError unless ``current -> target`` is an allowed move for ``what``."""
    if target in TRANSITIONS[current]:
        return
    if current == target:
        raise TransitionError(f"{what} is already {current.value}")
    allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current])) or "none: it is final"
    raise TransitionError(
        f"cannot move {what} from {current.value} to {target.value} (allowed: {allowed})"
    )


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+\-]{0,63}$")


@dataclass(frozen=True, order=True)
class ModelRef:
    """Identity of a model version, written ``name:version``."""

    name: str
    version: str

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise InputError(f"invalid model name {self.name!r}: use letters, digits, '_', '.', '-'")
        if not _VERSION_RE.match(self.version):
            raise InputError(f"invalid version {self.version!r} for model {self.name}")

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        """Parse ``name:version``."""
        name, sep, version = text.partition(":")
        if not sep or not name or not version:
            raise InputError(f"expected NAME:VERSION, got {text!r}")
        return cls(name, version)

    def __str__(self) -> str:
        return f"{self.name}:{self.version}"


# --- vocabularies: each written once; settings, core, store, exporter, CLI and docs read them ---


class Severity(enum.IntEnum):
    """Severity of a finding (drift, concept drift, a trigger), ordered so that max() is the worst.
    UNKNOWN (nothing could be judged) sorts below LOW: it never reaches an alert level, and it is
    reported as itself, never as low."""

    UNKNOWN = -1
    LOW = 0
    MEDIUM = 1
    HIGH = 2
    CRITICAL = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.upper()]
        except KeyError:
            raise InputError(f"unknown severity {text!r}; use one of {', '.join(SEVERITIES)}"
                             ) from None


SEVERITIES = tuple(s.label for s in Severity if s is not Severity.UNKNOWN)  # the ladder
SEVERITY_STATES = ("unknown", *SEVERITIES)  # what a model-level verdict can be (exported)


class Level(enum.StrEnum):
    """Performance level of an evaluation (DESIGN.md section 6); unknown when nothing is known."""

    EXCELLENT = "excellent"
    GOOD = "good"
    ACCEPTABLE = "acceptable"
    POOR = "poor"
    CRITICAL = "critical"
    UNKNOWN = "unknown"
SeverityName = Literal["low", "medium", "high", "critical"]
assert get_args(SeverityName) == SEVERITIES


@dataclass(frozen=True)
class Threshold:
    """One threshold: its base-unit key, the config key, the snapshot field it limits."""

    key: str  # base-unit key as stored, evaluated and exported (label ``threshold``)
    setting: str  # key under ``thresholds:`` in the configuration
    field: str  # snapshot field compared with the limit
    # min: breached below the limit; max: above it; band: its size, either way, above it
    direction: Literal["min", "max", "band"]
    unit: str  # ratio, seconds, requests_per_second, bytes, target (a regression's units)
    label: str  # words for people

    def breached(self, value: float, limit: float) -> bool:
        if self.direction == "band":
            return abs(value) > limit
        return value < limit if self.direction == "min" else value > limit


THRESHOLDS = (
    Threshold("min_accuracy", "min_accuracy", "accuracy", "min", "ratio", "accuracy"),
    Threshold("max_latency_p99_seconds", "max_latency_p99", "latency_p99_seconds", "max",
              "seconds", "p99 latency"),
    Threshold("min_throughput_rps", "min_throughput", "requests_per_second", "min",
              "requests_per_second", "throughput"),
    Threshold("max_error_ratio", "max_error_ratio", "error_ratio", "max", "ratio", "error ratio"),
    Threshold("max_memory_bytes", "max_memory", "memory_bytes", "max", "bytes", "memory"),
    # a regression model's (model_type: regression); none by default: they are in its units
    Threshold("max_mae", "max_mae", "mae", "max", "target", "mean absolute error"),
    Threshold("max_rmse", "max_rmse", "rmse", "max", "target", "root mean squared error"),
    Threshold("max_mape_ratio", "max_mape", "mape_ratio", "max", "ratio",
              "mean absolute percentage error"),
    Threshold("min_r_squared", "min_r2", "r_squared", "min", "number", "R squared"),
    Threshold("max_abs_mean_error", "max_bias", "mean_error", "band", "target",
              "mean error (bias)"),
)
# the thresholds of a classifier's quality, and of a regression model's: a model is checked
# against those of its type only
CLASSIFIER_THRESHOLDS = frozenset({"min_accuracy"})
REGRESSION_THRESHOLDS = frozenset({"max_mae", "max_rmse", "max_mape_ratio", "min_r_squared",
                                   "max_abs_mean_error"})
THRESHOLD_BY_KEY = {t.key: t for t in THRESHOLDS}


@dataclass(frozen=True)
class Quantity:
    """A number a snapshot holds and the exporter publishes (``field`` is its column)."""

    field: str
    metric: str
    help: str


SERVING_QUANTITIES = (
    Quantity("requests_per_second", "lifecycled_model_throughput_requests_per_second",
             "Requests per second over the last collect interval (fleet sum)."),
    Quantity("inferences_per_second", "lifecycled_model_throughput_inferences_per_second",
             "Inferences per second (a batch of n counts n) over the last interval."),
    Quantity("error_ratio", "lifecycled_model_error_ratio",
             "Failed requests over all requests in the last interval (0-1)."),
    Quantity("latency_mean_seconds", "lifecycled_model_latency_mean_seconds",
             "Mean latency of successful requests in the last interval."),
    Quantity("latency_p50_seconds", "lifecycled_model_latency_p50_seconds",
             "Median request latency from Triton's summaries (worst endpoint)."),
    Quantity("latency_p95_seconds", "lifecycled_model_latency_p95_seconds",
             "95th percentile request latency from Triton's summaries (worst endpoint)."),
    Quantity("latency_p99_seconds", "lifecycled_model_latency_p99_seconds",
             "99th percentile request latency from Triton's summaries (worst endpoint)."),
    Quantity("queue_mean_seconds", "lifecycled_model_queue_mean_seconds",
             "Mean time successful requests waited in Triton's queue in the last interval."),
    Quantity("pending_requests", "lifecycled_model_pending_requests",
             "Requests waiting in Triton's queues at the last scrape (fleet sum)."),
    Quantity("memory_bytes", "lifecycled_model_memory_bytes",
             "Model memory from Triton's statistics extension, where reported."),
)


@dataclass(frozen=True)
class QualityMetric:
    """A quality metric: its name in results and PromQL config, its snapshot column, its metric."""

    name: str
    field: str
    metric: str
    help: str


QUALITY_METRICS = (
    QualityMetric("accuracy", "accuracy", "lifecycled_model_accuracy_ratio",
                  "Accuracy from labelled outcomes (0-1)."),
    QualityMetric("precision", "precision_ratio", "lifecycled_model_precision_ratio",
                  "Precision from labelled outcomes (0-1)."),
    QualityMetric("recall", "recall_ratio", "lifecycled_model_recall_ratio",
                  "Recall from labelled outcomes (0-1)."),
    QualityMetric("f1", "f1_ratio", "lifecycled_model_f1_ratio",
                  "F1 score from labelled outcomes (0-1)."),
    QualityMetric("roc_auc", "roc_auc", "lifecycled_model_roc_auc_ratio",
                  "ROC AUC from labelled outcomes (0-1)."),
    # a regression model's (model_type: regression), in the units of its target
    QualityMetric("mae", "mae", "lifecycled_model_mean_absolute_error",
                  "Mean absolute error of a regression model from labelled outcomes, in the "
                  "units of its target."),
    QualityMetric("rmse", "rmse", "lifecycled_model_root_mean_squared_error",
                  "Root mean squared error of a regression model from labelled outcomes, in the "
                  "units of its target."),
    QualityMetric("mape", "mape_ratio", "lifecycled_model_mean_absolute_percentage_error_ratio",
                  "Mean absolute percentage error of a regression model (0.05 is 5 %), over the "
                  "outcomes whose label is not 0."),
    QualityMetric("r2", "r_squared", "lifecycled_model_r_squared",
                  "R squared (coefficient of determination) of a regression model; absent when "
                  "the labels are constant."),
    QualityMetric("mean_error", "mean_error", "lifecycled_model_mean_error",
                  "Mean of prediction minus label of a regression model (bias: above 0 it "
                  "over-predicts), in the units of its target."),
)
QualityName = Literal["accuracy", "precision", "recall", "f1", "roc_auc", "mae", "rmse", "mape",
                      "r2", "mean_error"]
assert get_args(QualityName) == tuple(m.name for m in QUALITY_METRICS)

# Every column of a snapshot: the interval it covers, serving quantities, quality metrics.
SNAPSHOT_FIELDS = ("interval_seconds", *(q.field for q in SERVING_QUANTITIES),
                   *(m.field for m in QUALITY_METRICS))
# What a Prometheus query may be configured for: the serving quantities, and the requests counted
# over the collect interval (for retirement's usage).
PROMQL_QUANTITIES = (*(q.field for q in SERVING_QUANTITIES if q.field != "memory_bytes"),
                     "requests")


# --- policies: the value types core computes with; the configuration fills them -----------------


@dataclass(frozen=True)
class Tiers:
    """Where an effect size becomes medium, high and critical."""

    medium: float
    high: float
    critical: float

    def of(self, value: float) -> Severity:
        for limit, severity in ((self.critical, Severity.CRITICAL), (self.high, Severity.HIGH),
                                (self.medium, Severity.MEDIUM)):
            if value >= limit:
                return severity
        return Severity.LOW


# The effect sizes of a feature: PSI and JS distance on bin (or category) shares, and the distance
# D (KS statistic, numeric) or total variation distance (categorical).
EFFECTS = ("psi", "js", "distance")
DEFAULT_TIERS = {"psi": Tiers(0.10, 0.25, 1.0), "js": Tiers(0.10, 0.20, 0.40),
                 "distance": Tiers(0.10, 0.20, 0.40)}
PSI_TIERS = ((0.25, "significant"), (0.10, "moderate"), (0.0, "stable"))  # the PSI's own words


@dataclass(frozen=True)
class DriftPolicy:
    """How data drift is judged (DESIGN.md section 6); the defaults are the documented ones.

    rule ``tiers``: a feature's severity is the highest tier reached by an effect whose test is
    significant at ``alpha`` after ``correction`` across the model's features (D by the KS test;
    PSI and JS by the chi-square test on the same bin counts; categoricals: the chi-square test
    on category counts). Rule ``seed``: the seed's composite score with cut points 0.3/0.5/0.7.
    """

    bins: int = 10
    min_samples: int = 100
    weights: tuple[float, float, float] = (0.4, 0.3, 0.3)  # ks (or tvd), js, psi
    alert_severity: Severity = Severity.MEDIUM
    correction: Literal["none", "bonferroni", "bh"] = "bh"
    alpha: float = 0.005  # ONE_SHOT_ALPHA; the daemon derives it from its false-alarm budget
    rule: Literal["tiers", "seed"] = "tiers"
    psi_tiers: Tiers = DEFAULT_TIERS["psi"]
    js_tiers: Tiers = DEFAULT_TIERS["js"]
    distance_tiers: Tiers = DEFAULT_TIERS["distance"]
    schema_break: Severity = Severity.HIGH  # a column missing or of another type
    basis: str = "the one-shot default"  # where alpha comes from, in words, for the result

    def tiers(self, effect: str) -> Tiers:
        return {"psi": self.psi_tiers, "js": self.js_tiers, "distance": self.distance_tiers}[effect]


# A one-shot check's significance (the CLI's --alpha default): with the correction across
# features, a stationary window of any size is judged medium or worse in at most 0.5 % of checks.
ONE_SHOT_ALPHA = 0.005
# A repeated check's significance comes from its false-alarm budget and its schedule, never
# looser than this in all (a budget that allows more than one false alarm in 20 checks).
ALPHA_CAP = 0.05


@dataclass(frozen=True)
class Significance:
    """The significance a repeated verdict is judged at, and where it comes from in words."""

    alpha: float
    basis: str


def budget_significance(alarms: float, period: float, interval: float, shares: int,
                        shared_by: str, period_text: str, interval_text: str) -> Significance:
    """The per-check significance that keeps the expected false alarms of a verdict repeated
    every ``interval`` within ``alarms`` per ``period`` (a union bound over the checks), split
    among the ``shares`` families of tests one check runs (``shared_by`` says which)."""
    checks = max(1.0, period / interval)
    raw = alarms / checks
    alpha = min(raw, ALPHA_CAP) / max(1, shares)
    basis = (f"from a budget of {alarms:g} false alarm{'s' if alarms != 1 else ''} per "
             f"{period_text} at one check every {interval_text}")
    if raw > ALPHA_CAP:
        basis += f" (capped at {ALPHA_CAP:g})"
    if shares > 1:
        basis += f", split among {shares} {shared_by}"
    return Significance(alpha, basis)


@dataclass(frozen=True)
class RetirementPolicy:
    """The limits of the retirement score (the seed's weights are fixed in core)."""

    max_age_days: float = 730.0
    min_accuracy: float = 0.8
    min_requests_per_month: float = 50.0
    normal_weekly_requests: float = 1000.0
    candidate_score: float = 0.6


@dataclass(frozen=True)
class ModelSpec:
    """What a registration supplies for one model version (validated, defaults filled)."""

    ref: ModelRef
    owner_team: str
    business_domain: str
    model_type: str = ""
    framework: str = ""
    description: str = ""
    training_dataset: str = ""
    tags: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()
    thresholds: Mapping[str, float] = field(default_factory=dict)
    monitoring: Mapping[str, Any] = field(default_factory=dict)
    deployment: Mapping[str, Any] = field(default_factory=dict)

    def metadata(self) -> dict[str, Any]:
        """Return the metadata fields as plain JSON-able values (for storage and comparison)."""
        return {
            "owner_team": self.owner_team,
            "business_domain": self.business_domain,
            "model_type": self.model_type,
            "framework": self.framework,
            "description": self.description,
            "training_dataset": self.training_dataset,
            "tags": list(self.tags),
            "dependencies": list(self.dependencies),
            "thresholds": dict(self.thresholds),
            "monitoring": dict(self.monitoring),
            "deployment": dict(self.deployment),
        }


@dataclass(frozen=True)
class ModelRecord:
    """A registered model version as stored."""

    spec: ModelSpec
    status: Status
    registered_at: float
    last_updated: float
    status_changed_at: float

    @property
    def ref(self) -> ModelRef:
        return self.spec.ref

    def to_json(self) -> dict[str, Any]:
        """Return the stable JSON form used by the CLI and the API."""
        return {
            "name": self.ref.name,
            "version": self.ref.version,
            "status": self.status.value,
            **self.spec.metadata(),
            "registered_at": self.registered_at,
            "last_updated": self.last_updated,
            "status_changed_at": self.status_changed_at,
        }


class HistoryKind(enum.StrEnum):
    """What a history row records."""

    REGISTERED = "registered"
    METADATA_UPDATED = "metadata_updated"
    STATUS_CHANGED = "status_changed"
    REFERENCE_FROZEN = "reference_frozen"  # a drift reference frozen from Triton's traces
    COMPARISON = "comparison"  # a champion/challenger comparison opened or held


@dataclass(frozen=True)
class HistoryEntry:
    """One append-only audit row for a model version."""

    id: int
    ref: ModelRef
    kind: HistoryKind
    from_status: Status | None
    to_status: Status
    actor: str
    reason: str
    evidence: Mapping[str, Any]
    at: float

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.ref.name,
            "version": self.ref.version,
            "kind": self.kind.value,
            "from": self.from_status.value if self.from_status else None,
            "to": self.to_status.value,
            "actor": self.actor,
            "reason": self.reason,
            "evidence": dict(self.evidence),
            "at": self.at,
        }


@dataclass(frozen=True)
class ModelCounters:
    """Cumulative counters and current gauges of one model version in one scrape."""

    success: float
    failure: Mapping[str, float]  # by reason
    inferences: float
    executions: float
    request_duration_us: float | None
    queue_duration_us: float | None
    pending: float | None
    quantiles_us: Mapping[str, float] = field(default_factory=dict)  # "0.5" -> us (NaN dropped)
    summaries: bool = False  # were summary latencies exported at all

    @property
    def failures(self) -> float:
        return sum(self.failure.values())
