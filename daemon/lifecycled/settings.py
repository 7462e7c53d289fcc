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

from lifecycled.core.compare import CRITERIA, ComparePolicy
from lifecycled.domain import (
    ALPHA_CAP,
    CLASSIFIER_THRESHOLDS,
    DEFAULT_TIERS,
    FROZEN,
    MAX_COUNT,
    PROMQL_QUANTITIES,
    REGRESSION_THRESHOLDS,
    THRESHOLDS,
    DriftPolicy,
    QualityName,
    RetirementPolicy,
    Severity,
    SeverityName,
    Significance,
    Status,
    Tiers,
    budget_significance,
)
from lifecycled.errors import ConfigError
from lifecycled.fields import (
    Budget,
    DataPath,
    Duration,
    Header,
    HttpUrl,
    Name,
    NonNegative,
    PositiveDuration,
    Prose,
    Ratio,
    Share,
    Size,
    Text,
)
from lifecycled.units import duration_text, parse_budget
from lifecycled.webconfig import load_web_config


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False,
                              use_attribute_docstrings=True)  # the reference's descriptions




# --- sections -----------------------------------------------------------------------------------


class TLSSettings(_Section):
    """TLS for the listener (cert and key) or for a client (CA bundle, client cert, verify)."""

    cert_file: str | None = None
    """A PEM certificate: the listener's (with key_file), or a client certificate."""
    key_file: str | None = None
    """The private key of cert_file."""
    ca_file: str | None = None
    """A PEM bundle of the CAs trusted to sign the server's certificate (clients only)."""
    verify: bool = True
    """Check the server's certificate (clients only); false is for tests, never production."""

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
    """HOST:PORT of the one HTTP listener (/metrics, /healthz, /readyz, /api/v1); loopback unless
    configured. Also `run --web.listen-address`."""
    state_url: str = Field(default="sqlite:///lifecycled.db", pattern=r"^\w+://")
    """Where state lives: sqlite:///relative/file (against $STATE_DIRECTORY, else
    $XDG_STATE_HOME/lifecycled, else ~/.local/state/lifecycled), sqlite:////absolute/file, or
    postgresql://USER@HOST:PORT/DATABASE (never with a password)."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """DEBUG, INFO, WARNING or ERROR."""
    log_format: Literal["text", "json"] = "text"
    """text (one line per record, UTC times) or json (one object per line: time, level, logger,
    message, traceback)."""
    public_url: HttpUrl | None = None
    """How webhook receivers reach this daemon (the callback_url of update events); null: http://
    and the listen address."""
    api_token_file: str | None = None
    """A file holding the bearer token of the state-changing API (pushes, job events); relative:
    looked up in $CREDENTIALS_DIRECTORY first. Without a token those calls are refused."""
    api_token_env: str | None = None
    """Or an environment variable holding that token."""
    tls: TLSSettings = TLSSettings()
    """Serve HTTPS with this certificate and key (or give web_config_file)."""
    web_config_file: str | None = None
    """TLS, client certificates and basic auth for readers, in the exporter-toolkit format
    node_exporter uses (relative paths in it: beside it). Also `run --web.config.file`."""
    shutdown_grace: Duration = 30.0
    """How long running tasks may take to finish after SIGTERM."""
    state_password_file: str | None = None
    """PostgreSQL: a file holding the password (relative: looked up in $CREDENTIALS_DIRECTORY
    first); else libpq's own PGPASSWORD, ~/.pgpass or service file."""
    state_password_env: str | None = None
    """PostgreSQL: or an environment variable holding it."""
    state_pool_size: int = Field(default=8, ge=1, le=64)
    """PostgreSQL: connections kept per daemon."""
    replica: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,99}$")
    """Several replicas on one PostgreSQL store: this daemon's name (null: the host name)."""
    leader_lease: PositiveDuration = Field(default=15.0, ge=0.1)
    """Several replicas: how long the leader's lease lasts unless renewed (a dead leader is replaced
    within about this long)."""
    push_max_body: Size = Field(default=64 * 2**20, ge=2**16, le=2**31)
    """The largest body of a prediction or label push (POST /api/v1/models/NAME/VERSION/predictions
    or labels)."""

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
    """The endpoint's name in metrics (endpoint label) and logs."""
    url: HttpUrl
    """Triton's HTTP API (KServe v2)."""
    metrics_url: HttpUrl
    """Triton's Prometheus exposition; default: the API URL's host on port 8002, path /metrics."""
    timeout: PositiveDuration = 5.0
    """Deadline of each whole call to the endpoint, retries included."""
    headers: dict[Header, Header] = {}
    """Extra request headers, e.g. for an auth proxy (no secrets here)."""
    tls: TLSSettings = TLSSettings()
    """CA bundle, client certificate and verification for https:// URLs."""
    allow_model_control: bool = False
    """May lifecycled load and unload models here (Triton in explicit model-control mode)?"""
    trace_file: DataPath | None = None
    """The trace file this Triton was started with (--trace-config triton,file=PATH), as
    lifecycled sees it: the same host or a shared volume at the same path. Triton writes PATH.0,
    PATH.1, ...; lifecycled reads and deletes them. null: no trace sampling here."""
    trace_log_frequency: int = Field(default=20, ge=1, le=100_000)
    """Traces per file for a watched model: Triton writes a file each time this many requests
    were sampled (fewer: fresher windows, more files)."""

    @field_validator("trace_file")
    @classmethod
    def _local_trace_file(cls, value: str | None) -> str | None:
        if value is not None and ("://" in value or not os.path.isabs(value)):
            raise ValueError("must be an absolute local path (lifecycled reads and deletes the "
                             "files Triton writes there)")
        return value

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
    """The user name."""
    password_file: str | None = None
    """A file holding the password (relative: $CREDENTIALS_DIRECTORY first)."""
    password_env: str | None = None
    """Or an environment variable holding it."""


