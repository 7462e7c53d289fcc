"""The task registry: the order of ``run --once`` and the errors that make a task fail."""

from __future__ import annotations

from pathlib import Path

import pytest
from lifecycled.config import parse_settings
from lifecycled.context import Context
from lifecycled.errors import SourceError
from lifecycled.store import open_store
from lifecycled.store.serving import source_health
from lifecycled.tasks.registry import TASKS, collect

from devtools import triton


def test_quality_runs_before_collect_and_collect_before_evaluate() -> None:
    order = list(TASKS)
    assert order.index("discovery") < order.index("quality") < order.index("collect") \
        < order.index("evaluate")


def test_collect_with_only_prometheus_down_names_prometheus(tmp_path: Path) -> None:
    """A real refused connection (nothing listens on the port), not a mock."""
    port = triton.free_port()
    settings = parse_settings({"sources": {"prometheus": {"url": f"http://127.0.0.1:{port}",
                                                          "timeout": "2s"}}})
    ctx = Context(settings, open_store("sqlite:///s.db", tmp_path), environ={})
    with pytest.raises(SourceError) as raised:
        collect(ctx)
    assert "no source answered: prometheus:" in str(raised.value)
    assert "Triton" not in str(raised.value)
    assert [(h.source, h.up) for h in source_health(ctx.store)] == [("prometheus", False)]
