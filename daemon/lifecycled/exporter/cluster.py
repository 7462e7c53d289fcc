"""Several replicas: who this replica is, whether it leads, and the claims it holds and took over.

Fleet state (models, results, sources, tasks) is exported by the leader only, so a Prometheus
scraping every replica sees each fleet series once; these families are every replica's own."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client.core import CounterMetricFamily, Metric

from lifecycled.exporter.families import gauge
from lifecycled.store import Store
from lifecycled.store.cluster import claims, items_held


def collect(store: Store, state: Mapping[str, Any]) -> Iterator[Metric]:
    info = gauge("lifecycled_replica_info",
                 "This replica (value 1): its configured name and the holder name it takes "
                 "the lease and claims under.", ["replica", "holder"])
    info.add_metric([state["replica"], state["holder"]], 1)
    leader = gauge("lifecycled_leader",
                   "1 on the replica holding the leader lease (it runs the fleet-wide tasks and "
                   "exports the fleet's state), 0 on a standby.", [])
    leader.add_metric([], 1 if state["leader"] else 0)
    yield from (info, leader)
    if state["leader"] and state["epoch"] is not None:
        epoch = gauge("lifecycled_leader_epoch",
                      "Fencing epoch of the lease this replica holds (it grows at each change "
                      "of leader).", [])
        epoch.add_metric([], state["epoch"])
        yield epoch
    held = gauge("lifecycled_claims_held",
                 "Outbox deliveries this replica has claimed and not answered yet.", [])
    held.add_metric([], claims(store).get(state["holder"], 0))
    yield held
    work = state.get("work_taken_over", {})
    working = items_held(store, state["holder"])
    items = gauge("lifecycled_work_claims_held",
                  "Parts of the per-model work (collect, evaluate, drift, quality) this replica "
                  "has claimed and is working on now.", ["task"])
    taken = CounterMetricFamily("lifecycled_work_claims_taken_over",
                                "Parts of the per-model work this replica took over from a "
                                "replica whose claim ran out.", labels=["task"])
    for task in sorted(set(work) | set(working)):
        items.add_metric([task], working.get(task, 0))
        taken.add_metric([task], work.get(task, 0))
    yield from (items, taken)
    for name, key, doc in (
            ("lifecycled_leader_acquisitions", "acquisitions",
             "Times this replica became the leader."),
            ("lifecycled_leader_takeovers", "takeovers",
             "Times this replica became the leader after the previous leader's lease ran out "
             "(it had died or lost the database)."),
            ("lifecycled_claims_taken_over", "claims_taken_over",
             "Outbox deliveries this replica took over from a replica whose claim ran out.")):
        counter = CounterMetricFamily(name, doc, labels=[])
        counter.add_metric([], state[key])
        yield counter