class PrometheusSettings(_Section):
    url: HttpUrl
    """The Prometheus (or compatible: Mimir, Thanos) HTTP API."""
    timeout: PositiveDuration = 10.0
    """Deadline of each whole query, its two retries included."""
    headers: dict[Header, Header] = {}
    """Extra request headers (no secrets here)."""
    basic_auth: BasicAuth | None = None
    """Basic auth for the queries."""
    tls: TLSSettings = TLSSettings()
    """CA bundle, client certificate and verification for an https:// URL."""
    window: PositiveDuration = 300.0
    """The rate window of the default queries."""
    fallback_to_triton: bool = False
    """Scrape Triton directly while Prometheus is down."""
    queries: dict[str, str] = {}
    """Override a quantity's PromQL by name (requests_per_second, error_ratio, latency_p99_seconds,
    ...), for relabelled jobs."""

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
    timeout: PositiveDuration = 30.0
    """Deadline of each file operation on an object store (listing, reading), retries included."""


class SourcesSettings(_Section):
    triton: tuple[TritonEndpoint, ...] = ()
    """The Triton servers to discover and scrape; one model may be served by several."""
    prometheus: PrometheusSettings | None = None
    """A Prometheus to read serving metrics from instead of scraping Triton; null: none."""
    files: FilesSettings = FilesSettings()
    """Data files (references, samples, outcomes): local paths or URLs (s3://, gs://, hdfs://,
    file://); credentials come from the provider's default chain, never from here."""

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
    """Read every Triton's repository index: register, record serving states."""
    collect: PositiveDuration = 300.0
    """Serving metrics (with the latest fresh quality) into snapshots, then the threshold checks."""
    quality: PositiveDuration = 300.0
    """Quality and concept drift from labelled outcomes, prediction logs or PromQL."""
    evaluate: PositiveDuration = 3600.0
    """Thresholds and performance level of every production version."""
    traces: PositiveDuration = 60.0
    """Triton's trace samples: the watched models' trace settings, then the new trace files
    read (and deleted)."""
    drift: PositiveDuration = 86400.0
    """The configured drift check of every production version (and of every live version whose
    drift reads Triton's traces)."""
    updates: PositiveDuration = 60.0
    """Update triggers and the jobs in flight."""
    retirement: PositiveDuration = 86400.0
    """Retirement scores, candidates and plans."""
    deliver: PositiveDuration = 10.0
    """The webhook outbox."""
    compare: PositiveDuration = 60.0
    """Champion and challenger comparisons: both versions' Triton counters read, the evidence
    updated, the decision taken."""
    housekeeping: PositiveDuration = 3600.0
    """Pruning of snapshots, delivered events, backups and cached profiles."""


