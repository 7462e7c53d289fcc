"""What every job receives: settings, store, clock and an HTTP session (all injected)."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

from lifecycled.settings import Settings
from lifecycled.store import Store

log = logging.getLogger(__name__)


@dataclass
class JobContext:
    settings: Settings
    store: Store
    clock: Callable[[], float] = time.time
    session: requests.Session = field(default_factory=requests.Session)
    jitter_source: random.Random = field(default_factory=random.Random)

    @property
    def state_dir(self) -> Path:
        return self.store.path.parent

    def source_down(self, source: str, error: Exception, now: float) -> str:
        """Record (and log once) that ``source`` failed in this pass; return the error text."""
        from lifecycled.store.serving import record_source

        log.warning("source down source=%s error=%s", source, error)
        with self.store.write() as conn:
            record_source(conn, source, ok=False, now=now, error=str(error))
        return str(error)
