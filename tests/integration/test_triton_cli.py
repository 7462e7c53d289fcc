"""`lifecycled discover`, `collect` and `models show` against a real Triton."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from devtools import triton
from tests.helpers import endpoint, write_config


def test_discover_collect_show(triton_factory: Any, tmp_path: Path, cli: Any) -> None:
    server = triton_factory()
    config = write_config(tmp_path / "c", {"sources": {"triton": [endpoint("local", server)]}})
    found = cli("discover", "--json", config=config)
    assert found.code == 0, found.err
    assert sorted(found.json()["registered"]) == ["credit_scoring:1", "fraud_detection:2",
                                                  "risk_assessment:3"]
    assert "new: none" in cli("discover", config=config).out
    first = cli("collect", "--wait", "1s", "--json", config=config)  # no base yet: two scrapes
    assert first.code == 0, first.err
    for _ in range(5):
        triton.infer(server.url, "credit_scoring", [[0.1, 0.2, 0.3, 0.4]])
    second = cli("collect", "--json", config=config)
    assert second.json()["snapshots"]["credit_scoring:1"]["requests"] == 5
    shown = cli("models", "show", "credit_scoring:1", "--json", config=config).json()
    assert shown["serving"][0]["state"] == "ready"
    assert shown["latest_snapshot"]["requests_per_second"] > 0
    text = cli("models", "show", "credit_scoring:1", config=config).out
    assert "serving state:" in text and "latest snapshot:" in text
