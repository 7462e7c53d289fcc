"""Composition root: builds the store, clients and jobs from Settings and owns their lifetimes."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from lifecycled import __version__, logs
from lifecycled.config import load_settings, resolve_config_path
from lifecycled.context import Context
from lifecycled.errors import ConfigError
from lifecycled.notify import Notifier
from lifecycled.registration import warn_threshold_differences
from lifecycled.secrets import read_secret
from lifecycled.settings import Settings
from lifecycled.store import Store, open_store
from lifecycled.store.sqlite import sqlite_path

log = logging.getLogger(__name__)


def state_base_dir(environ: Mapping[str, str]) -> Path:
    """Directory that relative state paths resolve against: systemd's $STATE_DIRECTORY or cwd."""
    state_dir = environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(state_dir) if state_dir else Path.cwd()


@dataclass
class App:
    """What a command or the daemon needs: the settings, where they came from, the store."""

    settings: Settings
    config_path: Path
    store: Store
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    @property
    def state_dir(self) -> Path:
        """Folder of the state file: profile caches and backups live beside it."""
        return self.store.path.parent

    def context(self) -> Context:
        """The context tasks and actions run with (real clock, clients and environment)."""
        return Context(self.settings, self.store, environ=self.environ)

    def close(self) -> None:
        self.store.close()


def load(config: str | None, environ: Mapping[str, str] | None = None) -> tuple[Settings, Path]:
    """Find and load the configuration."""
    environ = os.environ if environ is None else environ
    path = resolve_config_path(config, environ)
    return load_settings(path), path


def open_app(config: str | None, environ: Mapping[str, str] | None = None) -> App:
    """Load the configuration and open the store it names."""
    environ = os.environ if environ is None else environ
    settings, path = load(config, environ)
    store = open_store(settings.daemon.state_url, state_base_dir(environ))
    store.subscriptions = settings.subscriptions()
    return App(settings, path, store, environ)


def existing_store(settings: Settings, environ: Mapping[str, str] | None = None) -> Store | None:
    """The state store if its file exists (commands that only look must not create one)."""
    environ = os.environ if environ is None else environ
    path = sqlite_path(settings.daemon.state_url, state_base_dir(environ))
    return open_store(settings.daemon.state_url, state_base_dir(environ)) if path.exists() else None


@contextmanager
def opened(config: str | None) -> Iterator[App]:
    """Load the configuration and open the store for one command; close it afterwards."""
    app = open_app(config)
    try:
        yield app
    finally:
        app.close()


def _token_reader(settings: Settings, environ: Mapping[str, str]) -> Callable[[], str | None]:
    def read() -> str | None:
        daemon = settings.daemon
        if not (daemon.api_token_file or daemon.api_token_env):
            return None  # no token configured: state-changing API calls are refused
        try:
            return read_secret(daemon.api_token_file, daemon.api_token_env, environ,
                               what="daemon.api_token")
        except ConfigError as exc:
            log.error("API token unavailable: %s", exc)
            return None
    return read


def run_daemon(config: str | None, *, once: bool = False,
               environ: Mapping[str, str] | None = None) -> int:
    """``lifecycled run``: the scheduled daemon until SIGTERM/SIGINT (or each job once)."""
    # The daemon's parts are imported here so that one-shot commands start quickly.
    from prometheus_client import CollectorRegistry

    from lifecycled.actions.updates import apply_job_event
    from lifecycled.api import job_events_handler
    from lifecycled.exporter import LifecycleCollector
    from lifecycled.http import Api, HttpServer, split_listen
    from lifecycled.scheduler import Runtime

    environ = os.environ if environ is None else environ
    app = open_app(config, environ)
    logs.configure(app.settings.daemon.log_level, app.settings.daemon.log_format)
    notifier = Notifier(environ)
    warn_threshold_differences(app.settings, app.store)
    runtime = Runtime(app.context(), app.config_path, notifier)
    if once:
        try:
            return runtime.run_once()
        finally:
            app.close()
    registry = CollectorRegistry()
    registry.register(LifecycleCollector(
        app.store, lambda: list(runtime.ctx.settings.webhooks),
        lambda: {job: getattr(runtime.ctx.settings.schedule, job) for job in runtime.jobs}))
    api = Api(app.store, registry, runtime.readiness, _token_reader(app.settings, environ),
              posts={"jobs": job_events_handler(
                  lambda job_id, event: apply_job_event(runtime.ctx, job_id, event))})
    host, port = split_listen(app.settings.daemon.listen)
    tls = app.settings.daemon.tls
    try:
        server = HttpServer(api, host, port, cert_file=tls.cert_file, key_file=tls.key_file)
    except OSError as exc:  # a busy port, an address not on this host: one line, no traceback
        app.close()
        raise ConfigError([f"daemon.listen: cannot listen on {host}:{port}: "
                           f"{exc.strerror or exc}"]) from exc
    runtime.install_signals()
    server.start()
    runtime.start_scheduler()
    log.info("lifecycled %s running listen=%s:%d state=%s", __version__, host, server.port,
             app.store.path)
    notifier.ready(f"running; listening on {host}:{server.port}")
    try:
        runtime.wait()
    finally:
        clean = runtime.shutdown(app.settings.daemon.shutdown_grace)
        server.stop()
        if clean:
            app.close()
        log.info("lifecycled stopped")
    if not clean:
        os._exit(1)  # a job is stuck past the grace: leave without waiting for its thread
    return 0
