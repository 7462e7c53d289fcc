"""Prometheus as the serving-metrics source: one batched PromQL query per quantity returns every
model version (``sum by (model, version)``), so the number of queries does not grow with the
fleet. Every call has a timeout; failures become SourceError; NaN and infinities are unknown."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import requests

from lifecycled.domain import PROMQL_QUANTITIES
from lifecycled.errors import SourceError
from lifecycled.net import DeadlineAdapter, DeadlineSession, describe
from lifecycled.settings import PrometheusSettings

SOURCE = "prometheus"
_OK = "sum by (model, version) (rate(nv_inference_request_success[{window}]))"
_FAIL = "sum by (model, version) (rate(nv_inference_request_failure[{window}]))"

# Quantity -> PromQL template ({window}: rate window; {interval}: the collect interval).
DEFAULT_QUERIES: dict[str, str] = {
    "requests_per_second": f"{_OK} + {_FAIL}",
    "inferences_per_second": "sum by (model, version) (rate(nv_inference_count[{window}]))",
    "error_ratio": f"{_FAIL} / ({_OK} + {_FAIL})",
    "latency_mean_seconds": "sum by (model, version) (rate(nv_inference_request_duration_us"
                            f"[{{window}}])) / {_OK} / 1e6",
    "queue_mean_seconds": "sum by (model, version) (rate(nv_inference_queue_duration_us"
                          f"[{{window}}])) / {_OK} / 1e6",
    "latency_p50_seconds": 'max by (model, version) (nv_inference_request_summary_us'
                           '{quantile="0.5"}) / 1e6',
    "latency_p95_seconds": 'max by (model, version) (nv_inference_request_summary_us'
                           '{quantile="0.95"}) / 1e6',
    "latency_p99_seconds": 'max by (model, version) (nv_inference_request_summary_us'
                           '{quantile="0.99"}) / 1e6',
    "pending_requests": "sum by (model, version) (nv_inference_pending_request_count)",
    "requests": "sum by (model, version) (increase(nv_inference_request_success[{interval}])) + "
                "sum by (model, version) (increase(nv_inference_request_failure[{interval}]))",
}
QUANTITIES = PROMQL_QUANTITIES
assert set(DEFAULT_QUERIES) == set(QUANTITIES), "one default query per quantity"

Key = tuple[str, str]


def sample_value(text: Any) -> float | None:
    """A Prometheus sample value (a string: "1.5", "NaN", "+Inf") as a finite float or None."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def parse_vector(result: Any) -> dict[Key, float | None]:
    """``[{"metric": {...}, "value": [ts, "v"]}, ...]`` -> {(model, version): value}."""
    if not isinstance(result, list):
        raise ValueError(f"expected a vector result, got {type(result).__name__}")
    values: dict[Key, float | None] = {}
    for item in result:
        labels = item.get("metric", {}) if isinstance(item, Mapping) else {}
        if "model" in labels and "version" in labels:
            values[(labels["model"], labels["version"])] = sample_value(item["value"][1])
    return values


def parse_matrix(result: Any) -> dict[Key, list[tuple[float, float]]]:
    """A range result -> {(model, version): [(t, v), ...]} with unknown values dropped."""
    series: dict[Key, list[tuple[float, float]]] = {}
    for item in result if isinstance(result, list) else []:
        labels = item.get("metric", {})
        if "model" in labels and "version" in labels:
            points = [(float(t), v) for t, raw in item.get("values", [])
                      if (v := sample_value(raw)) is not None]
            series[(labels["model"], labels["version"])] = points
    return series


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def histogram_query(metric: str, labels: Mapping[str, str], window: float | None = None, *,
                    native: bool) -> str:
    """The PromQL of a histogram summed over the series with ``labels``: per ``le`` for a
    classic histogram, one histogram for a native one; its cumulative counts, or with
    ``window`` their ``increase`` over that many seconds."""
    selector = ",".join(f"{name}={_quoted(value)}" for name, value in sorted(labels.items()))
    series = f"{metric}{{{selector}}}" if native else f"{metric}_bucket{{{selector}}}"
    if window is not None:
        series = f"increase({series}[{max(1, int(window))}s])"
    return f"sum({series})" if native else f"sum by (le) ({series})"


def parse_classic_histogram(result: Any) -> tuple[list[float], list[float]]:
    """``sum by (le)`` of a classic histogram -> (edges, cumulative counts); a bucket whose
    value is not a number is an error (ValueError), not a zero."""
    if not isinstance(result, list):
        raise ValueError(f"expected a vector result, got {type(result).__name__}")
    edges, counts = [], []
    for item in result:
        le = (item.get("metric") or {}).get("le") if isinstance(item, Mapping) else None
        if le is None:
            continue
        value = float(item["value"][1])
        if math.isnan(value):
            raise ValueError(f"bucket le={le} is NaN")
        edges.append(float(le))
        counts.append(value)
    return edges, counts


