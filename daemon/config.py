"""YAML -> one typed, validated, immutable Settings object; every problem reported at once.

``load_settings(path, environ)`` reads the file (and ``models.d/*.yaml`` beside it) and returns
Settings or raises ConfigError listing each problem with its key path. ``parse_settings(mapping)``
is the pure part, for tests.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from daemon.domain import Status
from daemon.errors import ConfigError

DEFAULT_PATHS = (Path("/etc/lifecycled/lifecycled.yaml"), Path("config/lifecycled.yaml"))
ENV_CONFIG = "LIFECYCLED_CONFIG"

# --- scalar types -------------------------------------------------------------------------------

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$")
_SIZE_UNITS = {
    "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
    "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40,
}


def parse_duration(value: Any) -> float:
    """Parse ``90s``, ``5m``, ``12h``, ``7d``, ``80ms`` (or a bare number of seconds) to seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 90s, 5m, 12h, 7d or 80ms, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION_RE.match(value)):
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    else:
        raise ValueError(f"expected a duration like 90s, 5m, 12h, 7d or 80ms, got {value!r}")
    if seconds < 0:
        raise ValueError(f"must not be negative, got {value!r}")
    return seconds


def parse_size(value: Any) -> float:
    """Parse ``2048MiB``, ``2GB`` (or a bare number of bytes) to bytes."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size like 512MiB or 2GB, got {value!r}")
    if isinstance(value, int | float):
        size = float(value)
    elif isinstance(value, str) and (match := _SIZE_RE.match(value)):
        size = float(match.group(1)) * _SIZE_UNITS[match.group(2)]
    else:
        raise ValueError(f"expected a size like 512MiB or 2GB, got {value!r}")
    if size < 0:
        raise ValueError(f"must not be negative, got {value!r}")
    return size


def parse_ratio(value: Any) -> Any:
    """Accept ``80%`` as 0.8; leave numbers for the range check."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return float(value.strip()[:-1]) / 100.0
        except ValueError:
            raise ValueError(f"expected a ratio like 0.8 or 80%, got {value!r}") from None
    return value


def _check_ratio(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"must be between 0 and 1, got {value:g}")
    return value


def _check_positive(value: float) -> float:
    if value <= 0:
        raise ValueError(f"must be greater than 0, got {value:g}")
    return value


