"""`lifecycled jobs ...` and `lifecycled webhooks ...` through a subprocess."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from devtools.receiver import Receiver
from tests.helpers import write_config

SECRET = "whsec_" + base64.b64encode(b"c" * 32).decode()


def test_jobs_commands(cli: Any, tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(
        {"name": "credit_scoring", "version": "1", "status": "production"}))
    config = write_config(tmp_path / "j", {"webhooks": {"ci": {
        "url": "http://127.0.0.1:9/hook", "secret_env": "CI_SECRET",
        "events": ["model.update_requested"]}}})
    assert cli("models", "register", "--file", str(tmp_path / "m.yaml")).code == 0
    # before, the job was "dispatched" to nobody and waited until it timed out
    unheard = cli("jobs", "create", "credit_scoring:1", "--reason", "quarterly")
    assert unheard.code == 2
    assert "no webhook endpoint subscribes to model.update_requested" in unheard.err
    assert cli("jobs", "list", "--json").json()["jobs"] == []
    assert cli("models", "register", "--file", str(tmp_path / "m.yaml"), config=config).code == 0
    created = cli("jobs", "create", "credit_scoring:1", "--reason", "quarterly", "--json",
                  config=config)
    assert created.code == 0, created.err
    job = created.json()
    assert (job["state"], job["target_version"], job["trigger"]["reason"]) == (
        "dispatched", "2", "quarterly")
    second = cli("jobs", "create", "credit_scoring:1", "--reason", "again", config=config)
    assert second.code == 2 and "already has an active update job" in second.err
    listed = cli("jobs", "list", "--state", "dispatched", "--json", config=config).json()["jobs"]
    assert [j["id"] for j in listed] == [job["id"]]
    shown = cli("jobs", "show", job["id"], config=config)
    assert "target version" in shown.out and "last log lines" in shown.out
    assert cli("jobs", "cancel", job["id"], config=config).code == 0
    again = cli("jobs", "cancel", job["id"], config=config)
    assert again.code == 2 and "only pending or dispatched" in again.err
    assert cli("jobs", "show", "job_missing", config=config).code == 2


def test_webhooks_commands(tmp_path: Path, cli: Any) -> None:
    receiver = Receiver(SECRET)
    try:
        config = write_config(tmp_path / "w", {"webhooks": {"ci": {
            "url": receiver.url, "secret_env": "CI_SECRET"}}})
        env = {**os.environ, "CI_SECRET": SECRET}
        ping = subprocess.run([sys.executable, "-m", "lifecycled", "webhooks", "test", "ci",
                               "--config", str(config)], capture_output=True, text=True,
                              env=env, timeout=60)
        assert ping.returncode == 0, ping.stderr
        assert "HTTP 200" in ping.stdout
        (event,) = receiver.unique().values()
        assert event.body["type"] == "ping" and not receiver.rejected
        listed = cli("webhooks", "list", "--json", config=config).json()["endpoints"]
        assert listed[0]["endpoint"] == "ci" and listed[0]["pending"] == 0
        assert cli("webhooks", "dead-letters", config=config).out.strip() == "no dead letters"
        nothing = cli("webhooks", "redeliver", "--all-dead", config=config)
        assert nothing.code == 2 and "no dead letters" in nothing.err
        enabled = cli("webhooks", "enable", "ci", "--json", config=config).json()
        assert enabled == {"endpoint": "ci", "disabled": False, "pending": 0}
        assert cli("webhooks", "enable", "nope", config=config).code == 2
        unknown = cli("webhooks", "test", "nope", config=config)
        assert unknown.code == 2 and "no webhook endpoint nope" in unknown.err
        no_secret = cli("webhooks", "test", "ci", config=config)
        assert no_secret.code == 2 and "CI_SECRET is not set" in no_secret.err
        assert SECRET not in no_secret.err + no_secret.out
    finally:
        receiver.stop()
