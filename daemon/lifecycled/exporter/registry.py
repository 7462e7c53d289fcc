"""The registry: model info, the status of each version, registration and status-change times,
and each live version's threshold limits (so Prometheus rules can compare Triton's own counters
with them)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric

from lifecycled.domain import THRESHOLDS, Status
from lifecycled.exporter.families import gauge
from lifecycled.exporter.scrape import Scrape


def collect(scrape: Scrape) -> Iterator[Metric]:
    info = gauge("lifecycled_model_info")
    status = gauge("lifecycled_model_status")
    changed = gauge("lifecycled_model_status_change_timestamp_seconds")
    registered = gauge("lifecycled_model_registered_timestamp_seconds")
    limit = gauge("lifecycled_model_threshold_limit")
    for r in scrape.records:
        mv = [r.ref.name, r.ref.version]
        spec = r.spec
        info.add_metric([*mv, spec.owner_team, spec.business_domain, spec.model_type,
                         spec.framework], 1)
        for s in Status:
            status.add({"model": mv[0], "version": mv[1], "status": s.value},
                       1 if s == r.status else 0)
        changed.add_metric(mv, r.status_changed_at)
        registered.add_metric(mv, r.registered_at)
        if r.status != Status.RETIRED:
            for threshold in THRESHOLDS:
                value = spec.thresholds.get(threshold.key)
                if value is not None:
                    limit.add({"model": mv[0], "version": mv[1], "threshold": threshold.key},
                              value)
    yield from (info, status, changed, registered, limit)
