"""kill -9 of a real ``lifecycled retire`` process at each step of a retirement plan, on SQLite and
on PostgreSQL, both after a step's work but before it is recorded (its transaction is open) and
right after it is recorded. A second, normal run completes the plan and nothing is done twice.

The process kills itself with SIGKILL at the chosen point: a small driver replaces the step (or
the function that records it) before calling the real CLI. Nothing else is changed, so what dies
is the real program, with no cleanup, its lease and an open transaction left behind (a SQLite
file's lock, or a PostgreSQL connection that the server sees drop).
Without Triton here: tests/integration/test_retirement_triton.py kills the stop-traffic step
after a real unload.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lifecycled.actions.retire import STEPS
from lifecycled.domain import HistoryKind, ModelRef, ModelSpec, Status
from lifecycled.store.retirement import latest_plan
from lifecycled.store.serving import add_snapshot, snapshots

from tests.helpers import ROOT, write_config
from tests.stores import open_test_store, store_url

OLD = ModelRef("legacy_score", "1")

DRIVER = """
import os, signal, sys
import lifecycled.actions.retire as retire
from lifecycled.cli import main

target, phase = sys.argv[1], sys.argv[2]

def die():
    os.kill(os.getpid(), signal.SIGKILL)

if phase == "before_record":  # the step's work is done, its record not yet committed
    record = retire.mark_step_in
    def mark(conn, plan, step, state, *rest):
        if step == target and state == "done":
            die()
        return record(conn, plan, step, state, *rest)
    retire.mark_step_in = mark
else:  # the step is recorded
    run = retire.STEPS[target]
    def step(ctx, plan):
        run(ctx, plan)
        die()
    retire.STEPS[target] = step
sys.exit(main(sys.argv[3:]))
"""


def retire_command(config: Path, *driver_args: str, ref: ModelRef = OLD
                   ) -> subprocess.CompletedProcess[str]:
    """Run ``lifecycled retire`` (through the driver when ``driver_args`` name a kill point)."""
    cli = ["retire", str(ref), "--reason", "replaced", "--config", str(config)]
    argv = [sys.executable, "-c", DRIVER, *driver_args, *cli] if driver_args else \
        [sys.executable, "-m", "lifecycled", *cli]
    env = {k: v for k, v in os.environ.items() if k not in ("LIFECYCLED_CONFIG",
                                                             "STATE_DIRECTORY")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=config.parent,
                          timeout=120)


def prepare(tmp_path: Path) -> tuple[Path, Path]:
    """A config with its state (a SQLite file, or the test's PostgreSQL database), and a
    deprecated version with snapshots to retire."""
    state = tmp_path / "cfg" / "state"
    state.mkdir(parents=True)
    config = write_config(tmp_path / "cfg", {
        "daemon": {"state_url": store_url(state, "lifecycled.db")},
        "policies": {"retirement": {"backup_dir": str(state / "backups")}}}, models_d=False)
    store = open_test_store(state, "lifecycled.db")
    now = time.time()
    store.register(ModelSpec(OLD, owner_team="risk_ml", business_domain="credit_risk"),
                   Status.PRODUCTION, actor="t", reason="r", now=now - 86400)
    with store.write() as conn:
        for i in range(5):
            add_snapshot(conn, OLD, now - i * 60, {"requests_per_second": 0.0}, {"requests": 1})
    store.close()
    return config, state


def check_completed_once(state: Path, ref: ModelRef = OLD) -> None:
    """The plan is complete and each of its effects happened exactly once."""
    url = store_url(state, "lifecycled.db")
    if url.startswith("sqlite:"):
        with sqlite3.connect(state / "lifecycled.db") as raw:
            assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store = open_test_store(state, "lifecycled.db")
    try:
        with store.read() as conn:
            retired = conn.execute("SELECT COUNT(*) FROM events WHERE type = 'model.retired'")
            assert retired.fetchone()[0] == 1
        plan = latest_plan(store, ref)
        assert plan is not None and plan.state == "completed", plan
        assert [s["state"] for s in plan.steps] == ["done"] * len(STEPS)
        moves = [h.to_status for h in store.history(ref) if h.kind == HistoryKind.STATUS_CHANGED]
        assert moves == [Status.DEPRECATED, Status.RETIRED]
        assert store.get(ref).status == Status.RETIRED
        assert snapshots(store, ref) == []
    finally:
        store.close()
    (manifest,) = (state / "backups").glob("*/*/*/manifest.json")
    assert '"history.json"' in manifest.read_text()


@pytest.mark.usefixtures("both_engines")
@pytest.mark.parametrize("phase", ["before_record", "after_record"])
@pytest.mark.parametrize("step", list(STEPS))
@pytest.mark.slow
def test_kill_9_at_each_step_then_a_rerun_completes_it_once(tmp_path: Path, step: str,
                                                             phase: str) -> None:
    config, state = prepare(tmp_path)
    killed = retire_command(config, step, phase)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    store = open_test_store(state, "lifecycled.db")
    finished = list(STEPS)[:list(STEPS).index(step) + (phase == "after_record")]
    try:
        plan = latest_plan(store, OLD)
        assert plan is not None and plan.error == ""
        assert [s["name"] for s in plan.steps if s["state"] == "done"] == finished
        assert plan.state == ("completed" if finished == list(STEPS) else "running")
    finally:
        store.close()
    rerun = retire_command(config)  # at once: the dead runner's lease is taken over
    if finished == list(STEPS):  # killed after the last step: there is nothing left to do
        assert rerun.returncode == 2 and "already retired" in rerun.stderr, rerun.stderr
    else:
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    check_completed_once(state)


def test_only_a_runner_certainly_gone_loses_its_lease_early() -> None:
    from lifecycled.actions.retire import runner_alive, runner_token

    mine = runner_token()
    host, namespace, _pid, rest = mine.split("|")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: no process has this id now
    assert runner_alive(mine)
    assert not runner_alive(f"{host}|{namespace}|{child.pid}|{rest}")
    assert runner_alive(f"another-host|{namespace}|{child.pid}|{rest}")  # cannot tell: wait
    assert runner_alive(f"{host}|pid:[1]|{child.pid}|{rest}")  # another PID namespace
    assert runner_alive(f"{child.pid}-abcdef12")  # a token from an older version
