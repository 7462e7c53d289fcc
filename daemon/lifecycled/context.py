"""What every task and action receives, built by the composition root (``lifecycled.app``): the
settings, the store, the clock, the environment, an HTTP session, the client factories and the
reader of the drift checks' files.

No task or action constructs a client or reads ``os.environ``: they ask the context, so a test
hands in its own clock, environment or clients. ``source(name)`` records a source's health once
per call: up when the block ends normally, down (and logged) when it raises SourceError.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import requests

from lifecycled.errors import ConfigError, SourceError
from lifecycled.net import DeadlineSession
from lifecycled.secrets import read_secret
from lifecycled.settings import PrometheusSettings, Settings, TritonEndpoint
from lifecycled.sources.prometheus import PrometheusSource
from lifecycled.sources.reader import Reader
from lifecycled.sources.triton import TritonClient
from lifecycled.store import Store
from lifecycled.store.cluster import (
    check_items,
    claim_item,
    finish_items,
    release_items,
    replicas,
)
from lifecycled.store.serving import record_source

log = logging.getLogger(__name__)

TritonFactory = Callable[[TritonEndpoint], TritonClient]
ItemT = TypeVar("ItemT")
# how long a replica may work on one claimed item (a model's drift check) before another may take
# it over, in leader leases: a dead replica's items are retried after this
WORK_LEASES = 10
PrometheusFactory = Callable[[PrometheusSettings, "str | None"], PrometheusSource]


class SourceCall:
    """``with ctx.source("prometheus") as call:`` -- a SourceError inside the block is recorded
    (source down), logged and swallowed; ``call.error`` then holds its text. A block that ends
    normally records the source up. Other exceptions pass through unrecorded."""

    def __init__(self, ctx: Context, name: str) -> None:
        self.ctx, self.name = ctx, name
        self.error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None

    def __enter__(self) -> SourceCall:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        if exc is not None and not isinstance(exc, SourceError):
            return False
        now = self.ctx.clock()
        if exc is not None:
            self.error = str(exc)
            log.warning("source down source=%s error=%s", self.name, exc)
        with self.ctx.store.write() as conn:
            record_source(conn, self.name, ok=exc is None, now=now, error=self.error or "")
        return True


def _own_key(item: object) -> list[str]:
    return [str(item)]


@dataclass
class Context:
    settings: Settings
    store: Store
    clock: Callable[[], float] = time.time
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    session: requests.Session = field(default_factory=DeadlineSession)  # total deadlines
    jitter_source: random.Random = field(default_factory=random.Random)
    triton_factory: TritonFactory = TritonClient
    prometheus_factory: PrometheusFactory = PrometheusSource
    reader: Reader = field(default_factory=Reader)  # the drift checks' file reads
    # several replicas: the name this daemon claims outbox deliveries under (None: one daemon)
    claim_as: str | None = None
    # per task, the items taken over from a replica whose claim had run out
    work_taken_over: collections.Counter[str] = field(default_factory=collections.Counter)

    @property
    def state_dir(self) -> Path:
        return self.store.folder

    def source(self, name: str) -> SourceCall:
        """A block that reads source ``name``; see SourceCall."""
        return SourceCall(self, name)

    def share(self, task: str, items: Sequence[ItemT], *, hold: float) -> Iterator[ItemT]:
        """The items of ``task`` this daemon works on in this pass, each while the caller's loop
        body runs. Alone: every item. Among replicas: the items it claims, at most its fair
        share (the items over the replicas alive), each worked on under a fence on its claim
        and marked done afterwards, which holds it for ``hold`` seconds (the task's interval,
        less a margin); so across replicas each item is done once per interval, the replicas
        split the work, and the items of a replica that died are taken over when its claim runs
        out."""
        holder = self.claim_as
        if holder is None:
            yield from items
            return
        for item, keys in self._claim(task, items, holder, _own_key):
            with self.store.fenced(functools.partial(check_items, task=task, items=keys,
                                                     holder=holder)):
                yield item
            finish_items(self.store, task, keys, holder, hold=hold)

    @contextlib.contextmanager
    def claimed(self, task: str, items: Sequence[ItemT], *, hold: float,
                keys: Callable[[ItemT], Sequence[str]] | None = None) -> Iterator[list[ItemT]]:
        """``share``, for work done on its items together: the block receives the items this
        daemon claimed (alone: every item), all its writes are fenced on every one of those
        claims, and they are marked done when it ends. ``keys`` names what an item claims (by
        default its ``str``): an item is won only when all of its keys are, so two items that
        share a key are never worked on at once."""
        holder = self.claim_as
        if holder is None:
            yield list(items)
            return
        won = list(self._claim(task, items, holder, keys or _own_key))
        held = [key for _, item_keys in won for key in item_keys]
        if not held:
            yield []
            return
        with self.store.fenced(functools.partial(check_items, task=task, items=held,
                                                 holder=holder)):
            yield [item for item, _ in won]
        finish_items(self.store, task, held, holder, hold=hold)

    def _claim(self, task: str, items: Sequence[ItemT], holder: str,
               keys: Callable[[ItemT], Sequence[str]]) -> Iterator[tuple[ItemT, list[str]]]:
        """Claim the items one after the other, up to the fair share, yielding those won with
        their keys. An item whose keys are won only in part gives back the ones it won."""
        lease = self.settings.daemon.leader_lease
        alive = max(1, len(replicas(self.store, seen_within=3 * lease)))
        share = -(-len(items) // alive)
        taken = 0
        for item in items:
            if taken >= share:
                return
            won: list[str] = []
            for key in keys(item):
                claim = claim_item(self.store, task, key, holder, ttl=WORK_LEASES * lease)
                if not claim.mine:
                    break
                won.append(key)
                if claim.taken_from:
                    self.work_taken_over[task] += 1
                    log.info("took over task=%s item=%s from=%s", task, key, claim.taken_from)
            else:
                taken += 1
                yield item, won
                continue
            if won:
                release_items(self.store, task, won, holder)

    def secret(self, file: str | None, env: str | None, what: str) -> str:
        """A secret from its file or environment variable (ConfigError when unavailable)."""
        return read_secret(file, env, self.environ, what=what)

    def triton(self, endpoint: TritonEndpoint) -> TritonClient:
        """A fresh KServe v2 client for ``endpoint`` (use it as a context manager)."""
        return self.triton_factory(endpoint)

    def prometheus(self) -> PrometheusSource:
        """A Prometheus client for ``sources.prometheus`` (use it for one pass, then close it)."""
        settings = self.settings.sources.prometheus
        if settings is None:
            raise SourceError("prometheus", "sources.prometheus is not configured")
        password = None
        if settings.basic_auth is not None:
            try:
                password = self.secret(settings.basic_auth.password_file,
                                       settings.basic_auth.password_env,
                                       "sources.prometheus.basic_auth.password")
            except ConfigError as exc:
                raise SourceError("prometheus", str(exc)) from exc
        return self.prometheus_factory(settings, password)
