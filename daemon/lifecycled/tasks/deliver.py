"""Deliver: send the outbox's due webhook events."""

from __future__ import annotations

from typing import Any

from lifecycled.actions.webhooks import deliver_once, endpoint_key
from lifecycled.context import Context


def run_deliver(ctx: Context) -> dict[str, Any]:
    report = deliver_once(ctx.store, ctx.settings.webhooks, ctx.session,
                          key_for=lambda name, endpoint: endpoint_key(ctx, name, endpoint),
                          clock=ctx.clock, jitter_source=ctx.jitter_source,
                          budget_seconds=max(1.0, ctx.settings.schedule.deliver * 0.8),
                          claim_as=ctx.claim_as)
    return report.to_json()
