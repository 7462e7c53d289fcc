"""The context the composition root builds: source health recorded once per block, secrets from
the context's own environment (no test needs to touch the process environment), clients from
its factories."""

from __future__ import annotations

from pathlib import Path

import pytest
from lifecycled.config import parse_settings
from lifecycled.context import Context
from lifecycled.errors import SourceError
from lifecycled.store import open_store
from lifecycled.store.serving import source_health


def context(tmp_path: Path, environ: dict[str, str] | None = None, **config: object) -> Context:
    return Context(parse_settings(config), open_store("sqlite:///s.db", tmp_path),
                   clock=lambda: 1000.0, environ=environ or {})


def test_a_block_that_ends_records_the_source_up(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    with ctx.source("triton:a") as call:
        pass
    assert not call.failed
    (health,) = source_health(ctx.store)
    assert (health.source, health.up, health.last_success) == ("triton:a", True, 1000.0)


def test_a_source_error_is_recorded_down_logged_and_swallowed(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture
                                                              ) -> None:
    ctx = context(tmp_path)
    with ctx.source("triton:a"):
        pass
    with ctx.source("triton:a") as call:
        raise SourceError("triton:a", "connection refused")
    assert call.error == "triton:a: connection refused"
    (health,) = source_health(ctx.store)
    assert not health.up
    assert health.last_error == "triton:a: connection refused"
    assert health.last_success == 1000.0  # the last success is kept
    assert "source down source=triton:a" in caplog.text


def test_other_errors_pass_through_unrecorded(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    with pytest.raises(ZeroDivisionError), ctx.source("triton:a"):
        _ = 1 / 0
    assert source_health(ctx.store) == []


def test_the_prometheus_password_comes_from_the_context_environment(tmp_path: Path) -> None:
    given: list[str | None] = []
    prometheus = {"url": "http://127.0.0.1:9", "basic_auth": {"username": "u",
                                                              "password_env": "PROM_PASSWORD"}}
    ctx = context(tmp_path, {"PROM_PASSWORD": "s3cret\n"}, sources={"prometheus": prometheus})
    ctx.prometheus_factory = lambda settings, password: given.append(password)  # type: ignore
    ctx.prometheus()
    assert given == ["s3cret"]
    missing = context(tmp_path / "m", sources={"prometheus": prometheus})
    with pytest.raises(SourceError, match="PROM_PASSWORD is not set"):
        missing.prometheus()


def test_no_prometheus_configured_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"sources\.prometheus is not configured"):
        context(tmp_path).prometheus()


def test_state_and_cache_directories_follow_systemd_then_xdg_then_home() -> None:
    from lifecycled.dirs import cache_base_dir, state_base_dir
    home = {"HOME": "/home/u"}
    assert state_base_dir(home) == Path("/home/u/.local/state/lifecycled")
    assert cache_base_dir(home) == Path("/home/u/.cache/lifecycled")
    xdg = {**home, "XDG_STATE_HOME": "/x/state", "XDG_CACHE_HOME": "/x/cache"}
    assert state_base_dir(xdg) == Path("/x/state/lifecycled")
    assert cache_base_dir(xdg) == Path("/x/cache/lifecycled")
    relative = {**home, "XDG_STATE_HOME": "state", "XDG_CACHE_HOME": "cache"}  # ignored (spec)
    assert cache_base_dir(relative) == Path("/home/u/.cache/lifecycled")
    systemd = {**xdg, "STATE_DIRECTORY": "/var/lib/lifecycled:/other",
               "CACHE_DIRECTORY": "/var/cache/lifecycled"}
    assert state_base_dir(systemd) == Path("/var/lib/lifecycled")
    assert cache_base_dir(systemd) == Path("/var/cache/lifecycled")
