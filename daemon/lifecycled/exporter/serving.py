"""Serving: each version's last seen state per Triton endpoint and its latest snapshot's
quantities (``domain.SERVING_QUANTITIES``)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric

from lifecycled.domain import SERVING_QUANTITIES
from lifecycled.exporter.families import gauge
from lifecycled.exporter.scrape import Scrape
from lifecycled.store.serving import (
    host_gauges,
    latest_snapshots,
    serving_states,
    source_health,
)

SERVING_STATES = ("ready", "loading", "unloading", "unavailable", "missing", "unknown")


def collect_hosts(scrape: Scrape) -> Iterator[Metric]:
    """Host-wide gauges of each Triton endpoint (not a model's: one host serves many), from its
    last scrape while the endpoint answers; absent while it is down (not its last value)."""
    store = scrape.store
    up = {h.source: h.up for h in source_health(store)}
    cpu = gauge("lifecycled_triton_cpu_utilization_ratio")
    memory = gauge("lifecycled_triton_memory_used_bytes")
    for endpoint, (_, used_cpu, used_memory) in sorted(host_gauges(store).items()):
        if not up.get(f"triton:{endpoint}", False):
            continue
        if used_cpu is not None:
            cpu.add_metric([endpoint], used_cpu)
        if used_memory is not None:
            memory.add_metric([endpoint], used_memory)
    yield from (cpu, memory)


def collect(scrape: Scrape) -> Iterator[Metric]:
    store, live = scrape.store, scrape.live
    state = gauge("lifecycled_model_serving_state")
    retired_serving = gauge("lifecycled_model_retired_but_serving")
    for seen in serving_states(store):
        if seen.ref in live:
            for name in SERVING_STATES:
                state.add({"model": seen.ref.name, "version": seen.ref.version,
                           "endpoint": seen.endpoint, "state": name},
                          1 if name == seen.state else 0)
        elif seen.state in ("ready", "loading"):  # retired, yet Triton still serves it
            retired_serving.add({"model": seen.ref.name, "version": seen.ref.version,
                                 "endpoint": seen.endpoint}, 1)
    yield state
    yield retired_serving
    families = {q.field: gauge(q.metric) for q in SERVING_QUANTITIES}
    taken = gauge("lifecycled_model_snapshot_timestamp_seconds")
    for ref, snap in sorted(latest_snapshots(store).items()):
        if ref not in live:
            continue
        mv = [ref.name, ref.version]
        taken.add_metric(mv, snap.at)
        for field, family in families.items():
            value = snap.values.get(field)
            if value is not None:
                family.add_metric(mv, value)
    yield from families.values()
    yield taken
