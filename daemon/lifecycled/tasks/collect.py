"""Collect: serving numbers from two consecutive ``/metrics`` scrapes per endpoint (the previous
one is kept in the store), aggregated over the fleet, or from Prometheus; one snapshot per model
version and pass, carrying the latest quality result the quality task stored while it is fresh
(younger than two quality intervals). A source that cannot be read yields no numbers. The pass
runs in parts (``collect_parts``: groups of endpoints serving models in common), which replicas
share by claiming them."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from lifecycled.context import Context
from lifecycled.core.serving import RateProblem, ServingSample, aggregate, serving_sample
from lifecycled.domain import QUALITY_METRICS, SNAPSHOT_FIELDS, ModelRef, Status
from lifecycled.errors import InputError
from lifecycled.settings import TritonEndpoint
from lifecycled.sources.triton import (
    MetricsScrape,
    fetch_metrics,
    parse_memory_usage,
    scrape_from_json,
    scrape_to_json,
)
from lifecycled.store.results import latest_quality
from lifecycled.store.serving import (
    Snapshot,
    add_snapshot,
    last_scrapes,
    put_scrape,
    scrape_times,
    stored_values,
)
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


@dataclass(frozen=True)
class Part:
    """What one replica collects at once: endpoints that serve a model in common (each such
    model's samples from all of them are aggregated into its one snapshot), and the watched
    models whose snapshots it writes."""

    name: str
    endpoints: tuple[TritonEndpoint, ...]
    models: frozenset[ModelRef]
    # what a replica claims to collect the part: a group's endpoints one by one (so two replicas
    # that grouped them differently, one having read a newer scrape, never scrape one endpoint
    # in the same interval), else the part itself
    keys: tuple[str, ...]


def collect_parts(ctx: Context, watched: set[ModelRef],
                  previous: dict[str, MetricsScrape]) -> list[Part]:
    """The collect pass in parts. From Prometheus (one query for the fleet): one part. From
    Triton: the endpoints linked by the models their last scrapes had in common, one part per
    group, owning those models (a version can only be measured on an endpoint whose last scrape
    had it: a rate needs two scrapes); then one part for the watched models no endpoint had
    (their snapshots carry quality alone)."""
    endpoints = ctx.settings.sources.triton
    if ctx.settings.sources.prometheus is not None:
        return [Part("prometheus", tuple(endpoints), frozenset(watched), ("prometheus",))]
    root = {e.name: e.name for e in endpoints}

    def find(name: str) -> str:
        while root[name] != name:
            root[name] = root[root[name]]
            name = root[name]
        return name

    owner: dict[ModelRef, str] = {}
    for endpoint in endpoints:
        scrape = previous.get(endpoint.name)
        for name, version in scrape.models if scrape else ():
            ref = _ref(name, version)
            if ref is None or ref not in watched:
                continue
            first = owner.setdefault(ref, endpoint.name)
            root[find(endpoint.name)] = find(first)
    groups: dict[str, list[TritonEndpoint]] = {}
    for endpoint in endpoints:
        groups.setdefault(find(endpoint.name), []).append(endpoint)
    models: dict[str, set[ModelRef]] = {}
    for ref, name in owner.items():
        models.setdefault(find(name), set()).add(ref)
    parts = [Part("triton:" + ",".join(e.name for e in group), tuple(group),
                  frozenset(models.get(key, ())), tuple(f"triton:{e.name}" for e in group))
             for key, group in groups.items()]
    unserved = frozenset(watched - set(owner))
    return parts + ([Part("unserved", (), unserved, ("unserved",))] if unserved else [])


def run_collect(ctx: Context) -> CollectOutcome:
    """One collect pass: serving numbers from Prometheus when configured (else, or as a
    configured fallback, straight from Triton), plus the fresh quality results. Among
    replicas, each collects the parts it claims (``collect_parts``, ``Context.claimed``)."""
    report = CollectOutcome()
    now = ctx.clock()
    watched = {ref for ref, status in ctx.store.statuses().items() if status != Status.RETIRED}
    names = [e.name for e in ctx.settings.sources.triton]
    stored = last_scrapes(ctx.store, names)
    previous = {name: scrape_from_json(payload) for name, (_, payload) in stored.items()}
    read_at = {name: at for name, (at, _) in stored.items()}
    quality = _fresh_quality(ctx, watched, now)
    measured: dict[ModelRef, Snapshot] = {}
    parts = collect_parts(ctx, watched, previous)
    with ctx.claimed("collect", parts, hold=0.9 * ctx.settings.schedule.collect,
                     keys=lambda part: part.keys) as mine:
        for part in mine:
            _reload_changed(ctx, part, read_at, previous)
            measured.update(_collect_part(ctx, part, watched, previous, quality, report, now))
        # fresh breaches: the thresholds of what was just measured, not an evaluate interval
        # later
        report.evaluated = sorted(evaluate_versions(ctx, measured, now, measured)
                                  ) if measured else []
    return report


def _reload_changed(ctx: Context, part: Part, read_at: dict[str, float],
                    previous: dict[str, MetricsScrape]) -> None:
    """Another replica may have collected the part's endpoints since this pass read their last
    scrapes (``read_at``: when those were taken): rates are then taken from what it stored."""
    names = [e.name for e in part.endpoints]
    times = scrape_times(ctx.store, names)
    if any(times.get(name) != read_at.get(name) for name in names):
        for name, (at, payload) in last_scrapes(ctx.store, names).items():
            read_at[name] = at
            previous[name] = scrape_from_json(payload)


def _collect_part(ctx: Context, part: Part, watched: set[ModelRef],
                  previous: dict[str, MetricsScrape], quality: dict[ModelRef, dict[str, Any]],
                  report: CollectOutcome, now: float) -> dict[ModelRef, Snapshot]:
    """Measure the part, write its scrapes and its models' snapshots in one transaction; return
    the snapshots written (as they read back)."""
    serving: Serving | None = None
    scrapes: dict[str, MetricsScrape] = {}
    prometheus = ctx.settings.sources.prometheus
    if prometheus is not None:
        serving = _from_prometheus(ctx, set(part.models), report)
    if part.endpoints and serving is None and (prometheus is None or
                                               prometheus.fallback_to_triton):
        serving, scrapes = _from_triton(ctx, part, watched, previous, report, now)
    refs = (set(serving or {}) | set(quality)) & part.models
    written = {}
    with ctx.store.write() as conn:
        for name, scrape in scrapes.items():
            put_scrape(conn, name, now, scrape_to_json(scrape))
        for ref in sorted(refs):
            values, detail = (serving or {}).get(ref, ({}, {}))
            values, detail = dict(values), dict(detail)
            _add_quality(values, detail, quality.get(ref))
            snapshot_id = add_snapshot(conn, ref, now, values, detail)
            written[ref] = Snapshot(snapshot_id, ref, now, stored_values(values), detail)
            report.snapshots[str(ref)] = {**values, **detail}
    return written


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


def _from_triton(ctx: Context, part: Part, watched: set[ModelRef],
                 previous: dict[str, MetricsScrape], report: CollectOutcome, now: float
                 ) -> tuple[Serving, dict[str, MetricsScrape]]:
    samples: dict[ModelRef, dict[str, ServingSample]] = {}
    memory: dict[ModelRef, float] = {}
    scrapes: dict[str, MetricsScrape] = {}
    for endpoint in part.endpoints:
        with ctx.source(f"triton:{endpoint.name}") as call:
            scrape, mem = _scrape(ctx, endpoint, now)
        report.endpoints[endpoint.name] = call.error or "up"
        if call.failed:
            continue
        scrapes[endpoint.name] = scrape
        before_scrape = previous.get(endpoint.name)
        for (name, version), counters in scrape.models.items():
            ref = _ref(name, version)
            if ref is None or ref not in watched:
                continue
            before = before_scrape.models.get((name, version)) if before_scrape else None
            result = serving_sample(before, counters,
                                    now - before_scrape.at if before_scrape else 0.0)
            if isinstance(result, RateProblem):
                report.skipped[str(ref)] = f"{endpoint.name}: {result.reason}"
                continue
            if ref not in part.models:
                continue  # another part's (it is newly served here): collected there
            samples.setdefault(ref, {})[endpoint.name] = result
            if (name, version) in mem:
                memory[ref] = memory.get(ref, 0.0) + mem[(name, version)]
    serving = {ref: _snapshot_values(per_endpoint, memory.get(ref))
               for ref, per_endpoint in samples.items()}
    return serving, scrapes


def _snapshot_values(per_endpoint: dict[str, ServingSample] | None, memory: float | None
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
        judged_on = dict(quality.get("judged_on") or {})  # the breaches are judged on them
        if quality.get("accuracy_upper") is not None:
            judged_on["accuracy"] = quality["accuracy_upper"]
        if judged_on:
            detail["judged_on"] = judged_on
        if quality.get("estimated"):  # estimated before the labels (CBPE): said so onwards
            detail["quality_estimated"] = True
