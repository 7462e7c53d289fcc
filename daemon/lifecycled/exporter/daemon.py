"""The daemon itself: build info, source health, and each scheduled task's runs, failures,
duration, last success and interval (label ``task``: ``job`` is the scrape's own label)."""

from __future__ import annotations

import json
import platform
from collections.abc import Iterator, Mapping
from functools import cache
from importlib import metadata

from prometheus_client.core import CounterMetricFamily, Metric

from lifecycled import __version__
from lifecycled.exporter.families import gauge
from lifecycled.store import Store, StoreWrites
from lifecycled.store.serving import job_runs, source_health, unmanaged_models


def collect_process(intervals: Mapping[str, float],
                    store_writes: StoreWrites | None = None) -> Iterator[Metric]:
    """What every daemon exports of itself: version, store writability, task intervals."""
    build = gauge("lifecycled_build_info",
                  "lifecycled version, the source revision it was installed from ('unknown' "
                  "when the installer did not record one) and the Python it runs on (value 1).",
                  ["version", "revision", "python"])
    build.add_metric([__version__, revision(), platform.python_version()], 1)
    yield build
    if store_writes is not None:
        writable = gauge("lifecycled_state_store_writable",
                         "0 after a failed write to the state store: for 2 minutes when the "
                         "database refused it (a full disk, a read-only file), until a write "
                         "succeeds when it was not reached; else 1.", [])
        writable.add_metric([], 1 if store_writes.writable else 0)
        yield writable
        failures = CounterMetricFamily("lifecycled_state_store_write_failures",
                                       "Writes to the state store that failed.", labels=[])
        failures.add_metric([], store_writes.failures)
        yield failures
    interval = gauge("lifecycled_task_interval_seconds",
                     "Configured interval of the task (alert when a success is 3 late).", ["task"])
    for job, seconds in sorted(intervals.items()):
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


def collect(store: Store) -> Iterator[Metric]:
    """The fleet's view of its sources and tasks (from the store)."""
    up = gauge("lifecycled_source_up", "1 when the source answered on its last attempt.",
               ["source"])
    last = gauge("lifecycled_source_last_success_timestamp_seconds",
                 "Unix time the source last answered.", ["source"])
    for h in source_health(store):
        up.add_metric([h.source], 1 if h.up else 0)
        if h.last_success is not None:
            last.add_metric([h.source], h.last_success)
    job_ok = gauge("lifecycled_task_last_success_timestamp_seconds",
                   "Unix time the scheduled task last finished without error.", ["task"])
    duration = gauge("lifecycled_task_duration_seconds", "Duration of the task's last run.", ["task"])
    runs = CounterMetricFamily("lifecycled_task_runs", "Runs of the scheduled task.", labels=["task"])
    failures = CounterMetricFamily("lifecycled_task_failures", "Runs of the task that raised.",
                                   labels=["task"])
    for j in job_runs(store):
        if j.last_success is not None:
            job_ok.add_metric([j.job], j.last_success)
        if j.last_duration is not None:
            duration.add_metric([j.job], j.last_duration)
        runs.add_metric([j.job], j.runs)
        failures.add_metric([j.job], j.failures)
    unmanaged = gauge("lifecycled_unmanaged_model",
                      "A version Triton serves under a name or version the registry cannot hold "
                      "(value 1): not discovered, collected or checked.",
                      ["endpoint", "model", "version", "reason"])
    for u in unmanaged_models(store):
        unmanaged.add_metric([u.endpoint, u.name, u.version, u.reason], 1)
    yield from (up, last, job_ok, duration, runs, failures, unmanaged)
