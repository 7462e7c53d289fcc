"""Checks: the latest evaluation's threshold breaches (``domain.THRESHOLDS``), performance score
and level."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric

from lifecycled.domain import THRESHOLDS, Level
from lifecycled.exporter.families import gauge
from lifecycled.exporter.scrape import Scrape
from lifecycled.store.views import evaluation_views


def collect(scrape: Scrape) -> Iterator[Metric]:
    live = scrape.live
    breached = gauge("lifecycled_model_threshold_breached")
    score = gauge("lifecycled_model_performance_score")
    level = gauge("lifecycled_model_performance_level")
    for view in evaluation_views(scrape.store, scrape.decodings.evaluations):
        if view.ref not in live:
            continue
        model, version = view.ref.name, view.ref.version
        for threshold in THRESHOLDS:
            if threshold.key in view.checked:
                breached.add({"model": model, "version": version, "threshold": threshold.key},
                             1 if threshold.key in view.breached else 0)
        if view.score is not None:
            score.add_metric([model, version], view.score)
        for lv in Level:
            level.add({"model": model, "version": version, "level": lv.value},
                      1 if lv.value == view.level else 0)
    yield from (breached, score, level)
