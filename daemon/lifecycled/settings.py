"""The configuration's sections as frozen pydantic models, rooted at Settings (the whole schema in
one module on purpose, so that it reads beside config/lifecycled.yaml); unknown keys are
errors. ``lifecycled.config`` loads and validates files into them; the vocabularies (thresholds,
severities, quantities) and the policy defaults come from ``lifecycled.domain``."""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import ssl
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lifecycled.domain import (
    DEFAULT_TIERS,
    MAX_COUNT,
    PROMQL_QUANTITIES,
    THRESHOLDS,
    DriftPolicy,
    QualityName,
    RetirementPolicy,
    Severity,
    SeverityName,
    Status,
    Tiers,
)
from lifecycled.errors import ConfigError
from lifecycled.units import (
    DataPath,
    Duration,
    Header,
    HttpUrl,
    Name,
    NonNegative,
    PositiveDuration,
    Prose,
    Ratio,
    Size,
    Text,
)
from lifecycled.webconfig import load_web_config


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)




# --- sections -----------------------------------------------------------------------------------


class TLSSettings(_Section):
    """TLS for the listener (cert and key) or for a client (CA bundle, client cert, verify)."""

    cert_file: str | None = None
    key_file: str | None = None
    ca_file: str | None = None
    verify: bool = True

    @model_validator(mode="after")
    def _pair(self) -> TLSSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file must be given together")
        for key in ("cert_file", "key_file", "ca_file"):
            path = getattr(self, key)
            if path is not None and not os.access(path, os.R_OK):
                raise ValueError(f"{key}: cannot read {path}")
        return self


LISTEN = r"^\[?[0-9A-Za-z.:\-]+\]?:\d{1,5}$"


def listenable(value: str) -> str:
    """``value`` if it is a HOST:PORT this host can listen on; ValueError saying why not."""
    if not re.match(LISTEN, value):
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    host, _, port = value.rpartition(":")
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"the port must be between 1 and 65535, got {port}")
    try:
        socket.getaddrinfo(host.strip("[]"), int(port), type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ValueError(f"cannot resolve the host {host!r}: {exc}") from None
    return value


class DaemonSettings(_Section):
    listen: str = Field(default="127.0.0.1:9877", pattern=LISTEN)
    state_url: str = Field(default="sqlite:///lifecycled.db", pattern=r"^\w+://")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    public_url: HttpUrl | None = None
    api_token_file: str | None = None
    api_token_env: str | None = None
    tls: TLSSettings = TLSSettings()
    # TLS, client certificates and basic auth in the exporter-toolkit format (webconfig.py)
    web_config_file: str | None = None
    shutdown_grace: Duration = 30.0
    # PostgreSQL: the password comes from a file, the environment or libpq (~/.pgpass, a
    # service file), never from the URL in this file
    state_password_file: str | None = None
    state_password_env: str | None = None
    state_pool_size: int = Field(default=8, ge=1, le=64)
    # several replicas on one PostgreSQL store: this daemon's name (default: host name and
    # process id) and how long the leader lease lasts without being renewed
    replica: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,99}$")
    leader_lease: PositiveDuration = Field(default=15.0, ge=0.1)  # shorter: leaders flap
    # the largest body of a prediction or label push (POST /api/v1/models/…/predictions)
    push_max_body: Size = Field(default=64 * 2**20, ge=2**16, le=2**31)

    @field_validator("state_url")
    @classmethod
    def _state_url(cls, value: str) -> str:
        parts = urlsplit(value)
        scheme = parts.scheme.lower()
        if scheme not in ("sqlite", "postgresql", "postgres"):
            raise ValueError(f"unsupported scheme {scheme!r}: use sqlite:///FILE or "
                             f"postgresql://USER@HOST:PORT/DATABASE")
        if scheme == "sqlite" and not value.startswith("sqlite:///"):
            raise ValueError("a SQLite URL is sqlite:///relative/file or sqlite:////absolute/file")
        if scheme != "sqlite":
            if parts.password is not None:
                raise ValueError("a password may not be written in the URL; use "
                                 "daemon.state_password_file or daemon.state_password_env")
            try:
                parts.port  # noqa: B018  (raises on a port that is not a number)
            except ValueError:
                raise ValueError("the port is not a number") from None
        return value

    @field_validator("listen")
    @classmethod
    def _listenable(cls, value: str) -> str:
        return listenable(value)

    @model_validator(mode="after")
    def _listener_tls(self) -> DaemonSettings:
        if self.tls.ca_file is not None or not self.tls.verify:
            raise ValueError("tls.ca_file and tls.verify: the listener does not check clients "
                             "this way; give daemon.web_config_file with tls_server_config."
                             "client_auth_type and client_ca_file")
        if self.web_config_file is not None:
            if self.tls.cert_file is not None:
                raise ValueError("tls and web_config_file: give TLS in one of them, not both")
            try:
                load_web_config(self.web_config_file)
            except ConfigError as exc:
                raise ValueError("web_config_file: " + "; ".join(exc.problems)) from None
        return self

    @model_validator(mode="after")
    def _state_password(self) -> DaemonSettings:
        if self.state_password_file and self.state_password_env:
            raise ValueError("state_password_file and state_password_env: give one, not both")
        if (self.state_password_file or self.state_password_env) and self.state_url.startswith(
                "sqlite"):
            raise ValueError("state_password_file/state_password_env: only a PostgreSQL "
                             "state_url takes a password")
        return self

    @model_validator(mode="after")
    def _certificate(self) -> DaemonSettings:
        if self.tls.cert_file and self.tls.key_file:
            try:
                ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                    self.tls.cert_file, self.tls.key_file)
            except (ssl.SSLError, OSError) as exc:
                raise ValueError(f"tls: cannot load the certificate and key: {exc}") from None
        return self


