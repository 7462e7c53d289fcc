"""Composition root: builds the store, clients and jobs from Settings and owns their lifetimes."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lifecycled import __version__, logs
from lifecycled.config import load_settings, resolve_config_path
from lifecycled.context import Context
from lifecycled.dirs import state_base_dir
from lifecycled.errors import ConfigError, InputError
from lifecycled.notify import Notifier
from lifecycled.registration import warn_threshold_differences
from lifecycled.secrets import read_secret
from lifecycled.settings import DaemonSettings, Settings, listenable
from lifecycled.store import Store, open_store
from lifecycled.store.engine import is_sqlite, sqlite_path
from lifecycled.webconfig import WebConfig, load_web_config

if TYPE_CHECKING:
    from lifecycled.listener import ListenerProcess
    from lifecycled.scheduler import Runtime

log = logging.getLogger(__name__)


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
        return self.store.folder

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


def store_password(settings: Settings, environ: Mapping[str, str]) -> str | None:
    """The PostgreSQL password from daemon.state_password_file/_env (None: libpq finds it, in
    PGPASSWORD, ~/.pgpass or a service file, or the server needs none)."""
    daemon = settings.daemon
    if not (daemon.state_password_file or daemon.state_password_env):
        return None
    return read_secret(daemon.state_password_file, daemon.state_password_env, environ,
                       what="daemon.state_password")


def idle_limit(lease: float) -> float:
    """How long the database lets a transaction sit idle before ending it: a replica paused or
    cut off inside a write holds its locks no longer than half a leader lease, so the others'
    writes and a takeover go on within the lease."""
    return min(30.0, max(1.0, lease / 2))


def open_configured_store(settings: Settings, environ: Mapping[str, str]) -> Store:
    """Open (creating and migrating if needed) the store the configuration names."""
    daemon = settings.daemon
    store = open_store(daemon.state_url, state_base_dir(environ),
                       password=store_password(settings, environ),
                       pool_size=daemon.state_pool_size,
                       idle_in_transaction=idle_limit(daemon.leader_lease))
    store.subscriptions = settings.subscriptions()
    return store


def _sqlite_file(settings: Settings, environ: Mapping[str, str]) -> Path | None:
    url = settings.daemon.state_url
    return sqlite_path(url, state_base_dir(environ)) if is_sqlite(url) else None


def open_app(config: str | None, environ: Mapping[str, str] | None = None, *,
             create: bool = True) -> App:
    """Load the configuration and open the store it names; with ``create=False`` (commands that
    only look) a SQLite store that does not exist yet is an InputError, not a new empty one."""
    environ = os.environ if environ is None else environ
    settings, path = load(config, environ)
    file = _sqlite_file(settings, environ)
    if not create and file is not None and not file.exists():
        raise InputError(f"no state store at {file} yet (daemon.state_url); `lifecycled run` "
                         f"or a command that changes state creates it")
    return App(settings, path, open_configured_store(settings, environ), environ)


def existing_store(settings: Settings, environ: Mapping[str, str] | None = None) -> Store | None:
    """The state store if it exists (commands that only look must not create a SQLite file; a
    PostgreSQL store is opened, so an unreachable server is a StoreError)."""
    environ = os.environ if environ is None else environ
    file = _sqlite_file(settings, environ)
    if file is not None and not file.exists():
        return None
    return open_configured_store(settings, environ)


@contextmanager
def opened(config: str | None, *, create: bool = True) -> Iterator[App]:
    """Load the configuration and open the store for one command; close it afterwards.
    Commands that only look pass ``create=False``."""
    app = open_app(config, create=create)
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


def web_config(daemon: DaemonSettings, path: str | None = None) -> WebConfig:
    """The listener's TLS and users: ``path`` (``--web.config.file``), else daemon.web_config_file,
    else daemon.tls's certificate and key with no users."""
    path = path or daemon.web_config_file
    if path:
        return load_web_config(path)
    return WebConfig(cert_file=daemon.tls.cert_file, key_file=daemon.tls.key_file)


def _stop_tracing(ctx: Context) -> None:
    """Put back the trace settings of the models this daemon traces (it is the one reading the
    trace files); a failure is logged, never in the way of stopping."""
    from lifecycled.tasks.traces import stop_tracing

    try:
        stop_tracing(ctx)
    except Exception:  # the store or an endpoint gone: the settings stay, the next start fixes
        log.exception("cannot restore trace settings")


def run_daemon(config: str | None, *, once: bool = False,
               environ: Mapping[str, str] | None = None, listen: str | None = None,
               web_config_file: str | None = None) -> int:
    """``lifecycled run``: the scheduled daemon until SIGTERM/SIGINT (or each job once);
    ``listen`` (``--web.listen-address``) overrides daemon.listen, ``web_config_file``
    (``--web.config.file``) daemon.web_config_file."""
    daemon = Daemon(config, environ=environ, listen=listen, web_config_file=web_config_file)
    code = daemon.run(once=once)
    if not daemon.clean:
        os._exit(1)  # a job is stuck past the grace: leave without waiting for its thread
    return code


