"""Webhooks: delivery attempts and failures, the outbox, dead letters, disabled endpoints."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric

from lifecycled.exporter.families import counter, gauge
from lifecycled.exporter.scrape import Scrape
from lifecycled.store.outbox import endpoint_summaries, webhook_counts


def collect(scrape: Scrape) -> Iterator[Metric]:
    store = scrape.store
    sent = counter("lifecycled_webhook_deliveries")
    failed = counter("lifecycled_webhook_delivery_failures")
    for endpoint, event, attempts, failures in webhook_counts(store):
        sent.add_metric([endpoint, event], attempts)
        failed.add_metric([endpoint, event], failures)
    pending = gauge("lifecycled_webhook_outbox_pending")
    dead = gauge("lifecycled_webhook_dead_letters")
    success = gauge("lifecycled_webhook_last_success_timestamp_seconds")
    disabled = gauge("lifecycled_webhook_endpoint_disabled")
    for summary in endpoint_summaries(store, list(scrape.endpoints)):
        pending.add_metric([summary.endpoint], summary.pending)
        dead.add_metric([summary.endpoint], summary.dead)
        disabled.add_metric([summary.endpoint], 1 if summary.disabled else 0)
        if summary.last_success is not None:
            success.add_metric([summary.endpoint], summary.last_success)
    yield from (sent, failed, pending, dead, success, disabled)
