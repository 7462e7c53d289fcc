"""The Prometheus exporter: one collector per subsystem (as node_exporter lays out one collector
per file), composed here. It reads stored state only (a scrape never calls Triton, Prometheus or
a file) and yields fresh metric families. The names are a contract (README "Metrics")."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client.core import Metric

from lifecycled.domain import Status
from lifecycled.exporter import (
    checks,
    cluster,
    daemon,
    quality,
    registry,
    retirement,
    serving,
    updates,
)
from lifecycled.exporter import webhooks as webhook_metrics
from lifecycled.exporter.drift import DriftCollector
from lifecycled.store import Store, StoreWrites
from lifecycled.store.results import Decoded


class LifecycleCollector:
    """A prometheus_client collector over the store."""

    def __init__(self, store: Store,
                 webhook_endpoints: Callable[[], Iterable[str]] = lambda: (),
                 job_intervals: Callable[[], dict[str, float]] = dict,
                 store_writes: Callable[[], StoreWrites | None] = lambda: None,
                 replica: Callable[[], dict[str, Any] | None] = lambda: None) -> None:
        self.store = store
        self.replica = replica  # this replica's state among several (None: the only daemon)
        self.webhook_endpoints = webhook_endpoints
        self.job_intervals = job_intervals
        self.store_writes = store_writes  # the daemon's view (None: not exported)
        self.drift = DriftCollector(store)
        # decoded results by row id (rows never change): a scrape decodes only new results
        self._quality: Decoded = {}
        self._evaluations: Decoded = {}

    def describe(self) -> Iterable[Metric]:
        return []  # nothing is read at registration time

    def collect(self) -> Iterator[Metric]:
        replica = self.replica()
        yield from daemon.collect_process(self.job_intervals(), self.store_writes())
        if replica is not None:
            yield from cluster.collect(self.store, replica)
            if not replica["leader"]:
                return  # the fleet's state is the leader's to export: once, not once per replica
        yield from self._fleet()

    def _fleet(self) -> Iterator[Metric]:
        records = self.store.list_models()
        live = {r.ref for r in records if r.status != Status.RETIRED}
        yield from registry.collect(records)
        yield from serving.collect(self.store, live)
        yield from serving.collect_hosts(self.store)
        yield from quality.collect(self.store, live, self._quality)
        yield from checks.collect(self.store, live, self._evaluations)
        yield from self.drift.collect(live)
        yield from updates.collect(self.store, live)
        yield from webhook_metrics.collect(self.store, list(self.webhook_endpoints()))
        yield from retirement.collect(self.store, live)
        yield from daemon.collect(self.store)