class Daemon:
    """The daemon's parts, each started in order and stopped in reverse by construction (one
    ExitStack): the store, the replica's lease (SQLite: the one-daemon lock), the signal
    handlers, the listener, the scheduler. A part that fails to start stops only those started
    before it; a stop is the same unwinding."""

    def __init__(self, config: str | None, *, environ: Mapping[str, str] | None = None,
                 listen: str | None = None, web_config_file: str | None = None) -> None:
        self.config, self.listen, self.web_config_file = config, listen, web_config_file
        self.environ = os.environ if environ is None else environ
        self.listen_key = "--web.listen-address" if listen else "daemon.listen"
        self.clean = True  # False: a job outlived the grace (the store is left open under it)

    def run(self, *, once: bool = False) -> int:
        # The daemon's parts are imported here so that one-shot commands start quickly.
        from lifecycled.scheduler import Runtime

        if self.listen is not None:
            try:
                listenable(self.listen)
            except ValueError as exc:
                raise ConfigError([f"{self.listen_key}: {exc}"]) from None
        with ExitStack() as stack:
            app = open_app(self.config, self.environ)
            stack.callback(self._close, app)
            web = self._web(app.settings)
            logs.configure(app.settings.daemon.log_level, app.settings.daemon.log_format)
            notifier = Notifier(self.environ)
            warn_threshold_differences(app.settings, app.store)
            runtime = Runtime(app.context(), app.config_path, notifier)
            runtime.replication.start()  # SQLite: refused if another daemon runs on the file
            # given up after the tasks have ended: the next leader starts where they ended
            stack.callback(runtime.replication.stop)
            if once:
                return runtime.run_once()
            stack.enter_context(runtime.signals())
            server = self._listener(app, runtime, web)  # bound: stopped (closed) from here on
            stack.callback(server.stop)
            runtime.after_run.append(server.invalidate)
            runtime.replication.on_change.append(server.invalidate)
            server.start()
            server.invalidate()  # the listener learns this replica's role before its first scrape
            runtime.start_scheduler()
            stack.callback(self._shutdown, runtime, app.settings.daemon.shutdown_grace)
            log.info("lifecycled %s running listen=%s:%d state=%s", __version__, server.host,
                     server.port, app.store.location)
            notifier.ready(f"running; listening on {server.host}:{server.port}")
            runtime.wait()
        log.info("lifecycled stopped")
        return 0

    def _web(self, settings: Settings) -> WebConfig:
        try:
            return web_config(settings.daemon, self.web_config_file)
        except ConfigError as exc:  # daemon.web_config_file was checked with the settings
            raise ConfigError([f"--web.config.file: {p}" for p in exc.problems]) from None

    def _listener(self, app: App, runtime: Runtime, web: WebConfig) -> ListenerProcess:
        from prometheus_client import CollectorRegistry

        from lifecycled.actions.updates import apply_job_event
        from lifecycled.api import job_events_handler, push_handler
        from lifecycled.http import Api, split_listen
        from lifecycled.listener import ListenerProcess
        from lifecycled.tasks.streams import push

        api = Api(app.store, CollectorRegistry(), runtime.readiness,
                  _token_reader(app.settings, self.environ),
                  posts={"jobs": job_events_handler(
                      lambda job_id, event: apply_job_event(runtime.ctx, job_id, event)),
                         "models": push_handler(lambda ref, kind, columns: push(
                             runtime.ctx, ref, kind, columns))})
        host, port = split_listen(self.listen or app.settings.daemon.listen)
        daemon = app.settings.daemon
        try:
            return ListenerProcess(
                api, host, port, state_url=daemon.state_url,
                base_dir=state_base_dir(self.environ),
                state_password=store_password(app.settings, self.environ),
                web=web, token_source=(daemon.api_token_file, daemon.api_token_env),
                endpoints=lambda: list(runtime.ctx.settings.webhooks),
                intervals=lambda: {task: getattr(runtime.ctx.settings.schedule, task)
                                   for task in runtime.jobs},
                store_writes=app.store.writes,
                replica=runtime.replication.state,
                log_level=daemon.log_level, log_format=daemon.log_format,
                push_limit=int(daemon.push_max_body))
        except OSError as exc:  # a busy port, an address not on this host: one line, no traceback
            raise ConfigError([f"{self.listen_key}: cannot listen on {host}:{port}: "
                               f"{exc.strerror or exc}"]) from exc

    def _shutdown(self, runtime: Runtime, grace: float) -> None:
        """Stop scheduling and let running jobs end within the grace; then put back the trace
        settings this daemon changed (only when every job ended: one still running may be
        setting them)."""
        self.clean = runtime.shutdown(grace)
        if self.clean and runtime.replication.runs("traces"):
            _stop_tracing(runtime.ctx)

    def _close(self, app: App) -> None:
        if self.clean:  # else a job still runs on the store: exit without closing it under it
            app.close()
