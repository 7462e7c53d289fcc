"""Collect: serving numbers from two consecutive ``/metrics`` scrapes per endpoint (the previous
one is kept in the store), aggregated over the fleet, or from Prometheus; one snapshot per model
version and pass, carrying the latest quality result the quality task stored while it is fresh
(younger than two quality intervals). A source that cannot be read yields no numbers."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from lifecycled.context import Context
from lifecycled.core.serving import RateProblem, ServingSample, aggregate, serving_sample
from lifecycled.domain import QUALITY_METRICS, SNAPSHOT_FIELDS, ModelRef, Status
from lifecycled.errors import InputError
from lifecycled.sources.triton import (
    MetricsScrape,
    fetch_metrics,
    parse_memory_usage,
    scrape_from_json,
    scrape_to_json,
)
from lifecycled.store.results import latest_quality
from lifecycled.store.serving import add_snapshot, last_scrape, put_scrape
from lifecycled.tasks.evaluate import evaluate_versions

log = logging.getLogger(__name__)
Serving = dict[ModelRef, tuple[dict[str, float | None], dict[str, Any]]]


@dataclass
class CollectOutcome:
    endpoints: dict[str, str] = field(default_factory=dict)
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # model -> why no rate
    evaluated: list[str] = field(default_factory=list)  # production versions checked

    def to_json(self) -> dict[str, Any]:
        return {"endpoints": self.endpoints, "snapshots": self.snapshots, "skipped": self.skipped,
                "evaluated": self.evaluated}


def _scrape(ctx: Context, endpoint: Any, now: float
            ) -> tuple[MetricsScrape, dict[tuple[str, str], float]]:
    scrape = fetch_metrics(ctx.session, endpoint, now)
    with ctx.triton(endpoint) as client:
        memory = parse_memory_usage(client.statistics())
    return scrape, memory


def run_collect(ctx: Context) -> CollectOutcome:
    """One collect pass: serving numbers from Prometheus when configured (else, or as a
    configured fallback, straight from Triton), plus the fresh quality results."""
    report = CollectOutcome()
    now = ctx.clock()
    watched = {ref for ref, status in ctx.store.statuses().items() if status != Status.RETIRED}
    prometheus = ctx.settings.sources.prometheus
    serving: Serving | None = None
    scrapes: dict[str, MetricsScrape] = {}
    if prometheus is not None:
        serving = _from_prometheus(ctx, watched, report)
    if serving is None and (prometheus is None or prometheus.fallback_to_triton):
        serving, scrapes = _from_triton(ctx, watched, report, now)
    quality = _fresh_quality(ctx, watched, now)
    with ctx.store.write() as conn:
        for name, scrape in scrapes.items():
            put_scrape(conn, name, now, scrape_to_json(scrape))
        for ref in sorted(set(serving or {}) | set(quality)):
            values, detail = (serving or {}).get(ref, ({}, {}))
            values, detail = dict(values), dict(detail)
            _add_quality(values, detail, quality.get(ref))
            add_snapshot(conn, ref, now, values, detail)
            report.snapshots[str(ref)] = {**values, **detail}
    # fresh breaches: the thresholds of what was just measured, not an evaluate interval later
    report.evaluated = sorted(evaluate_versions(ctx, set(serving or {}) | set(quality), now))
    return report


def _ref(name: str, version: str) -> ModelRef | None:
    """The version's identity, or None for a name lifecycled cannot register (never watched)."""
    try:
        return ModelRef(name, version)
    except InputError:
        return None


def _from_prometheus(ctx: Context, watched: set[ModelRef], report: CollectOutcome
                     ) -> Serving | None:
    settings = ctx.settings.sources.prometheus
    assert settings is not None
    interval = ctx.settings.schedule.collect
    with ctx.source("prometheus") as call, ctx.prometheus() as source:
        found = source.serving(interval)
    report.endpoints["prometheus"] = call.error or "up"
    if call.failed:
        return None
    serving = {}
    for (name, version), quantities in found.items():
        ref = _ref(name, version)
        if ref is None or ref not in watched:
            continue
        requests_seen = quantities.pop("requests", None)
        values = {k: v for k, v in quantities.items() if k in SNAPSHOT_FIELDS}
        values["interval_seconds"] = interval
        detail: dict[str, Any] = {"source": "prometheus", "window_seconds": settings.window}
        if requests_seen is not None:
            detail["requests"] = requests_seen
        serving[ref] = (values, detail)
    return serving


