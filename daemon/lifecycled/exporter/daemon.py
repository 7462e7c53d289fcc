"""The daemon itself: build info, source health, and each scheduled task's runs, failures,
duration, last success and interval (label ``task``: ``job`` is the scrape's own label)."""

from __future__ import annotations

import json
import platform
from collections.abc import Iterator
from functools import cache
from importlib import metadata

from prometheus_client.core import Metric

from lifecycled import __version__
from lifecycled.exporter.families import counter, gauge
from lifecycled.exporter.scrape import Scrape
from lifecycled.store.serving import job_runs, source_health, unmanaged_models
from lifecycled.store.traces import trace_states, watches


def collect_process(scrape: Scrape) -> Iterator[Metric]:
    """What every daemon exports of itself: version, store writability, task intervals."""
    build = gauge("lifecycled_build_info")
    build.add_metric([__version__, revision(), platform.python_version()], 1)
    yield build
    store_writes = scrape.writes
    if store_writes is not None:
        writable = gauge("lifecycled_state_store_writable")
        writable.add_metric([], 1 if store_writes.writable else 0)
        yield writable
        failures = counter("lifecycled_state_store_write_failures")
        failures.add_metric([], store_writes.failures)
        yield failures
    interval = gauge("lifecycled_task_interval_seconds")
    for job, seconds in sorted(scrape.intervals.items()):
        interval.add_metric([job], seconds)
    yield interval


@cache
def revision() -> str:
    """The commit lifecycled was installed from, as pip records it for an install from a
    version-control URL (PEP 610 direct_url.json); 'unknown' otherwise."""
    try:
        text = metadata.distribution("lifecycled").read_text("direct_url.json")
        commit = json.loads(text or "{}").get("vcs_info", {}).get("commit_id")
    except (metadata.PackageNotFoundError, ValueError, AttributeError):
        return "unknown"
    return commit if isinstance(commit, str) and commit else "unknown"


def collect(scrape: Scrape) -> Iterator[Metric]:
    """The fleet's view of its sources and tasks (from the store)."""
    store = scrape.store
    up = gauge("lifecycled_source_up")
    last = gauge("lifecycled_source_last_success_timestamp_seconds")
    for h in source_health(store):
        up.add_metric([h.source], 1 if h.up else 0)
        if h.last_success is not None:
            last.add_metric([h.source], h.last_success)
    job_ok = gauge("lifecycled_task_last_success_timestamp_seconds")
    duration = gauge("lifecycled_task_duration_seconds")
    runs = counter("lifecycled_task_runs")
    failures = counter("lifecycled_task_failures")
    for j in job_runs(store):
        if j.last_success is not None:
            job_ok.add_metric([j.job], j.last_success)
        if j.last_duration is not None:
            duration.add_metric([j.job], j.last_duration)
        runs.add_metric([j.job], j.runs)
        failures.add_metric([j.job], j.failures)
    unmanaged = gauge("lifecycled_unmanaged_model")
    for u in unmanaged_models(store):
        unmanaged.add_metric([u.endpoint, u.name, u.version, u.reason], 1)
    yield from (up, last, job_ok, duration, runs, failures, unmanaged)


def collect_traces(scrape: Scrape) -> Iterator[Metric]:
    """Each trace-reading endpoint's backlog and counts, and the models it traces."""
    store = scrape.store
    families = {name: (counter if kind == "counter" else gauge)(f"lifecycled_trace_{name}")
                for name, kind in (("backlog_files", "gauge"), ("backlog_bytes", "gauge"),
                                   ("files_read", "counter"), ("requests_decoded", "counter"),
                                   ("files_rejected", "counter"), ("problems", "counter"))}
    for state in trace_states(store):
        for name, value in (("backlog_files", state.backlog_files),
                            ("backlog_bytes", state.backlog_bytes),
                            ("files_read", state.files_total),
                            ("requests_decoded", state.requests_total),
                            ("files_rejected", state.rejected_total),
                            ("problems", state.problems_total)):
            families[name].add_metric([state.endpoint], value)
    watched = gauge("lifecycled_trace_watched")
    for watch in watches(store):
        watched.add_metric([watch.endpoint, watch.name], 1)
    yield from (*families.values(), watched)
