"""Serving state, scrapes and source health: what is kept of removed Triton endpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
from lifecycled.domain import ModelRef
from lifecycled.store.serving import (
    forget_endpoints,
    last_scrape,
    put_scrape,
    put_serving_state,
    record_source,
    serving_states,
    source_health,
)

from tests.stores import open_test_store

REF = ModelRef("credit_scoring", "1")

pytestmark = pytest.mark.usefixtures("both_engines")


def test_forgetting_removed_endpoints_keeps_the_configured_ones(tmp_path: Path) -> None:
    store = open_test_store(tmp_path)
    with store.write() as conn:
        for endpoint in ("a", "old"):
            put_serving_state(conn, REF, endpoint, "ready", "", 1.0)
            put_scrape(conn, endpoint, 1.0, {"models": []})
            record_source(conn, f"triton:{endpoint}", ok=True, now=1.0)
        record_source(conn, "prometheus", ok=True, now=1.0)
    with store.write() as conn:
        assert forget_endpoints(conn, ["a"]) == 1
        assert forget_endpoints(conn, ["a"]) == 0
    assert [s.endpoint for s in serving_states(store)] == ["a"]
    assert last_scrape(store, "old") is None and last_scrape(store, "a") is not None
    assert [h.source for h in source_health(store)] == ["prometheus", "triton:a"]
    with store.write() as conn:
        forget_endpoints(conn, [])  # no endpoint configured: nothing of Triton is kept
    assert serving_states(store) == []
    assert [h.source for h in source_health(store)] == ["prometheus"]
    store.close()