class ThresholdSettings(_Section):
    """Thresholds as written in the file; None means 'inherit from defaults'."""

    min_accuracy: Ratio | None = None
    """Accuracy below this is a breach."""
    max_latency_p99: Duration | None = None
    """p99 latency above this is a breach."""
    min_throughput: NonNegative | None = None
    """Requests per second below this is a breach; none by default (idle and batch models must not
    page)."""
    max_error_ratio: Ratio | None = None
    """Failed over all requests above this is a breach."""
    max_memory: Size | None = None
    """The model's own memory (Triton's statistics extension) above this is a breach."""
    max_mae: NonNegative | None = None
    """A regression model's mean absolute error above this is a breach (its target's units)."""
    max_rmse: NonNegative | None = None
    """A regression model's root mean squared error above this is a breach (its target's
    units)."""
    max_mape: Share | None = None
    """A regression model's mean absolute percentage error above this is a breach: 0.15 or
    "15%"."""
    min_r2: float | None = Field(default=None, le=1)
    """A regression model's R squared below this is a breach."""
    max_bias: NonNegative | None = None
    """A regression model's mean error (prediction minus label) beyond this either way is a
    breach (its target's units)."""

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


# thresholds that apply only where configured: a throughput floor, and a regression model's (in
# the units of its target)
UNSET_BY_DEFAULT = frozenset({"min_throughput", "max_mae", "max_rmse", "max_mape", "min_r2",
                              "max_bias"})


class DriftWeights(_Section):
    ks: NonNegative = DriftPolicy.weights[0]
    """Weight of KS D (or TVD) in the composite score."""
    js: NonNegative = DriftPolicy.weights[1]
    """Weight of the Jensen-Shannon distance."""
    psi: NonNegative = DriftPolicy.weights[2]
    """Weight of PSI."""


class TierSettings(_Section):
    medium: NonNegative
    """Where the effect becomes medium."""
    high: NonNegative
    """Where it becomes high."""
    critical: NonNegative
    """Where it becomes critical."""

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
    """Per effect size, where medium, high and critical start (docs/drift.md)."""

    psi: TierSettings = _tier_default("psi")
    """Tiers of PSI."""
    js: TierSettings = _tier_default("js")
    """Tiers of the Jensen-Shannon distance (base 2)."""
    distance: TierSettings = _tier_default("distance")
    """Tiers of KS D (numeric features) or the total variation distance (categorical)."""


DRIFT_SOURCES = ("files", "triton", "prometheus")
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


class HistogramSettings(_Section):
    """A distribution Prometheus already holds as a histogram (a score per model and version
    from a serving gateway, a custom metric of the Python backend): no raw value leaves the
    serving layer."""

    metric: str
    """The histogram's name: classic (its METRIC_bucket series, label le) or native."""
    native: bool = False
    """A native histogram (one series holding its buckets) instead of a classic one."""
    matchers: dict[str, Header] = {}
    """More labels the series must have, e.g. {job: gateway}."""
    model_label: str = "model"
    """The label holding the model's name."""
    version_label: str = "version"
    """The label holding the model's version."""
    reference_offset: PositiveDuration = 7 * 86400.0
    """The reference is the same window this long before the current one (the current window
    is drift.window, else the drift schedule's interval)."""

    @field_validator("metric")
    @classmethod
    def _metric_name(cls, value: str) -> str:
        if not _METRIC_NAME.fullmatch(value):
            raise ValueError(f"not a Prometheus metric name: {value!r}")
        return value

    @field_validator("model_label", "version_label")
    @classmethod
    def _label_name(cls, value: str) -> str:
        if not _LABEL_NAME.fullmatch(value):
            raise ValueError(f"not a Prometheus label name: {value!r}")
        return value

    @field_validator("matchers")
    @classmethod
    def _label_names(cls, value: dict[str, str]) -> dict[str, str]:
        bad = sorted(name for name in value if not _LABEL_NAME.fullmatch(name))
        if bad:
            raise ValueError(f"not Prometheus label names: {', '.join(bad)}")
        return value


