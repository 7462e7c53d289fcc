"""Triton endpoints: repository index, model config and statistics (``tritonclient``, a fresh
client per pass: it is not thread-safe) and the ``/metrics`` text (``requests``). Each fetch sits
beside its pure parser; every failure becomes a SourceError naming the endpoint."""

from __future__ import annotations

import contextlib
import math
import re
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from prometheus_client.parser import text_string_to_metric_families

from lifecycled.domain import ModelCounters
from lifecycled.errors import SourceError
from lifecycled.net import describe
from lifecycled.settings import TritonEndpoint

# --- parsed values ------------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexEntry:
    """One row of the repository index: a model version and its state (None if never loaded)."""

    name: str
    version: str | None
    state: str | None
    reason: str


@dataclass(frozen=True)
class Deployment:
    """What a model's config says about how it is served."""

    framework: str  # backend, or platform when set
    max_batch_size: int
    instance_groups: tuple[dict[str, Any], ...]

    def to_json(self) -> dict[str, Any]:
        return {"max_batch_size": self.max_batch_size, "instance_groups": list(self.instance_groups)}


@dataclass(frozen=True)
class MetricsScrape:
    """One parsed ``/metrics`` text."""

    at: float
    models: Mapping[tuple[str, str], ModelCounters]
    cpu_utilization: float | None
    memory_used_bytes: float | None


# --- pure parsers -------------------------------------------------------------------------------


def parse_index(payload: Any) -> list[IndexEntry]:
    """Parse ``POST /v2/repository/index`` (a list of {name, version?, state?, reason?})."""
    if not isinstance(payload, list):
        raise ValueError(f"repository index must be a list, got {type(payload).__name__}")
    entries = []
    for item in payload:
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise ValueError(f"malformed repository index entry: {item!r}")
        version = item.get("version")
        entries.append(IndexEntry(item["name"], str(version) if version is not None else None,
                                  item.get("state"), str(item.get("reason", ""))))
    return entries


def parse_model_config(payload: Any) -> Deployment:
    """Parse ``GET /v2/models/{m}/config`` (JSON form of ModelConfig)."""
    if not isinstance(payload, Mapping):
        raise ValueError("model config must be a mapping")
    framework = str(payload.get("platform") or payload.get("backend") or "")
    groups = tuple({"kind": g.get("kind", ""), "count": int(g.get("count", 1))}
                   for g in payload.get("instance_group", []) if isinstance(g, Mapping))
    return Deployment(framework, int(payload.get("max_batch_size", 0)), groups)


def parse_memory_usage(payload: Any) -> dict[tuple[str, str], float]:
    """Per model version memory (bytes) from the statistics extension, where Triton reports it."""
    memory: dict[tuple[str, str], float] = {}
    for stat in (payload or {}).get("model_stats", []):
        usage = stat.get("memory_usage") or []
        if usage:
            memory[(stat["name"], str(stat["version"]))] = float(
                sum(int(u.get("byte_size", 0)) for u in usage))
    return memory


_PER_MODEL = {
    "nv_inference_request_success": "success",
    "nv_inference_count": "inferences",
    "nv_inference_exec_count": "executions",
    "nv_inference_request_duration_us": "request_duration_us",
    "nv_inference_queue_duration_us": "queue_duration_us",
    "nv_inference_pending_request_count": "pending",
}
_FAILURE = "nv_inference_request_failure"
_SUMMARY = "nv_inference_request_summary_us"
_CPU, _MEMORY = "nv_cpu_utilization", "nv_cpu_memory_used_bytes"
# sample name -> what it counts; a counter's samples may carry ``_total`` (prometheus_client adds it)
_COUNTED = {**_PER_MODEL, **{name + "_total": key for name, key in _PER_MODEL.items()}}
_READ = frozenset([*_COUNTED, _FAILURE, _FAILURE + "_total", _SUMMARY, _SUMMARY + "_sum",
                   _SUMMARY + "_count", _CPU, _MEMORY])

Sample = tuple[str, dict[str, str], float]

