"""Typed views of the stored results, for readers that walk many of them (the exporter): each
stored JSON document is decoded once into a frozen value, and readers use its fields, not keys."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lifecycled.domain import QUALITY_METRICS, ModelRef
from lifecycled.store.core import Store
from lifecycled.store.results import Decoded, latest


def _number(value: Any) -> float | None:
    """A finite number, or None (unknown)."""
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


@dataclass(frozen=True)
class FeatureView:
    """One feature of a stored drift check (``core.drift.feature_to_json``)."""

    feature: str
    kind: str
    judged: bool
    reason: str | None
    statistic: float | None  # KS D or TVD
    p_value: float | None
    chi2: float | None
    js: float | None
    psi: float | None
    score: float | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FeatureView:
        return cls(str(data["feature"]), str(data["kind"]), bool(data["judged"]), data["reason"],
                   _number(data["statistic"]), _number(data["p_value"]), _number(data["chi2"]),
                   _number(data["js"]), _number(data["psi"]), _number(data["score"]))


@dataclass(frozen=True)
class DriftView:
    ref: ModelRef
    at: float
    row_id: int  # rows never change: the id identifies the result
    severity: str
    drifted_share: float | None
    features: tuple[FeatureView, ...]
    segments: tuple[Mapping[str, Any], ...] = ()  # per segment: severity, drifted share


@dataclass(frozen=True)
class QualityView:
    ref: ModelRef
    at: float
    metrics: Mapping[str, float | None]  # by domain.QUALITY_METRICS name
    concept_severity: str | None
    labels: Mapping[str, Any] | None = None  # a prediction log's coverage and label lag
    estimate: Mapping[str, Any] | None = None  # CBPE of the newest, unlabelled predictions
    estimation: Mapping[str, Any] | None = None  # an earlier estimate beside what labels showed
    segments: tuple[Mapping[str, Any], ...] = ()  # per segment: coverage, metrics, estimate


@dataclass(frozen=True)
class EvaluationView:
    ref: ModelRef
    at: float
    checked: frozenset[str]  # threshold keys with a known value
    breached: frozenset[str]
    score: float | None
    level: str


def _drift(text: str) -> dict[str, Any]:
    data = json.loads(text)
    return {"severity": str(data["severity"]), "drifted_share": _number(data.get("drifted_share")),
            "features": tuple(FeatureView.from_json(f) for f in data["features"]),
            "segments": tuple(data.get("segments") or ())}


def _quality(text: str) -> dict[str, Any]:
    data = json.loads(text)
    return {"metrics": {m.name: _number(data.get(m.name)) for m in QUALITY_METRICS},
            "concept_severity": (data.get("concept") or {}).get("severity"),
            "labels": data.get("labels"), "estimate": data.get("estimate"),
            "estimation": data.get("estimation"), "segments": tuple(data.get("segments") or ())}


def _evaluation(text: str) -> dict[str, Any]:
    data = json.loads(text)
    return {"checked": frozenset(data["checked"]),
            "breached": frozenset(b["threshold"] for b in data["breaches"]),
            "score": _number(data.get("score")), "level": str(data["level"])}


def drift_views(store: Store, cache: Decoded) -> list[DriftView]:
    """The latest drift check of every model version."""
    return [DriftView(r.ref, r.at, r.row_id, **r.result)
            for r in latest(store, "drift_results", None, cache, decode=_drift)]


def quality_views(store: Store, cache: Decoded) -> list[QualityView]:
    """The latest quality result of every model version."""
    return [QualityView(r.ref, r.at, **r.result)
            for r in latest(store, "quality_results", None, cache, decode=_quality)]


def evaluation_views(store: Store, cache: Decoded) -> list[EvaluationView]:
    """The latest evaluation of every model version."""
    return [EvaluationView(r.ref, r.at, **r.result)
            for r in latest(store, "evaluations", None, cache, decode=_evaluation)]
