"""What one scrape reads, handed to every collector: the store, the registry listed once, and
this daemon's own state. Each collector is ``collect(scrape) -> Iterator[Metric]``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from prometheus_client.samples import Sample

from lifecycled.domain import ModelRecord, ModelRef, Status
from lifecycled.store import Store, StoreWrites
from lifecycled.store.results import Decoded


@dataclass
class Decodings:
    """What scrapes keep between them (stored rows never change, so each is decoded once): the
    decoded quality, evaluation and drift results by row id, and the drift results' per-feature
    samples by (family, row id)."""

    quality: Decoded = field(default_factory=dict)
    evaluations: Decoded = field(default_factory=dict)
    drift: Decoded = field(default_factory=dict)
    drift_samples: dict[tuple[str, int], list[Sample]] = field(default_factory=dict)


@dataclass
class Scrape:
    store: Store
    decodings: Decodings
    intervals: Mapping[str, float] = field(default_factory=dict)  # each task's, in seconds
    writes: StoreWrites | None = None  # the daemon's view of its store (None: not exported)
    replica: Mapping[str, Any] | None = None  # this replica among several (None: the only one)
    endpoints: Sequence[str] = ()  # the configured webhook endpoints

    @cached_property
    def records(self) -> list[ModelRecord]:
        """The registry, listed once per scrape (a failure is not kept: each collector that
        needs it fails on its own)."""
        return self.store.list_models()

    @cached_property
    def live(self) -> set[ModelRef]:
        return {r.ref for r in self.records if r.status != Status.RETIRED}
