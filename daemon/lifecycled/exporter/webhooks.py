"""Webhooks: delivery attempts and failures, the outbox, dead letters, disabled endpoints."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, Metric

from lifecycled.exporter.families import gauge
from lifecycled.store import Store
from lifecycled.store.outbox import endpoint_summaries, webhook_counts


def collect(store: Store, endpoints: Sequence[str]) -> Iterator[Metric]:
    sent = CounterMetricFamily("lifecycled_webhook_deliveries", "Webhook delivery attempts.",
                               labels=["endpoint", "event"])
    failed = CounterMetricFamily("lifecycled_webhook_delivery_failures",
                                 "Webhook delivery attempts that failed.",
                                 labels=["endpoint", "event"])
    for endpoint, event, attempts, failures in webhook_counts(store):
        sent.add_metric([endpoint, event], attempts)
        failed.add_metric([endpoint, event], failures)
    pending = gauge("lifecycled_webhook_outbox_pending",
                    "Events waiting to be delivered to the endpoint.", ["endpoint"])
    dead = gauge("lifecycled_webhook_dead_letters",
                 "Events given up on after the configured attempts.", ["endpoint"])
    success = gauge("lifecycled_webhook_last_success_timestamp_seconds",
                    "Unix time of the endpoint's last successful delivery.", ["endpoint"])
    disabled = gauge("lifecycled_webhook_endpoint_disabled",
                     "1 when the endpoint answered 410 Gone and is no longer sent to.",
                     ["endpoint"])
    for summary in endpoint_summaries(store, list(endpoints)):
        pending.add_metric([summary.endpoint], summary.pending)
        dead.add_metric([summary.endpoint], summary.dead)
        disabled.add_metric([summary.endpoint], 1 if summary.disabled else 0)
        if summary.last_success is not None:
            success.add_metric([summary.endpoint], summary.last_success)
    yield from (sent, failed, pending, dead, success, disabled)
