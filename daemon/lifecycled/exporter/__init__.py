"""The Prometheus exporter: one collector per subsystem (as node_exporter lays out one collector
per file), composed here. It reads stored state only (a scrape never calls Triton, Prometheus or
a file) and yields fresh metric families. The names are a contract: catalogue.py declares them
(docs/reference/metrics.md is generated from it)."""

from __future__ import annotations

import functools
import logging
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
from lifecycled.exporter.families import gauge
from lifecycled.store import Store, StoreWrites
from lifecycled.store.results import Decoded

log = logging.getLogger(__name__)


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
        """Every collector's families; one that fails costs only its own (node_exporter's
        pattern), logged and exported as ``lifecycled_exporter_collector_success 0``."""
        outcomes: dict[str, bool] = {}
        replica = self.replica()
        yield from self._guarded("daemon", outcomes, lambda: daemon.collect_process(
            self.job_intervals(), self.store_writes()))
        if replica is not None:
            yield from self._guarded("cluster", outcomes,
                                     lambda: cluster.collect(self.store, replica))
        if replica is None or replica["leader"]:
            # the fleet's state is the leader's to export: once, not once per replica
            yield from self._fleet(outcomes)
        success = gauge("lifecycled_exporter_collector_success")
        for name, ok in outcomes.items():
            success.add_metric([name], 1 if ok else 0)
        yield success

    @staticmethod
    def _guarded(name: str, outcomes: dict[str, bool],
                 families: Callable[[], Iterable[Metric]]) -> list[Metric]:
        try:
            found = list(families())
        except Exception as exc:  # a bug or a store failure: this collector's families only
            log.error("collector failed collector=%s error=%s: %s", name, type(exc).__name__,
                      exc)
            outcomes[name] = False
            return []
        outcomes[name] = True
        return found

    def _fleet(self, outcomes: dict[str, bool]) -> Iterator[Metric]:
        records: list[Any] = []

        def listed() -> list[Metric]:
            records.extend(self.store.list_models())
            return list(registry.collect(records))

        yield from self._guarded("registry", outcomes, listed)
        if not outcomes["registry"]:
            for name, _ in FLEET:  # nothing can be said of a fleet that cannot be listed
                outcomes[name] = False
            return
        live = {r.ref for r in records if r.status != Status.RETIRED}
        for name, collect in FLEET:
            yield from self._guarded(name, outcomes, functools.partial(collect, self, live))


FLEET: tuple[tuple[str, Callable[[LifecycleCollector, set[Any]], Iterable[Metric]]], ...] = (
    ("serving", lambda c, live: serving.collect(c.store, live)),
    ("hosts", lambda c, live: serving.collect_hosts(c.store)),
    ("quality", lambda c, live: quality.collect(c.store, live, c._quality)),
    ("checks", lambda c, live: checks.collect(c.store, live, c._evaluations)),
    ("drift", lambda c, live: c.drift.collect(live)),
    ("updates", lambda c, live: updates.collect(c.store, live)),
    ("comparisons", lambda c, live: updates.collect_comparisons(c.store)),
    ("webhooks", lambda c, live: webhook_metrics.collect(c.store, list(c.webhook_endpoints()))),
    ("retirement", lambda c, live: retirement.collect(c.store, live)),
    ("tasks", lambda c, live: daemon.collect(c.store)),
)