class DriftSettings(_Section):
    source: Literal[DRIFT_SOURCES] | None = None  # type: ignore[valid-type]
    """Where the current rows come from: files (current, or the prediction log), triton (the
    inputs and outputs Triton samples with its trace extension, no pipeline needed: needs an
    endpoint with trace_file) or prometheus (a histogram Prometheus holds: drift.histogram)."""
    reference: DataPath | None = None
    """The reference sample (CSV, Parquet, JSON Lines; a file, glob or URL; {version} is the model
    version), usually the training data. With source triton: frozen (the default there) takes
    the first reference_rows rows sampled after the version went live."""
    current: DataPath | None = None
    """The current sample (file, glob or URL); null with a prediction log: the log's rows."""
    trace_rate: int | None = Field(default=None, ge=1, le=1_000_000)
    """With source triton: Triton traces one request in this many."""
    columns: dict[str, str] | None = None
    """With source triton: rename traced columns (TENSOR for one value per row, TENSOR_I for
    element I), e.g. {INPUT_0: income, OUTPUT: score}."""
    reference_rows: int | None = Field(default=None, ge=1, le=MAX_COUNT)
    """With reference frozen: how many sampled rows the reference holds."""
    histogram: HistogramSettings | None = None
    """With source prometheus: the histogram judged (PSI, JS and chi-square on its buckets, KS D
    bracketed). In defaults.drift: the histogram of every model whose source is prometheus."""
    timestamp_column: str | None = None
    """The column that dates a current row (for window)."""
    window: PositiveDuration | None = None
    """Judge the current rows of this last period (with timestamp_column; with source triton:
    the rows sampled in it, null: the drift schedule's interval)."""
    newest_rows: int | None = Field(default=None, gt=0, le=MAX_COUNT)
    """Else judge the newest N rows."""
    features: tuple[str, ...] | None = None
    """The columns judged; null: every column in both (identifiers left out)."""
    categorical: tuple[str, ...] | None = None
    """Columns judged as categories; null: the non-numeric ones."""
    bins: int | None = Field(default=None, ge=2, le=1000)
    """Quantile bins of the reference (PSI, JS)."""
    min_samples: int | None = Field(default=None, ge=1, le=MAX_COUNT)
    """Fewer finite values than this on either side: the feature is not judged
    (insufficient_samples)."""
    exclude: tuple[str, ...] | None = None
    """Columns never judged."""
    weights: DriftWeights | None = None
    """Weights of the composite score (and of the seed rule)."""
    alert_severity: SeverityName | None = None
    """Emit model.drift_detected (and count a feature as drifted) at or above this severity."""
    correction: Literal["none", "bonferroni", "bh"] | None = None
    """Multiple-test correction across the model's features: none, bonferroni or bh
    (Benjamini-Hochberg)."""
    alpha: float | None = Field(default=None, gt=0, le=ALPHA_CAP)
    """A fixed significance: an effect counts only where its test is significant at alpha,
    after the correction. null: from the false-alarm budget and the drift schedule."""
    severity_rule: Literal["tiers", "seed"] | None = None
    """tiers (effect sizes gated by significance) or seed (the composite score's bands)."""
    tiers: DriftTiers | None = None
    """Where each effect size becomes medium, high and critical."""
    schema_break_severity: SeverityName | None = None
    """The severity of a missing column or a changed type."""


class PredictionStream(_Section):
    """The prediction log: one row per prediction, joined with the labels by ``id_column``."""
    path: DataPath | None = None
    """The log: a file, glob or URL ({version} is the model version); null: rows arrive only as
    pushes."""
    id_column: str = "id"
    """The join key."""
    timestamp_column: str = "timestamp"
    """When the prediction was made."""
    version_column: str | None = None
    """A column naming the version (rows of other versions are skipped); null: every row is this
    version's."""


class LabelStream(_Section):
    """The labels, arriving later: one row per labelled prediction id."""
    path: DataPath | None = None
    """The labels: a file, glob or URL; null: labels arrive only as pushes."""
    id_column: str = "id"
    """The join key (the prediction's id)."""
    label_column: str = "label"
    """The outcome."""
    timestamp_column: str | None = None
    """When the outcome was known; null: when it was read."""


