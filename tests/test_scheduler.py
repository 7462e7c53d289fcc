"""The runtime in-process: failing jobs are counted and never stop the others; readiness;
configuration reload."""

from __future__ import annotations

from pathlib import Path

import yaml
from lifecycled.config import load_settings
from lifecycled.context import Context
from lifecycled.exporter import LifecycleCollector
from lifecycled.scheduler import Runtime
from lifecycled.store import open_store
from lifecycled.store.serving import job_runs
from prometheus_client import CollectorRegistry, generate_latest

from tests.helpers import Clock, write_config


def runtime(tmp_path: Path, jobs: dict[str, object], clock: Clock | None = None) -> Runtime:
    config = write_config(tmp_path / "cfg")
    ctx = Context(load_settings(config), open_store("sqlite:///s.db", tmp_path),
                     clock=clock or Clock(1000.0))
    return Runtime(ctx, config, jobs=jobs)  # type: ignore[arg-type]


def test_a_job_that_raises_is_counted_and_the_others_run(tmp_path: Path) -> None:
    ran: list[str] = []

    def boom(ctx: Context) -> None:
        raise ZeroDivisionError("bug")

    rt = runtime(tmp_path, {"discovery": boom, "collect": lambda ctx: ran.append("collect")})
    assert rt.run_once() == 1
    assert ran == ["collect"]
    assert rt.run_once() == 1  # and it runs again next time
    runs = {j.job: j for j in job_runs(rt.ctx.store)}
    assert (runs["discovery"].runs, runs["discovery"].failures) == (2, 2)
    assert runs["discovery"].last_error == "ZeroDivisionError: bug"
    assert (runs["collect"].runs, runs["collect"].failures) == (2, 0)
    registry = CollectorRegistry()
    registry.register(LifecycleCollector(rt.ctx.store))
    text = generate_latest(registry).decode()
    assert 'lifecycled_task_failures_total{task="discovery"} 2.0' in text
    assert 'lifecycled_task_failures_total{task="collect"} 0.0' in text


def test_readiness_names_stale_jobs(tmp_path: Path) -> None:
    clock = Clock(1000.0)
    rt = runtime(tmp_path, {"discovery": lambda ctx: None}, clock)
    rt.start_scheduler()
    try:
        ok, detail = rt.readiness()
        assert ok and detail["stale_jobs"] == {}  # just started: not stale yet
        clock.now += 3 * rt.ctx.settings.schedule.discovery + 1
        ok, detail = rt.readiness()
        assert not ok and set(detail["stale_jobs"]) == {"discovery"}
        rt.run_job("discovery")
        assert rt.readiness()[0]
    finally:
        rt.shutdown(grace=5)
    assert not rt.readiness()[0]  # the scheduler is no longer running


def test_reload_keeps_the_old_configuration_when_the_new_one_is_broken(tmp_path: Path) -> None:
    rt = runtime(tmp_path, {"discovery": lambda ctx: None})
    path = rt.config_path
    assert path is not None
    data = yaml.safe_load(path.read_text())
    path.write_text("schedule: {discovery: soon}\n")
    assert rt.reload() is False
    assert rt.ctx.settings.schedule.discovery == 60
    data["schedule"] = {"discovery": "2m"}
    path.write_text(yaml.safe_dump(data))
    assert rt.reload() is True
    assert rt.ctx.settings.schedule.discovery == 120


def test_delivery_runs_first_after_a_start(tmp_path: Path) -> None:
    """The tasks start one second apart in the order of a pass, which put `deliver` 7 s after a
    start: events written before a restart waited. It goes first now."""
    from apscheduler.schedulers.background import BackgroundScheduler
    from lifecycled.tasks.registry import TASKS

    rt = runtime(tmp_path, dict(TASKS))
    scheduler = BackgroundScheduler()  # not started: the first runs as planned, none yet run
    rt._add_jobs(scheduler, rt.ctx.settings)
    jobs = {job.id: job.next_run_time for job in scheduler.get_jobs() if job.id != "heartbeat"}
    assert sorted(jobs, key=lambda name: jobs[name])[0] == "deliver"
    assert rt.start_order()[0] == "deliver" and rt.start_order()[1:] == [
        name for name in TASKS if name != "deliver"]


SECOND_SIGNAL = """
import os, signal, sys, threading
from pathlib import Path
from lifecycled.context import Context
from lifecycled.scheduler import Runtime
from lifecycled.settings import Settings
from lifecycled.store import open_store

runtime = Runtime(Context(Settings(), open_store("sqlite:///s.db", Path(sys.argv[1]))), jobs={})
with runtime.signals():
    os.kill(os.getpid(), signal.SIGTERM)  # the first asks to stop ...
    assert runtime.stop_event.wait(5)
    print("stopping", flush=True)
    os.kill(os.getpid(), signal.SIGTERM)  # ... a second one, while stopping, exits at once
    threading.Event().wait(30)  # a shutdown that would hang
print("not reached")
"""


def test_signals_are_restored_and_a_second_one_forces_exit(tmp_path: Path) -> None:
    """The handlers were overwritten for good and a second SIGTERM did nothing while a
    shutdown hung: now the previous handlers come back after the block, and a second SIGTERM
    or SIGINT while stopping exits at once with EXIT_FORCED."""
    import signal
    import subprocess
    import sys

    from lifecycled.scheduler import EXIT_FORCED

    rt = runtime(tmp_path, {})
    before = {n: signal.getsignal(n) for n in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    with rt.signals():
        assert all(signal.getsignal(n) is not h for n, h in before.items())
        signal.raise_signal(signal.SIGHUP)
        assert rt.reload_requested.is_set()
    assert {n: signal.getsignal(n) for n in before} == before
    done = subprocess.run([sys.executable, "-c", SECOND_SIGNAL, str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (EXIT_FORCED, "stopping\n"), done.stderr
    assert "SIGTERM again while stopping: exiting now" in done.stderr


def test_a_reload_swaps_the_context_and_a_running_job_keeps_the_one_it_began_with(
        tmp_path: Path) -> None:
    """Reload changed the live settings in place: a pass running at that moment read half of
    its models under the old configuration and half under the new. The reload builds a new
    context (the same store, session and clients) and swaps one reference."""
    import threading

    started, release = threading.Event(), threading.Event()
    seen: list[tuple[int, float]] = []

    def long_pass(ctx: Context) -> None:
        seen.append((id(ctx), ctx.settings.schedule.discovery))
        started.set()
        assert release.wait(30)
        seen.append((id(ctx), ctx.settings.schedule.discovery))

    rt = runtime(tmp_path, {"discovery": long_pass})
    before = rt.ctx
    path = rt.config_path
    assert path is not None
    running = threading.Thread(target=rt.run_job, args=("discovery",))
    running.start()
    assert started.wait(30)
    data = yaml.safe_load(path.read_text())
    data["schedule"] = {"discovery": "2m"}
    path.write_text(yaml.safe_dump(data))
    assert rt.reload() is True
    release.set()
    running.join(30)
    assert seen == [(id(before), 60), (id(before), 60)]  # one configuration for the whole pass
    assert before.settings.schedule.discovery == 60  # the old context is left as it was
    assert rt.ctx is not before and rt.ctx.settings.schedule.discovery == 120
    assert rt.ctx.store is before.store and rt.ctx.session is before.session
    assert rt.ctx.claim_as == before.claim_as
    seen.clear()
    release.set()
    rt.run_job("discovery")
    assert seen[0] == (id(rt.ctx), 120)
