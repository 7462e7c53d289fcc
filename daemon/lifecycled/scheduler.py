"""The daemon's run loop: APScheduler 3.x jobs, signals, readiness, systemd notify and watchdog.

Start-up: store -> HTTP listener -> scheduler -> READY=1. The main thread waits on a stop event;
signal handlers only set flags. Shutdown runs in reverse: stop scheduling, let running jobs finish
within the grace, close the listener, close the store.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from lifecycled.config import load_settings
from lifecycled.context import Context
from lifecycled.errors import ConfigError, LifecycledError, StoreError
from lifecycled.net import interrupt_all
from lifecycled.notify import Notifier
from lifecycled.registration import warn_threshold_differences
from lifecycled.replica import Replication
from lifecycled.settings import Settings
from lifecycled.store.serving import job_runs, record_job_run
from lifecycled.tasks.registry import TASKS, Task

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 5.0
EXIT_FORCED = 2  # a second SIGTERM or SIGINT while stopping: exit at once
STALE_INTERVALS = 3


class Runtime:
    """Runs the jobs (once, or on a schedule) against one store with the current settings."""

    def __init__(self, ctx: Context, config_path: Path | None = None,
                 notifier: Notifier | None = None,
                 monotonic: Callable[[], float] = time.monotonic,
                 jobs: Mapping[str, Task] = TASKS,
                 replication: Replication | None = None) -> None:
        self.ctx = ctx
        self.replication = replication or Replication(ctx.store, ctx.settings)
        ctx.claim_as = self.replication.claim()
        ctx.work_taken_over = self.replication.work_taken_over  # counted there, exported here
        self.jobs = jobs
        self.config_path = config_path
        self.notifier = notifier or Notifier({})
        self.monotonic = monotonic
        self.stop_event = threading.Event()
        self.reload_requested = threading.Event()
        self.scheduler: BackgroundScheduler | None = None
        self.started_at = ctx.clock()
        self.last_beat = monotonic()
        self._running: dict[str, int] = {}
        self._running_lock = threading.Condition()
        self.after_run: list[Callable[[], None]] = []  # called after each job run and reload

    # -- one run of one job -------------------------------------------------------------------

    def run_job(self, name: str) -> bool:
        """Run job ``name``; a job that raises is logged once with its traceback and counted.
        Among several replicas a fleet-wide job runs on the leader only, under its lease."""
        if not self.replication.runs(name):
            return True  # a standby: the leader runs it
        with self._running_lock:
            self._running[name] = self._running.get(name, 0) + 1
        ctx = self.ctx  # the whole run on one configuration: a reload swaps in a new context
        started, clock = ctx.clock(), self.monotonic()
        error: str | None = None
        try:
            with self.replication.fence(name):
                report = self.jobs[name](ctx)
            if isinstance(report, dict) and report.get("taken_over"):
                self.replication.claims_taken_over += int(report["taken_over"])
        except LifecycledError as exc:  # an expected failure (a source down): no traceback
            error = str(exc)
            log.error("job failed job=%s error=%s", name, exc)
        except Exception as exc:  # the job boundary: a bug is logged and counted, never fatal
            error = f"{type(exc).__name__}: {exc}"
            log.exception("job failed job=%s", name)
        finally:
            ctx.store.unfence()
            with self._running_lock:
                self._running[name] -= 1
                self._running_lock.notify_all()
        try:
            record_job_run(ctx.store, name, started=started,
                           duration=self.monotonic() - clock, error=error)
        except StoreError as exc:  # a full disk, a read-only file: one line, the next run retries
            log.error("cannot record job run job=%s error=%s", name, exc)
        except Exception:  # a bug: logged with its traceback; the next run tries again
            log.exception("cannot record job run job=%s", name)
        self._changed()
        return error is None

    def _changed(self) -> None:
        for listener in self.after_run:
            listener()

    def run_once(self) -> int:
        """Each job once, in order: 0 when all succeeded, else 1."""
        if not self.replication.is_leader():
            log.warning("another replica holds the leader lease: only %s run here",
                        ", ".join(sorted(n for n in self.jobs if self.replication.runs(n))))
        results = [self.run_job(name) for name in self.jobs]
        return 0 if all(results) else 1

    # -- readiness ----------------------------------------------------------------------------

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Store reachable, scheduler running, each job succeeded within 3 of its intervals."""
        detail: dict[str, Any] = {"store": "ok", "scheduler": "running", "stale_jobs": {}}
        problem = self.ctx.store.unreachable()
        if problem is not None:  # a stopped database: say so now, not after the pool's wait
            return False, {"store": f"unreachable: {problem}"}
        try:
            runs = {j.job: j for j in job_runs(self.ctx.store)}
        except StoreError as exc:
            return False, {"store": f"unreachable: {exc}"}
        ok = True
        if self.ctx.store.write_error:  # e.g. a full disk: reads work, nothing can be recorded
            detail["store"] = f"not writable: {self.ctx.store.write_error}"
            ok = False
        if self.scheduler is None or not self.scheduler.running:
            detail["scheduler"] = "not running"
            ok = False
        if self.replication.clustered:
            detail["role"] = "leader" if self.replication.is_leader() else "standby"
            if self.replication.last_error:
                detail["lease"] = f"cannot renew: {self.replication.last_error}"
        now = self.ctx.clock()
        for offset, name in enumerate(self.start_order()):
            if not self.replication.runs(name):
                continue  # the leader's to run; its staleness shows on the leader
            limit = STALE_INTERVALS * getattr(self.ctx.settings.schedule, name)
            run = runs.get(name)
            last = run.last_success if run and run.last_success else None
            # never run yet: counted from its first run, which starts are staggered by a second
            reference = last if last is not None else self.started_at + offset
            if now - reference > limit:
                detail["stale_jobs"][name] = {
                    "last_success": last, "limit_seconds": limit,
                    "last_error": run.last_error if run else ""}
                ok = False
        return ok, detail

    # -- the scheduled daemon -----------------------------------------------------------------

    def start_order(self) -> list[str]:
        """The tasks' first runs, one second apart: delivery first (events written before a
        restart go out at once; it was 7 s late), then the order of a pass."""
        return sorted(self.jobs, key=lambda name: name != "deliver")

    def _add_jobs(self, scheduler: BackgroundScheduler, settings: Settings) -> None:
        start = dt.datetime.now(dt.UTC)
        for offset, name in enumerate(self.start_order()):  # readiness relies on the offsets
            interval = getattr(settings.schedule, name)
            scheduler.add_job(
                self.run_job, "interval", args=[name], id=name, name=name, seconds=interval,
                jitter=min(interval * 0.1, 30.0), max_instances=1, coalesce=True,
                misfire_grace_time=max(1, int(interval / 2)), replace_existing=True,
                next_run_time=start + dt.timedelta(seconds=offset))
        scheduler.add_job(self._beat, "interval", id="heartbeat", seconds=HEARTBEAT_SECONDS,
                          max_instances=1, coalesce=True, misfire_grace_time=int(HEARTBEAT_SECONDS),
                          replace_existing=True, next_run_time=start)

    def _beat(self) -> None:
        self.last_beat = self.monotonic()

    def start_scheduler(self) -> None:
        scheduler = BackgroundScheduler(timezone=dt.UTC,
                                        executors={"default": {"type": "threadpool",
                                                               "max_workers": len(self.jobs) + 1}})
        self._add_jobs(scheduler, self.ctx.settings)
        scheduler.start()
        self.scheduler = scheduler

    @contextlib.contextmanager
    def signals(self) -> Iterator[None]:
        """SIGTERM and SIGINT stop the daemon (a second one while it stops exits at once, with
        ``EXIT_FORCED``: a stuck shutdown must not need kill -9), SIGHUP reloads; the handlers
        that were there before are put back when the block ends."""
        def stop(number: int, _frame: object) -> None:
            if self.stop_event.is_set():
                log.error("%s again while stopping: exiting now",
                          signal.Signals(number).name)
                logging.shutdown()
                os._exit(EXIT_FORCED)
            self.stop_event.set()

        handlers: dict[int, Any] = {signal.SIGTERM: stop, signal.SIGINT: stop,
                                    signal.SIGHUP: lambda *_: self.reload_requested.set()}
        previous = {number: signal.signal(number, handler) for number, handler in handlers.items()}
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    def wait(self) -> None:
        """Main loop: wait for the stop flag; reload on SIGHUP; ping the watchdog on heartbeats."""
        watchdog = self.notifier.watchdog_seconds
        tick = min(watchdog / 2, HEARTBEAT_SECONDS) if watchdog else HEARTBEAT_SECONDS
        while not self.stop_event.wait(tick):
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                self.reload()
            alive = self.monotonic() - self.last_beat < 3 * HEARTBEAT_SECONDS
            if watchdog and alive:
                self.notifier.watchdog()
            elif watchdog:
                log.error("scheduler heartbeat missing; not pinging the watchdog")

    def reload(self) -> bool:
        """Re-read the configuration; on any problem keep the running one and say why."""
        if self.config_path is None:
            return False
        try:
            settings = load_settings(self.config_path)
        except ConfigError as exc:
            log.error("reload refused, keeping the running configuration: %s", exc)
            self.notifier.status("reload refused: configuration invalid")
            return False
        except Exception:  # a bug in loading must not end the daemon that is running fine
            log.exception("reload refused, keeping the running configuration")
            self.notifier.status("reload refused: configuration unreadable")
            return False
        old = self.ctx.settings
        for key in ("listen", "state_url", "tls", "state_password_file", "state_password_env",
                    "state_pool_size", "replica", "leader_lease"):
            if getattr(settings.daemon, key) != getattr(old.daemon, key):
                log.warning("reload: daemon.%s changed; it applies after a restart", key)
        # a new context over the same store, session and clients, swapped in one reference: a
        # job already running finishes on the configuration it began with
        self.ctx = dataclasses.replace(self.ctx, settings=settings)
        self.ctx.store.subscriptions = settings.subscriptions()
        warn_threshold_differences(settings, self.ctx.store)
        if self.scheduler is not None:
            for name in self.jobs:
                interval = getattr(settings.schedule, name)
                if interval != getattr(old.schedule, name):
                    self.scheduler.reschedule_job(name, trigger="interval", seconds=interval,
                                                  jitter=min(interval * 0.1, 30.0))
        log.info("configuration reloaded path=%s", self.config_path)
        self.notifier.status("running (configuration reloaded)")
        self._changed()
        return True

    def shutdown(self, grace: float) -> bool:
        """Stop scheduling and wait up to ``grace`` seconds for running jobs; True if all ended."""
        self.notifier.stopping()
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.pause()
        interrupted = interrupt_all()  # calls waiting on a slow server end now, not at the grace
        if interrupted:
            log.info("shutdown interrupted %d outbound call(s) in flight", interrupted)
        deadline = self.monotonic() + grace
        with self._running_lock:
            while any(self._running.values()):
                left = deadline - self.monotonic()
                if left <= 0:
                    break
                self._running_lock.wait(left)
            busy = sorted(name for name, n in self._running.items() if n)
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if busy:
            log.error("jobs still running after %.0fs grace: %s", grace, ", ".join(busy))
            return False
        return True