def _from_triton(ctx: Context, watched: set[ModelRef], report: CollectOutcome, now: float
                 ) -> tuple[Serving, dict[str, MetricsScrape]]:
    samples: dict[ModelRef, dict[str, ServingSample]] = {}
    cpu: dict[ModelRef, list[float]] = {}
    memory: dict[ModelRef, float] = {}
    scrapes: dict[str, MetricsScrape] = {}
    for endpoint in ctx.settings.sources.triton:
        with ctx.source(f"triton:{endpoint.name}") as call:
            scrape, mem = _scrape(ctx, endpoint, now)
        report.endpoints[endpoint.name] = call.error or "up"
        if call.failed:
            continue
        scrapes[endpoint.name] = scrape
        stored = last_scrape(ctx.store, endpoint.name)
        previous = scrape_from_json(stored[1]) if stored else None
        for (name, version), counters in scrape.models.items():
            ref = _ref(name, version)
            if ref is None or ref not in watched:
                continue
            before = previous.models.get((name, version)) if previous else None
            result = serving_sample(before, counters, now - previous.at if previous else 0.0)
            if isinstance(result, RateProblem):
                report.skipped[str(ref)] = f"{endpoint.name}: {result.reason}"
                continue
            samples.setdefault(ref, {})[endpoint.name] = result
            if scrape.cpu_utilization is not None:
                cpu.setdefault(ref, []).append(scrape.cpu_utilization)
            if (name, version) in mem:
                memory[ref] = memory.get(ref, 0.0) + mem[(name, version)]
    serving = {ref: _snapshot_values(per_endpoint, cpu.get(ref), memory.get(ref))
               for ref, per_endpoint in samples.items()}
    return serving, scrapes


def _snapshot_values(per_endpoint: dict[str, ServingSample] | None, cpu: list[float] | None,
                     memory: float | None) -> tuple[dict[str, float | None], dict[str, Any]]:
    values: dict[str, float | None] = {}
    detail: dict[str, Any] = {}
    if per_endpoint:
        fleet = aggregate(per_endpoint)
        values.update({
            "interval_seconds": max(s.interval_seconds for s in per_endpoint.values()),
            "requests_per_second": fleet.requests_per_second,
            "inferences_per_second": fleet.inferences_per_second,
            "error_ratio": fleet.error_ratio,
            "latency_mean_seconds": fleet.latency_mean_seconds,
            "latency_p50_seconds": fleet.latency_seconds["p50"],
            "latency_p95_seconds": fleet.latency_seconds["p95"],
            "latency_p99_seconds": fleet.latency_seconds["p99"],
            "queue_mean_seconds": fleet.queue_mean_seconds,
            "pending_requests": fleet.pending_requests,
            "cpu_utilization_ratio": max(cpu) if cpu else None,
            "memory_bytes": memory,
        })
        detail.update({
            "endpoints": list(fleet.endpoints),
            "requests": sum(s.requests for s in per_endpoint.values()),
            "failures_per_second_by_reason": dict(fleet.failures_per_second_by_reason),
            "summary_latencies": fleet.summaries,
        })
    return values, detail


def _fresh_quality(ctx: Context, watched: set[ModelRef], now: float
                   ) -> dict[ModelRef, dict[str, Any]]:
    """The latest quality result of each watched version, unless the quality task has not
    renewed it for two of its intervals (then its source is down and the value is not current)."""
    oldest = now - 2 * ctx.settings.schedule.quality
    return {q.ref: q.result for q in latest_quality(ctx.store)
            if q.ref in watched and q.at >= oldest}


def _add_quality(values: dict[str, float | None], detail: dict[str, Any],
                 quality: dict[str, Any] | None) -> None:
    if quality:
        values.update({m.field: quality.get(m.name) for m in QUALITY_METRICS})
        detail["quality_samples"] = quality.get("samples")
        if quality.get("estimated"):  # estimated before the labels (CBPE): said so onwards
            detail["quality_estimated"] = True
