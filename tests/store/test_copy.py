"""``lifecycled state migrate``: a whole store copied SQLite -> PostgreSQL -> SQLite, verified,
and the copy serving exactly what the original served."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from lifecycled.domain import ModelRef, ModelSpec, Status
from lifecycled.errors import InputError, StoreError
from lifecycled.store import Store, open_store
from lifecycled.store.copy import checksums, copy_store
from lifecycled.store.retirement import create_plan_in
from lifecycled.store.updates import log_in

from devtools.postgres import Postgres
from tests.exporter.test_exporter import fixed_store, render
from tests.stores import ENV


@pytest.fixture
def source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.delenv(ENV, raising=False)  # the golden state, on SQLite
    store = fixed_store(tmp_path / "src")
    with store.write() as conn:
        create_plan_in(conn, ModelRef("legacy_score", "1"), "alice", "old", 1.0)
        job = conn.execute("SELECT id FROM update_jobs").fetchone()[0]
        log_in(conn, job, 2.0, "dispatched", "training")
    return store


def fresh(postgres: Postgres, name: str) -> str:
    postgres.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    return postgres.create_database(name)


def test_sqlite_to_postgresql_and_back_keeps_everything(source: Store, postgres: Postgres,
                                                       tmp_path: Path) -> None:
    target = open_store(fresh(postgres, "copy_target"), tmp_path)
    copied = copy_store(source, target)
    counts = {c.table: c.rows for c in copied}
    for table in ("models", "history", "snapshots", "drift_results", "quality_results",
                  "evaluations", "events", "deliveries", "update_jobs", "update_job_log",
                  "retirement_scores", "retirement_plans", "job_runs", "sources"):
        assert counts[table] > 0, table
    assert render(target) == render(source)  # the copy serves exactly what the original did
    assert [(c.table, c.rows, c.checksum) for c in checksums(target)] == [
        (c.table, c.rows, c.checksum) for c in checksums(source)]
    # the copy goes on where the original stopped: new ids after the copied ones
    ref = ModelRef("new_model", "1")
    target.register(ModelSpec(ref, owner_team="t", business_domain="d"), Status.DEVELOPING,
                    actor="t", reason="after the move", now=9e9)
    (entry,) = target.history(ref)
    assert entry.id > max(e.id for r in source.list_models() for e in source.history(r.ref))
    # and back to a new SQLite file
    back = open_store(f"sqlite:///{tmp_path / 'back.db'}", tmp_path)
    copy_store(target, back)
    assert render(back) == render(target)
    for store in (target, back, source):
        store.close()
    postgres.sql("DROP DATABASE copy_target WITH (FORCE)")


def test_a_target_with_state_is_refused_and_left_alone(source: Store, tmp_path: Path) -> None:
    target = open_store(f"sqlite:///{tmp_path / 'target.db'}", tmp_path)
    target.register(ModelSpec(ModelRef("mine", "1"), owner_team="t", business_domain="d"),
                    Status.DEVELOPING, actor="t", reason="r", now=1.0)
    with pytest.raises(InputError, match=r"already holds state \(table \w+ has rows\)"):
        copy_store(source, target)
    assert [r.ref.name for r in target.list_models()] == ["mine"]
    target.close()


def test_a_failed_verification_is_an_error(source: Store, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import lifecycled.store.copy as copy_module

    target = open_store(f"sqlite:///{tmp_path / 'target.db'}", tmp_path)
    real = copy_module.checksums

    def tampered(store: Store) -> list[copy_module.TableCopy]:
        return [copy_module.TableCopy(c.table, c.rows - (c.table == "history"), c.checksum)
                for c in real(store)]
    monkeypatch.setattr(copy_module, "checksums", tampered)
    with pytest.raises(StoreError, match="verification failed for table history"):
        copy_store(source, target)
    target.close()


def test_the_command(source: Store, postgres: Postgres, tmp_path: Path) -> None:
    url = fresh(postgres, "copy_cli")
    password = tmp_path / "pw"
    password.write_text(postgres.password)
    env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
    assert source.path is not None
    argv = [sys.executable, "-m", "lifecycled", "state", "migrate", "--from",
            f"sqlite:///{source.path}", "--to", url, "--to-password-file", str(password)]
    done = subprocess.run([*argv, "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["verified"] is True and {"models", "history"} <= {
        t["table"] for t in report["tables"]}
    again = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert again.returncode == 2 and "already holds state" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    postgres.sql("DROP DATABASE copy_cli WITH (FORCE)")
