"""The state store a test opens: SQLite by default, or the PostgreSQL database of the running
test when its module runs on both engines (``pytestmark = pytest.mark.usefixtures("both_engines")``,
which puts the URL in LIFECYCLED_TEST_STATE_URL for the test and the processes it starts)."""

from __future__ import annotations

import os
from pathlib import Path

from lifecycled.store import Store, open_store

ENV = "LIFECYCLED_TEST_STATE_URL"


def store_url(base_dir: Path, name: str = "s.db") -> str:
    return os.environ.get(ENV) or f"sqlite:///{base_dir / name}"


def open_test_store(base_dir: Path, name: str = "s.db") -> Store:
    return open_store(store_url(base_dir, name), base_dir)
