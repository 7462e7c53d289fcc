"""The Prometheus collector: reads stored state only (a scrape never calls Triton, Prometheus or a
file) and yields fresh metric families. The names are a contract (README "Metrics")."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.samples import Sample

from lifecycled import __version__
from lifecycled.core.thresholds import CHECKS, Level
from lifecycled.domain import ModelRef, Status
from lifecycled.store import Store
from lifecycled.store.results import latest_drift, latest_evaluation, latest_quality
from lifecycled.store.serving import job_runs, latest_snapshots, serving_states, source_health

SEVERITIES = ("low", "medium", "high", "critical")  # core.drift.Severity labels, without scipy
SERVING_STATES = ("ready", "loading", "unloading", "unavailable", "missing", "unknown")
MV = ["model", "version"]

# snapshot field -> (metric name, help)
SERVING = {
    "requests_per_second": ("lifecycled_model_throughput_requests_per_second",
                            "Requests per second over the last collect interval (fleet sum)."),
    "inferences_per_second": ("lifecycled_model_throughput_inferences_per_second",
                              "Inferences per second (a batch of n counts n) over the last interval."),
    "error_ratio": ("lifecycled_model_error_ratio",
                    "Failed requests over all requests in the last interval (0-1)."),
    "latency_mean_seconds": ("lifecycled_model_latency_mean_seconds",
                             "Mean latency of successful requests in the last interval."),
    "latency_p50_seconds": ("lifecycled_model_latency_p50_seconds",
                            "Median request latency from Triton's summaries (worst endpoint)."),
    "latency_p95_seconds": ("lifecycled_model_latency_p95_seconds",
                            "95th percentile request latency from Triton's summaries (worst endpoint)."),
    "latency_p99_seconds": ("lifecycled_model_latency_p99_seconds",
                            "99th percentile request latency from Triton's summaries (worst endpoint)."),
    "memory_bytes": ("lifecycled_model_memory_bytes",
                     "Model memory from Triton's statistics extension, where reported."),
    "cpu_utilization_ratio": ("lifecycled_model_cpu_utilization_ratio",
                              "CPU utilisation (0-1) of the Triton hosts serving the model (worst)."),
}
QUALITY = {
    "accuracy": ("lifecycled_model_accuracy_ratio", "Accuracy from labelled outcomes (0-1)."),
    "precision": ("lifecycled_model_precision_ratio", "Precision from labelled outcomes (0-1)."),
    "recall": ("lifecycled_model_recall_ratio", "Recall from labelled outcomes (0-1)."),
    "f1": ("lifecycled_model_f1_ratio", "F1 score from labelled outcomes (0-1)."),
    "roc_auc": ("lifecycled_model_roc_auc_ratio", "ROC AUC from labelled outcomes (0-1)."),
}


class _Gauge(GaugeMetricFamily):
    """A gauge family whose ``add_metric`` skips the generic path (150k series per scrape at
    1,000 models): it builds the Sample tuple directly."""

    def add_metric(self, labels: Any, value: float, timestamp: Any = None) -> None:
        self.add(dict(zip(self._labelnames, labels)), value)  # noqa: B905 - lengths match

    def add(self, labels: dict[str, str], value: float) -> None:
        """Add a sample from a ready label mapping (the fastest path)."""
        self.samples.append(_new(Sample, (self.name, labels, value, None, None, None)))


_new = tuple.__new__


def _gauge(name: str, doc: str, labels: list[str]) -> _Gauge:
    return _Gauge(name, doc, labels=labels)


class LifecycleCollector:
    """A prometheus_client collector over the store."""

    def __init__(self, store: Store,
                 webhook_endpoints: Callable[[], Iterable[str]] = lambda: (),
                 job_intervals: Callable[[], dict[str, float]] = dict) -> None:
        self.store = store
        self.webhook_endpoints = webhook_endpoints
        self.job_intervals = job_intervals
        # decoded results by row id (rows never change): a scrape decodes only new results
        self._decoded: dict[str, dict[int, dict[str, Any]]] = {
            "drift": {}, "quality": {}, "evaluation": {}}
        # per-feature drift samples by (family, drift row id): most of a scrape's series, built
        # once per stored result instead of once per scrape
        self._feature_samples: dict[tuple[str, int], list[Sample]] = {}

    def describe(self) -> Iterable[Metric]:
        return []  # nothing is read at registration time

    def collect(self) -> Iterator[Metric]:
        records = self.store.list_models()
        live = {r.ref for r in records if r.status != Status.RETIRED}
        yield from self._registry(records)
        yield from self._serving(live)
        yield from self._checks(live)
        yield from self._drift(live)
        yield from self._actions(live)
        yield from self._self()

    # -- registry -----------------------------------------------------------------------------

    def _registry(self, records: list[Any]) -> Iterator[Metric]:
        info = _gauge("lifecycled_model_info", "Model version metadata (value 1).",
                      [*MV, "owner_team", "business_domain", "model_type", "framework"])
        status = _gauge("lifecycled_model_status",
                        "1 for the model version's current lifecycle status, 0 for the others.",
                        [*MV, "status"])
        changed = _gauge("lifecycled_model_status_change_timestamp_seconds",
                         "Unix time of the last status change.", MV)
        registered = _gauge("lifecycled_model_registered_timestamp_seconds",
                            "Unix time the model version was registered.", MV)
        for r in records:
            mv = [r.ref.name, r.ref.version]
            spec = r.spec
            info.add_metric([*mv, spec.owner_team, spec.business_domain, spec.model_type,
                             spec.framework], 1)
            for s in Status:
                status.add({"model": mv[0], "version": mv[1], "status": s.value},
                           1 if s == r.status else 0)
            changed.add_metric(mv, r.status_changed_at)
            registered.add_metric(mv, r.registered_at)
        yield from (info, status, changed, registered)

    # -- serving and quality ------------------------------------------------------------------

    def _serving(self, live: set[ModelRef]) -> Iterator[Metric]:
        state = _gauge("lifecycled_model_serving_state",
                       "1 for the model version's last seen state on a Triton endpoint.",
                       [*MV, "endpoint", "state"])
        for seen in serving_states(self.store):
            if seen.ref in live:
                for name in SERVING_STATES:
                    state.add({"model": seen.ref.name, "version": seen.ref.version,
                               "endpoint": seen.endpoint, "state": name},
                              1 if name == seen.state else 0)
        yield state
        families = {f: _gauge(n, d, MV) for f, (n, d) in SERVING.items()}
        taken = _gauge("lifecycled_model_snapshot_timestamp_seconds",
                       "Unix time of the latest serving snapshot.", MV)
        for ref, snap in sorted(latest_snapshots(self.store).items()):
            if ref not in live:
                continue
            mv = [ref.name, ref.version]
            taken.add_metric(mv, snap.at)
            for field, family in families.items():
                value = snap.values.get(field)
                if value is not None:
                    family.add_metric(mv, value)
        yield from families.values()
        yield taken
        quality = {f: _gauge(n, d, MV) for f, (n, d) in QUALITY.items()}
        concept = _gauge("lifecycled_model_concept_drift_severity",
                         "1 for the concept-drift severity of the latest labelled outcomes.",
                         [*MV, "severity"])
        for stored in latest_quality(self.store, cache=self._decoded["quality"]):
            if stored.ref not in live:
                continue
            mv = [stored.ref.name, stored.ref.version]
            for field, family in quality.items():
                if stored.result.get(field) is not None:
                    family.add_metric(mv, stored.result[field])
            severity = (stored.result.get("concept") or {}).get("severity")
            if severity:
                for level in SEVERITIES:
                    concept.add_metric([*mv, level], 1 if level == severity else 0)
        yield from quality.values()
        yield concept

    # -- checks -------------------------------------------------------------------------------

    def _checks(self, live: set[ModelRef]) -> Iterator[Metric]:
        breached = _gauge("lifecycled_model_threshold_breached",
                          "1 when the latest evaluation breaches the threshold, 0 when it passes; "
                          "absent when the value is unknown.", [*MV, "threshold"])
        score = _gauge("lifecycled_model_performance_score",
                       "Performance score 0-100 of the latest evaluation.", MV)
        level = _gauge("lifecycled_model_performance_level",
                       "1 for the performance level of the latest evaluation.", [*MV, "level"])
        for stored in latest_evaluation(self.store, cache=self._decoded["evaluation"]):
            if stored.ref not in live:
                continue
            mv = [stored.ref.name, stored.ref.version]
            hit = {b["threshold"] for b in stored.result["breaches"]}
            for key in CHECKS:
                if key in stored.result["checked"]:
                    breached.add({"model": mv[0], "version": mv[1], "threshold": key},
                                 1 if key in hit else 0)
            if stored.result.get("score") is not None:
                score.add_metric(mv, stored.result["score"])
            for lv in Level:
                level.add({"model": mv[0], "version": mv[1], "level": lv.value},
                          1 if lv.value == stored.result["level"] else 0)
        yield from (breached, score, level)

    # -- drift --------------------------------------------------------------------------------

    def _drift(self, live: set[ModelRef]) -> Iterator[Metric]:
        """Each family is yielded as soon as it is built, so a scrape holds one at a time."""
        results = [r for r in latest_drift(self.store, cache=self._decoded["drift"])
                   if r.ref in live]
        checked = _gauge("lifecycled_model_drift_check_timestamp_seconds",
                         "Unix time of the latest drift check.", MV)
        severity = _gauge("lifecycled_model_drift_severity",
                          "1 for the model-level data-drift severity of the latest check.",
                          [*MV, "severity"])
        share = _gauge("lifecycled_model_drifted_features_ratio",
                       "Share of judged features at or above the alert severity (0-1).", MV)
        for stored in results:
            mv = [stored.ref.name, stored.ref.version]
            checked.add_metric(mv, stored.at)
            for level in SEVERITIES:
                severity.add_metric([*mv, level], 1 if level == stored.result["severity"] else 0)
            if stored.result.get("drifted_share") is not None:
                share.add_metric(mv, stored.result["drifted_share"])
        yield from (checked, severity, share)

        cached, kept = self._feature_samples, {}

        def per_feature(name: str, doc: str, extra: list[str],
                        add: Callable[[_Gauge, dict[str, str], dict[str, Any]], None]) -> Metric:
            family = _gauge(name, doc, [*MV, "feature", *extra])
            for stored in results:
                key = (name, stored.row_id)
                samples = cached.get(key)
                if samples is None:
                    part = _gauge(name, doc, [*MV, "feature", *extra])
                    model, version = stored.ref.name, stored.ref.version
                    for f in stored.result["features"]:
                        add(part, {"model": model, "version": version, "feature": f["feature"]}, f)
                    samples = part.samples
                kept[key] = samples
                family.samples.extend(samples)
            return family

        def unjudged(family: _Gauge, labels: dict[str, str], f: dict[str, Any]) -> None:
            if not f["judged"]:
                family.add({**labels, "reason": f["reason"]}, 1)

        def score(family: _Gauge, labels: dict[str, str], f: dict[str, Any]) -> None:
            if f["judged"]:
                family.add(labels, f["score"])

        def statistic(family: _Gauge, labels: dict[str, str], f: dict[str, Any]) -> None:
            if f["judged"]:
                numeric = f["kind"] == "numeric"
                family.add({**labels, "test": "ks" if numeric else "chi2"},
                           f["statistic"] if numeric else f["chi2"])
                family.add({**labels, "test": "js"}, f["js"])
                labels["test"] = "psi"  # the last use of this mapping: no copy needed
                family.add(labels, f["psi"])

        def p_value(family: _Gauge, labels: dict[str, str], f: dict[str, Any]) -> None:
            if f["judged"]:
                family.add({**labels, "test": "ks" if f["kind"] == "numeric" else "chi2"},
                           f["p_value"])

        yield per_feature("lifecycled_model_feature_unjudged",
                          "1 for a feature that could not be judged, labelled with the reason.",
                          ["reason"], unjudged)
        yield per_feature("lifecycled_model_drift_score",
                          "Composite drift score of a feature (0.4 D + 0.3 JS + 0.3 PSI).", [], score)
        yield per_feature("lifecycled_model_drift_statistic",
                          "Drift statistic of a feature: ks (D), js (distance, base 2), psi, chi2.",
                          ["test"], statistic)
        yield per_feature("lifecycled_model_drift_p_value",
                          "p-value of a feature's test (ks or chi2), before any correction.",
                          ["test"], p_value)
        self._feature_samples = kept  # only the results still latest

    # -- actions ------------------------------------------------------------------------------

    def _actions(self, live: set[ModelRef]) -> Iterator[Metric]:
        from lifecycled.store.outbox import endpoint_summaries, webhook_counts
        from lifecycled.store.updates import STATES, count_by_state, latest_per_model

        jobs = _gauge("lifecycled_update_jobs", "Update jobs by state.", ["state"])
        counts = count_by_state(self.store)
        for state in STATES:
            jobs.add_metric([state], counts.get(state, 0))
        job_state = _gauge("lifecycled_model_update_job_state",
                           "1 for the state of the model version's latest update job.",
                           [*MV, "state"])
        for job in latest_per_model(self.store):
            if job.ref in live:
                for state in STATES:
                    job_state.add_metric([job.ref.name, job.ref.version, state],
                                         1 if state == job.state else 0)
        yield from (jobs, job_state)
        sent = CounterMetricFamily("lifecycled_webhook_deliveries", "Webhook delivery attempts.",
                                   labels=["endpoint", "event"])
        failed = CounterMetricFamily("lifecycled_webhook_delivery_failures",
                                     "Webhook delivery attempts that failed.",
                                     labels=["endpoint", "event"])
        for endpoint, event, attempts, failures in webhook_counts(self.store):
            sent.add_metric([endpoint, event], attempts)
            failed.add_metric([endpoint, event], failures)
        pending = _gauge("lifecycled_webhook_outbox_pending",
                         "Events waiting to be delivered to the endpoint.", ["endpoint"])
        dead = _gauge("lifecycled_webhook_dead_letters",
                      "Events given up on after the configured attempts.", ["endpoint"])
        success = _gauge("lifecycled_webhook_last_success_timestamp_seconds",
                         "Unix time of the endpoint's last successful delivery.", ["endpoint"])
        disabled = _gauge("lifecycled_webhook_endpoint_disabled",
                          "1 when the endpoint answered 410 Gone and is no longer sent to.",
                          ["endpoint"])
        for summary in endpoint_summaries(self.store, list(self.webhook_endpoints())):
            pending.add_metric([summary.endpoint], summary.pending)
            dead.add_metric([summary.endpoint], summary.dead)
            disabled.add_metric([summary.endpoint], 1 if summary.disabled else 0)
            if summary.last_success is not None:
                success.add_metric([summary.endpoint], summary.last_success)
        yield from (sent, failed, pending, dead, success, disabled)
        yield from self._retirement(live)

    def _retirement(self, live: set[ModelRef]) -> Iterator[Metric]:
        from lifecycled.store.retirement import plan_counts, scores

        score = _gauge("lifecycled_model_retirement_score",
                       "Retirement score 0-1 (age, performance, usage, status).", MV)
        candidate = _gauge("lifecycled_model_retirement_candidate",
                           "1 when the version's retirement score is above the candidate score.",
                           MV)
        for ref, result in sorted(scores(self.store).items()):
            if ref in live:
                score.add_metric([ref.name, ref.version], result["score"])
                candidate.add_metric([ref.name, ref.version], 1 if result["candidate"] else 0)
        plans = _gauge("lifecycled_retirement_plans",
                       "Retirement plans by state (a failed one waits for a retry).", ["state"])
        counts = plan_counts(self.store)
        for state in ("running", "failed", "completed"):
            plans.add_metric([state], counts.get(state, 0))
        yield from (score, candidate, plans)

    # -- the daemon itself ------------------------------------------------------------------

    def _self(self) -> Iterator[Metric]:
        build = _gauge("lifecycled_build_info", "lifecycled version (value 1).", ["version"])
        build.add_metric([__version__], 1)
        up = _gauge("lifecycled_source_up", "1 when the source answered on its last attempt.",
                    ["source"])
        last = _gauge("lifecycled_source_last_success_timestamp_seconds",
                      "Unix time the source last answered.", ["source"])
        for h in source_health(self.store):
            up.add_metric([h.source], 1 if h.up else 0)
            if h.last_success is not None:
                last.add_metric([h.source], h.last_success)
        job_ok = _gauge("lifecycled_job_last_success_timestamp_seconds",
                        "Unix time the job last finished without error.", ["job"])
        duration = _gauge("lifecycled_job_duration_seconds", "Duration of the job's last run.",
                          ["job"])
        interval = _gauge("lifecycled_job_interval_seconds",
                          "Configured interval of the job (alert when a success is 3 late).",
                          ["job"])
        for job, seconds in sorted(self.job_intervals().items()):
            interval.add_metric([job], seconds)
        runs = CounterMetricFamily("lifecycled_job_runs", "Job runs.", labels=["job"])
        failures = CounterMetricFamily("lifecycled_job_failures", "Job runs that raised.",
                                       labels=["job"])
        for j in job_runs(self.store):
            if j.last_success is not None:
                job_ok.add_metric([j.job], j.last_success)
            if j.last_duration is not None:
                duration.add_metric([j.job], j.last_duration)
            runs.add_metric([j.job], j.runs)
            failures.add_metric([j.job], j.failures)
        yield from (build, up, last, job_ok, duration, interval, runs, failures)
