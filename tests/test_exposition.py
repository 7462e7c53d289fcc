"""The exposition the daemon serves is prometheus_client's ``generate_latest`` byte for byte,
for any families: every metric type, label values with quotes, backslashes, newlines and
non-ASCII text, and values from -0.0 to NaN and the infinities."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifecycled.http import text_exposition
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    StateSetMetricFamily,
    SummaryMetricFamily,
    UnknownMetricFamily,
)

LABEL = st.sampled_from(["model", "version", "feature", "a_b", "le_x", "bound"])
VALUES = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**12, 10**12),
                   st.sampled_from([0.0, -0.0, 1e-320, 1234567.0, 12345678.0, 1e21]))
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12) | \
    st.sampled_from(['a"b', "back\\slash", "new\nline", "", "ünïcode €"])
DOC = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20)


@st.composite
def families(draw: Any) -> list[Any]:
    found: list[Any] = []
    for index in range(draw(st.integers(1, 6))):
        name = f"lifecycled_test_{index}"
        doc = draw(DOC)
        labels = sorted(draw(st.sets(LABEL, max_size=3)))
        kind = draw(st.sampled_from(["gauge", "counter", "unknown", "info", "summary",
                                     "histogram", "stateset"]))
        rows = draw(st.lists(st.tuples(*[TEXT for _ in labels]), max_size=4, unique=True))
        stamp = draw(st.none() | st.floats(0, 2e9, allow_nan=False))
        if kind in ("gauge", "counter", "unknown"):
            family = {"gauge": GaugeMetricFamily, "counter": CounterMetricFamily,
                      "unknown": UnknownMetricFamily}[kind](name, doc, labels=labels)
            for row in rows:
                family.add_metric(list(row), draw(VALUES), timestamp=stamp)
        elif kind == "info":
            family = InfoMetricFamily(name, doc, labels=labels)
            for row in rows:
                family.add_metric(list(row), {"build": draw(TEXT)})
        elif kind == "summary":
            family = SummaryMetricFamily(name, doc, labels=labels)
            for row in rows:
                family.add_metric(list(row), draw(st.integers(0, 100)), draw(VALUES))
        elif kind == "histogram":
            family = HistogramMetricFamily(name, doc, labels=labels)
            for row in rows:
                family.add_metric(list(row), [("0.5", 1.0), ("+Inf", 3.0)], 2.5)
        else:
            family = StateSetMetricFamily(name, doc, labels=labels)
            for row in rows:
                family.add_metric(list(row), {"on": draw(st.booleans()), "off": True})
        found.append(family)
    return found


class Fixed:
    def __init__(self, found: list[Any]) -> None:
        self.found = found

    def collect(self) -> list[Any]:
        return self.found


@settings(max_examples=300, deadline=None)
@given(families())
@pytest.mark.slow
def test_the_exposition_is_generate_latest_byte_for_byte(found: list[Any]) -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Fixed(found))
    assert text_exposition(registry) == generate_latest(registry)


def test_created_samples_move_to_gauges_of_their_own_as_the_library_puts_them() -> None:
    from prometheus_client import Counter

    registry = CollectorRegistry()
    counter = Counter("lifecycled_test_things", "Things.", ["kind"], registry=registry)
    counter.labels("a").inc(2)
    counter.labels('q"uote').inc()
    assert text_exposition(registry) == generate_latest(registry)