# The text format's plain shape, as Triton writes it: ``name{label="value",...} value [ms]``,
# each line read by one scan of the whole text (a line matches one of the alternatives; the last
# catches any other shape, valid or not, which sends the whole text to prometheus_client's
# parser). Every quantifier is possessive and no two of them can take the same characters, so a
# line is scanned in linear time whatever it holds (a long run of digits or blanks included).
_NAME = r'[a-zA-Z_:][a-zA-Z0-9_:]*+'
_VALUE = r'[^"\\\n]*+(?:\\[\\n"][^"\\\n]*+)*+'  # a label value, escapes kept
_PAIR = rf'[a-zA-Z_][a-zA-Z0-9_]*+[ \t]*+=[ \t]*+"{_VALUE}"'
_SET = rf'[ \t]*+(?:{_PAIR}[ \t]*+(?:,[ \t]*+{_PAIR}[ \t]*+)*+(?:,[ \t]*+)?+)?+'
_NUMBER = (r'[-+]?+(?:(?:[0-9]++(?:\.[0-9]*+)?+|\.[0-9]++)(?:[eE][-+]?+[0-9]++)?+'
           r'|(?i:nan|inf(?:inity)?+))')  # Triton writes "Nan"; float() takes any case
_TEXT = re.compile(rf'^(?:({_NAME})(?:\{{({_SET})\}})?+[ \t]++({_NUMBER})(?:[ \t]++-?+[0-9]++)?+'
                   rf'[ \t]*+|#[^\n]*+|[ \t]*+|([^\n]++))$', re.MULTILINE)
_PAIRS = re.compile(rf'([a-zA-Z_][a-zA-Z0-9_]*+)[ \t]*+=[ \t]*+"({_VALUE})"')
_ESCAPE = re.compile(r'\\[\\n"]')
_UNESCAPED = {"\\\\": "\\", "\\n": "\n", '\\"': '"'}


def _labels(text: str) -> dict[str, str] | None:
    """A label set the scan has checked, as a dict (None if it names ``__name__``)."""
    labels = dict(_PAIRS.findall(text))
    for name, value in labels.items():
        if "\\" in value:
            labels[name] = _ESCAPE.sub(lambda m: _UNESCAPED[m.group(0)], value)
    return None if "__name__" in labels else labels


def _plain_samples(text: str) -> list[Sample] | None:
    """The samples lifecycled reads, when every line has the plain shape (None otherwise).
    Series it does not read are checked for their shape only; a label set read once (a
    version's appears in every family) is not read again, and its dict is shared."""
    samples = []
    seen: dict[str, dict[str, str] | None] = {}
    for name, text_of_labels, value, other in _TEXT.findall(text):
        if other:
            return None
        if name not in _READ:
            continue
        labels = seen.get(text_of_labels)
        if labels is None:
            labels = seen[text_of_labels] = _labels(text_of_labels)
            if labels is None:
                return None
        samples.append((name, labels, float(value)))
    return samples


def _library_samples(text: str) -> list[Sample]:
    """The same samples through prometheus_client's parser (any valid text; its error if not)."""
    try:
        return [(sample.name, sample.labels, float(sample.value))
                for family in text_string_to_metric_families(text)
                for sample in family.samples if sample.name in _READ]
    except ValueError as exc:
        raise ValueError(f"malformed metrics text: {exc}") from exc


def parse_metrics(text: str, at: float) -> MetricsScrape:
    """Parse Triton's Prometheus text; series split by ``gpu_uuid`` are summed per version.

    Triton's plain lines are read by a regular expression (prometheus_client's parser costs
    about 15 µs a sample, most of a fleet pass); any other line hands the whole text to
    prometheus_client, so an unusual but valid text reads the same and a malformed one gets
    its error. Both give the same scrape (property-tested)."""
    samples = _plain_samples(text)
    return _scrape(_library_samples(text) if samples is None else samples, at)


