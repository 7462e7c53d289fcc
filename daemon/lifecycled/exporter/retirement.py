"""Retirement: each version's score and candidacy, and retirement plans by state."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric

from lifecycled.exporter.families import gauge
from lifecycled.exporter.scrape import Scrape
from lifecycled.store.retirement import PLAN_STATES, plan_counts, scores


def collect(scrape: Scrape) -> Iterator[Metric]:
    store, live = scrape.store, scrape.live
    score = gauge("lifecycled_model_retirement_score")
    candidate = gauge("lifecycled_model_retirement_candidate")
    for ref, result in sorted(scores(store).items()):
        if ref in live:
            score.add_metric([ref.name, ref.version], result["score"])
            candidate.add_metric([ref.name, ref.version], 1 if result["candidate"] else 0)
    plans = gauge("lifecycled_retirement_plans")
    counts = plan_counts(store)
    for state in PLAN_STATES:
        plans.add_metric([state], counts.get(state, 0))
    yield from (score, candidate, plans)