TRITON_METRICS_PORT = 8002  # Triton's default --metrics-port


class TritonEndpoint(_Section):
    name: Name
    url: HttpUrl
    # default: the API URL's host on Triton's metrics port, path /metrics
    metrics_url: HttpUrl
    timeout: PositiveDuration = 5.0
    headers: dict[Header, Header] = {}
    tls: TLSSettings = TLSSettings()
    allow_model_control: bool = False

    @model_validator(mode="before")
    @classmethod
    def _default_metrics_url(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("metrics_url") is None \
                and isinstance(data.get("url"), str):
            parts = urlsplit(data["url"])
            if parts.scheme in ("http", "https") and parts.hostname:
                host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
                data = {**data, "metrics_url": f"{parts.scheme}://{host}:{TRITON_METRICS_PORT}"
                                               "/metrics"}
        return data


class BasicAuth(_Section):
    username: str
    password_file: str | None = None
    password_env: str | None = None


class PrometheusSettings(_Section):
    url: HttpUrl
    timeout: PositiveDuration = 10.0
    headers: dict[Header, Header] = {}
    basic_auth: BasicAuth | None = None
    tls: TLSSettings = TLSSettings()
    window: PositiveDuration = 300.0
    fallback_to_triton: bool = False
    queries: dict[str, str] = {}

    @property
    def window_text(self) -> str:
        return f"{max(1, int(self.window))}s"

    @field_validator("queries")
    @classmethod
    def _known_quantities(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(PROMQL_QUANTITIES))
        if unknown:
            raise ValueError(f"unknown quantities {', '.join(unknown)}; known: "
                             f"{', '.join(PROMQL_QUANTITIES)}")
        return value


class FilesSettings(_Section):
    """Data files (references, samples, outcomes), local or behind a URL."""
    timeout: PositiveDuration = 30.0  # each file operation on an object store, retries included


class SourcesSettings(_Section):
    triton: tuple[TritonEndpoint, ...] = ()
    prometheus: PrometheusSettings | None = None
    files: FilesSettings = FilesSettings()

    @field_validator("triton")
    @classmethod
    def _unique_names(cls, value: tuple[TritonEndpoint, ...]) -> tuple[TritonEndpoint, ...]:
        names = [endpoint.name for endpoint in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate Triton endpoint names: {', '.join(duplicates)}")
        return value


class ScheduleSettings(_Section):
    discovery: PositiveDuration = 60.0
    collect: PositiveDuration = 300.0
    quality: PositiveDuration = 300.0
    evaluate: PositiveDuration = 3600.0
    drift: PositiveDuration = 86400.0
    updates: PositiveDuration = 60.0
    retirement: PositiveDuration = 86400.0
    deliver: PositiveDuration = 10.0
    housekeeping: PositiveDuration = 3600.0


class ThresholdSettings(_Section):
    """Thresholds as written in the file; None means 'inherit from defaults'."""

    min_accuracy: Ratio | None = None
    max_latency_p99: Duration | None = None
    min_throughput: NonNegative | None = None
    max_error_ratio: Ratio | None = None
    max_memory: Size | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_host_limits(cls, data: Any) -> Any:
        if isinstance(data, dict) and "max_cpu" in data:
            raise ValueError(
                "max_cpu: Triton's CPU utilisation is its host's, not a model's; it is exported "
                "as lifecycled_triton_cpu_utilization_ratio{endpoint} and alerted on by "
                "LifecycledTritonHostCpuHigh")
        return data

    def to_base_units(self) -> dict[str, float]:
        """Return the set thresholds keyed by their base-unit keys (``domain.THRESHOLDS``)."""
        pairs = {t.key: getattr(self, t.setting) for t in THRESHOLDS}
        return {key: value for key, value in pairs.items() if value is not None}


DEFAULT_THRESHOLDS = ThresholdSettings(
    min_accuracy=0.85,
    max_latency_p99=0.100,
    max_error_ratio=0.01,
    max_memory=2048 * 2**20,
)  # no throughput floor unless configured: idle and nightly-batch models must not page


UNSET_BY_DEFAULT = frozenset({"min_throughput"})  # thresholds that apply only where configured


class DriftWeights(_Section):
    ks: NonNegative = DriftPolicy.weights[0]
    js: NonNegative = DriftPolicy.weights[1]
    psi: NonNegative = DriftPolicy.weights[2]


class TierSettings(_Section):
    medium: NonNegative
    high: NonNegative
    critical: NonNegative

    @model_validator(mode="after")
    def _ordered(self) -> TierSettings:
        if not self.medium <= self.high <= self.critical:
            raise ValueError("tiers must satisfy medium <= high <= critical")
        return self

    def value(self) -> Tiers:
        return Tiers(self.medium, self.high, self.critical)


def _tier_default(effect: str) -> TierSettings:
    tiers = DEFAULT_TIERS[effect]
    return TierSettings(medium=tiers.medium, high=tiers.high, critical=tiers.critical)


class DriftTiers(_Section):
    """Per effect size, where medium, high and critical start (README "Data drift")."""

    psi: TierSettings = _tier_default("psi")
    js: TierSettings = _tier_default("js")
    distance: TierSettings = _tier_default("distance")  # KS D (numeric) / TVD (categorical)


class DriftSettings(_Section):
    reference: DataPath | None = None
    current: DataPath | None = None
    timestamp_column: str | None = None
    window: PositiveDuration | None = None
    newest_rows: int | None = Field(default=None, gt=0, le=MAX_COUNT)
    features: tuple[str, ...] | None = None
    categorical: tuple[str, ...] | None = None
    bins: int | None = Field(default=None, ge=2, le=1000)
    min_samples: int | None = Field(default=None, ge=1, le=MAX_COUNT)
    exclude: tuple[str, ...] | None = None
    weights: DriftWeights | None = None
    alert_severity: SeverityName | None = None
    correction: Literal["none", "bonferroni", "bh"] | None = None
    alpha: float | None = Field(default=None, gt=0, lt=1)
    severity_rule: Literal["tiers", "seed"] | None = None
    tiers: DriftTiers | None = None
    schema_break_severity: SeverityName | None = None


class PredictionStream(_Section):
    """The prediction log: one row per prediction, joined with the labels by ``id_column``."""
    # a file, glob or URL ({version} is the model version); None: rows arrive only as pushes
    path: DataPath | None = None
    id_column: str = "id"
    timestamp_column: str = "timestamp"
    version_column: str | None = None  # rows of other versions are skipped


class LabelStream(_Section):
    """The labels, arriving later: one row per labelled prediction id."""
    path: DataPath | None = None  # a file, glob or URL; None: labels arrive only as pushes
    id_column: str = "id"
    label_column: str = "label"
    timestamp_column: str | None = None  # when the outcome was known (else: when it was read)


class QualitySettings(_Section):
    outcomes: DataPath | None = None
    prediction_column: str = "prediction"
    label_column: str = "label"
    score_column: str | None = None
    score_columns: dict[str, str] = {}  # multiclass: class label -> its score column
    timestamp_column: str | None = None
    promql: dict[QualityName, str] = {}
    predictions: PredictionStream | None = None
    labels: LabelStream | None = None
    maturity: Duration = 0.0  # a prediction is judged once it is this old
    window: PositiveDuration = 30 * 86400.0  # the matured predictions judged in one pass
    min_coverage: Ratio = 0.8  # labelled share of matured predictions before metrics count
    estimate: bool = True  # estimate the newest predictions' metrics before their labels (CBPE)
    # while the matured window lacks min_coverage, let thresholds and update triggers judge the
    # (trusted) estimate instead of nothing
    use_estimate: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> QualitySettings:
        if (self.predictions is None) != (self.labels is None):
            raise ValueError("predictions and labels go together: set both, or neither")
        if self.predictions is not None and self.outcomes:
            raise ValueError("set outcomes (predictions and labels in one file) or predictions "
                             "and labels (joined by id), not both")
        if self.maturity < 0:
            raise ValueError("maturity must not be negative")
        return self


class MonitoringSettings(_Section):
    auto_register: bool = True
    initial_status: Status = Status.STAGING  # never production until a person says so
    unavailable_grace_passes: int = Field(default=3, ge=1, le=1000)
    snapshot_retention: PositiveDuration = 30 * 86400.0
    max_snapshots: int = Field(default=1000, ge=1, le=MAX_COUNT)


class DefaultsSettings(_Section):
    thresholds: ThresholdSettings = DEFAULT_THRESHOLDS
    monitoring: MonitoringSettings = MonitoringSettings()
    drift: DriftSettings = DriftSettings(
        bins=DriftPolicy.bins, min_samples=DriftPolicy.min_samples, weights=DriftWeights(),
        alert_severity=DriftPolicy.alert_severity.label, correction=DriftPolicy.correction,
        alpha=DriftPolicy.alpha, severity_rule=DriftPolicy.rule, tiers=DriftTiers(),
        schema_break_severity=DriftPolicy.schema_break.label,
    )

    @model_validator(mode="after")
    def _complete(self) -> DefaultsSettings:
        missing = [k for k, v in self.thresholds.model_dump().items()
                   if v is None and k not in UNSET_BY_DEFAULT]
        if missing:
            raise ValueError(f"thresholds need a default for: {', '.join(missing)}")
        return self


class ModelSettings(_Section):
    """Per-model metadata and overrides; applies to every version of the model."""

    owner_team: Text | None = None
    business_domain: Text | None = None
    model_type: Text | None = None
    description: Prose | None = None
    training_dataset: Text | None = None
    tags: tuple[Text, ...] = ()
    dependencies: tuple[Text, ...] = ()
    thresholds: ThresholdSettings = ThresholdSettings()
    drift: DriftSettings = DriftSettings()
    quality: QualitySettings = QualitySettings()
    # drift, quality, coverage and the estimate also per value of each of these columns (of the
    # samples and the prediction log): the segment_top most frequent values, the rest as "other"
    segment_by: tuple[str, ...] = ()
    segment_top: int = Field(default=10, ge=1, le=100)

    @field_validator("segment_by")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        repeated = sorted({c for c in value if value.count(c) > 1})
        if repeated:
            raise ValueError(f"a column is named twice: {', '.join(repeated)}")
        if any(not c for c in value):
            raise ValueError("a column name is empty")
        return value


_UNCONFIGURED = ModelSettings()

EVENT_TYPES = (
    "model.registered",
    "model.status_changed",
    "model.threshold_breached",
    "model.drift_detected",
    "model.update_requested",
    "model.update_completed",
    "model.update_failed",
    "model.retirement_candidate",
    "model.unload_requested",
    "model.retired",
)


class WebhookEndpoint(_Section):
    url: HttpUrl
    secret_file: str | None = None
    secret_env: str | None = None
    events: tuple[Literal[EVENT_TYPES], ...] = EVENT_TYPES  # type: ignore[valid-type]
    timeout: PositiveDuration = 10.0
    max_attempts: int = Field(default=8, ge=1, le=100)
    concurrency: int = Field(default=8, ge=1, le=64)  # requests in flight to the endpoint
    backoff_initial: PositiveDuration = 10.0
    backoff_max: PositiveDuration = 3600.0

    @model_validator(mode="after")
    def _one_secret(self) -> WebhookEndpoint:
        if (self.secret_file is None) == (self.secret_env is None):
            raise ValueError("give exactly one of secret_file or secret_env")
        return self


class UpdatePolicy(_Section):
    auto_trigger: dict[Literal["performance_degradation", "drift_detection", "scheduled"], bool] = {
        "performance_degradation": True,
        "drift_detection": True,
        "scheduled": False,
    }
    schedule: str | None = None  # crontab (five fields, UTC) of scheduled update jobs
    cooldown: Duration = 86400.0
    job_timeout: PositiveDuration = 6 * 3600.0

    @field_validator("schedule")
    @classmethod
    def _crontab(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:  # the updates task would fail on it at every pass
            raise ValueError(f"not a crontab expression (minute hour day month weekday): "
                             f"{exc}") from None
        return value
    min_validation_accuracy: Ratio = 0.8
    min_validation: dict[str, float] = {}
    load_in_triton: bool = False


class RetirementSettings(_Section):
    max_age_days: float = Field(default=RetirementPolicy.max_age_days, gt=0)
    min_accuracy: Ratio = RetirementPolicy.min_accuracy
    min_requests_per_month: float = Field(default=RetirementPolicy.min_requests_per_month, ge=0)
    normal_weekly_requests: float = Field(default=RetirementPolicy.normal_weekly_requests, gt=0)
    candidate_score: Ratio = RetirementPolicy.candidate_score
    auto_retire_score: Ratio = 0.7
    auto_retire: bool = False
    auto_retire_failed: bool = False
    unload_from_triton: bool = True
    backup_dir: str = "backups"
    backup_retention_days: float = Field(default=365, gt=0)

    def policy(self) -> RetirementPolicy:
        """The scoring limits as core's value type."""
        return RetirementPolicy(**{f.name: getattr(self, f.name)
                                   for f in dataclasses.fields(RetirementPolicy)})


class PoliciesSettings(_Section):
    updates: UpdatePolicy = UpdatePolicy()
    retirement: RetirementSettings = RetirementSettings()


class Settings(_Section):
    """Everything lifecycled reads from its configuration."""

    daemon: DaemonSettings = DaemonSettings()
    sources: SourcesSettings = SourcesSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    defaults: DefaultsSettings = DefaultsSettings()
    models: dict[Name, ModelSettings] = {}
    webhooks: dict[Name, WebhookEndpoint] = {}
    policies: PoliciesSettings = PoliciesSettings()

    @model_validator(mode="after")
    def _promql_needs_prometheus(self) -> Settings:
        if self.sources.prometheus is None:
            using = sorted(name for name, m in self.models.items() if m.quality.promql)
            if using:
                raise ValueError(f"models {', '.join(using)}: quality.promql needs "
                                 "sources.prometheus")
        return self

    def model_settings(self, name: str) -> ModelSettings:
        """Return the configured settings of model ``name`` (empty settings if not configured)."""
        return self.models.get(name, _UNCONFIGURED)

    def drift_config(self, name: str) -> DriftSettings:
        """The model's drift section with every unset key taken from ``defaults.drift``."""
        merged = self.defaults.drift.model_dump()
        merged.update(self.model_settings(name).drift.model_dump(exclude_none=True))
        return DriftSettings.model_validate(merged)

    def drift_policy(self, name: str) -> DriftPolicy:
        """How drift of model ``name`` is judged, as core's value type."""
        config = self.drift_config(name)
        weights = config.weights or DriftWeights()
        tiers = config.tiers or DriftTiers()
        return DriftPolicy(
            bins=config.bins or DriftPolicy.bins,
            min_samples=config.min_samples or DriftPolicy.min_samples,
            weights=(weights.ks, weights.js, weights.psi),
            alert_severity=Severity.parse(config.alert_severity or DriftPolicy.alert_severity.label),
            correction=config.correction or DriftPolicy.correction,
            alpha=config.alpha or DriftPolicy.alpha,
            rule=config.severity_rule or DriftPolicy.rule,
            psi_tiers=tiers.psi.value(), js_tiers=tiers.js.value(),
            distance_tiers=tiers.distance.value(),
            schema_break=Severity.parse(config.schema_break_severity
                                        or DriftPolicy.schema_break.label),
        )

    def subscriptions(self) -> dict[str, tuple[str, ...]]:
        """Webhook endpoint -> the event types it wants."""
        return {name: tuple(endpoint.events) for name, endpoint in self.webhooks.items()}

    def thresholds_for(self, name: str, *overrides: ThresholdSettings) -> dict[str, float]:
        """Return the effective thresholds in base units: defaults <- model config <- overrides."""
        merged = self.defaults.thresholds.to_base_units()
        for layer in (self.model_settings(name).thresholds, *overrides):
            merged.update(layer.to_base_units())
        return merged
