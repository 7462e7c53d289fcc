"""``check-config --probe``: reach every configured source and endpoint and read every secret
now, so that what `run`, `collect` and `webhooks test` would trip on is found before them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial

import requests

from lifecycled.actions.webhooks import secret_key
from lifecycled.errors import ConfigError, LifecycledError, SourceError
from lifecycled.net import DeadlineSession, describe
from lifecycled.secrets import read_secret
from lifecycled.settings import PrometheusSettings, Settings, TritonEndpoint
from lifecycled.sources.prometheus import PrometheusSource
from lifecycled.sources.triton import TritonClient, fetch_metrics_text


@dataclass(frozen=True)
class Probe:
    """One thing probed: what, whether it answered as needed, and one line of detail."""

    what: str
    ok: bool
    detail: str

    def to_json(self) -> dict[str, object]:
        return {"what": self.what, "ok": self.ok, "detail": self.detail}


def _try(what: str, check: Callable[[], str]) -> Probe:
    try:
        return Probe(what, True, check())
    except (LifecycledError, OSError) as exc:
        text = exc.problems[0] if isinstance(exc, ConfigError) and exc.problems else str(exc)
        if isinstance(exc, SourceError):
            text = text.removeprefix(f"{exc.source}: ")
        return Probe(what, False, text.removeprefix(f"{what.split()[0]}: "))


def _read(file: str | None, env: str | None, environ: Mapping[str, str], what: str) -> str:
    read_secret(file, env, environ, what=what)
    return "read"


def _read_key(file: str | None, env: str | None, environ: Mapping[str, str], what: str) -> str:
    secret_key(read_secret(file, env, environ, what=what))
    return "read, a valid whsec_ key"


def _secrets(settings: Settings, environ: Mapping[str, str]) -> Iterator[Probe]:
    daemon = settings.daemon
    named = [("daemon.api_token", daemon.api_token_file, daemon.api_token_env),
             ("daemon.state_password", daemon.state_password_file, daemon.state_password_env)]
    prometheus = settings.sources.prometheus
    if prometheus is not None and prometheus.basic_auth is not None:
        named.append(("sources.prometheus.basic_auth.password",
                      prometheus.basic_auth.password_file, prometheus.basic_auth.password_env))
    for what, file, env in named:
        if file or env:
            yield _try(what, partial(_read, file, env, environ, what))
    for name, endpoint in settings.webhooks.items():
        what = f"webhooks.{name}.secret"
        yield _try(what, partial(_read_key, endpoint.secret_file, endpoint.secret_env, environ,
                                 what))


def _index(endpoint: TritonEndpoint) -> str:
    with TritonClient(endpoint) as client:
        return f"{len(client.index())} model version(s) in the repository index"


def _metrics(session: requests.Session, endpoint: TritonEndpoint) -> str:
    fetch_metrics_text(session, endpoint)
    return "metrics answered"


def _query(settings: PrometheusSettings, environ: Mapping[str, str]) -> str:
    auth = settings.basic_auth
    password = read_secret(auth.password_file, auth.password_env, environ,
                           what="sources.prometheus.basic_auth.password") if auth else None
    with PrometheusSource(settings, password) as source:
        source.query("vector(1)")
    return "a query answered"


def _webhook(session: requests.Session, url: str, timeout: float) -> str:
    """Reach the receiver without sending an event: any HTTP answer to HEAD will do."""
    try:
        response = session.head(url, timeout=timeout, allow_redirects=False)
    except requests.RequestException as exc:
        raise SourceError(url, describe(exc, url).removeprefix(f"{url}: ")) from exc
    return f"reached (HTTP {response.status_code} to HEAD)"


def probe(settings: Settings, environ: Mapping[str, str],
          session: requests.Session | None = None) -> list[Probe]:
    """Every probe, in the order of the file: Triton endpoints, Prometheus, secrets, webhooks."""
    session = session or DeadlineSession()
    found: list[Probe] = []
    for endpoint in settings.sources.triton:
        found.append(_try(f"triton:{endpoint.name} {endpoint.url}", partial(_index, endpoint)))
        found.append(_try(f"triton:{endpoint.name} {endpoint.metrics_url}",
                          partial(_metrics, session, endpoint)))
    secrets = list(_secrets(settings, environ))
    prometheus = settings.sources.prometheus
    if prometheus is not None and all(p.ok for p in secrets if p.what.startswith("sources.")):
        found.append(_try(f"prometheus {prometheus.url}", partial(_query, prometheus, environ)))
    found += secrets
    for name, hook in settings.webhooks.items():
        found.append(_try(f"webhooks.{name} {hook.url}", partial(_webhook, session, hook.url,
                                                                 hook.timeout)))
    return found

