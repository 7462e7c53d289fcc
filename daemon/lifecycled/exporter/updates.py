"""Update jobs: counts by state and the state of each version's latest job."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric

from lifecycled.domain import ModelRef
from lifecycled.exporter.families import gauge
from lifecycled.store import Store
from lifecycled.store.updates import STATES, count_by_state, latest_per_model


def collect(store: Store, live: set[ModelRef]) -> Iterator[Metric]:
    jobs = gauge("lifecycled_update_jobs")
    counts = count_by_state(store)
    for state in STATES:
        jobs.add_metric([state], counts.get(state, 0))
    job_state = gauge("lifecycled_model_update_job_state")
    for job in latest_per_model(store):
        if job.ref in live:
            for state in STATES:
                job_state.add_metric([job.ref.name, job.ref.version, state],
                                     1 if state == job.state else 0)
    yield from (jobs, job_state)