def _scrape(samples: list[Sample], at: float) -> MetricsScrape:
    values: dict[tuple[str, str], dict[str, Any]] = {}
    cpu = memory = None
    for name, labels, value in samples:
        if name == _CPU:
            cpu = value
        elif name == _MEMORY:
            memory = value
        if "model" not in labels or "version" not in labels:
            continue
        entry = values.get((labels["model"], labels["version"]))
        if entry is None:
            entry = values[(labels["model"], labels["version"])] = {
                "failure": {}, "quantiles_us": {}, "summaries": False}
        key = _COUNTED.get(name)
        if key is not None:
            entry[key] = entry.get(key, 0.0) + value
        elif name.startswith(_FAILURE):
            reason = labels.get("reason", "OTHER")
            entry["failure"][reason] = entry["failure"].get(reason, 0.0) + value
        elif name.startswith(_SUMMARY):
            entry["summaries"] = True
            if name == _SUMMARY and "quantile" in labels and not math.isnan(value):
                q = labels["quantile"]
                entry["quantiles_us"][q] = max(entry["quantiles_us"].get(q, 0.0), value)
    models = {
        key: ModelCounters(
            success=v.get("success", 0.0), failure=v["failure"], inferences=v.get("inferences", 0.0),
            executions=v.get("executions", 0.0), request_duration_us=v.get("request_duration_us"),
            queue_duration_us=v.get("queue_duration_us"), pending=v.get("pending"),
            quantiles_us=v["quantiles_us"], summaries=v["summaries"])
        for key, v in values.items()
    }
    return MetricsScrape(at, models, cpu, memory)


# --- fetches ------------------------------------------------------------------------------------


def _tls_verify(endpoint: TritonEndpoint) -> bool | str:
    if endpoint.tls.ca_file:
        return endpoint.tls.ca_file
    return endpoint.tls.verify


def fetch_metrics_text(session: requests.Session, endpoint: TritonEndpoint) -> str:
    """GET the endpoint's ``/metrics`` text."""
    tls = endpoint.tls
    cert = (tls.cert_file, tls.key_file) if tls.cert_file and tls.key_file else None
    try:
        response = session.get(endpoint.metrics_url, timeout=endpoint.timeout,
                               headers=dict(endpoint.headers), verify=_tls_verify(endpoint),
                               cert=cert)
        response.raise_for_status()
    except requests.RequestException as exc:
        raise SourceError(f"triton:{endpoint.name}",
                          f"metrics: {describe(exc, endpoint.metrics_url)}") from exc
    return response.text


def fetch_metrics(session: requests.Session, endpoint: TritonEndpoint, now: float) -> MetricsScrape:
    """Fetch and parse the endpoint's ``/metrics``."""
    text = fetch_metrics_text(session, endpoint)
    try:
        return parse_metrics(text, now)
    except ValueError as exc:
        raise SourceError(f"triton:{endpoint.name}", str(exc)) from exc


def _client_errors() -> tuple[type[BaseException], ...]:
    from tritonclient.utils import InferenceServerException

    errors: list[type[BaseException]] = [InferenceServerException, OSError, ValueError]
    try:
        import gevent

        errors.append(gevent.Timeout)
    except ImportError:  # pragma: no cover - gevent comes with tritonclient[http]
        pass
    return tuple(errors)


