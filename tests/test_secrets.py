"""Secrets: from a file (systemd credentials first) or an environment variable, never the YAML."""

from __future__ import annotations

from pathlib import Path

import pytest
from lifecycled.errors import ConfigError
from lifecycled.secrets import read_secret


def test_file_environment_and_credentials_directory(tmp_path: Path) -> None:
    (tmp_path / "s").write_text("whsec_abc\n")
    assert read_secret(str(tmp_path / "s"), None, {}) == "whsec_abc"
    assert read_secret(None, "SECRET", {"SECRET": "whsec_env"}) == "whsec_env"
    assert read_secret("s", None, {"CREDENTIALS_DIRECTORY": str(tmp_path)}) == "whsec_abc"


def test_each_missing_source_names_what_and_where(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"webhooks\.ci\.secret: environment variable X is not set"):
        read_secret(None, "X", {}, what="webhooks.ci.secret")
    with pytest.raises(ConfigError, match="cannot read"):
        read_secret(str(tmp_path / "absent"), None, {})
    with pytest.raises(ConfigError, match="neither a file nor an environment variable"):
        read_secret(None, None, {})
