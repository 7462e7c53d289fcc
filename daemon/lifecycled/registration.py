"""Registration: a ``models register`` document validated like the configuration, and the
ModelSpec a registration (or discovery, or an update) builds from an entry, the model's
configuration and the defaults."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from pydantic import Field, ValidationError, model_validator

from lifecycled.config import format_error
from lifecycled.domain import ModelRecord, ModelRef, ModelSpec, Status
from lifecycled.errors import ConfigError, InputError
from lifecycled.fields import Name, Text
from lifecycled.settings import ModelSettings, Settings
from lifecycled.store import Store

log = logging.getLogger(__name__)


class RegistrationEntry(ModelSettings):
    """One model version in a ``models register --file`` document."""

    name: Name
    version: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+\-]{0,63}$")]
    status: Status = Status.DEVELOPING
    framework: Text = ""
    deployment: dict[str, Any] = {}

    @model_validator(mode="before")
    @classmethod
    def _version_is_text(cls, data: Any) -> Any:
        # YAML reads 1.10 as 1.1, 0x1F as 31 and yes as True: a version must be quoted
        if isinstance(data, dict) and "version" in data and not isinstance(data["version"], str):
            value = data["version"]
            raise ValueError(f"version: quote it; YAML read the unquoted value as the "
                             f"{type(value).__name__} {value!r} (1.10 reads as 1.1)")
        return data


def parse_registrations(data: Any, source: str) -> list[RegistrationEntry]:
    """Validate a registration document (one mapping or a list of them); report every problem."""
    items = data if isinstance(data, list) else [data]
    entries: list[RegistrationEntry] = []
    problems: list[str] = []
    for index, item in enumerate(items):
        prefix: tuple[str | int, ...] = (index,) if isinstance(data, list) else ()
        if not isinstance(item, dict):
            where = f"[{index}]: " if prefix else ""
            problems.append(f"{where}expected a mapping, got {type(item).__name__}")
            continue
        try:
            entries.append(RegistrationEntry.model_validate(item))
        except ValidationError as exc:
            problems.extend(format_error(e, prefix) for e in exc.errors(include_url=False))
    if problems:
        raise ConfigError(problems, source=source)
    return entries


def monitoring_for(settings: Settings, name: str) -> dict[str, Any]:
    """Return the effective monitoring settings of model ``name`` as plain values."""
    model = settings.model_settings(name)
    drift = settings.defaults.drift.model_dump(exclude_none=True)
    drift.update(model.drift.model_dump(exclude_none=True, exclude_defaults=True))
    return {
        "collect_interval_seconds": settings.schedule.collect,
        "evaluate_interval_seconds": settings.schedule.evaluate,
        "drift_interval_seconds": settings.schedule.drift,
        "snapshot_retention_seconds": settings.defaults.monitoring.snapshot_retention,
        "max_snapshots": settings.defaults.monitoring.max_snapshots,
        "drift": drift,
        "quality": model.quality.model_dump(exclude_defaults=True),
    }


def build_spec(settings: Settings, ref: ModelRef, entry: ModelSettings | None = None, *,
               framework: str = "", deployment: Mapping[str, Any] | None = None,
               fallback_owner: str | None = None, fallback_domain: str | None = None,
               extra_tags: tuple[str, ...] = ()) -> ModelSpec:
    """Combine a registration entry with the model's config and the defaults into a ModelSpec.

    Values in ``entry`` win over ``models.<name>`` in the config, which wins over the fallbacks.
    """
    configured = settings.model_settings(ref.name)
    given = entry or ModelSettings()

    def pick(key: str) -> Any:
        value = getattr(given, key)
        return value if value not in (None, ()) else getattr(configured, key)

    owner_team: str = pick("owner_team") or fallback_owner or ""
    business_domain: str = pick("business_domain") or fallback_domain or ""
    missing = [key for key, value in (("owner_team", owner_team),
                                      ("business_domain", business_domain)) if not value]
    if missing:
        raise InputError(f"{ref}: {' and '.join(missing)} required (give it in the file or in "
                         f"models.{ref.name} of the config)")
    tags = tuple(dict.fromkeys((*pick("tags"), *extra_tags)))
    return ModelSpec(
        ref=ref,
        owner_team=owner_team,
        business_domain=business_domain,
        model_type=pick("model_type") or "",
        framework=framework,
        description=pick("description") or "",
        training_dataset=pick("training_dataset") or "",
        tags=tags,
        dependencies=tuple(pick("dependencies")),
        thresholds=settings.thresholds_for(ref.name, given.thresholds,
                                           model_type=pick("model_type") or None),
        monitoring=monitoring_for(settings, ref.name),
        deployment=dict(deployment or {}),
    )


KEPT_WHEN_NOT_GIVEN = ("model_type", "framework", "description", "training_dataset", "tags",
                       "dependencies", "deployment")


def merge_with_stored(settings: Settings, spec: ModelSpec, entry: RegistrationEntry,
                      stored: ModelSpec) -> ModelSpec:
    """A registration of a version already in the registry changes what it says and no more:
    a field neither the entry nor ``models.<name>`` in the config gives keeps its stored value
    (the framework, deployment and tags discovery learned from Triton, say)."""
    configured = settings.model_settings(spec.ref.name).model_fields_set
    kept = {key: getattr(stored, key) for key in KEPT_WHEN_NOT_GIVEN
            if key not in entry.model_fields_set and key not in configured}
    return dataclasses.replace(spec, **kept)


def threshold_differences(settings: Settings, records: Iterable[ModelRecord]) -> list[dict[str, Any]]:
    """Versions (not retired) whose stored thresholds differ from what the configuration gives
    now. The stored thresholds are the ones that apply: the registry row is the source of truth
    (each change is recorded), and ``models sync-thresholds`` stores the configured ones."""
    found = []
    for record in records:
        if record.status == Status.RETIRED:
            continue
        stored = dict(record.spec.thresholds)
        configured = settings.thresholds_for(record.ref.name,
                                             model_type=record.spec.model_type or None)
        changed = sorted(k for k in set(stored) | set(configured)
                         if stored.get(k) != configured.get(k))
        if changed:
            found.append({"model": str(record.ref), "changed": changed,
                          "stored": {k: stored.get(k) for k in changed},
                          "configured": {k: configured.get(k) for k in changed}})
    return found


def describe_difference(difference: Mapping[str, Any]) -> str:
    """One line: which thresholds differ, and how to apply the configured ones."""
    parts = ", ".join(f"{k} stored {difference['stored'][k]} configured "
                      f"{difference['configured'][k]}" for k in difference["changed"])
    return (f"{difference['model']}: stored thresholds differ from the configuration ({parts}); "
            f"the stored ones apply until `lifecycled models sync-thresholds "
            f"{difference['model']} --reason TEXT`")


def warn_threshold_differences(settings: Settings, store: Store) -> None:
    """Log each registered version whose stored thresholds differ from the configuration."""
    for difference in threshold_differences(settings, store.list_models()):
        log.warning("thresholds differ: %s", describe_difference(difference))
