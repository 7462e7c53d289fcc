"""Model identities and records: a version's reference, its registration, its stored record,
its history rows and Triton's counters for it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lifecycled.domain.lifecycle import HistoryKind, Status
from lifecycled.errors import InputError

MAX_COUNT = 10**9  # the largest count a key or an option takes (rows, samples, snapshots)
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