Duration = Annotated[float, BeforeValidator(parse_duration)]
PositiveDuration = Annotated[float, BeforeValidator(parse_duration), AfterValidator(_check_positive)]
Size = Annotated[float, BeforeValidator(parse_size)]
Ratio = Annotated[float, BeforeValidator(parse_ratio), AfterValidator(_check_ratio)]
NonNegative = Annotated[float, Field(ge=0)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
        return self


class DaemonSettings(_Section):
    listen: str = Field(default="127.0.0.1:9877", pattern=r"^\[?[0-9A-Za-z.:\-]+\]?:\d{1,5}$")
    state_url: str = Field(default="sqlite:///lifecycled-state/lifecycled.db", pattern=r"^\w+://")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    public_url: str | None = Field(default=None, pattern=r"^https?://")
    api_token_file: str | None = None
    api_token_env: str | None = None
    tls: TLSSettings = TLSSettings()
    shutdown_grace: Duration = 30.0


class TritonEndpoint(_Section):
    name: Name
    url: str = Field(pattern=r"^https?://")
    metrics_url: str = Field(pattern=r"^https?://")
    timeout: PositiveDuration = 5.0
    headers: dict[str, str] = {}
    tls: TLSSettings = TLSSettings()
    allow_model_control: bool = False


class BasicAuth(_Section):
    username: str
    password_file: str | None = None
    password_env: str | None = None


class PrometheusSettings(_Section):
    url: str = Field(pattern=r"^https?://")
    timeout: PositiveDuration = 10.0
    headers: dict[str, str] = {}
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
        from daemon.sources.prometheus import QUANTITIES

        unknown = sorted(set(value) - set(QUANTITIES))
        if unknown:
            raise ValueError(f"unknown quantities {', '.join(unknown)}; known: "
                             f"{', '.join(QUANTITIES)}")
        return value


class SourcesSettings(_Section):
    triton: tuple[TritonEndpoint, ...] = ()
    prometheus: PrometheusSettings | None = None

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
    max_cpu: Ratio | None = None

    def to_base_units(self) -> dict[str, float]:
        """Return the set thresholds keyed by their base-unit names (see domain.THRESHOLD_KEYS)."""
        pairs = {
            "min_accuracy": self.min_accuracy,
            "max_latency_p99_seconds": self.max_latency_p99,
            "min_throughput_rps": self.min_throughput,
            "max_error_ratio": self.max_error_ratio,
            "max_memory_bytes": self.max_memory,
            "max_cpu_ratio": self.max_cpu,
        }
        return {key: value for key, value in pairs.items() if value is not None}


DEFAULT_THRESHOLDS = ThresholdSettings(
    min_accuracy=0.85,
    max_latency_p99=0.100,
    min_throughput=10.0,
    max_error_ratio=0.01,
    max_memory=2048 * 2**20,
    max_cpu=0.8,
)


Severity = Literal["low", "medium", "high", "critical"]


class DriftWeights(_Section):
    ks: NonNegative = 0.4
    js: NonNegative = 0.3
    psi: NonNegative = 0.3


class DriftSettings(_Section):
    reference: str | None = None
    current: str | None = None
    timestamp_column: str | None = None
    window: PositiveDuration | None = None
    newest_rows: int | None = Field(default=None, gt=0)
    features: tuple[str, ...] | None = None
    categorical: tuple[str, ...] | None = None
    bins: int | None = Field(default=None, ge=2, le=1000)
    min_samples: int | None = Field(default=None, ge=1)
    weights: DriftWeights | None = None
    alert_severity: Severity | None = None
    correction: Literal["none", "bonferroni", "bh"] | None = None


class QualitySettings(_Section):
    outcomes: str | None = None
    prediction_column: str = "prediction"
    label_column: str = "label"
    score_column: str | None = None
    timestamp_column: str | None = None
    promql: dict[Literal["accuracy", "precision", "recall", "f1", "roc_auc"], str] = {}


class MonitoringSettings(_Section):
    auto_register: bool = True
    initial_status: Status = Status.PRODUCTION
    unavailable_grace_passes: int = Field(default=3, ge=1)
    snapshot_retention: PositiveDuration = 30 * 86400.0
    max_snapshots: int = Field(default=1000, ge=1)


class DefaultsSettings(_Section):
    thresholds: ThresholdSettings = DEFAULT_THRESHOLDS
    monitoring: MonitoringSettings = MonitoringSettings()
    drift: DriftSettings = DriftSettings(
        bins=10, min_samples=100, weights=DriftWeights(), alert_severity="medium",
        correction="none",
    )

    @model_validator(mode="after")
    def _complete(self) -> DefaultsSettings:
        missing = [k for k, v in self.thresholds.model_dump().items() if v is None]
        if missing:
            raise ValueError(f"thresholds need a default for: {', '.join(missing)}")
        return self


class ModelSettings(_Section):
    """Per-model metadata and overrides; applies to every version of the model."""

    owner_team: str | None = None
    business_domain: str | None = None
    model_type: str | None = None
    description: str | None = None
    training_dataset: str | None = None
    tags: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()
    thresholds: ThresholdSettings = ThresholdSettings()
    drift: DriftSettings = DriftSettings()
    quality: QualitySettings = QualitySettings()


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
    url: str = Field(pattern=r"^https?://")
    secret_file: str | None = None
    secret_env: str | None = None
    events: tuple[Literal[EVENT_TYPES], ...] = EVENT_TYPES  # type: ignore[valid-type]
    timeout: PositiveDuration = 10.0
    max_attempts: int = Field(default=8, ge=1, le=100)
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
    schedule: str | None = None
    cooldown: Duration = 86400.0
    job_timeout: PositiveDuration = 6 * 3600.0
    min_validation_accuracy: Ratio = 0.8
    min_validation: dict[str, float] = {}
    load_in_triton: bool = False


class RetirementPolicy(_Section):
    max_age_days: float = Field(default=730, gt=0)
    min_accuracy: Ratio = 0.8
    min_requests_per_month: float = Field(default=50, ge=0)
    normal_weekly_requests: float = Field(default=1000, gt=0)
    candidate_score: Ratio = 0.6
    auto_retire_score: Ratio = 0.7
    auto_retire: bool = False
    auto_retire_failed: bool = False
    unload_from_triton: bool = True
    backup_dir: str = "backups"
    backup_retention_days: float = Field(default=365, gt=0)


class PoliciesSettings(_Section):
    updates: UpdatePolicy = UpdatePolicy()
    retirement: RetirementPolicy = RetirementPolicy()


class Settings(_Section):
    """Everything lifecycled reads from its configuration."""

    daemon: DaemonSettings = DaemonSettings()
    sources: SourcesSettings = SourcesSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    defaults: DefaultsSettings = DefaultsSettings()
    models: dict[Name, ModelSettings] = {}
    webhooks: dict[Name, WebhookEndpoint] = {}
    policies: PoliciesSettings = PoliciesSettings()

    def model_settings(self, name: str) -> ModelSettings:
        """Return the configured settings of model ``name`` (empty settings if not configured)."""
        return self.models.get(name, _UNCONFIGURED)

    def thresholds_for(self, name: str, *overrides: ThresholdSettings) -> dict[str, float]:
        """Return the effective thresholds in base units: defaults <- model config <- overrides."""
        merged = self.defaults.thresholds.to_base_units()
        for layer in (self.model_settings(name).thresholds, *overrides):
            merged.update(layer.to_base_units())
        return merged


# --- error formatting ---------------------------------------------------------------------------

_SECRET_WORDS = ("secret", "password", "token", "api_key", "apikey")


def format_error(error: Mapping[str, Any], prefix: tuple[str | int, ...] = ()) -> str:
    loc = tuple(prefix) + tuple(error["loc"])
    # Drop pydantic's internal union/function tags such as 'function-after[...]'.
    path = ".".join(str(part) for part in loc if not str(part).startswith(("function-", "tagged")))
    kind = error["type"]
    given = error.get("input")
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else ""
        if any(word in key.lower() for word in _SECRET_WORDS):
            return (f"{path}: secrets may not be written in the file; "
                    f"use {key}_file or {key}_env")
        return f"{path}: unknown key"
    if kind == "missing":
        return f"{path}: required key is missing"
    if kind == "value_error":
        message = str(error.get("ctx", {}).get("error", error["msg"]))
        return f"{path}: {message}" if path else message
    return f"{path}: {error['msg'][0].lower()}{error['msg'][1:]}, got {given!r}"


def parse_settings(data: Any) -> Settings:
    """Validate a mapping (as loaded from YAML) into Settings, or raise ConfigError."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError([f"the top level must be a mapping, got {type(data).__name__}"])
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = [format_error(e) for e in exc.errors(include_url=False)]
        raise ConfigError(sorted(dict.fromkeys(problems))) from exc


# --- files --------------------------------------------------------------------------------------


def read_yaml(path: Path) -> Any:
    """Read one YAML document with ``yaml.safe_load``; syntax errors name file, line and column."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"cannot read {path}: {exc.strerror or exc}"]) from exc
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError([f"{where}: YAML syntax error: {exc.problem or exc.context}"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: YAML error: {exc}"]) from exc


def _merge_models_dir(data: dict[str, Any], directory: Path) -> list[str]:
    """Merge ``models.d/*.yaml`` (one model per file, with a ``name`` key) into ``data``."""
    problems: list[str] = []
    models = data.setdefault("models", {})
    if not isinstance(models, dict):
        return problems  # reported by validation
    for file in sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml")):
        try:
            item = read_yaml(file)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            problems.append(f"{file}: must be a mapping with a 'name' key naming the model")
            continue
        item = dict(item)
        name = item.pop("name")
        if name in models:
            problems.append(f"{file}: model {name!r} is already defined in the main file "
                            f"or another models.d file")
            continue
        models[name] = item
    return problems


def resolve_config_path(explicit: str | None, environ: Mapping[str, str]) -> Path:
    """Find the config file: --config, then $LIFECYCLED_CONFIG, then the default locations."""
    if explicit:
        return Path(explicit)
    if environ.get(ENV_CONFIG):
        return Path(environ[ENV_CONFIG])
    for candidate in DEFAULT_PATHS:
        if candidate.exists():
            return candidate
    raise ConfigError(
        [f"no configuration file: pass --config, set ${ENV_CONFIG}, or create one of "
         + ", ".join(str(p) for p in DEFAULT_PATHS)]
    )


def load_settings(path: Path) -> Settings:
    """Load the YAML file at ``path`` and its ``models.d/`` folder into Settings."""
    data = read_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"the top level must be a mapping, got {type(data).__name__}"],
                          source=str(path))
    problems: list[str] = []
    models_dir = path.parent / "models.d"
    if models_dir.is_dir():
        problems = _merge_models_dir(data, models_dir)
    try:
        settings = parse_settings(data)
    except ConfigError as exc:
        raise ConfigError(problems + exc.problems, source=str(path)) from exc
    if problems:
        raise ConfigError(problems, source=str(path))
    return settings


def read_secret(file: str | None, env: str | None, environ: Mapping[str, str] | None = None,
                what: str = "secret") -> str:
    """Read a secret from a file or an environment variable; never from the config itself.

    A relative file is looked up in ``$CREDENTIALS_DIRECTORY`` first (systemd ``LoadCredential=``).
    """
    environ = os.environ if environ is None else environ
    if env:
        value = environ.get(env)
        if not value:
            raise ConfigError([f"{what}: environment variable {env} is not set"])
        return value.strip()
    if file:
        path = Path(file)
        creds = environ.get("CREDENTIALS_DIRECTORY")
        if not path.is_absolute() and creds and (Path(creds) / path).exists():
            path = Path(creds) / path
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError([f"{what}: cannot read {path}: {exc.strerror or exc}"]) from exc
    raise ConfigError([f"{what}: neither a file nor an environment variable is configured"])


def drift_settings_for(settings: Settings, name: str) -> DriftSettings:
    """Return the model's drift settings with every unset key taken from the defaults."""
    merged = settings.defaults.drift.model_dump()
    merged.update(settings.model_settings(name).drift.model_dump(exclude_none=True))
    return DriftSettings.model_validate(merged)


def subscriptions(settings: Settings) -> dict[str, tuple[str, ...]]:
    """Webhook endpoint -> the event types it wants."""
    return {name: tuple(endpoint.events) for name, endpoint in settings.webhooks.items()}
