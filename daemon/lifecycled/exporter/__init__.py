"""The Prometheus exporter: one collector per subsystem (as node_exporter lays out one collector
per file), composed here. It reads stored state only (a scrape never calls Triton, Prometheus or
a file) and yields fresh metric families. The names are a contract: catalogue.py declares them
(docs/reference/metrics.md is generated from it)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal, NamedTuple

from prometheus_client.core import Metric

from lifecycled.exporter import (
    checks,
    cluster,
    daemon,
    drift,
    quality,
    registry,
    retirement,
    serving,
    updates,
    webhooks,
)
from lifecycled.exporter.families import gauge
from lifecycled.exporter.scrape import Decodings, Scrape
from lifecycled.store import Store, StoreWrites

log = logging.getLogger(__name__)


class Collector(NamedTuple):
    name: str  # the ``collector`` label of lifecycled_exporter_collector_success
    collect: Callable[[Scrape], Iterable[Metric]]
    # "own": every daemon's; "replica": among several replicas; "fleet": the leader's only
    scope: Literal["own", "replica", "fleet"]


# every collector, in the order a scrape writes them
COLLECTORS: tuple[Collector, ...] = (
    Collector("daemon", daemon.collect_process, "own"),
    Collector("cluster", cluster.collect, "replica"),
    # the fleet's state is the leader's to export: once, not once per replica
    Collector("registry", registry.collect, "fleet"),
    Collector("serving", serving.collect, "fleet"),
    Collector("hosts", serving.collect_hosts, "fleet"),
    Collector("quality", quality.collect, "fleet"),
    Collector("checks", checks.collect, "fleet"),
    Collector("drift", drift.collect, "fleet"),
    Collector("updates", updates.collect, "fleet"),
    Collector("comparisons", updates.collect_comparisons, "fleet"),
    Collector("webhooks", webhooks.collect, "fleet"),
    Collector("retirement", retirement.collect, "fleet"),
    Collector("tasks", daemon.collect, "fleet"),
    Collector("traces", daemon.collect_traces, "fleet"),
)


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
        self.decodings = Decodings()

    def describe(self) -> Iterable[Metric]:
        return []  # nothing is read at registration time

    def collect(self) -> Iterator[Metric]:
        """Every collector's families; one that fails costs only its own (node_exporter's
        pattern), logged and exported as ``lifecycled_exporter_collector_success 0``."""
        scrape = Scrape(self.store, self.decodings, self.job_intervals(), self.store_writes(),
                        self.replica(), list(self.webhook_endpoints()))
        scopes = {"own", *(() if scrape.replica is None else ("replica",)),
                  *(("fleet",) if scrape.replica is None or scrape.replica["leader"] else ())}
        success = gauge("lifecycled_exporter_collector_success")
        for collector in COLLECTORS:
            if collector.scope in scopes:
                families, ok = self._guarded(collector, scrape)
                yield from families
                success.add_metric([collector.name], 1 if ok else 0)
        yield success

    @staticmethod
    def _guarded(collector: Collector, scrape: Scrape) -> tuple[list[Metric], bool]:
        try:
            return list(collector.collect(scrape)), True
        except Exception as exc:  # a bug or a store failure: this collector's families only
            log.error("collector failed collector=%s error=%s: %s", collector.name,
                      type(exc).__name__, exc)
            return [], False
