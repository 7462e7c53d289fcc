"""The ``/metrics`` parser's plain-line reader against prometheus_client's parser, the reference:
on generated Triton-shaped texts (escaped label values, Triton's ``Nan``, infinities, timestamps,
GPU splits, families lifecycled does not read, HELP and TYPE lines) both give the same scrape; a
line of any other shape sends the text to prometheus_client; a malformed text is an error."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifecycled.sources import triton
from lifecycled.sources.triton import parse_metrics, scrape_to_json

FAMILIES = {
    "nv_inference_request_success": "counter", "nv_inference_count": "counter",
    "nv_inference_exec_count": "counter", "nv_inference_request_duration_us": "counter",
    "nv_inference_queue_duration_us": "counter", "nv_inference_pending_request_count": "gauge",
    "nv_inference_request_failure": "counter", "nv_inference_request_summary_us": "summary",
    "nv_cpu_utilization": "gauge", "nv_cpu_memory_used_bytes": "gauge",
    "nv_gpu_utilization": "gauge", "nv_pinned_memory_pool_used_bytes": "gauge",
}
# label values with everything the format escapes or that could end a label early
TEXT = st.text(alphabet='ab_.-09 ,={}"\\\n\t#', max_size=8)
NUMBER = st.one_of(
    st.integers(0, 10**12).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["Nan", "NaN", "+Inf", "-Inf", "1e3", "2.5E-3", ".5", "7."]),
)


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@st.composite
def sample_lines(draw: st.DrawFn, family: str) -> list[str]:
    kind = FAMILIES[family]
    lines = []
    for _ in range(draw(st.integers(0, 3))):
        labels = {"model": draw(st.sampled_from(["m", "n.1", draw(TEXT)])),
                  "version": draw(st.sampled_from(["1", "2", draw(TEXT)]))}
        if draw(st.booleans()):
            labels["gpu_uuid"] = draw(st.sampled_from(["GPU-a", "GPU-b"]))
        if family == "nv_inference_request_failure":
            labels["reason"] = draw(st.sampled_from(["BACKEND", "REJECTED", draw(TEXT)]))
        if draw(st.booleans()):
            labels = {k: labels[k] for k in reversed(labels)}
        names = [family]
        if kind == "summary":
            labels["quantile"] = draw(st.sampled_from(["0.5", "0.99"]))
            names = [family, family + "_sum", family + "_count"]
        if kind == "counter" and draw(st.booleans()):
            names = [family + "_total"]
        for name in names:
            shown = {k: v for k, v in labels.items() if k != "quantile" or name == family}
            body = ",".join(f'{k}="{escape(v)}"' for k, v in shown.items())
            if draw(st.booleans()):
                body += ","
            stamp = f" {draw(st.integers(0, 2**40))}" if draw(st.booleans()) else ""
            lines.append(f"{name}{{{body}}} {draw(NUMBER)}{stamp}")
    return lines


@st.composite
def texts(draw: st.DrawFn) -> str:
    lines = []
    for family in draw(st.lists(st.sampled_from(sorted(FAMILIES)), unique=True, max_size=6)):
        kind = FAMILIES[family]
        if draw(st.booleans()):
            lines.append(f"# HELP {family} {escape(draw(TEXT))}")
        if draw(st.booleans()) or kind == "summary":
            lines.append(f"# TYPE {family} {kind}")
        lines.extend(draw(sample_lines(family)))
        if draw(st.booleans()):
            lines.append("")
    return "\n".join(lines) + "\n"


def same(text: str) -> tuple[str, str]:
    """Scrapes from both readers, as JSON text (NaN compares equal to itself there)."""
    plain = triton._plain_samples(text)
    assert plain is not None, "a Triton-shaped text must take the plain reader"
    fast = scrape_to_json(triton._scrape(plain, 0.0))
    reference = scrape_to_json(triton._scrape(triton._library_samples(text), 0.0))
    return json.dumps(fast, sort_keys=True), json.dumps(reference, sort_keys=True)


@settings(max_examples=300, deadline=None)
@given(texts())
@pytest.mark.slow
def test_the_plain_reader_gives_prometheus_clients_scrape(text: str) -> None:
    fast, reference = same(text)
    assert fast == reference


def test_spaces_inside_the_labels_read_the_same() -> None:
    fast, reference = same('# TYPE nv_inference_count counter\n'
                           'nv_inference_count{ model = "m" , version="1", }\t4\n')
    assert fast == reference and '"inferences": 4.0' in fast


def test_the_captured_triton_text_takes_the_plain_reader() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "fixtures" / "triton"
            / "metrics_traffic.txt").read_text()
    fast, reference = same(text)
    assert fast == reference and '"credit_scoring"' in fast


@pytest.mark.parametrize("line", [
    'nv_inference_count {model="m",version="1"} 4',  # a space before the labels
    'nv_inference_count{model="m",version="1"} 4 1700000000000.5',  # a fractional timestamp
    '{__name__="nv_inference_count",model="m",version="1"} 4',  # the name as a label
])
def test_a_valid_line_of_another_shape_goes_to_prometheus_client(line: str) -> None:
    text = f"# TYPE nv_inference_count counter\n{line}\n"
    assert triton._plain_samples(text) is None
    assert parse_metrics(text, 0.0).models[("m", "1")].inferences == 4


@pytest.mark.parametrize("text", [
    "<html><body>502 Bad Gateway</body></html>\n",
    'nv_inference_count{model="m",version="1" 4\n',
    'nv_inference_count{model="m",version="1"} four\n',
    'nv_inference_count{model="m\\t",version="1"} 4 5 6 x\n',
])
def test_a_malformed_text_is_an_error(text: str) -> None:
    with pytest.raises(ValueError, match="malformed metrics text"):
        parse_metrics(text, 0.0)


def test_series_lifecycled_does_not_read_are_not_parsed() -> None:
    text = ('nv_gpu_utilization{gpu_uuid="a"} 0.5\n'
            'nv_inference_count{model="m",version="1"} 3\n')
    (sample,) = triton._plain_samples(text) or []
    assert sample[0] == "nv_inference_count" and not math.isnan(sample[2])


@pytest.mark.parametrize("line", [
    "nv_inference_count " + "1" * 100_000 + "x",
    'nv_inference_count{model="m"' + " " * 100_000 + "x",
    'nv_inference_count{model="m",version="1"' + " " * 100_000 + "} 1 2" + " " * 100_000 + "x",
    'nv_inference_count{model="' + "\\n" * 50_000 + '",version="1" 4',
])
def test_a_long_malformed_line_is_scanned_once(line: str) -> None:
    """The scan is linear in a line's length: with a backtracking pattern, each of these lines
    (10^5 characters) takes minutes instead of milliseconds."""
    assert triton._plain_samples(line + "\n") is None
    with pytest.raises(ValueError, match="malformed metrics text"):
        parse_metrics(line + "\n", 0.0)
