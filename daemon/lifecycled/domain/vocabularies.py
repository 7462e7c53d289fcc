"""Every vocabulary, written once: severities and levels, thresholds, serving quantities and
quality metrics (settings, core, store, exporter, CLI and docs read these tables)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

from lifecycled.errors import InputError


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


FROZEN = "frozen"  # drift.reference: the first rows sampled from Triton's traces

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


# Every column of a snapshot: the interval it covers, serving quantities, quality metrics.
SNAPSHOT_FIELDS = ("interval_seconds", *(q.field for q in SERVING_QUANTITIES),
                   *(m.field for m in QUALITY_METRICS))


# What a Prometheus query may be configured for: the serving quantities, and the requests counted
# over the collect interval (for retirement's usage).
PROMQL_QUANTITIES = (*(q.field for q in SERVING_QUANTITIES if q.field != "memory_bytes"),
                     "requests")

