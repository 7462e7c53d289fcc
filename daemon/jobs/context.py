"""What every job receives: settings, store, clock and an HTTP session (all injected)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

from daemon.config import Settings
from daemon.store import Store


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
