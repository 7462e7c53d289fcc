"""The vocabularies are written once: settings, store, exporter and Prometheus queries agree with
the domain's tables."""

from __future__ import annotations

from pathlib import Path

from lifecycled.domain import (
    PROMQL_QUANTITIES,
    QUALITY_METRICS,
    SERVING_QUANTITIES,
    SEVERITIES,
    SNAPSHOT_FIELDS,
    THRESHOLDS,
    Severity,
)
from lifecycled.settings import (
    DEFAULT_THRESHOLDS,
    UNSET_BY_DEFAULT,
    QualitySettings,
    ThresholdSettings,
)
from lifecycled.sources.prometheus import DEFAULT_QUERIES
from lifecycled.store import open_store


def test_every_threshold_has_a_setting_and_a_snapshot_field() -> None:
    assert {t.setting for t in THRESHOLDS} == set(ThresholdSettings.model_fields)
    assert {t.field for t in THRESHOLDS} <= set(SNAPSHOT_FIELDS)
    assert set(DEFAULT_THRESHOLDS.to_base_units()) == {
        t.key for t in THRESHOLDS if t.setting not in UNSET_BY_DEFAULT}


def test_the_snapshot_table_has_exactly_the_snapshot_fields(tmp_path: Path) -> None:
    store = open_store("sqlite:///s.db", tmp_path)
    with store.read() as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(snapshots)")}
    store.close()
    assert columns - {"id", "name", "version", "at", "detail"} == set(SNAPSHOT_FIELDS)


def test_each_promql_quantity_has_a_default_query() -> None:
    assert set(DEFAULT_QUERIES) == set(PROMQL_QUANTITIES)
    assert set(PROMQL_QUANTITIES) - {"requests"} <= {q.field for q in SERVING_QUANTITIES}


def test_metric_names_follow_the_conventions() -> None:
    for metric in [q.metric for q in SERVING_QUANTITIES] + [m.metric for m in QUALITY_METRICS]:
        assert metric.startswith("lifecycled_model_")
    assert {m.name for m in QUALITY_METRICS} == set(QualitySettings.model_fields["promql"]
                                                   .annotation.__args__[0].__args__)  # type: ignore


def test_the_severity_ladder_is_ordered() -> None:
    assert SEVERITIES == ("low", "medium", "high", "critical")
    assert [Severity.parse(s) for s in SEVERITIES] == sorted(Severity)[1:]
    assert Severity.parse("unknown") < Severity.LOW  # never reaches an alert level


def test_update_job_states_are_one_enum_in_their_order() -> None:
    """The job states travelled as strings whose order was a tuple's; a job never moves back
    (except to failed), which the enum's ``order`` now decides."""
    from lifecycled.domain import UPDATE_JOB_STATES, JobState
    from lifecycled.store.updates import ACTIVE, FINAL

    assert tuple(JobState) == UPDATE_JOB_STATES
    assert JobState.TRAINING.order < JobState.DEPLOYING.order < JobState.COMPLETED.order
    assert ACTIVE == ("pending", "dispatched", "training", "validating", "deploying",
                      "comparing")
    assert FINAL == ("completed", "failed", "cancelled")
    assert JobState("comparing") == "comparing"  # stored and exported as its value
