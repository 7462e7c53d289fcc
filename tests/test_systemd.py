"""The shipped systemd unit, read: `systemd-analyze verify` is clean and the exposure is 2.0 or
lower. These only read the file; tests/integration/test_installed.py runs the daemon under the
unit's system-call filter, from a wheel installed as the manual says."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "config" / "systemd" / "lifecycled.service"
INSTALLED = "/opt/lifecycled/venv/bin/lifecycled"  # where the manual's systemd install puts it


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