class QualitySettings(_Section):
    outcomes: DataPath | None = None
    """Predictions and labels in one file or glob ({version}: the version; otherwise it describes
    the production version)."""
    prediction_column: str = "prediction"
    """The model's prediction."""
    label_column: str = "label"
    """The outcome."""
    score_column: str | None = None
    """A binary model's score (ROC AUC, the estimate)."""
    score_columns: dict[str, str] = {}
    """A multiclass model's score per class: class label -> column."""
    timestamp_column: str | None = None
    """A time column of the outcomes file, which orders its rows (concept drift reads them
    in that order); null: the file's order."""
    promql: dict[QualityName, str] = {}
    """Quality from PromQL the labelling pipeline exports: metric -> query, with {model} and
    {version} (needs sources.prometheus)."""
    predictions: PredictionStream | None = None
    """The prediction log, joined with labels by id (give labels too)."""
    labels: LabelStream | None = None
    """The labels, arriving later (give predictions too)."""
    maturity: Duration = 0.0
    """A prediction is judged once it is this old."""
    window: PositiveDuration = 30 * 86400.0
    """The matured predictions judged in one pass."""
    min_coverage: Ratio = 0.8
    """Labelled share of the matured predictions needed before the metrics count (else provisional).
    """
    estimate: bool = True
    """Estimate the newest predictions' metrics before their labels: a classifier's by CBPE
    (needs its score columns), a regression model's MAE and RMSE by DLE (needs scikit-learn, the
    estimate extra; learns from estimate_features)."""
    estimate_features: tuple[str, ...] = ()
    """A regression model's estimate before its labels (DLE) learns each prediction's error from
    these numeric columns of the prediction log, beside the prediction (stored with each
    prediction)."""
    use_estimate: bool = False
    """While the matured window lacks min_coverage, let thresholds and update triggers judge the
    (trusted) estimate instead of nothing."""

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
    """Register READY versions discovery finds."""
    initial_status: Status = Status.STAGING
    """Status of a version discovery registers (never production: a person promotes it)."""
    unavailable_grace_passes: int = Field(default=3, ge=1, le=1000)
    """Discovery passes a production or staging version may stay unavailable before it is failed."""
    snapshot_retention: PositiveDuration = 30 * 86400.0
    """How long snapshots and evaluations are kept."""
    max_snapshots: int = Field(default=1000, ge=1, le=MAX_COUNT)
    """At most this many snapshots per version."""
    false_alarm_budget: Budget = parse_budget("1/30d")
    """How many false alarms per model you accept, per period: 1/30d is one in 30 days. Each
    repeated verdict (drift, a quality threshold from labels or the estimate, concept drift)
    is judged at the significance that keeps its expected false alarms within it, from its own
    schedule."""


def _drift_source_problem(own: DriftSettings, config: DriftSettings, traced: bool,
                          prometheus: bool, defaults: bool) -> str | None:
    """What is wrong with a drift section (``own``, as written; ``config``, merged with the
    defaults) about where its rows come from, as ``key: problem``; None if nothing."""
    if config.source != "prometheus" and own.histogram is not None and not defaults:
        return "histogram: only with source: prometheus"
    if config.source == "prometheus":
        if not prometheus:
            return "source: prometheus needs sources.prometheus"
        if config.histogram is None:
            return "histogram: source prometheus judges a histogram: name it (metric: ...)"
        for key in ("reference", "current", "timestamp_column"):
            if getattr(config, key) is not None:
                return (f"{key}: the windows of source prometheus are the histogram's "
                        f"(drift.window and histogram.reference_offset)")
        return None
    if config.source == "triton":
        if not traced:
            return ("source: triton needs an endpoint in sources.triton with trace_file (the "
                    "file Triton was started with: --trace-config triton,file=PATH)")
        for key in ("current", "timestamp_column"):
            if getattr(config, key) is not None:
                return (f"{key}: the current rows of source triton are the traced requests; "
                        f"set source: files to read files")
        return None
    if config.reference == FROZEN:
        return "reference: frozen is taken from Triton's traces: it needs source: triton"
    for key in ("columns", "trace_rate", "reference_rows"):
        if getattr(own, key) is not None and not defaults:
            return f"{key}: only with source: triton"
    return None