class TritonClient:
    """The KServe v2 calls lifecycled makes, through a ``tritonclient.http`` client made per pass."""

    def __init__(self, endpoint: TritonEndpoint) -> None:
        import tritonclient.http as httpclient

        self.endpoint = endpoint
        self.source = f"triton:{endpoint.name}"
        parts = urlsplit(endpoint.url)
        secure = parts.scheme == "https"
        context_factory = None
        if secure:
            def make_context() -> ssl.SSLContext:
                context = ssl.create_default_context(cafile=endpoint.tls.ca_file)
                if endpoint.tls.cert_file and endpoint.tls.key_file:
                    context.load_cert_chain(endpoint.tls.cert_file, endpoint.tls.key_file)
                if not endpoint.tls.verify:
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                return context
            context_factory = make_context
        self._errors = _client_errors()
        try:
            self._client = httpclient.InferenceServerClient(
                url=parts.netloc + parts.path.rstrip("/"), connection_timeout=endpoint.timeout,
                network_timeout=endpoint.timeout, ssl=secure,
                ssl_context_factory=context_factory)
        except self._errors as exc:
            raise SourceError(self.source, f"cannot create client: {exc}") from exc

    @contextmanager
    def _call(self, what: str) -> Iterator[None]:
        """One call with a total deadline of the endpoint's timeout (tritonclient's own timeouts
        bound each socket operation, which a server dripping bytes never exceeds)."""
        import gevent

        seconds = self.endpoint.timeout
        try:
            with gevent.Timeout(seconds):
                yield
        except gevent.Timeout as exc:
            raise SourceError(self.source, f"{what}: no complete reply within {seconds:g} s") \
                from exc
        except self._errors as exc:
            raise SourceError(self.source, f"{what}: {describe(exc, self.endpoint.url)}") \
                from exc

    def index(self) -> list[IndexEntry]:
        with self._call("repository index"):
            payload = self._client.get_model_repository_index(headers=dict(self.endpoint.headers))
        try:
            return parse_index(payload)
        except ValueError as exc:
            raise SourceError(self.source, str(exc)) from exc

    def model_config(self, name: str, version: str = "") -> Deployment:
        with self._call(f"config of {name}"):
            payload = self._client.get_model_config(name, version,
                                                    headers=dict(self.endpoint.headers))
        try:
            return parse_model_config(payload)
        except (ValueError, TypeError) as exc:
            raise SourceError(self.source, f"config of {name}: {exc}") from exc

    def raw_config(self, name: str) -> dict[str, Any]:
        """The model config as Triton returns it (JSON form of ModelConfig)."""
        with self._call(f"config of {name}"):
            payload = self._client.get_model_config(name, headers=dict(self.endpoint.headers))
        if not isinstance(payload, dict):
            raise SourceError(self.source, f"config of {name}: not a mapping")
        return payload

    def statistics(self) -> Any:
        with self._call("statistics"):
            return self._client.get_inference_statistics(headers=dict(self.endpoint.headers))

    def load(self, name: str, config: str | None = None) -> None:
        """Load (or reload) a model; ``config`` (JSON) overrides its config, e.g. the versions."""
        with self._call(f"load {name}"):
            self._client.load_model(name, headers=dict(self.endpoint.headers), config=config)

    def unload(self, name: str) -> None:
        with self._call(f"unload {name}"):
            self._client.unload_model(name, headers=dict(self.endpoint.headers))

    def trace_settings(self, name: str | None = None) -> dict[str, Any]:
        """The trace settings of model ``name`` (None: the endpoint's global settings)."""
        with self._call(f"trace settings of {name or 'the server'}"):
            payload = self._client.get_trace_settings(model_name=name,
                                                      headers=dict(self.endpoint.headers))
        if not isinstance(payload, dict):
            raise SourceError(self.source, f"trace settings of {name}: not a mapping")
        return payload

    def update_trace_settings(self, name: str, settings: Mapping[str, Any]) -> dict[str, Any]:
        """Change model ``name``'s trace settings (a null value clears the model's own, so the
        global one applies again); the settings that now apply."""
        with self._call(f"update trace settings of {name}"):
            payload = self._client.update_trace_settings(model_name=name, settings=dict(settings),
                                                         headers=dict(self.endpoint.headers))
        if not isinstance(payload, dict):
            raise SourceError(self.source, f"trace settings of {name}: not a mapping")
        return payload

    def close(self) -> None:
        with contextlib.suppress(*self._errors):  # a broken connection needs no closing
            self._client.close()

    def __enter__(self) -> TritonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- scrape persistence (the previous scrape is kept in the store between passes) ---------------


def scrape_to_json(scrape: MetricsScrape) -> dict[str, Any]:
    """JSON form of a scrape, to keep as the base of the next pass's rates."""
    return {
        "at": scrape.at, "cpu_utilization": scrape.cpu_utilization,
        "memory_used_bytes": scrape.memory_used_bytes,
        "models": [{"name": name, "version": version, "success": c.success,
                    "failure": dict(c.failure), "inferences": c.inferences,
                    "executions": c.executions, "request_duration_us": c.request_duration_us,
                    "queue_duration_us": c.queue_duration_us, "pending": c.pending,
                    "quantiles_us": dict(c.quantiles_us), "summaries": c.summaries}
                   for (name, version), c in scrape.models.items()],
    }


def scrape_from_json(data: Mapping[str, Any]) -> MetricsScrape:
    models = {(m["name"], m["version"]): ModelCounters(
        success=m["success"], failure=m["failure"], inferences=m["inferences"],
        executions=m["executions"], request_duration_us=m["request_duration_us"],
        queue_duration_us=m["queue_duration_us"], pending=m["pending"],
        quantiles_us=m["quantiles_us"], summaries=m["summaries"]) for m in data["models"]}
    return MetricsScrape(data["at"], models, data["cpu_utilization"], data["memory_used_bytes"])
