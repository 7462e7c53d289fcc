"""Collect: serving numbers from two consecutive ``/metrics`` scrapes per endpoint (the previous
one is kept in the store), aggregated over the fleet, plus quality from labelled outcomes;
one snapshot per model version and pass. A source that cannot be read yields no numbers."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lifecycled.core.serving import RateProblem, ServingSample, aggregate, serving_sample
from lifecycled.domain import ModelRef, Status
from lifecycled.errors import InputError, SourceError
from lifecycled.jobs.context import JobContext
from lifecycled.sources.triton import (
    MetricsScrape,
    TritonClient,
    fetch_metrics,
    parse_memory_usage,
    scrape_from_json,
    scrape_to_json,
)
from lifecycled.store.results import add_quality_result
from lifecycled.store.serving import (
    SNAPSHOT_FIELDS,
    add_snapshot,
    last_scrape,
    put_scrape,
    record_source,
)

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
    """One collect pass: serving numbers from Prometheus when configured (else, or as a
    configured fallback, straight from Triton), quality from outcomes or PromQL."""
    report = CollectReport()
    now = ctx.clock()
    statuses = ctx.store.statuses()
    watched = {ref for ref, status in statuses.items() if status != Status.RETIRED}
    prometheus = ctx.settings.sources.prometheus
    serving: dict[ModelRef, tuple[dict[str, float | None], dict[str, Any]]] | None = None
    scrapes: dict[str, MetricsScrape] = {}
    if prometheus is not None:
        serving = _from_prometheus(ctx, watched, report, now)
    if serving is None and (prometheus is None or prometheus.fallback_to_triton):
        serving, scrapes = _from_triton(ctx, watched, report, now)
    quality = _quality(ctx, statuses, report)
    with ctx.store.write() as conn:
        for name, scrape in scrapes.items():
            put_scrape(conn, name, now, scrape_to_json(scrape))
            record_source(conn, f"triton:{name}", ok=True, now=now)
        for ref in sorted(set(serving or {}) | set(quality)):
            values, detail = (serving or {}).get(ref, ({}, {}))
            values, detail = dict(values), dict(detail)
            _add_quality(values, detail, quality.get(ref))
            add_snapshot(conn, ref, now, values, detail)
            report.snapshots[str(ref)] = {**values, **detail}
    return report


def _from_prometheus(ctx: JobContext, watched: set[ModelRef], report: CollectReport, now: float
                     ) -> dict[ModelRef, tuple[dict[str, float | None], dict[str, Any]]] | None:
    from lifecycled.sources.prometheus import PrometheusSource

    settings = ctx.settings.sources.prometheus
    assert settings is not None
    interval = ctx.settings.schedule.collect
    try:
        source = PrometheusSource(settings)
        try:
            found = source.serving(interval)
        finally:
            source.close()
    except SourceError as exc:
        report.endpoints["prometheus"] = ctx.source_down("prometheus", exc, now)
        return None
    report.endpoints["prometheus"] = "up"
    with ctx.store.write() as conn:
        record_source(conn, "prometheus", ok=True, now=now)
    serving = {}
    for (name, version), quantities in found.items():
        try:
            ref = ModelRef(name, version)
        except InputError:
            continue
        if ref not in watched:
            continue
        requests_seen = quantities.pop("requests", None)
        values = {k: v for k, v in quantities.items() if k in SNAPSHOT_FIELDS}
        values["interval_seconds"] = interval
        detail: dict[str, Any] = {"source": "prometheus", "window_seconds": settings.window}
        if requests_seen is not None:
            detail["requests"] = requests_seen
        serving[ref] = (values, detail)
    return serving


def _from_triton(ctx: JobContext, watched: set[ModelRef], report: CollectReport, now: float
                 ) -> tuple[dict[ModelRef, tuple[dict[str, float | None], dict[str, Any]]],
                            dict[str, MetricsScrape]]:
    samples: dict[ModelRef, dict[str, ServingSample]] = {}
    cpu: dict[ModelRef, list[float]] = {}
    memory: dict[ModelRef, float] = {}
    scrapes: dict[str, MetricsScrape] = {}
    for endpoint in ctx.settings.sources.triton:
        try:
            scrape, mem = _scrape(ctx, endpoint, now)
        except SourceError as exc:
            report.endpoints[endpoint.name] = ctx.source_down(f"triton:{endpoint.name}", exc, now)
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


def _add_quality(values: dict[str, float | None], detail: dict[str, Any],
                 quality: dict[str, Any] | None) -> None:
    if quality:
        values.update({"accuracy": quality.get("accuracy"),
                       "precision_ratio": quality.get("precision"),
                       "recall_ratio": quality.get("recall"), "f1_ratio": quality.get("f1"),
                       "roc_auc": quality.get("roc_auc")})
        detail["quality_samples"] = quality.get("samples")


PROMQL_QUALITY = ("accuracy", "precision", "recall", "f1", "roc_auc")


def _quality_from_promql(ctx: JobContext, ref: ModelRef, queries: Mapping[str, str],
                         report: CollectReport, now: float) -> dict[str, Any] | None:
    """Quality metrics from the PromQL the user wrote for the model ({model}, {version})."""
    from lifecycled.sources.prometheus import PrometheusSource

    settings = ctx.settings.sources.prometheus
    if settings is None:
        report.quality_errors[str(ref)] = "quality.promql needs sources.prometheus"
        return None
    result: dict[str, Any] = {"samples": 0, "source": "promql"}
    try:
        source = PrometheusSource(settings)
        try:
            for metric in PROMQL_QUALITY:
                if metric in queries:
                    expr = queries[metric].replace("{model}", ref.name).replace(
                        "{version}", ref.version)
                    result[metric] = source.scalar(expr)
        finally:
            source.close()
    except SourceError as exc:
        report.quality_errors[str(ref)] = ctx.source_down("prometheus", exc, now)
        return None
    add_quality_result(ctx.store, ref, result, now=now)
    return result


def _quality(ctx: JobContext, statuses: dict[ModelRef, Status], report: CollectReport
             ) -> dict[ModelRef, dict[str, Any]]:
    """Quality from each configured model's outcome files (every watched version of it)."""
    from lifecycled.jobs.quality import OutcomeColumns, check_quality

    found: dict[ModelRef, dict[str, Any]] = {}
    now = ctx.clock()
    for ref, status in sorted(statuses.items()):
        if status == Status.RETIRED or ref.name not in ctx.settings.models:
            continue
        settings = ctx.settings.models[ref.name].quality
        if not settings.outcomes and settings.promql:
            if status == Status.PRODUCTION or any("{version}" in q for q in
                                                  settings.promql.values()):
                result = _quality_from_promql(ctx, ref, dict(settings.promql.items()), report, now)
                if result is not None:
                    found[ref] = result
            continue
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
            report.quality_errors[str(ref)] = ctx.source_down(source, exc, now)
            continue
        with ctx.store.write() as conn:
            record_source(conn, source, ok=True, now=now)
        add_quality_result(ctx.store, ref, result, now=now)
        found[ref] = result
    return found
