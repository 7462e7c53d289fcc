"""Update jobs: counts by state and the state of each version's latest job; each model's latest
champion/challenger comparison."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric

from lifecycled.exporter.families import gauge
from lifecycled.exporter.scrape import Scrape
from lifecycled.store.comparisons import STATES as COMPARISON_STATES
from lifecycled.store.comparisons import comparisons
from lifecycled.store.updates import STATES, count_by_state, latest_per_model


def collect(scrape: Scrape) -> Iterator[Metric]:
    store, live = scrape.store, scrape.live
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


def collect_comparisons(scrape: Scrape) -> Iterator[Metric]:
    """Each model's latest comparison: its state, both sides' counts and the tests' evidence."""
    state = gauge("lifecycled_comparison_state")
    requests = gauge("lifecycled_comparison_requests")
    failures = gauge("lifecycled_comparison_failures")
    evidence = gauge("lifecycled_comparison_evidence")
    threshold = gauge("lifecycled_comparison_evidence_threshold")
    latest = {c.name: c for c in comparisons(scrape.store)}  # oldest first: the newest wins
    for comparison in latest.values():
        for name in COMPARISON_STATES:
            state.add_metric([comparison.name, comparison.champion, comparison.challenger, name],
                             1 if name == comparison.state else 0)
        found = comparison.evidence
        for role, version in (("challenger", comparison.challenger),
                              ("champion", comparison.champion)):
            requests.add_metric([comparison.name, version, role],
                                float(found.get("requests", {}).get(role, 0.0)))
            failures.add_metric([comparison.name, version, role],
                                float(found.get("failures", {}).get(role, 0.0)))
        for test, value in sorted(found.get("e_values", {}).items()):
            evidence.add_metric([comparison.name, comparison.challenger, test], value)
        if "threshold" in found:
            threshold.add_metric([comparison.name, comparison.challenger], found["threshold"])
    yield from (state, requests, failures, evidence, threshold)
