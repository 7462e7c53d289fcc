"""Collect in parts, for replicas to share: endpoints linked by the models they serve in common
are one part (a model's samples from all of them make its one snapshot), and every watched model
belongs to exactly one part."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifecycled.config import parse_settings
from lifecycled.context import Context
from lifecycled.domain import ModelRef
from lifecycled.sources.triton import MetricsScrape, parse_metrics
from lifecycled.tasks.collect import Part, collect_parts


class NoStore:
    """collect_parts reads nothing: the stored scrapes are handed in."""


def scrape(*models: str) -> MetricsScrape:
    text = "".join(f'nv_inference_count{{model="{m}",version="1"}} 1\n' for m in models)
    return parse_metrics(text, 0.0)


def context(endpoints: list[str], prometheus: bool = False) -> Context:
    sources: dict[str, object] = {"triton": [
        {"name": name, "url": f"http://127.0.0.1:{8000 + i}"} for i, name in enumerate(endpoints)]}
    if prometheus:
        sources["prometheus"] = {"url": "http://127.0.0.1:9090"}
    return Context(parse_settings({"sources": sources}), NoStore())  # type: ignore[arg-type]


def ref(name: str) -> ModelRef:
    return ModelRef(name, "1")


def test_endpoints_serving_a_model_in_common_are_one_part() -> None:
    ctx = context(["a", "b", "c", "d", "e"])
    watched = {ref(n) for n in ("m1", "m2", "m3", "m4", "m5")}
    previous = {"a": scrape("m1"), "b": scrape("m1", "m4"), "c": scrape("m4"),
                "d": scrape("m2", "not_watched"), "e": scrape()}
    parts = {p.name: p for p in collect_parts(ctx, watched, previous)}
    assert set(parts) == {"triton:a,b,c", "triton:d", "triton:e", "unserved"}
    assert [e.name for e in parts["triton:a,b,c"].endpoints] == ["a", "b", "c"]
    assert parts["triton:a,b,c"].models == {ref("m1"), ref("m4")}  # linked through b
    assert parts["triton:d"].models == {ref("m2")}
    assert parts["triton:e"].models == frozenset()  # scraped all the same: the next base
    # models no endpoint had: their snapshots carry quality alone, written once
    assert parts["unserved"].models == {ref("m3"), ref("m5")}
    assert parts["unserved"].endpoints == ()


def test_never_scraped_endpoints_are_parts_of_their_own_and_prometheus_is_one_part() -> None:
    watched = {ref("m1")}
    assert [p.name for p in collect_parts(context(["a", "b"]), watched, {})] == [
        "triton:a", "triton:b", "unserved"]
    (part,) = collect_parts(context(["a", "b"], prometheus=True), watched, {"a": scrape("m1")})
    assert part.name == "prometheus" and part.models == watched
    assert [e.name for e in part.endpoints] == ["a", "b"]  # its fallback scrapes them all


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sets(st.sampled_from([f"m{i}" for i in range(8)]), max_size=4),
                min_size=1, max_size=6),
       st.sets(st.sampled_from([f"m{i}" for i in range(10)])))
@pytest.mark.slow
def test_every_watched_model_is_in_one_part_with_every_endpoint_that_had_it(
        served: list[set[str]], watched_names: set[str]) -> None:
    names = [f"e{i}" for i in range(len(served))]
    watched = {ref(n) for n in watched_names}
    serves = dict(zip(names, served, strict=True))
    previous = {name: scrape(*sorted(models)) for name, models in serves.items()}
    parts = collect_parts(context(names), watched, previous)
    owners = [p for p in parts for _ in p.models]
    assert sorted(m for p in parts for m in p.models) == sorted(watched)  # each exactly once
    assert len(owners) == len(watched)
    assert sorted(e.name for p in parts for e in p.endpoints) == names  # each endpoint once
    for part in parts:
        inside = {e.name for e in part.endpoints}
        for model in part.models:
            had = {name for name, models in serves.items() if model.name in models}
            assert had <= inside
    # parts share no model: endpoints of two parts never served a watched one in common

    def watched_on(part: Part) -> set[str]:
        return set().union(*[serves[e.name] for e in part.endpoints]) & watched_names

    for one, two in itertools.combinations(parts, 2):
        assert not watched_on(one) & watched_on(two)