class DefaultsSettings(_Section):
    thresholds: ThresholdSettings = DEFAULT_THRESHOLDS
    """Applied to every model unless models.NAME.thresholds overrides a key."""
    monitoring: MonitoringSettings = MonitoringSettings()
    """Discovery and retention."""
    drift: DriftSettings = DriftSettings(
        source="files", trace_rate=100, reference_rows=1000, bins=DriftPolicy.bins,
        min_samples=DriftPolicy.min_samples, weights=DriftWeights(),
        alert_severity=DriftPolicy.alert_severity.label, correction=DriftPolicy.correction,
        severity_rule=DriftPolicy.rule, tiers=DriftTiers(),
        schema_break_severity=DriftPolicy.schema_break.label,
    )
    """Every model's drift settings unless models.NAME.drift overrides a key."""

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
    """The owning team (alert routing, the owner_team label)."""
    business_domain: Text | None = None
    """The business domain (e.g. credit_risk)."""
    model_type: Text | None = None
    """e.g. classification."""
    description: Prose | None = None
    """Free text."""
    training_dataset: Text | None = None
    """Where the training data came from."""
    tags: tuple[Text, ...] = ()
    """Free-form tags."""
    dependencies: tuple[Text, ...] = ()
    """Models this one needs: NAME (any version) or NAME:VERSION; retirement is refused while a
    dependant is live."""
    thresholds: ThresholdSettings = ThresholdSettings()
    """This model's thresholds (unset keys: defaults.thresholds)."""
    drift: DriftSettings = DriftSettings()
    """This model's drift check (unset keys: defaults.drift)."""
    quality: QualitySettings = QualitySettings()
    """Where this model's outcomes come from and how they are judged."""
    segment_by: tuple[str, ...] = ()
    """Columns (of the samples and the prediction log) whose values are judged on their own too:
    drift, quality, coverage, the estimate."""
    segment_top: int = Field(default=10, ge=1, le=100)
    """The most frequent values of each segment column get segments; the rest fall in other."""
    false_alarm_budget: Budget | None = None
    """This model's false-alarm budget; null: defaults.monitoring.false_alarm_budget."""

    @field_validator("segment_by")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        repeated = sorted({c for c in value if value.count(c) > 1})
        if repeated:
            raise ValueError(f"a column is named twice: {', '.join(repeated)}")
        if any(not c for c in value):
            raise ValueError("a column name is empty")
        return value

    @model_validator(mode="after")
    def _estimate_features_are_a_regressions(self) -> ModelSettings:
        kind = (self.model_type or "").strip().lower()
        if self.quality.estimate_features and kind and kind != "regression":
            raise ValueError("quality.estimate_features: only a regression model's estimate "
                             f"(DLE) learns from features; this model_type is {kind!r}")
        if self.quality.use_estimate and kind == "regression":
            raise ValueError("quality.use_estimate: thresholds judge a classifier's estimate "
                             "(CBPE) only; a regression model's estimate (DLE) is shown and "
                             "exported, never judged")
        return self


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
    "model.promotion_requested",
    "model.rollback_requested",
)


class WebhookEndpoint(_Section):
    url: HttpUrl
    """The receiver."""
    secret_file: str | None = None
    """A file holding the whsec_ signing secret (relative: $CREDENTIALS_DIRECTORY first)."""
    secret_env: str | None = None
    """Or an environment variable holding it (give exactly one)."""
    events: tuple[Literal[EVENT_TYPES], ...] = EVENT_TYPES  # type: ignore[valid-type]
    """The event types sent to this endpoint."""
    timeout: PositiveDuration = 10.0
    """Deadline of each delivery attempt."""
    max_attempts: int = Field(default=8, ge=1, le=100)
    """Attempts before an event is a dead letter."""
    concurrency: int = Field(default=8, ge=1, le=64)
    """Requests in flight to the endpoint at most."""
    backoff_initial: PositiveDuration = 10.0
    """Wait before the second attempt; doubled at each attempt, with jitter."""
    backoff_max: PositiveDuration = 3600.0
    """The longest wait between attempts."""

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
    """Which automatic triggers open update jobs."""
    schedule: str | None = None
    """Crontab (five fields, UTC) of scheduled update jobs (with auto_trigger.scheduled)."""
    cooldown: Duration = 86400.0
    """Per model, between two automatic update jobs."""
    job_timeout: PositiveDuration = 6 * 3600.0
    """A job with no progress for this long fails."""

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
    """The gate: the new version's validation accuracy must reach this."""
    min_validation: dict[str, float] = {}
    """More minimums the gate checks, e.g. {f1: 0.7, roc_auc: 0.8}."""
    load_in_triton: bool = False
    """Ask endpoints with allow_model_control to load a promoted version."""
    compare: bool = False
    """Promote only through a comparison on live traffic: a version past the validation gate
    stays staging beside the production one until policies.compare decides."""


