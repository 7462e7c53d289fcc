"""Composition root: builds the store, clients and jobs from Settings and owns their lifetimes."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifecycled import __version__, logs
from lifecycled.config import load_settings, read_secret, resolve_config_path, subscriptions
from lifecycled.errors import ConfigError, InputError
from lifecycled.jobs.context import JobContext
from lifecycled.notify import Notifier
from lifecycled.settings import Settings
from lifecycled.store import Store, open_store

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

    @property
    def state_dir(self) -> Path:
        """Folder of the state file: profile caches and backups live beside it."""
        return self.store.path.parent

    def context(self) -> JobContext:
        """The context jobs run with (real clock and HTTP session)."""
        return JobContext(self.settings, self.store)

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
    store.subscriptions = subscriptions(settings)
    return App(settings, path, store)


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


def job_events_handler(ctx: JobContext) -> Callable[[Any], tuple[int, Any]]:
    """POST /api/v1/jobs/{id}/events: a progress report from the update pipeline."""
    from lifecycled.jobs.updates import report_event

    def handle(request: Any) -> tuple[int, Any]:
        if len(request.parts) != 5 or request.parts[4] != "events":
            return 404, {"error": f"no route for POST {request.path}"}
        try:
            body = json.loads(request.body or b"null")
        except ValueError as exc:
            raise InputError(f"the body is not valid JSON: {exc}") from exc
        return 200, report_event(ctx, request.parts[3], body).to_json()

    return handle


def run_daemon(config: str | None, *, once: bool = False,
               environ: Mapping[str, str] | None = None) -> int:
    """``lifecycled run``: the scheduled daemon until SIGTERM/SIGINT (or each job once)."""
    # The daemon's parts are imported here so that one-shot commands start quickly.
    from prometheus_client import CollectorRegistry

    from lifecycled.exporter import LifecycleCollector
    from lifecycled.http import Api, HttpServer, split_listen
    from lifecycled.scheduler import Runtime

    environ = os.environ if environ is None else environ
    app = open_app(config, environ)
    logs.configure(app.settings.daemon.log_level, app.settings.daemon.log_format)
    notifier = Notifier(environ)
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
              posts={"jobs": job_events_handler(runtime.ctx)})
    host, port = split_listen(app.settings.daemon.listen)
    tls = app.settings.daemon.tls
    server = HttpServer(api, host, port, cert_file=tls.cert_file, key_file=tls.key_file)
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
