"""lifecycled as a user installs and deploys it: installed with Debian's python3 into a fresh venv
by the quickstart's own command, run under the shipped unit's system-call filter
as an unprivileged user, set up with `lifecycled init` and scraped by a real Prometheus."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from devtools import triton
from tests.helpers import section, shell_blocks

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
GETTING_STARTED = ROOT / "docs" / "getting-started.md"
QUICKSTART = "## Quickstart: my Triton, my Prometheus"
UNIT = ROOT / "config" / "systemd" / "lifecycled.service"
SANDBOX = ROOT / "devtools" / "sandbox.py"
DEBIAN_PYTHON = Path("/usr/bin/python3")
IGNORED = shutil.ignore_patterns(
    ".git", ".venv", ".triton", "build", "dist", "*.egg-info", "__pycache__", "demo-run",
    "lifecycled-state", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis", "site")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world() -> Iterator[Path]:
    """A folder every user can read (pytest's own temporary folders are the caller's only)."""
    path = Path(tempfile.mkdtemp(prefix="lifecycled-installed-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def quickstart() -> list[str]:
    """The getting-started page's quickstart, one command per string (the README prints the
    same block; tests/test_docs.py checks both, and that this test runs each command)."""
    (commands,) = shell_blocks(section(GETTING_STARTED.read_text(), QUICKSTART))
    return commands


@pytest.fixture(scope="module")
def installed(world: Path) -> Path:
    """The venv's bin folder: the quickstart's first command as written, in a copy of this
    checkout, with Debian's python3 first on PATH and the venv under a temporary prefix."""
    if not DEBIAN_PYTHON.exists():
        pytest.fail("Debian's /usr/bin/python3 is required (the manual installs with it)")
    source = world / "src"  # a copy: a build must not leave build/ in the checkout
    shutil.copytree(ROOT, source, ignore=IGNORED)
    venv = world / "venv"
    install = quickstart()[0]
    assert install.startswith("python3 -m venv /opt/lifecycled/venv && "), install
    proc = subprocess.run(["bash", "-c", install.replace("/opt/lifecycled/venv", str(venv))],
                          capture_output=True, text=True, timeout=900, cwd=source,
                          env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(world)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return venv / "bin"


def test_the_installed_command_runs_and_installs_no_daemon_package(installed: Path) -> None:
    version = subprocess.run([str(installed / "lifecycled"), "--version"], capture_output=True,
                             text=True, timeout=120)
    assert version.returncode == 0 and version.stdout.startswith("lifecycled "), version.stderr
    site = installed.parent / "lib"
    assert "daemon" not in {p.name for p in site.glob("python3*/site-packages/*")}


def test_the_unit_verifies_with_the_installed_binary(installed: Path, tmp_path: Path) -> None:
    """Debian 12 refuses `sudo pip install .` (PEP 668): the manual installs into a venv under
    /opt/lifecycled; here under a temporary prefix, with ExecStart pointing there."""
    unit = tmp_path / "lifecycled.service"
    unit.write_text(UNIT.read_text().replace("/opt/lifecycled/venv/bin/lifecycled",
                                             str(installed / "lifecycled")))
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and not (proc.stdout + proc.stderr).strip(), proc.stdout + proc.stderr


def _unprivileged() -> str | None:
    """The user to drop to: nobody when we are root; None (stay) when we already are not."""
    if os.getuid() != 0:
        return None
    return pwd.getpwuid(65534).pw_name


def _get(url: str) -> requests.Response | None:
    try:
        return requests.get(url, timeout=5)
    except requests.RequestException:
        return None


def _poll(predicate: Any, what: str, process: subprocess.Popen[bytes], log: Path,
          timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"exited {process.returncode}:\n{log.read_text()[-3000:]}"
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")


def test_the_daemon_runs_under_the_units_syscall_filter(installed: Path, world: Path) -> None:
    """The unit denies @privileged and @resources with EPERM; the daemon (and the listener and
    renderer processes it starts) must start, serve, reload and stop under exactly that filter,
    as an unprivileged user. Before, os.nice in the listener was refused and `run` died."""
    if not DEBIAN_PYTHON.exists() or subprocess.run(
            [str(DEBIAN_PYTHON), "-c", "import seccomp"], capture_output=True).returncode:
        pytest.fail("Debian's python3-seccomp is required (scripts/setup-system.sh test)")
    home = world / "sandboxed"
    home.mkdir()
    port = triton.free_port()
    config = home / "lifecycled.yaml"
    config.write_text(yaml.safe_dump({
        "daemon": {"listen": f"127.0.0.1:{port}", "state_url": "sqlite:///state.db",
                   "shutdown_grace": "20s"},
        "sources": {"triton": []},
        "schedule": {"discovery": "1s", "collect": "1s", "evaluate": "1s"}}))
    user = _unprivileged()
    if user is not None:
        uid = pwd.getpwnam(user)
        for path in (home, config):
            os.chown(path, uid.pw_uid, uid.pw_gid)
    log = world / "sandboxed.log"
    command = [str(DEBIAN_PYTHON), str(SANDBOX), "--unit", str(UNIT),
               *(["--user", user] if user else []), "--",
               str(installed / "lifecycled"), "run", "--config", str(config)]
    # what systemd gives the unit: StateDirectory= as $STATE_DIRECTORY, no venv on PATH
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "STATE_DIRECTORY": str(home)}
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                   cwd=home)
    base = f"http://127.0.0.1:{port}"
    try:
        _poll(lambda: (r := _get(base + "/healthz")) is not None and r.status_code == 200,
              "/healthz", process, log)
        _poll(lambda: (r := _get(base + "/readyz")) is not None and r.status_code == 200,
              "/readyz", process, log)
        _poll(lambda: (r := _get(base + "/metrics")) is not None and r.status_code == 200
              and 'lifecycled_task_runs_total{task="discovery"}' in r.text,
              "the first discovery pass in /metrics", process, log)
        assert "lowering it was refused" in log.read_text()  # the filter was really applied
        process.send_signal(signal.SIGHUP)
        _poll(lambda: "configuration reloaded" in log.read_text(), "reload", process, log)
        _poll(lambda: (r := _get(base + "/readyz")) is not None and r.status_code == 200,
              "/readyz after the reload", process, log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert "lifecycled stopped" in text and "Traceback" not in text, text[-3000:]


def test_the_quickstart_as_written(installed: Path, world: Path, triton_factory: Any,
                                   servers: Any) -> None:
    """The getting-started page's commands, run as written but for the names of this machine's
    Triton, Prometheus, folder and port: `init` for my Triton and Prometheus, `check-config
    --probe`, `run`, and Prometheus scraping it with the job init wrote, which is the one the
    README shows: up is 1 and the registry is there. A version nobody registered is staging."""
    server = triton_factory()
    source = servers("prometheus", {"scrape_configs": []})  # the Prometheus lifecycled reads
    folder = world / "etc"
    port = triton.free_port()
    names = {"/opt/lifecycled/venv": str(installed.parent), "/etc/lifecycled": str(folder),
             "http://triton.internal:8000": server.url,
             "http://triton.internal:8002/metrics":
                 f"http://127.0.0.1:{server.metrics_port}/metrics",
             "http://prometheus.internal:9090": f"http://127.0.0.1:{source.port}",
             "127.0.0.1:9877": f"127.0.0.1:{port}"}

    def here(command: str) -> str:
        for name, value in names.items():
            command = command.replace(name, value)
        return command

    export, init, check, run = quickstart()[1:]
    assert run.startswith("lifecycled run "), run
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "XDG_STATE_HOME": str(world / "state")}
    setup = subprocess.run(["bash", "-c", "set -e\n" + "\n".join(map(here, (export, init)))],
                           capture_output=True, text=True, timeout=120, env=env)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert (folder / "shipped" / "config" / "systemd" / "lifecycled.service").is_file()
    assert (folder / "shipped" / "alerting" / "rules" / "lifecycled.yml").is_file()
    assert (folder / "shipped" / "grafana" / "dashboards" / "lifecycled-overview.json").is_file()
    again = subprocess.run(["bash", "-c", here(f"{export}\n{init}")], capture_output=True,
                           text=True, timeout=120, env=env)
    assert again.returncode == 2 and "exists; --force replaces" in again.stderr
    probe = subprocess.run(["bash", "-c", here(f"{export}\n{check}")], capture_output=True,
                           text=True, timeout=120, env=env)
    assert probe.returncode == 0, probe.stdout + probe.stderr
    assert probe.stdout.count("  ok   ") == 3 and "FAIL" not in probe.stdout, probe.stdout
    scrape = yaml.safe_load((folder / "prometheus-scrape.yml").read_text())
    shown = re.search(r"```yaml\n(- job_name: lifecycled\n.*?)```", README.read_text(), re.S)
    assert shown is not None and yaml.safe_load(here(shown[1])) == scrape
    log = world / "quickstart-run.log"
    with log.open("wb") as out:
        process = subprocess.Popen(["bash", "-c", here(f"{export}\nexec {run}")], stdout=out,
                                   stderr=subprocess.STDOUT, env=env, cwd=world)
    try:
        prometheus = servers("prometheus", {"scrape_configs": scrape})

        def query(expr: str) -> list[Any]:
            reply = _get(f"http://127.0.0.1:{prometheus.port}/api/v1/query?query={expr}")
            return reply.json()["data"]["result"] if reply is not None and reply.ok else []

        _poll(lambda: [r for r in query('up{job="lifecycled"}') if r["value"][1] == "1"],
              "Prometheus to scrape lifecycled", process, log, timeout=120)
        staged = _poll(lambda: query('lifecycled_model_status{model="credit_scoring",'
                                     'status="staging"} == 1'),
                       "the discovered model in Prometheus", process, log, timeout=120)
        assert staged[0]["metric"]["job"] == "lifecycled"
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    assert code == 0, log.read_text()[-3000:]