class RetirementSettings(_Section):
    max_age_days: float = Field(default=RetirementPolicy.max_age_days, gt=0)
    """Older than this many days is named as a reason (too old); the age part of the score
    grows to full at 365 days whatever this says."""
    min_accuracy: Ratio = RetirementPolicy.min_accuracy
    """Mean accuracy of the last snapshots below this adds to the score (full at 20 % below)."""
    min_requests_per_month: float = Field(default=RetirementPolicy.min_requests_per_month, ge=0)
    """Fewer requests over 30 days is named as a reason (too little use)."""
    normal_weekly_requests: float = Field(default=RetirementPolicy.normal_weekly_requests, gt=0)
    """Weekly requests of a normally used version (the usage part of the score)."""
    candidate_score: Ratio = RetirementPolicy.candidate_score
    """A version scoring above this is a retirement candidate."""
    auto_retire_score: Ratio = 0.7
    """With auto_retire, candidates at or above this are retired."""
    auto_retire: bool = False
    """Retire candidates automatically."""
    auto_retire_failed: bool = False
    """Retire failed versions automatically."""
    unload_from_triton: bool = True
    """Unload a retired version from endpoints with allow_model_control."""
    backup_dir: str = "backups"
    """Where retirement backups go (relative: the state directory)."""
    backup_retention_days: float = Field(default=365, gt=0)
    """Backups older than this are deleted."""

    def policy(self) -> RetirementPolicy:
        """The scoring limits as core's value type."""
        return RetirementPolicy(**{f.name: getattr(self, f.name)
                                   for f in dataclasses.fields(RetirementPolicy)})


class CompareSettings(_Section):
    """Champion and challenger: when a comparison decides (docs/compare.md)."""

    alpha: float = Field(default=ComparePolicy.alpha, gt=0, le=0.5)
    """Each decision's error, however often the comparison is looked at (split among the
    blocking criteria)."""
    min_requests: int = Field(default=ComparePolicy.min_requests, ge=1, le=MAX_COUNT)
    """Challenger requests before it can be promoted."""
    max_duration: PositiveDuration = ComparePolicy.max_duration
    """After this long without a decision, on_timeout decides."""
    failure_margin: Ratio = ComparePolicy.failure_margin
    """A promotion needs evidence that the challenger fails at most this much more (relative:
    0.2 is 20 % more)."""
    latency_margin: Ratio = ComparePolicy.latency_margin
    """A pass counts against the challenger when its p99 is this much above the champion's
    (relative)."""
    block: tuple[Literal[CRITERIA], ...] = ComparePolicy.block  # type: ignore[valid-type]
    """The criteria that decide (failures, latency); the others are shown only. Latency needs
    Triton's summaries (--metrics-config summary_latencies=true)."""
    on_latency: Literal["rollback", "hold"] = "rollback"
    """What a slower challenger gets."""
    on_timeout: Literal["promote", "rollback", "hold"] = "hold"
    """The decision when max_duration runs out."""

    def policy(self) -> ComparePolicy:
        """The decision rules as core's value type."""
        return ComparePolicy(**{f.name: getattr(self, f.name)
                                for f in dataclasses.fields(ComparePolicy)})


class PoliciesSettings(_Section):
    updates: UpdatePolicy = UpdatePolicy()
    """Update jobs: triggers, cooldown, the validation gate."""
    compare: CompareSettings = CompareSettings()
    """Champion and challenger comparisons: their decision rules."""
    retirement: RetirementSettings = RetirementSettings()
    """Retirement: scoring, automatic retirement, backups."""


