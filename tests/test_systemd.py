"""The shipped systemd unit: `systemd-analyze verify` is clean (on the unit installed the way the
README says: a venv under /opt/lifecycled) and the exposure is 2.0 or lower."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "config" / "systemd" / "lifecycled.service"
INSTALLED = "/opt/lifecycled/venv/bin/lifecycled"  # where the README's install puts it


@pytest.fixture
def unit(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this environment's lifecycled (verify checks it)."""
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is required (Debian package systemd)")
    binary = Path(sys.executable).parent / "lifecycled"
    text = UNIT.read_text().replace(INSTALLED, str(binary))
    path = tmp_path / "lifecycled.service"
    path.write_text(text)
    return path


def test_verify_is_clean(unit: Path) -> None:
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and not proc.stderr.strip() and not proc.stdout.strip(), (
        proc.stdout + proc.stderr)


def test_exposure_is_at_most_2(unit: Path) -> None:
    # --threshold is on systemd 252's internal 0-100 scale: 20 means "fail above 2.0"
    proc = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--threshold=20",
                           str(unit)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    level = float(re.search(r"Overall exposure level for \S+: ([0-9.]+)", proc.stdout).group(1))
    assert level <= 2.0


def test_no_trailing_comments_and_the_required_directives() -> None:
    lines = [line for line in UNIT.read_text().splitlines() if "=" in line
             and not line.startswith("#")]
    assert not [line for line in lines if "#" in line.split("=", 1)[1]]
    text = UNIT.read_text()
    for directive in ("Type=notify", "NotifyAccess=main", "WatchdogSec=", "Restart=on-failure",
                      "DynamicUser=yes", "StateDirectory=", "ConfigurationDirectory=",
                      "LoadCredential=", "ProtectSystem=", "PrivateDevices=yes",
                      "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
                      "SystemCallFilter=@system-service"):
        assert directive in text


@pytest.mark.slow
def test_the_readme_install_into_a_venv_gives_a_unit_that_verifies(tmp_path: Path) -> None:
    """Debian 12 refuses `sudo pip install .` (PEP 668); the README installs into a venv under
    /opt/lifecycled with Debian's python3. Done here under a temporary prefix."""
    python = Path("/usr/bin/python3")
    if not python.exists():
        pytest.fail("Debian's /usr/bin/python3 is required (the README installs with it)")
    venv = tmp_path / "opt" / "lifecycled" / "venv"
    subprocess.run([str(python), "-m", "venv", str(venv)], check=True, timeout=300)
    source = tmp_path / "src"  # a copy: a build must not leave build/ in the checkout
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", ".triton", "build", "*.egg-info", "__pycache__", "demo-run",
        "lifecycled-state", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis"))
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", str(source)],
                             capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stdout + install.stderr
    binary = venv / "bin" / "lifecycled"
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                             timeout=120)
    assert version.returncode == 0 and version.stdout.startswith("lifecycled "), version.stderr
    assert "daemon" not in {p.name for p in (venv / "lib").glob("python3*/site-packages/*")}
    unit = tmp_path / "lifecycled.service"
    assert INSTALLED in UNIT.read_text()
    unit.write_text(UNIT.read_text().replace(INSTALLED, str(binary)))
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and not (proc.stdout + proc.stderr).strip(), (
        proc.stdout + proc.stderr)
