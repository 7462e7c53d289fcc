"""This daemon's part among replicas sharing one store.

On PostgreSQL any number of daemons may share the store. One of them holds the leader lease
(``store.cluster``) and runs the fleet-wide tasks (discovery, updates, retirement,
housekeeping), each under the lease's fencing epoch; the others stand by, ready to take the lease
when it runs out. Every replica delivers webhooks, claiming each due delivery for itself first,
and runs its share of the per-model work, claiming each item for itself (``Context.share``,
``Context.claimed``): collect by groups of endpoints, evaluate by buckets of models, drift and
quality by model; so the replicas share that work and a dead replica's claims are taken over when
they run out.

On SQLite there is one daemon per state file: a second one is refused at start (an exclusive lock
on a file beside the database), because WAL does not work over network filesystems and two
daemons on one file would each act for the fleet.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import functools
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from lifecycled import __version__
from lifecycled.errors import StoreError
from lifecycled.settings import Settings
from lifecycled.store import Store
from lifecycled.store.cluster import Replica, acquire, check_leader, heartbeat, release, stopped
from lifecycled.store.core import Fenced

log = logging.getLogger(__name__)
# tasks every replica runs: webhook delivery (each delivery claimed), and the per-model work
# (each part claimed: ``Context.share``, ``Context.claimed``); the others run on the leader only
EVERY_REPLICA = frozenset({"deliver", "collect", "evaluate", "drift", "quality"})


class Replication:
    """The lease loop of one daemon: ``start``, then ``is_leader``/``fence`` from the tasks,
    ``stop`` at shutdown. ``on_change`` is called when this replica gains or loses the lease."""

    def __init__(self, store: Store, settings: Settings, *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.clustered = store.several_replicas
        self.name = settings.daemon.replica or socket.gethostname()
        # unique per process: a restarted replica is a new holder, which waits out the lease of
        # the process it replaces instead of assuming it
        self.holder = f"{self.name}/{os.getpid()}/{secrets.token_hex(3)}"
        self.ttl = settings.daemon.leader_lease
        self.monotonic = monotonic
        self.on_change: list[Callable[[], None]] = []
        self.epoch: int | None = None
        self.acquisitions = 0  # times this replica became leader
        self.takeovers = 0  # of those, from a replica whose lease had run out
        self.claims_taken_over = 0  # outbox claims of another replica taken once they ran out
        # the same, of the per-model work, per task (the context counts them as it claims)
        self.work_taken_over: collections.Counter[str] = collections.Counter(
            dict.fromkeys(sorted(EVERY_REPLICA - {"deliver"}), 0))
        self.last_error = ""
        self._leading = False  # as of the last tick
        self._valid_until = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock_file: Any = None

    # -- start and stop ---------------------------------------------------------------------------

    def start(self) -> None:
        """SQLite: take the one-daemon lock (StoreError if another daemon has it). PostgreSQL:
        announce this replica, try for the lease once, then keep trying in a thread."""
        if not self.clustered:
            self._lock_sqlite()
            return
        self.tick()
        self._thread = threading.Thread(target=self._loop, name="lease", daemon=True)
        self._thread.start()

    def _lock_sqlite(self) -> None:
        path = self.store.path
        if path is None:
            return
        lock = path.with_name(path.name + ".daemon.lock")
        handle = lock.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            who = handle.read().strip() or "another process"
            handle.close()
            raise StoreError(
                f"another lifecycled ({who}) runs on {path}: a SQLite state store serves one "
                f"daemon; for several replicas use a PostgreSQL state_url "
                f"(docs/replicas.md)") from None
        handle.truncate(0)
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        self._lock_file = handle

    def stop(self) -> None:
        """Stop renewing and give the lease up, so another replica takes it at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.clustered:
            was_leader = self.is_leader()
            self.epoch = None
            try:
                if was_leader and release(self.store, self.holder):
                    log.info("leader lease released replica=%s", self.name)
                stopped(self.store, self.holder)
            except StoreError as exc:
                log.error("cannot release the leader lease replica=%s error=%s", self.name, exc)
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    # -- the lease --------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            self.tick()

    def tick(self) -> None:
        """Announce this replica and take or renew the lease; never raises."""
        was = self._leading
        started = self.monotonic()
        try:
            heartbeat(self.store, Replica(self.holder, self.name, socket.gethostname(),
                                          os.getpid(), __version__, 0.0, 0.0, None))
            got = acquire(self.store, self.holder, self.ttl)
            self.last_error = ""
        except StoreError as exc:  # the database is unreachable: the lease runs out on its own
            got = None
            if self.last_error != str(exc):
                log.error("cannot renew the leader lease replica=%s error=%s", self.name, exc)
            self.last_error = str(exc)
            if self.epoch is not None and self.monotonic() < self._valid_until:
                return  # still ours until it runs out; try again next tick
        if got is None:
            self.epoch = None
        else:
            if self.epoch != got.epoch:
                self.acquisitions += 1
                if got.taken_from:
                    self.takeovers += 1
                log.info("leader lease acquired replica=%s epoch=%d taken_from=%s", self.name,
                         got.epoch, got.taken_from or "-")
            self.epoch = got.epoch
            # counted from before the call: the database's ``until`` is at least this late
            self._valid_until = started + self.ttl
        now = self._leading = self.is_leader()
        if was and not now:
            log.warning("leader lease lost replica=%s", self.name)
        if was != now:
            for listener in self.on_change:
                listener()

    def is_leader(self) -> bool:
        """Whether this daemon runs the fleet-wide tasks now (always, on SQLite)."""
        if not self.clustered:
            return True
        return self.epoch is not None and self.monotonic() < self._valid_until

    def runs(self, task: str) -> bool:
        return task in EVERY_REPLICA or self.is_leader()

    @contextlib.contextmanager
    def fence(self, task: str) -> Iterator[None]:
        """Run a fleet-wide task's writes under the lease's epoch (nothing to fence on SQLite or
        for tasks every replica runs)."""
        epoch = self.epoch
        if not self.clustered or task in EVERY_REPLICA:
            yield
            return
        if epoch is None:  # lost between the check and the start: nothing may run unfenced
            raise Fenced(f"{self.holder} lost the leader lease before {task} started")
        with self.store.fenced(functools.partial(check_leader, holder=self.holder, epoch=epoch,
                                                 share=self.store.engine.share_rows)):
            yield

    def claim(self) -> str | None:
        """The holder name outbox claims are made under (None on SQLite: nothing to share)."""
        return self.holder if self.clustered else None

    def state(self) -> dict[str, Any] | None:
        """What the exporter shows of this replica (None on SQLite)."""
        if not self.clustered:
            return None
        return {"replica": self.name, "holder": self.holder, "leader": self.is_leader(),
                "epoch": self.epoch, "acquisitions": self.acquisitions,
                "takeovers": self.takeovers, "claims_taken_over": self.claims_taken_over,
                "work_taken_over": dict(self.work_taken_over)}
