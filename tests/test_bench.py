"""The benchmarks still run (small sizes): they are measured by hand, not timed here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("argv", [
    ["bench/drift.py", "--quick", "--repeat", "1"],
    ["bench/fleet.py", "--sizes", "10,100", "--repeat", "1"],
    ["bench/outbox.py", "--events", "300"],
    ["bench/cli_drift.py", "--rows", "20000", "--repeat", "1"],
    ["bench/drift_calibration.py", "--quick"],
    ["bench/store.py", "--rows", "200", "--batch", "50"],
    ["bench/replicas.py", "--models", "20", "--repeat", "1"],
    ["bench/quality.py", "--outcomes", "2000", "--classes", "300", "--repeat", "1"],
    ["bench/startup.py", "--repeat", "1"],
    ["bench/false_alarms.py", "--quick"],
    ["bench/traces.py", "--requests", "60", "--sampled", "100", "--repeat", "1"],
    ["bench/compare.py", "--replays", "3"],
])
@pytest.mark.slow
def test_benchmark_runs(argv: list[str]) -> None:
    proc = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip()
