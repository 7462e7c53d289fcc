"""A comparison decides once across kill -9: 4 comparisons against a real Triton, the daemon
killed 5 times in each (4 times at a random moment of its life, then once just after the
decision, whenever the load lets it come) and started again; each comparison ends with one
decision, one history row and one webhook event, also after a daemon started on a decided
comparison has run its passes."""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from lifecycled.actions.compare import start_comparison
from lifecycled.config import parse_settings
from lifecycled.context import Context
from lifecycled.domain import ModelRef, Status
from lifecycled.store import open_store
from lifecycled.tasks.discovery import run_discovery

from devtools import triton
from tests.helpers import endpoint, wait_for, write_config
from tests.integration.test_compare import CHALLENGER, CHAMPION, two_versions
from tests.integration.test_daemon import Daemon


def traffic(server: triton.TritonServer, stop: threading.Event) -> None:
    rng = random.Random(3)
    while not stop.is_set():
        for version, failing in (("1", 0.01), ("2", 0.3)):
            row = [1e9 if rng.random() < failing else rng.random(), 0.1, 0.2, 0.3]
            triton.infer(server.url, "credit_scoring", [row], version=version)


def state_of(db: Path) -> tuple[str, int, int]:
    """(the comparison's state, the challenger's status moves, rollback events)."""
    with sqlite3.connect(db) as conn:
        state = conn.execute("SELECT state FROM comparisons").fetchone()[0]
        moves = conn.execute("SELECT COUNT(*) FROM history WHERE name = ? AND version = ? AND "
                             "kind = 'status_changed'", (CHALLENGER.name, CHALLENGER.version)).fetchone()[0]
        sent = conn.execute("SELECT COUNT(*) FROM events WHERE type = "
                            "'model.rollback_requested'").fetchone()[0]
    return state, moves, sent


def compare_passes(db: Path) -> int:
    """How many compare passes every daemon on the state file has run."""
    with sqlite3.connect(db) as conn:
        found = conn.execute("SELECT runs FROM job_runs WHERE job = 'compare'").fetchone()
    return int(found[0]) if found else 0


def test_each_comparison_decides_once_across_kill_9(triton_factory: Any, tmp_path: Path) -> None:
    server = two_versions(triton_factory)
    stop = threading.Event()
    sender = threading.Thread(target=traffic, args=(server, stop), daemon=True)
    sender.start()
    rng = random.Random(11)
    kills: list[bool] = []  # per kill: had the comparison decided by then?
    try:
        for cycle in range(4):
            folder = tmp_path / f"cycle-{cycle}"
            data = {"daemon": {"listen": f"127.0.0.1:{triton.free_port()}",
                               "state_url": f"sqlite:///{folder / 'state.db'}"},
                    "sources": {"triton": [endpoint("local", server)]},
                    "schedule": {"discovery": "1s", "compare": "1s", "collect": "1h",
                                 "quality": "1h", "evaluate": "1h", "drift": "1h",
                                 "traces": "1h", "updates": "1h", "retirement": "1h",
                                 "deliver": "1h", "housekeeping": "1h"},
                    "webhooks": {"router": {"url": "http://127.0.0.1:9/hooks",
                                            "secret_env": "ROUTER_SECRET"}},
                    "policies": {"compare": {"min_requests": 10**6}}}
            config = write_config(folder, data, models_d=False)
            environ = {"ROUTER_SECRET": "whsec_" + "A" * 44}
            ctx = Context(parse_settings(data), open_store(f"sqlite:///{folder / 'state.db'}",
                                                           folder), environ=environ)
            run_discovery(ctx)
            ctx.store.set_status(CHAMPION, Status.PRODUCTION, actor="t", reason="r",
                                 now=ctx.clock())
            start_comparison(ctx, CHAMPION, CHALLENGER, actor="t", reason=f"cycle {cycle}")
            ctx.store.close()
            env = {**os.environ, **environ}
            db = folder / "state.db"
            for kill in range(5):
                daemon = Daemon(config, env, folder / "daemon.log")
                if kill < 4:
                    time.sleep(rng.uniform(0.3, 9.0))  # a random moment: the kill is tested
                else:  # and one as soon as the decision is stored (its event not yet sent)
                    wait_for(lambda db=db: state_of(db)[0] != "running",  # type: ignore[misc]
                             f"cycle {cycle}'s decision", timeout=120)
                daemon.process.kill()
                daemon.process.wait(timeout=30)
                kills.append(state_of(db)[0] != "running")
            before = compare_passes(db)
            daemon = Daemon(config, env, folder / "daemon.log")
            try:  # started on a decided comparison: its passes must not decide again
                daemon.wait_until(lambda db=db, before=before: compare_passes(db) >= before + 2,
                                  "two compare passes after the last kill")
            finally:
                daemon.stop()
            assert state_of(db) == ("rolled_back", 1, 1), cycle
            assert open_store(f"sqlite:///{db}", folder).get(
                ModelRef("credit_scoring", "2")).status == Status.FAILED
    finally:
        stop.set()
        sender.join(timeout=30)
    # kills after every decision (the last of each cycle), and before some
    assert len(kills) == 20 and all(kills[4::5]) and not all(kills)