def parse_native_histogram(result: Any) -> list[tuple[float, float, float]]:
    """``sum(...)`` of a native histogram -> its buckets as (lower, upper, count); the
    boundary rule (which ends are open) is not kept: a value on a boundary is rare."""
    if not isinstance(result, list):
        raise ValueError(f"expected a vector result, got {type(result).__name__}")
    intervals: list[tuple[float, float, float]] = []
    for item in result:
        histogram = item.get("histogram") if isinstance(item, Mapping) else None
        if histogram is None:
            continue
        for bucket in histogram[1].get("buckets") or []:
            _, lower, upper, count = bucket
            intervals.append((float(lower), float(upper), float(count)))
    return intervals


class PrometheusSource:
    """Queries a Prometheus server with prometheus-api-client (timeout always set)."""

    def __init__(self, settings: PrometheusSettings, password: str | None = None):
        """``password``: the basic-auth password (read by the caller from its file or variable)."""
        from prometheus_api_client import PrometheusConnect
        from urllib3.util.retry import Retry

        self.settings = settings
        auth = None
        if settings.basic_auth is not None:
            if password is None:
                raise SourceError(SOURCE, "sources.prometheus.basic_auth: no password given")
            auth = (settings.basic_auth.username, password)
        retry = Retry(total=2, backoff_factor=0.2, status_forcelist=[502, 503, 504],
                      allowed_methods=["GET"])
        session = DeadlineSession(default_timeout=settings.timeout)
        session.verify = settings.tls.verify
        self.client = PrometheusConnect(
            url=settings.url, headers=dict(settings.headers) or None,
            disable_ssl=not settings.tls.verify, auth=auth, retry=retry, session=session)
        # the client mounts a plain adapter for its URL: ours keeps the retries inside the
        # call's deadline (the configured timeout bounds the whole query, retries included)
        session.mount(settings.url, DeadlineAdapter(max_retries=retry))
        if settings.tls.ca_file:
            self.client._session.verify = settings.tls.ca_file

    def _call(self, what: str, call: Any) -> Any:
        from prometheus_api_client import PrometheusApiClientException

        try:
            return call()
        except requests.RequestException as exc:
            raise SourceError(SOURCE, f"{what}: {describe(exc, self.settings.url)}") from exc
        except (PrometheusApiClientException, ValueError, KeyError) as exc:
            raise SourceError(SOURCE, f"{what}: {str(exc)[:300] or 'malformed reply'}") from exc

    def query(self, expr: str, at: float | None = None) -> Any:
        """An instant query, evaluated now or at Unix time ``at``."""
        params = {"time": f"{at:.3f}"} if at is not None else None
        return self._call(f"query {expr[:80]}", lambda: self.client.custom_query(
            expr, params=params, timeout=self.settings.timeout))

    def query_range(self, expr: str, start: float, end: float, step: float) -> Any:
        import datetime as dt

        return self._call(f"range query {expr[:80]}", lambda: self.client.custom_query_range(
            expr, start_time=dt.datetime.fromtimestamp(start, dt.UTC),
            end_time=dt.datetime.fromtimestamp(end, dt.UTC), step=f"{int(step)}s",
            timeout=self.settings.timeout))

    def template(self, quantity: str, interval: float) -> str:
        expr = self.settings.queries.get(quantity, DEFAULT_QUERIES.get(quantity, ""))
        return expr.replace("{window}", self.settings.window_text).replace(
            "{interval}", f"{max(1, int(interval))}s")

    def serving(self, interval: float) -> dict[Key, dict[str, float | None]]:
        """Every quantity for every model version: {(model, version): {quantity: value}}."""
        found: dict[Key, dict[str, float | None]] = {}
        for quantity in QUANTITIES:
            expr = self.template(quantity, interval)
            if not expr:
                continue
            try:
                values = parse_vector(self.query(expr))
            except ValueError as exc:
                raise SourceError(SOURCE, f"{quantity}: {exc}") from exc
            for key, value in values.items():
                found.setdefault(key, {})[quantity] = value
        return found

    def scalar(self, expr: str) -> float | None:
        """The value of a query that should return one sample (e.g. a model's accuracy)."""
        result = self.query(expr)
        if isinstance(result, list) and result:
            return sample_value(result[0].get("value", [None, None])[1])
        return None

    def close(self) -> None:
        close = getattr(self.client, "close", None)
        if callable(close):
            close()

    def __enter__(self) -> PrometheusSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
