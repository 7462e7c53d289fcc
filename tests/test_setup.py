"""What `make demo` and `make test` install: the demo only what it needs (never a test-only
package), and nothing in the repository starts or stops a system service."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEST_ONLY = ("chromium", "postgresql", "pgbouncer", "python3-seccomp", "openssl", "[test]")


def _setup_system(tmp_path: Path, what: str, uid: str) -> tuple[int, list[str], str]:
    """Run scripts/setup-system.sh with a PATH that holds no Debian tools and a recording
    apt-get, as the given user id; return its code, the packages asked for and stderr."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "apt.log"
    (bin_dir / "apt-get").write_text(f'#!/bin/sh\necho "$@" >> {record}\n')
    (bin_dir / "id").write_text(f"#!/bin/sh\necho {uid}\n")
    for tool in (bin_dir / "apt-get", bin_dir / "id"):
        tool.chmod(0o755)
    bash = shutil.which("bash")
    assert bash
    proc = subprocess.run([bash, str(ROOT / "scripts" / "setup-system.sh"), what],
                          capture_output=True, text=True, timeout=60,
                          env={"PATH": str(bin_dir), "HOME": str(tmp_path)})
    asked = [line.split()[4:] for line in record.read_text().splitlines()
             if line.startswith("install")] if record.exists() else []
    return proc.returncode, [p for line in asked for p in line], proc.stderr


def test_the_demo_asks_only_for_prometheus_and_alertmanager(tmp_path: Path) -> None:
    code, packages, _ = _setup_system(tmp_path, "demo", "0")
    assert code == 0 and packages == ["prometheus", "prometheus-alertmanager"]


def test_the_demo_goes_on_without_root(tmp_path: Path) -> None:
    code, packages, err = _setup_system(tmp_path, "demo", "1000")
    assert code == 0 and packages == []
    assert "the demo runs without prometheus prometheus-alertmanager" in err


def test_the_tests_ask_for_their_servers(tmp_path: Path) -> None:
    code, packages, _ = _setup_system(tmp_path, "test", "0")
    assert code == 0 and {"prometheus", "prometheus-alertmanager"} <= set(packages)


def test_make_demo_names_no_test_only_package() -> None:
    make = shutil.which("make")
    if make is None:
        pytest.fail("make is required")
    plan = subprocess.run([make, "-n", "-B", "demo"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "VENV": ".venv-plan"}).stdout
    assert "setup-system.sh demo" in plan and "scripts/demo.py" in plan
    assert not [word for word in TEST_ONLY if word in plan], plan


def test_nothing_stops_or_disables_a_service() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    offenders = []
    for name in tracked:
        path = ROOT / name
        if path.suffix == ".md" or not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if any(f"systemctl {verb}" in text for verb in ("stop", "disable", "mask")):
            offenders.append(name)
    assert offenders == []


def test_ci_runs_make_test() -> None:
    """The README's `make test` is what CI runs from a clean clone: .ci/run ends in it, and its
    recipe runs the whole suite (pytest with no selection, in worker processes)."""
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == "make test"
    recipe = subprocess.run(["make", "-n", "-B", "test"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert recipe.returncode == 0, recipe.stderr
    steps = [line for line in recipe.stdout.splitlines() if not line.startswith("make")]
    # (under make, make says where it enters)
    assert steps[-1].endswith("-m pytest -n 2 --dist loadfile"), steps[-1]
