"""Several replicas: who this replica is, whether it leads, and the claims it holds and took over.

Fleet state (models, results, sources, tasks) is exported by the leader only, so a Prometheus
scraping every replica sees each fleet series once; these families are every replica's own."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric

from lifecycled.exporter.catalogue import REPLICA_COUNTERS
from lifecycled.exporter.families import counter, gauge
from lifecycled.exporter.scrape import Scrape
from lifecycled.store.cluster import claims, items_held


def collect(scrape: Scrape) -> Iterator[Metric]:
    store, state = scrape.store, scrape.replica
    if state is None:  # the only daemon: no replica to describe
        return
    info = gauge("lifecycled_replica_info")
    info.add_metric([state["replica"], state["holder"]], 1)
    leader = gauge("lifecycled_leader")
    leader.add_metric([], 1 if state["leader"] else 0)
    yield from (info, leader)
    if state["leader"] and state["epoch"] is not None:
        epoch = gauge("lifecycled_leader_epoch")
        epoch.add_metric([], state["epoch"])
        yield epoch
    held = gauge("lifecycled_claims_held")
    held.add_metric([], claims(store).get(state["holder"], 0))
    yield held
    work = state.get("work_taken_over", {})
    working = items_held(store, state["holder"])
    items = gauge("lifecycled_work_claims_held")
    taken = counter("lifecycled_work_claims_taken_over")
    for task in sorted(set(work) | set(working)):
        items.add_metric([task], working.get(task, 0))
        taken.add_metric([task], work.get(task, 0))
    yield from (items, taken)
    for name, key in REPLICA_COUNTERS:
        family = counter(name)
        family.add_metric([], state[key])
        yield family
