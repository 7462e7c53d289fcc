"""Pure Triton parsers on payloads captured from a real server (tests/fixtures/triton/;
regenerate with ``python -m devtools.capture_fixtures``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lifecycled.sources.triton import (
    parse_index,
    parse_memory_usage,
    parse_metrics,
    parse_model_config,
    scrape_from_json,
    scrape_to_json,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "triton"


def load(name: str) -> object:
    return json.loads((FIXTURES / name).read_text())


def test_index_with_an_unloaded_model() -> None:
    entries = {e.name: e for e in parse_index(load("index_unloaded.json"))}
    assert entries["credit_scoring"].state == "READY" and entries["credit_scoring"].version == "1"
    assert (entries["risk_assessment"].state, entries["risk_assessment"].reason) == (
        "UNAVAILABLE", "unloaded")


def test_index_entry_never_loaded_has_only_a_name() -> None:
    (entry,) = parse_index([{"name": "never_loaded"}])
    assert (entry.version, entry.state, entry.reason) == (None, None, "")
    with pytest.raises(ValueError):
        parse_index({"not": "a list"})
    with pytest.raises(ValueError):
        parse_index([{"version": "1"}])


def test_model_config() -> None:
    deployment = parse_model_config(load("config_credit_scoring.json"))
    assert deployment.framework == "python"
    assert deployment.max_batch_size == 64
    assert deployment.instance_groups == ({"kind": "KIND_CPU", "count": 1},)
    assert parse_model_config({"platform": "onnxruntime_onnx", "backend": "onnxruntime"}
                              ).framework == "onnxruntime_onnx"


def test_memory_usage_is_absent_for_cpu_python_models() -> None:
    assert parse_memory_usage(load("stats.json")) == {}
    assert parse_memory_usage({"model_stats": [{"name": "m", "version": "1", "memory_usage": [
        {"type": "CPU", "id": 0, "byte_size": 100}, {"type": "GPU", "id": 0, "byte_size": 50}]}]}
    ) == {("m", "1"): 150.0}


def test_metrics_after_known_traffic() -> None:
    scrape = parse_metrics((FIXTURES / "metrics_traffic.txt").read_text(), at=10.0)
    credit = scrape.models[("credit_scoring", "1")]
    # capture_fixtures sent 20 good batches of 4 rows and 5 failing single rows
    assert credit.success == 20 and credit.failure["BACKEND"] == 5 and credit.failures == 5
    assert credit.inferences == 80 and credit.executions == 25  # failed executions count too
    assert credit.request_duration_us and credit.request_duration_us > 0
    assert credit.summaries and set(credit.quantiles_us) >= {"0.5", "0.95", "0.99"}
    fraud = scrape.models[("fraud_detection", "2")]
    assert fraud.success == 7 and fraud.failures == 0
    idle = scrape.models[("risk_assessment", "3")]
    assert idle.quantiles_us == {}  # Triton prints Nan with no observations: unknown, not 0
    assert scrape.cpu_utilization is not None


def test_metrics_without_summaries_and_split_by_gpu() -> None:
    text = (
        "# TYPE nv_inference_request_success counter\n"
        'nv_inference_request_success{model="m",version="1",gpu_uuid="a"} 3\n'
        'nv_inference_request_success{model="m",version="1",gpu_uuid="b"} 4\n'
    )
    counters = parse_metrics(text, at=0).models[("m", "1")]
    assert counters.success == 7
    assert counters.summaries is False and counters.quantiles_us == {}
    assert counters.request_duration_us is None


def test_malformed_metrics_text() -> None:
    with pytest.raises(ValueError):
        parse_metrics("nv_inference_count{model=\"m\" 1\n", at=0)


def test_scrape_round_trip() -> None:
    scrape = parse_metrics((FIXTURES / "metrics_traffic.txt").read_text(), at=10.0)
    assert scrape_from_json(json.loads(json.dumps(scrape_to_json(scrape)))) == scrape
