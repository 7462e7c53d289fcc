"""Decoding Triton's trace files: records in the shape the server writes (seen on the
``nvidia-pytriton`` server, tests/integration/test_traces.py), bad and partial files."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifecycled.sources.traces import decode, records_of, renamed, trace_files


def request(trace_id: int, model: str | None, tensors: list[tuple[str, str, np.ndarray, str]],
            version: int = 1) -> list[dict[str, Any]]:
    """The records of one traced request: its timestamps, the record naming its model (absent
    without TIMESTAMPS) and one record per tensor (activity, name, values, dtype)."""
    records: list[dict[str, Any]] = [
        {"id": trace_id, "timestamps": [{"name": "HTTP_RECV_START", "ns": 1}]}]
    if model is not None:
        records.append({"id": trace_id, "model_name": model, "model_version": version})
    for activity, name, values, dtype in tensors:
        data = ",".join(f"{v:g}" for v in np.asarray(values).ravel())
        records.append({"id": trace_id, "activity": activity, "tensor": {
            "name": name, "data": data, "shape": ",".join(map(str, np.shape(values))),
            "dtype": dtype}})
    records.append({"id": trace_id, "timestamps": [{"name": "REQUEST_END", "ns": 2}]})
    return records


def scored(trace_id: int, inputs: np.ndarray, model: str = "credit_scoring") -> list[dict[str, Any]]:
    return request(trace_id, model, [
        ("TENSOR_QUEUE_INPUT", "INPUT", inputs, "FP32"),
        ("TENSOR_BACKEND_OUTPUT", "OUTPUT", inputs.sum(axis=1, keepdims=True), "FP32")])


def file_of(*requests: list[dict[str, Any]]) -> bytes:
    return json.dumps([record for records in requests for record in records]).encode()


def test_a_batch_gives_one_row_per_element_of_the_first_dimension() -> None:
    first = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    second = np.array([[7.0, 8.0, 9.0]])
    decoded = decode(file_of(scored(1, first), scored(3, second),
                             scored(5, second, model="fraud_detection")))
    assert decoded.complete and decoded.problems == []
    columns = decoded.batches[("credit_scoring", "1")]
    assert sorted(columns) == ["INPUT_0", "INPUT_1", "INPUT_2", "OUTPUT"]
    assert columns["INPUT_1"].tolist() == [2.0, 5.0, 8.0]
    assert columns["OUTPUT"].tolist() == [6.0, 15.0, 24.0]
    assert decoded.requests == {("credit_scoring", "1"): 2, ("fraud_detection", "1"): 1}
    assert decoded.rows(("fraud_detection", "1")) == 1


def test_a_model_that_does_not_batch_gives_one_row_per_request() -> None:
    values = np.array([[1.0, 2.0], [3.0, 4.0]])
    decoded = decode(file_of(scored(1, values)), batched=lambda model: False)
    columns = decoded.batches[("credit_scoring", "1")]
    assert sorted(columns) == ["INPUT_0", "INPUT_1", "INPUT_2", "INPUT_3", "OUTPUT_0", "OUTPUT_1"]
    assert columns["INPUT_2"].tolist() == [3.0]


def test_renamed_columns_follow_the_mapping_and_keep_the_rest() -> None:
    columns = {"INPUT_0": np.zeros(1), "OUTPUT": np.ones(1)}
    assert sorted(renamed(columns, {"INPUT_0": "income"})) == ["OUTPUT", "income"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5), st.integers(1, 4)), min_size=1, max_size=6),
       st.integers(0, 2**31))
def test_decoded_values_are_the_values_written(shapes: list[tuple[int, int]], seed: int) -> None:
    rng = np.random.default_rng(seed)
    width = shapes[0][1]
    batches = [np.round(rng.normal(0, 100, (rows, width)), 3) for rows, _ in shapes]
    decoded = decode(file_of(*(scored(i, b) for i, b in enumerate(batches))))
    columns = decoded.batches[("credit_scoring", "1")]
    expected = np.vstack(batches)
    for index in range(width):
        name = "INPUT" if width == 1 else f"INPUT_{index}"
        np.testing.assert_allclose(columns[name], expected[:, index], rtol=1e-5)


def test_a_file_cut_short_gives_the_whole_records_before_the_cut() -> None:
    whole = file_of(scored(1, np.ones((2, 2))), scored(2, np.zeros((1, 2))))
    cut = whole[: whole.index(b'"id": 2') + 40]
    decoded = decode(cut)
    assert not decoded.complete
    assert decoded.batches[("credit_scoring", "1")]["INPUT_0"].tolist() == [1.0, 1.0]
    records, whole_array = records_of(cut)
    assert not whole_array and len(records) >= 5


@pytest.mark.parametrize("data", [b"", b"not json", b"{\"id\": 1}", b"[" * 100_000,
                                  b"\xff\xfe[]"])
def test_a_file_with_nothing_readable_is_said_so(data: bytes) -> None:
    decoded = decode(data)
    assert (decoded.batches, decoded.complete) == ({}, False)
    assert decoded.problems == ["not a JSON array of trace records"]


def test_bad_requests_are_one_problem_each_and_lose_nothing_else() -> None:
    good = scored(1, np.array([[1.0, 2.0]]))
    unknown = request(2, "credit_scoring", [("TENSOR_QUEUE_INPUT", "INPUT", np.ones((1, 2)),
                                             "FP8")])
    text = request(3, "credit_scoring", [("TENSOR_QUEUE_INPUT", "INPUT", np.ones((1, 2)), "FP32"),
                                         ("TENSOR_QUEUE_INPUT", "NOTE", np.ones((1, 1)), "BYTES")])
    unnamed = request(4, None, [("TENSOR_QUEUE_INPUT", "INPUT", np.ones((1, 2)), "FP32")])
    rows = request(5, "credit_scoring", [("TENSOR_QUEUE_INPUT", "INPUT", np.ones((2, 2)), "FP32"),
                                         ("TENSOR_BACKEND_OUTPUT", "OUTPUT", np.ones((3, 1)),
                                          "FP32")])
    short = request(6, "credit_scoring", [("TENSOR_QUEUE_INPUT", "INPUT", np.ones((2, 2)),
                                           "FP32")])
    short[2]["tensor"]["data"] = "1,2,3"
    decoded = decode(file_of(good, unknown, text, unnamed, rows, short))
    assert decoded.batches[("credit_scoring", "1")]["INPUT_1"].tolist() == [2.0, 1.0]
    assert decoded.requests == {("credit_scoring", "1"): 2}
    assert sorted(decoded.problems) == sorted([
        "1 traced requests name no model (the trace level lacks TIMESTAMPS)",
        "1 traced requests left out: tensor INPUT has an unknown dtype 'FP8'",
        "1 traced requests left out: its tensors hold 2 and 3 rows",
        "1 traced requests left out: tensor INPUT holds 3 values for shape 2,2",
        "tensor NOTE holds text (BYTES): not judged from traces"])


def test_a_column_one_request_lacks_is_missing_there() -> None:
    both = scored(1, np.array([[1.0, 2.0]]))
    inputs_only = request(2, "credit_scoring", [("TENSOR_QUEUE_INPUT", "INPUT",
                                                 np.array([[3.0, 4.0]]), "FP32")])
    columns = decode(file_of(both, inputs_only)).batches[("credit_scoring", "1")]
    assert columns["OUTPUT"][0] == 3.0 and np.isnan(columns["OUTPUT"][1])


def test_trace_files_are_listed_oldest_first_and_others_left_alone(tmp_path: Path) -> None:
    prefix = tmp_path / "trace.json"
    for index, age in ((10, 30), (2, 20), (3, 10)):
        path = tmp_path / f"trace.json.{index}"
        path.write_text("[]")
        then = time.time() - age
        os.utime(path, (then, then))
    for other in ("trace.json.3.rejected", "trace.json.x", "other.json.1"):
        (tmp_path / other).write_text("[]")
    assert [p.name for p in trace_files(str(prefix))] == ["trace.json.10", "trace.json.2",
                                                          "trace.json.3"]
    assert trace_files(str(tmp_path / "missing" / "trace.json")) == []
