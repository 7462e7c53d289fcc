"""Shared fixtures: a configuration in a temporary directory, a CLI runner (real subprocess), and
a real PostgreSQL server (one per run) beside SQLite for every test that takes ``state_url``."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lifecycled.store import Store

from devtools.postgres import Postgres, temporary_postgres
from tests.helpers import CliResult, write_config
from tests.stores import ENV, open_test_store


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Caches commands keep for the user (``lifecycled drift``'s reference profiles) go to a
    directory of this run, never the real home; subprocesses inherit it."""
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    os.environ.pop("CACHE_DIRECTORY", None)


@pytest.fixture(autouse=True)
def _umask_kept() -> Iterator[None]:
    """``lifecycled.cli.main`` sets the umask to 077 (what it writes is the user's only); a
    test that calls it in-process must not leave that to the next one (a venv built after it
    was unreadable to the unprivileged user of the sandbox test)."""
    kept = os.umask(0o022)
    os.umask(kept)
    yield
    os.umask(kept)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A real PostgreSQL server for the run (Debian's binaries; as the ``postgres`` user when the
    tests run as root). Its password is in PGPASSWORD, which libpq reads, for the tests'
    processes and the daemons they start."""
    with temporary_postgres() as server:
        os.environ["PGPASSWORD"] = server.password
        yield server


_databases = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A state store URL: a SQLite file in the test's folder, or a fresh PostgreSQL database
    (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state' / 'lifecycled.db'}"
        return
    server: Postgres = request.getfixturevalue("postgres")
    name = f"test_{os.getpid()}_{next(_databases)}"
    yield server.create_database(name)
    server.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def both_engines(state_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test once on SQLite and once on PostgreSQL (tests/stores.py)."""
    if not state_url.startswith("sqlite"):
        monkeypatch.setenv(ENV, state_url)
    else:
        monkeypatch.delenv(ENV, raising=False)
    return state_url


@pytest.fixture
def store(both_engines: str, tmp_path: Path) -> Iterator[Store]:
    """An open state store, once on SQLite and once on PostgreSQL, closed afterwards. A module
    that needs more in it (models, subscriptions) defines its own ``store`` taking this one."""
    opened = open_test_store(tmp_path)
    yield opened
    opened.close()


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path / "cfg")


@pytest.fixture
def cli(config_path: Path) -> Callable[..., CliResult]:
    """Run ``lifecycled`` as a subprocess against the temporary config."""

    def run(*args: str, config: Path | None = config_path, stdin: str | None = None,
            env: dict[str, str] | None = None) -> CliResult:
        """``env`` adds to (or, with an empty value, removes from) the test's environment."""
        argv = [sys.executable, "-m", "lifecycled", *args]
        if config is not None:
            argv += ["--config", str(config)]
        changes = env or {}
        env = {k: v for k, v in os.environ.items() if k not in ("LIFECYCLED_CONFIG",
                                                                 "STATE_DIRECTORY")}
        env.update({k: v for k, v in changes.items() if v})
        for key in (k for k, v in changes.items() if not v):
            env.pop(key, None)
        proc = subprocess.run(argv, capture_output=True, text=True, input=stdin, env=env,
                              cwd=config_path.parent, timeout=120)
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    return run


# Fixtures that start a real server (PostgreSQL, moto's S3, Triton, Prometheus, pgbouncer) or
# run lifecycled as a process: a test that takes one, runs on PostgreSQL or lives in
# tests/integration is in the "servers" tier, any other in the "inprocess" tier. Applied here, so
# a new test lands in its tier by itself; ``make test-fast`` runs the in-process tests that are
# not ``slow`` (half a second or more, marked where they are defined).
SERVER_FIXTURES = frozenset({"postgres", "s3", "credentials", "triton_factory", "servers",
                             "bounced", "cli"})


@pytest.hookimpl(tryfirst=True)  # before -m selects by these markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        params = getattr(item, "callspec", None)
        on_postgres = params is not None and any(
            isinstance(value, str) and value == "postgresql" for value in params.params.values())
        fixtures = set(getattr(item, "fixturenames", ()))
        if "integration" in item.path.parts or on_postgres or fixtures & SERVER_FIXTURES:
            item.add_marker(pytest.mark.servers)
        else:
            item.add_marker(pytest.mark.inprocess)
