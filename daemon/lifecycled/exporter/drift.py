"""Data drift: the latest check per version (time, severity, drifted share) and its per-feature
statistics. The per-feature samples are most of a scrape's series; they are built once per stored
result and reused until a newer result replaces it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import Metric
from prometheus_client.samples import Sample

from lifecycled.domain import SEVERITY_STATES
from lifecycled.exporter import segments
from lifecycled.exporter.families import Gauge, gauge
from lifecycled.exporter.scrape import Scrape
from lifecycled.store.views import DriftView, FeatureView, drift_views

AddSamples = Callable[[Gauge, dict[str, str], FeatureView], None]


def _add(family: Gauge, labels: dict[str, str], value: float | None) -> None:
    if value is not None:  # unknown: absent
        family.add(labels, value)


def _unjudged(family: Gauge, labels: dict[str, str], f: FeatureView) -> None:
    if not f.judged:
        family.add({**labels, "reason": str(f.reason)}, 1)


def _score(family: Gauge, labels: dict[str, str], f: FeatureView) -> None:
    if f.judged:
        _add(family, labels, f.score)


def _statistic(family: Gauge, labels: dict[str, str], f: FeatureView) -> None:
    if f.judged:
        numeric = f.kind == "numeric"
        _add(family, {**labels, "test": "ks" if numeric else "chi2"},
             f.statistic if numeric else f.chi2)
        _add(family, {**labels, "test": "js"}, f.js)
        labels["test"] = "psi"  # the last use of this mapping: no copy needed
        _add(family, labels, f.psi)


def _p_value(family: Gauge, labels: dict[str, str], f: FeatureView) -> None:
    if f.judged:
        _add(family, {**labels, "test": "ks" if f.kind == "numeric" else "chi2"}, f.p_value)


# each per-feature family (catalogue.py declares its help and labels) and how a feature adds to it
PER_FEATURE: tuple[tuple[str, AddSamples], ...] = (
    ("lifecycled_model_feature_unjudged", _unjudged),
    ("lifecycled_model_drift_score", _score),
    ("lifecycled_model_drift_statistic", _statistic),
    ("lifecycled_model_drift_p_value", _p_value),
)


def collect(scrape: Scrape) -> Iterator[Metric]:
    """Each family is yielded as soon as it is built, so a scrape holds one at a time."""
    decodings = scrape.decodings
    results = [r for r in drift_views(scrape.store, decodings.drift) if r.ref in scrape.live]
    checked = gauge("lifecycled_model_drift_check_timestamp_seconds")
    severity = gauge("lifecycled_model_drift_severity")
    share = gauge("lifecycled_model_drifted_features_ratio")
    for stored in results:
        mv = [stored.ref.name, stored.ref.version]
        checked.add_metric(mv, stored.at)
        for level in SEVERITY_STATES:
            severity.add_metric([*mv, level], 1 if level == stored.severity else 0)
        if stored.drifted_share is not None:
            share.add_metric(mv, stored.drifted_share)
    yield from (checked, severity, share)
    yield from segments.drift(results)
    kept: dict[tuple[str, int], list[Sample]] = {}
    for name, add in PER_FEATURE:
        yield _per_feature(results, name, add, decodings.drift_samples, kept)
    decodings.drift_samples = kept  # only the results still latest


def _per_feature(results: list[DriftView], name: str, add: AddSamples,
                 built: dict[tuple[str, int], list[Sample]],
                 kept: dict[tuple[str, int], list[Sample]]) -> Metric:
    family = gauge(name)
    for stored in results:
        key = (name, stored.row_id)
        samples = built.get(key)
        if samples is None:
            part = gauge(name)
            model, version = stored.ref.name, stored.ref.version
            for f in stored.features:
                add(part, {"model": model, "version": version, "feature": f.feature}, f)
            samples = part.samples
        kept[key] = samples
        family.samples.extend(samples)
    return family
