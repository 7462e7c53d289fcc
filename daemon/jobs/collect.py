"""Collect: serving numbers from two consecutive ``/metrics`` scrapes per endpoint (the previous
one is kept in the store), aggregated over the fleet, plus quality from labelled outcomes;
one snapshot per model version and pass. A source that cannot be read yields no numbers."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from daemon.core.serving import RateProblem, ServingSample, aggregate, serving_sample
from daemon.domain import ModelRef, Status
from daemon.errors import SourceError
from daemon.jobs.context import JobContext
from daemon.sources.triton import (
    MetricsScrape,
    TritonClient,
    fetch_metrics,
    parse_memory_usage,
    scrape_from_json,
    scrape_to_json,
)
from daemon.store.results import add_quality_result
from daemon.store.serving import add_snapshot, last_scrape, put_scrape, record_source

log = logging.getLogger(__name__)


@dataclass
class CollectReport:
    endpoints: dict[str, str] = field(default_factory=dict)
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # model -> why no rate
    quality_errors: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"endpoints": self.endpoints, "snapshots": self.snapshots,
                "skipped": self.skipped, "quality_errors": self.quality_errors}


def _scrape(ctx: JobContext, endpoint: Any, now: float
            ) -> tuple[MetricsScrape, dict[tuple[str, str], float]]:
    scrape = fetch_metrics(ctx.session, endpoint, now)
    with TritonClient(endpoint) as client:
        memory = parse_memory_usage(client.statistics())
    return scrape, memory


def run_collect(ctx: JobContext) -> CollectReport:
    """One collect pass."""
    report = CollectReport()
    now = ctx.clock()
    statuses = ctx.store.statuses()
    watched = {ref for ref, status in statuses.items() if status != Status.RETIRED}
    samples: dict[ModelRef, dict[str, ServingSample]] = {}
    cpu: dict[ModelRef, list[float]] = {}
    memory: dict[ModelRef, float] = {}
    scrapes: dict[str, MetricsScrape] = {}
    for endpoint in ctx.settings.sources.triton:
        try:
            scrape, mem = _scrape(ctx, endpoint, now)
        except SourceError as exc:
            log.warning("triton endpoint down endpoint=%s error=%s", endpoint.name, exc)
            report.endpoints[endpoint.name] = str(exc)
            with ctx.store.write() as conn:
                record_source(conn, f"triton:{endpoint.name}", ok=False, now=now, error=str(exc))
            continue
        report.endpoints[endpoint.name] = "up"
        scrapes[endpoint.name] = scrape
        stored = last_scrape(ctx.store, endpoint.name)
        previous = scrape_from_json(stored[1]) if stored else None
        for (name, version), counters in scrape.models.items():
            ref = ModelRef(name, version)
            if ref not in watched:
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
    quality = _quality(ctx, statuses, report)
    with ctx.store.write() as conn:
        for name, scrape in scrapes.items():
            put_scrape(conn, name, now, scrape_to_json(scrape))
            record_source(conn, f"triton:{name}", ok=True, now=now)
        for ref in sorted(set(samples) | set(quality)):
            values, detail = _snapshot_values(samples.get(ref), cpu.get(ref), memory.get(ref),
                                              quality.get(ref))
            add_snapshot(conn, ref, now, values, detail)
            report.snapshots[str(ref)] = {**values, **detail}
    return report


def _snapshot_values(per_endpoint: dict[str, ServingSample] | None, cpu: list[float] | None,
                     memory: float | None, quality: dict[str, Any] | None
                     ) -> tuple[dict[str, float | None], dict[str, Any]]:
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
    if quality:
        values.update({"accuracy": quality.get("accuracy"),
                       "precision_ratio": quality.get("precision"),
                       "recall_ratio": quality.get("recall"), "f1_ratio": quality.get("f1"),
                       "roc_auc": quality.get("roc_auc")})
        detail["quality_samples"] = quality.get("samples")
    return values, detail


def _quality(ctx: JobContext, statuses: dict[ModelRef, Status], report: CollectReport
             ) -> dict[ModelRef, dict[str, Any]]:
    """Quality from each configured model's outcome files (every watched version of it)."""
    from daemon.jobs.quality import OutcomeColumns, check_quality

    found: dict[ModelRef, dict[str, Any]] = {}
    now = ctx.clock()
    for ref, status in sorted(statuses.items()):
        if status == Status.RETIRED or ref.name not in ctx.settings.models:
            continue
        settings = ctx.settings.models[ref.name].quality
        if not settings.outcomes:
            continue
        if "{version}" not in settings.outcomes and status != Status.PRODUCTION:
            continue  # one outcome file per model describes its production version
        pattern = settings.outcomes.replace("{version}", ref.version)
        columns = OutcomeColumns(settings.prediction_column, settings.label_column,
                                 settings.score_column, settings.timestamp_column)
        source = f"outcomes:{ref.name}"
        try:
            result = check_quality(pattern, columns)
        except SourceError as exc:
            report.quality_errors[str(ref)] = str(exc)
            log.warning("quality source failed model=%s error=%s", ref, exc)
            with ctx.store.write() as conn:
                record_source(conn, source, ok=False, now=now, error=str(exc))
            continue
        with ctx.store.write() as conn:
            record_source(conn, source, ok=True, now=now)
        add_quality_result(ctx.store, ref, result, now=now)
        found[ref] = result
    return found
