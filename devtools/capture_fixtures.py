"""Capture Triton payloads for the parser tests: ``python -m devtools.capture_fixtures``.

Starts a real Triton with the seed models, drives known traffic (with failing requests), and
writes the repository index, a model config, the statistics and two ``/metrics`` texts into
``tests/fixtures/triton/``.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import requests

from devtools import triton

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "triton"


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for model in triton.SEED_MODELS:
            triton.write_model(work / "models", model)
        server = triton.start(work / "models", work)
        try:
            (OUT / "metrics_idle.txt").write_text(requests.get(server.metrics_url, timeout=10).text)
            for _ in range(20):
                triton.infer(server.url, "credit_scoring", [[0.1, 0.2, 0.3, 0.4]] * 4)
            for _ in range(5):
                triton.infer(server.url, "credit_scoring", [[1e9, 0.0, 0.0, 0.0]])
            for _ in range(7):
                triton.infer(server.url, "fraud_detection", [[0.5, 0.5, 0.5, 0.5]])
            (OUT / "metrics_traffic.txt").write_text(
                requests.get(server.metrics_url, timeout=10).text)
            (OUT / "stats.json").write_text(json.dumps(
                requests.get(f"{server.url}/v2/models/stats", timeout=10).json(), indent=1))
            (OUT / "config_credit_scoring.json").write_text(json.dumps(
                requests.get(f"{server.url}/v2/models/credit_scoring/config", timeout=10).json(),
                indent=1))
            requests.post(f"{server.url}/v2/repository/models/risk_assessment/unload", timeout=30)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                index = requests.post(f"{server.url}/v2/repository/index", timeout=10).json()
                if any(e.get("state") == "UNAVAILABLE" for e in index):
                    break
                time.sleep(0.2)
            (OUT / "index_unloaded.json").write_text(json.dumps(index, indent=1))
        finally:
            server.stop()
    print(f"fixtures written to {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