class Settings(_Section):
    """Everything lifecycled reads from its configuration."""

    daemon: DaemonSettings = DaemonSettings()
    """The process: listener, state store, logs, tokens."""
    sources: SourcesSettings = SourcesSettings()
    """Where serving metrics and data come from."""
    schedule: ScheduleSettings = ScheduleSettings()
    """The interval of each scheduled task."""
    defaults: DefaultsSettings = DefaultsSettings()
    """Thresholds, monitoring and drift settings of every model."""
    models: dict[Name, ModelSettings] = {}
    """Per model (every version of it): metadata and overrides. Also one file per model in models.d/
    beside the configuration."""
    webhooks: dict[Name, WebhookEndpoint] = {}
    """Named webhook endpoints (Standard Webhooks v1 signatures)."""
    policies: PoliciesSettings = PoliciesSettings()
    """Update jobs and retirement."""

    @model_validator(mode="after")
    def _promql_needs_prometheus(self) -> Settings:
        if self.sources.prometheus is None:
            using = sorted(name for name, m in self.models.items() if m.quality.promql)
            if using:
                raise ValueError(f"models {', '.join(using)}: quality.promql needs "
                                 "sources.prometheus")
        return self

    @model_validator(mode="after")
    def _drift_sources(self) -> Settings:
        traced = any(endpoint.trace_file for endpoint in self.sources.triton)
        checked = [("defaults.drift", self.defaults.drift, self.defaults.drift)]
        checked += [(f"models.{name}.drift", model.drift, self.drift_config(name))
                    for name, model in self.models.items()]
        for where, own, config in checked:
            problem = _drift_source_problem(own, config, traced,
                                            self.sources.prometheus is not None,
                                            where == "defaults.drift")
            if problem is not None:
                raise ValueError(f"{where}.{problem}")
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
        significance = (Significance(config.alpha, "fixed by drift.alpha")
                        if config.alpha is not None else self.drift_significance(name))
        return DriftPolicy(
            bins=config.bins or DriftPolicy.bins,
            min_samples=config.min_samples or DriftPolicy.min_samples,
            weights=(weights.ks, weights.js, weights.psi),
            alert_severity=Severity.parse(config.alert_severity or DriftPolicy.alert_severity.label),
            correction=config.correction or DriftPolicy.correction,
            alpha=significance.alpha, basis=significance.basis,
            rule=config.severity_rule or DriftPolicy.rule,
            psi_tiers=tiers.psi.value(), js_tiers=tiers.js.value(),
            distance_tiers=tiers.distance.value(),
            schema_break=Severity.parse(config.schema_break_severity
                                        or DriftPolicy.schema_break.label),
        )

    def false_alarm_budget(self, name: str) -> tuple[float, float]:
        """Model ``name``'s budget: (alarms, period in seconds)."""
        return (self.model_settings(name).false_alarm_budget
                or self.defaults.monitoring.false_alarm_budget)

    def significance(self, name: str, interval: float, shares: int = 1,
                     shared_by: str = "") -> Significance:
        """The significance of a verdict about model ``name`` repeated every ``interval``
        seconds within the model's false-alarm budget, split among ``shares`` families of tests
        (``shared_by`` names them)."""
        alarms, period = self.false_alarm_budget(name)
        return budget_significance(alarms, period, interval, shares, shared_by,
                                   duration_text(period), duration_text(interval))

    def drift_significance(self, name: str) -> Significance:
        """A drift check runs two families of tests, KS and chi-square, each corrected across
        the features, for the model and for each segment (segment_top values and other, per
        segment column): the budget is split among them all."""
        model = self.model_settings(name)
        segments = len(model.segment_by) * (model.segment_top + 1)
        families = 2 * (1 + segments)
        what = ("families of tests (KS and chi-square, for the model and each of its "
                f"{segments} segments)" if segments else
                "families of tests (KS and chi-square)")
        return self.significance(name, self.schedule.drift, families, what)

    def subscriptions(self) -> dict[str, tuple[str, ...]]:
        """Webhook endpoint -> the event types it wants."""
        return {name: tuple(endpoint.events) for name, endpoint in self.webhooks.items()}

    def thresholds_for(self, name: str, *overrides: ThresholdSettings,
                       model_type: str | None = None) -> dict[str, float]:
        """Return the effective thresholds in base units: defaults <- model config <- overrides,
        less those of the other model type (a regression model has no accuracy to check; the
        type is the configuration's unless given)."""
        merged = self.defaults.thresholds.to_base_units()
        for layer in (self.model_settings(name).thresholds, *overrides):
            merged.update(layer.to_base_units())
        kind = (model_type or self.model_settings(name).model_type or "").strip().lower()
        other = CLASSIFIER_THRESHOLDS if kind == "regression" else REGRESSION_THRESHOLDS
        return {key: value for key, value in merged.items() if key not in other}
