"""Every metric family the exporter yields, declared once: name, type, labels, help and unit.
The collectors build their families from here (``families.gauge(name)``), the metrics reference
(docs/reference/metrics.md) is generated from it, and a test fails when a scrape yields a family
that is not here. The names are a contract used by the shipped dashboards and alert rules."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from lifecycled.domain import QUALITY_METRICS, SERVING_QUANTITIES

MV = ("model", "version")
MVS = (*MV, "segment")

GROUPS = {
    "registry": "Registry", "serving": "Serving", "quality": "Quality, labels and estimates",
    "segments": "Segments", "checks": "Thresholds and performance", "drift": "Data drift",
    "updates": "Update jobs", "webhooks": "Webhooks", "retirement": "Retirement",
    "daemon": "The daemon and its sources", "cluster": "Several replicas (every replica's own)",
}
UNITS = (("_timestamp_seconds", "seconds (Unix time)"), ("_seconds", "seconds"),
         ("_bytes", "bytes"), ("_ratio", "ratio (0-1)"))


@dataclass(frozen=True)
class Family:
    name: str  # as given to prometheus_client: a counter's without its _total
    type: str  # gauge or counter
    labels: tuple[str, ...]
    group: str
    help: str

    @property
    def exposed(self) -> str:
        """The name as scraped."""
        return self.name + "_total" if self.type == "counter" else self.name

    @property
    def unit(self) -> str | None:
        """The base unit its name ends with, if any."""
        return next((unit for suffix, unit in UNITS if self.name.endswith(suffix)), None)


ESTIMATED = ("accuracy", "precision", "recall", "f1", "roc_auc")
# a regression model's estimate (DLE): the metric in the result, its family
ESTIMATED_ERRORS = (("mae", "lifecycled_model_estimated_mean_absolute_error"),
                    ("rmse", "lifecycled_model_estimated_root_mean_squared_error"))

# the quality result's label part: its key, the family
LABEL_GAUGES = (("coverage", "lifecycled_model_label_coverage_ratio"),
                ("lag_p50_seconds", "lifecycled_model_label_lag_p50_seconds"),
                ("lag_p95_seconds", "lifecycled_model_label_lag_p95_seconds"),
                ("predictions", "lifecycled_model_matured_predictions"),
                ("labelled", "lifecycled_model_labelled_predictions"))
# a segment's counts: its key, the family
SEGMENT_COUNTS = (("coverage", "lifecycled_model_segment_label_coverage_ratio"),
                  ("predictions", "lifecycled_model_segment_matured_predictions"),
                  ("labelled", "lifecycled_model_segment_labelled_predictions"))
# the replica's counters: the family, its key in the replica's state
REPLICA_COUNTERS = (("lifecycled_leader_acquisitions", "acquisitions"),
                    ("lifecycled_leader_takeovers", "takeovers"),
                    ("lifecycled_claims_taken_over", "claims_taken_over"))


def _declared() -> Iterator[Family]:
    for q in SERVING_QUANTITIES:
        yield Family(q.metric, "gauge", MV, "serving", q.help)
    for m in QUALITY_METRICS:
        yield Family(m.metric, "gauge", MV, "quality", m.help)
    for metric in ESTIMATED:
        yield Family(f"lifecycled_model_estimated_{metric}_ratio", "gauge", (*MV, "bound"),
                     "quality",
                     f"Estimated {metric.replace('_', ' ')} of the predictions newer than the matured "
                     f"window, before their labels (CBPE), with its 95 % interval (bound: "
                     f"estimate, lower, upper).")
    for metric, name in ESTIMATED_ERRORS:
        yield Family(name, "gauge", (*MV, "bound"), "quality",
                     f"Estimated {metric.upper()} of a regression model's predictions newer than "
                     f"the matured window, before their labels (DLE), in the units of its "
                     f"target, with its 95 % interval (bound: estimate, lower, upper).")
    yield from FAMILIES


FAMILIES = (
    Family("lifecycled_model_info", "gauge",
           (*MV, "owner_team", "business_domain", "model_type", "framework"), "registry",
        "Model version metadata (value 1)."),
    Family("lifecycled_model_status", "gauge", (*MV, "status"), "registry",
        "1 for the model version's current lifecycle status, 0 for the others."),
    Family("lifecycled_model_status_change_timestamp_seconds", "gauge", MV, "registry",
        "Unix time of the last status change."),
    Family("lifecycled_model_registered_timestamp_seconds", "gauge", MV, "registry",
        "Unix time the model version was registered."),
    Family("lifecycled_model_threshold_limit", "gauge", (*MV, "threshold"), "registry",
        "The version's threshold limit in base units (ratio, seconds, requests per second, "
        "bytes)."),
    Family("lifecycled_triton_cpu_utilization_ratio", "gauge", ("endpoint",), "serving",
        "CPU utilisation (0-1) of the Triton host, from its nv_cpu_utilization at the last "
        "scrape."),
    Family("lifecycled_triton_memory_used_bytes", "gauge", ("endpoint",), "serving",
        "Memory used on the Triton host, from its nv_cpu_memory_used_bytes at the last scrape."),
    Family("lifecycled_model_serving_state", "gauge", (*MV, "endpoint", "state"), "serving",
        "1 for the model version's last seen state on a Triton endpoint."),
    Family("lifecycled_model_retired_but_serving", "gauge", (*MV, "endpoint"), "serving",
        "1 while a retired model version is still ready (or loading) on a Triton endpoint, as "
        "discovery last saw it."),
    Family("lifecycled_model_snapshot_timestamp_seconds", "gauge", MV, "serving",
        "Unix time of the latest serving snapshot."),
    Family("lifecycled_model_concept_drift_severity", "gauge", (*MV, "level"), "quality",
        "1 for the concept-drift severity of the latest labelled outcomes."),
    Family("lifecycled_model_estimate_trusted", "gauge", MV, "quality",
        "1 when the performance estimate's assumption holds (no concept drift in the labelled "
        "window, a binary model, enough labels to calibrate on)."),
    Family("lifecycled_model_estimation_error_ratio", "gauge", (*MV, "metric"), "quality",
        "Realized minus estimated, for the newest estimate whose predictions have since got "
        "their labels."),
    Family("lifecycled_model_quality_judged", "gauge", MV, "quality",
        "1 when the quality metrics of the matured window count (coverage at least "
        "min_coverage), 0 while they are provisional."),
    Family("lifecycled_model_predictions_received", "counter", MV, "quality",
        "Predictions stored from the prediction log (new ids)."),
    Family("lifecycled_model_labels_received", "counter", ("model",), "quality",
        "Labels stored (new ids) whose prediction was stored when they came, per model."),
    Family("lifecycled_model_labels_without_prediction", "counter", ("model",), "quality",
        "Labels stored (new ids) that matched no stored prediction of the model when they came,"
        " per model."),
    Family("lifecycled_model_segment_drift_severity", "gauge", (*MVS, "level"), "segments",
        "1 for the data-drift severity of a segment in the latest check (unknown: nothing could"
        " be judged, e.g. too few rows)."),
    Family("lifecycled_model_segment_drifted_features_ratio", "gauge", MVS, "segments",
        "Share of a segment's judged features at or above the alert severity (0-1)."),
    Family("lifecycled_model_segment_current_rows", "gauge", MVS, "segments",
        "Rows of a segment in the latest drift check's current sample."),
    Family("lifecycled_model_segment_quality_judged", "gauge", MVS, "segments",
        "1 when a segment's quality metrics count (its coverage at least min_coverage), 0 while"
        " they are provisional."),
    Family("lifecycled_model_segment_quality_ratio", "gauge", (*MVS, "metric"), "segments",
        "A segment's quality metric (accuracy, precision, recall, f1, roc_auc) from its "
        "labelled matured predictions; absent until judged."),
    Family("lifecycled_model_segment_estimated_ratio", "gauge", (*MVS, "metric", "bound"), "segments",
        "A segment's estimated metric for its predictions newer than the matured window (CBPE),"
        " with its 95 % interval (bound: estimate, lower, upper)."),
    Family("lifecycled_model_segment_estimate_trusted", "gauge", MVS, "segments",
        "1 when a segment's performance estimate's assumption holds."),
    Family("lifecycled_model_threshold_breached", "gauge", (*MV, "threshold"), "checks",
        "1 when the latest evaluation breaches the threshold, 0 when it passes; absent when the"
        " value is unknown."),
    Family("lifecycled_model_performance_score", "gauge", MV, "checks",
        "Performance score 0-100 of the latest evaluation."),
    Family("lifecycled_model_performance_level", "gauge", (*MV, "level"), "checks",
        "1 for the performance level of the latest evaluation."),
    Family("lifecycled_model_drift_check_timestamp_seconds", "gauge", MV, "drift",
        "Unix time of the latest drift check."),
    Family("lifecycled_model_drift_severity", "gauge", (*MV, "level"), "drift",
        "1 for the model-level data-drift severity of the latest check (unknown: nothing could "
        "be judged)."),
    Family("lifecycled_model_drifted_features_ratio", "gauge", MV, "drift",
        "Share of judged features at or above the alert severity (0-1)."),
    Family("lifecycled_update_jobs", "gauge", ("state",), "updates",
        "Update jobs by state."),
    Family("lifecycled_model_update_job_state", "gauge", (*MV, "state"), "updates",
        "1 for the state of the model version's latest update job."),
    Family("lifecycled_webhook_deliveries", "counter", ("endpoint", "event"), "webhooks",
        "Webhook delivery attempts."),
    Family("lifecycled_webhook_delivery_failures", "counter", ("endpoint", "event"), "webhooks",
        "Webhook delivery attempts that failed."),
    Family("lifecycled_webhook_outbox_pending", "gauge", ("endpoint",), "webhooks",
        "Events waiting to be delivered to the endpoint."),
    Family("lifecycled_webhook_dead_letters", "gauge", ("endpoint",), "webhooks",
        "Events given up on after the configured attempts."),
    Family("lifecycled_webhook_last_success_timestamp_seconds", "gauge", ("endpoint",), "webhooks",
        "Unix time of the endpoint's last successful delivery."),
    Family("lifecycled_webhook_endpoint_disabled", "gauge", ("endpoint",), "webhooks",
        "1 when the endpoint answered 410 Gone and is no longer sent to."),
    Family("lifecycled_comparison_state", "gauge", ("model", "champion", "challenger", "state"),
        "updates", "Each model's latest champion/challenger comparison: 1 for its state (running, "
        "promoted, rolled_back, held, cancelled), 0 for the others."),
    Family("lifecycled_comparison_requests", "gauge", ("model", "version", "role"), "updates",
        "Requests each side of a model's latest comparison served since it opened (role "
        "champion or challenger)."),
    Family("lifecycled_comparison_failures", "gauge", ("model", "version", "role"), "updates",
        "Failed requests of each side since the comparison opened."),
    Family("lifecycled_comparison_evidence", "gauge", ("model", "challenger", "test"), "updates",
        "The comparison's e-value per test (failures_worse, failures_not_worse, latency_worse, "
        "latency_not_worse); a blocking test decides at lifecycled_comparison_evidence_threshold."),
    Family("lifecycled_comparison_evidence_threshold", "gauge", ("model", "challenger"),
        "updates", "The e-value a blocking test must reach to decide (1/alpha, alpha split "
        "among the blocking tests)."),
    Family("lifecycled_model_retirement_score", "gauge", MV, "retirement",
        "Retirement score 0-1 (age, performance, usage, status)."),
    Family("lifecycled_model_retirement_candidate", "gauge", MV, "retirement",
        "1 when the version's retirement score is above the candidate score."),
    Family("lifecycled_retirement_plans", "gauge", ("state",), "retirement",
        "Retirement plans by state (a failed one waits for a retry)."),
    Family("lifecycled_build_info", "gauge", ("version", "revision", "python"), "daemon",
        "lifecycled version, the source revision it was installed from ('unknown' when the "
        "installer did not record one) and the Python it runs on (value 1)."),
    Family("lifecycled_task_interval_seconds", "gauge", ("task",), "daemon",
        "Configured interval of the task (alert when a success is 3 late)."),
    Family("lifecycled_source_up", "gauge", ("source",), "daemon",
        "1 when the source answered on its last attempt."),
    Family("lifecycled_source_last_success_timestamp_seconds", "gauge", ("source",), "daemon",
        "Unix time the source last answered."),
    Family("lifecycled_task_last_success_timestamp_seconds", "gauge", ("task",), "daemon",
        "Unix time the scheduled task last finished without error."),
    Family("lifecycled_task_duration_seconds", "gauge", ("task",), "daemon",
        "Duration of the task's last run."),
    Family("lifecycled_task_runs", "counter", ("task",), "daemon",
        "Runs of the scheduled task."),
    Family("lifecycled_task_failures", "counter", ("task",), "daemon",
        "Runs of the task that raised."),
    Family("lifecycled_trace_backlog_files", "gauge", ("endpoint",), "daemon",
        "Trace files waiting to be read after the last traces pass (a file still being written "
        "included)."),
    Family("lifecycled_trace_backlog_bytes", "gauge", ("endpoint",), "daemon",
        "Bytes of the trace files waiting to be read."),
    Family("lifecycled_trace_files_read", "counter", ("endpoint",), "daemon",
        "Trace files read (and deleted)."),
    Family("lifecycled_trace_requests_decoded", "counter", ("endpoint",), "daemon",
        "Sampled requests of watched versions decoded from the trace files."),
    Family("lifecycled_trace_files_rejected", "counter", ("endpoint",), "daemon",
        "Trace files with nothing readable, renamed *.rejected."),
    Family("lifecycled_trace_problems", "counter", ("endpoint",), "daemon",
        "Problems met in trace files (each logged): a cut, a request left out, a file that "
        "cannot be read or deleted."),
    Family("lifecycled_trace_watched", "gauge", ("endpoint", "model"), "daemon",
        "1 for each model whose trace settings lifecycled set on the endpoint (put back when "
        "it is no longer watched or the daemon stops)."),
    Family("lifecycled_unmanaged_model", "gauge", ("endpoint", "model", "version", "reason"), "daemon",
        "A version Triton serves under a name or version the registry cannot hold (value 1): "
        "not discovered, collected or checked."),
    Family("lifecycled_state_store_writable", "gauge", (), "daemon",
        "0 after a failed write to the state store: for 2 minutes when the database refused it "
        "(a full disk, a read-only file), until a write succeeds when it was not reached; else "
        "1."),
    Family("lifecycled_state_store_write_failures", "counter", (), "daemon",
        "Writes to the state store that failed."),
    Family("lifecycled_exporter_collector_success", "gauge", ("collector",), "daemon",
        "1 when the collector's last scrape succeeded, 0 when it failed (its families are "
        "missing; the log says why)."),
    Family("lifecycled_replica_info", "gauge", ("replica", "holder"), "cluster",
        "This replica (value 1): its configured name and the holder name it takes the lease and"
        " claims under."),
    Family("lifecycled_leader", "gauge", (), "cluster",
        "1 on the replica holding the leader lease (it runs the fleet-wide tasks and exports "
        "the fleet's state), 0 on a standby."),
    Family("lifecycled_claims_held", "gauge", (), "cluster",
        "Outbox deliveries this replica has claimed and not answered yet."),
    Family("lifecycled_work_claims_held", "gauge", ("task",), "cluster",
        "Parts of the per-model work (collect, evaluate, drift, quality) this replica has "
        "claimed and is working on now."),
    Family("lifecycled_work_claims_taken_over", "counter", ("task",), "cluster",
        "Parts of the per-model work this replica took over from a replica whose claim ran out."),
    Family("lifecycled_leader_epoch", "gauge", (), "cluster",
        "Fencing epoch of the lease this replica holds (it grows at each change of leader)."),
    Family("lifecycled_model_label_coverage_ratio", "gauge", MV, "quality",
        "Labelled share of the predictions in the matured window (older than maturity)."),
    Family("lifecycled_model_label_lag_p50_seconds", "gauge", MV, "quality",
        "Median time from a prediction to its label, in the matured window."),
    Family("lifecycled_model_label_lag_p95_seconds", "gauge", MV, "quality",
        "95th percentile of the time from a prediction to its label, in the matured window."),
    Family("lifecycled_model_matured_predictions", "gauge", MV, "quality",
        "Predictions in the matured window."),
    Family("lifecycled_model_labelled_predictions", "gauge", MV, "quality",
        "Predictions in the matured window that have their label."),
    Family("lifecycled_model_segment_label_coverage_ratio", "gauge", MVS, "segments",
        "Labelled share of a segment's predictions in the matured window."),
    Family("lifecycled_model_segment_matured_predictions", "gauge", MVS, "segments",
        "A segment's predictions in the matured window."),
    Family("lifecycled_model_segment_labelled_predictions", "gauge", MVS, "segments",
        "A segment's predictions in the matured window that have their label."),
    Family("lifecycled_model_segment_regression_metric", "gauge", (*MVS, "metric"), "segments",
        "A segment's regression metric (mae, rmse, mape, r2, mean_error) from its labelled "
        "matured predictions, in the units of the model's target (mape a ratio); absent until "
        "judged."),
    Family("lifecycled_model_feature_unjudged", "gauge", (*MV, "feature", "reason"), "drift",
        "1 for a feature that could not be judged, labelled with the reason."),
    Family("lifecycled_model_drift_score", "gauge", (*MV, "feature"), "drift",
        "Composite drift score of a feature (0.4 D + 0.3 JS + 0.3 PSI)."),
    Family("lifecycled_model_drift_statistic", "gauge", (*MV, "feature", "test"), "drift",
        "Drift statistic of a feature: ks (D), js (distance, base 2), psi, chi2."),
    Family("lifecycled_model_drift_p_value", "gauge", (*MV, "feature", "test"), "drift",
        "p-value of a feature's test (ks or chi2), before any correction."),
    Family("lifecycled_leader_acquisitions", "counter", (), "cluster",
        "Times this replica became the leader."),
    Family("lifecycled_leader_takeovers", "counter", (), "cluster",
        "Times this replica became the leader after the previous leader's lease ran out (it "
        "had died or lost the database)."),
    Family("lifecycled_claims_taken_over", "counter", (), "cluster",
        "Outbox deliveries this replica took over from a replica whose claim ran out."),

)


class Catalogue:
    """The declared families by name, and by group for the reference."""

    def __init__(self, families: Iterator[Family]) -> None:
        self.by_name: dict[str, Family] = {}
        for family in families:
            if family.name in self.by_name:
                raise ValueError(f"{family.name} is declared twice")
            self.by_name[family.name] = family

    def __getitem__(self, name: str) -> Family:
        return self.by_name[name]

    def __iter__(self) -> Iterator[Family]:
        return iter(self.by_name.values())

    def groups(self) -> dict[str, list[Family]]:
        """Title -> its families by name, in the order of GROUPS."""
        out: dict[str, list[Family]] = {title: [] for title in GROUPS.values()}
        for family in sorted(self, key=lambda f: f.name):
            out[GROUPS[family.group]].append(family)
        return out


CATALOGUE = Catalogue(_declared())
