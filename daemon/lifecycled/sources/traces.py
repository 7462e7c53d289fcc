"""Triton's trace files: the inputs and outputs of the requests Triton samples (trace level
``TENSORS``, with ``TIMESTAMPS`` for the record that names the model), decoded into columns per
model version.

A file is a JSON array of records sharing a trace ``id``: ``{"id", "model_name",
"model_version"}`` names the request's model; ``{"id", "activity": "TENSOR_QUEUE_INPUT" |
"TENSOR_BACKEND_OUTPUT", "tensor": {"name", "data": "v1,v2,...", "shape": "8,4", "dtype"}}``
carries one of its tensors. A tensor of shape ``B,k...`` gives B rows (the first dimension is
the batch, unless the model does not batch) and one column per element: ``TENSOR`` when a row
holds one value, else ``TENSOR_0``, ``TENSOR_1``, ... in row-major order.

Everything here is pure: bytes in, columns and problems (one line each) out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

Columns = dict[str, np.ndarray]
TRACE_LEVEL = ("TIMESTAMPS", "TENSORS")  # what lifecycled asks for: the model's name, the tensors
INPUT, OUTPUT = "TENSOR_QUEUE_INPUT", "TENSOR_BACKEND_OUTPUT"
NUMERIC = frozenset(["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32",
                     "INT64", "FP16", "FP32", "FP64", "BF16"])
_BOOLEAN = {"true": 1.0, "false": 0.0}


@dataclass
class Decoded:
    """One trace file's requests, as columns per (model, version)."""

    batches: dict[tuple[str, str], Columns] = field(default_factory=dict)
    requests: dict[tuple[str, str], int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    complete: bool = True  # the array was read to its end (else: the records before the break)
    records: int = 0

    def rows(self, key: tuple[str, str]) -> int:
        columns = self.batches.get(key)
        return 0 if not columns else len(next(iter(columns.values())))


def records_of(data: bytes) -> tuple[list[object], bool]:
    """The records of a trace file, and whether the array was whole. A file cut short (still
    being written, or truncated) gives the records before the cut."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="replace")
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return _salvage(text), False
    if not isinstance(value, list):
        return [], False
    return value, True


def _salvage(text: str) -> list[object]:
    decoder = json.JSONDecoder()
    start = text.find("[")
    records: list[object] = []
    if start < 0:
        return records
    at = start + 1
    while True:
        while at < len(text) and text[at] in " \t\r\n,":
            at += 1
        try:
            record, at = decoder.raw_decode(text, at)
        except (json.JSONDecodeError, RecursionError):
            return records
        records.append(record)


@dataclass
class _Request:
    model: str | None = None
    version: str | None = None
    tensors: list[tuple[str, dict[str, object]]] = field(default_factory=list)


def decode(data: bytes, *, batched: Callable[[str], bool] = lambda model: True) -> Decoded:
    """Decode one trace file. ``batched(model)`` says whether the model's tensors carry a batch
    dimension first (its config's max_batch_size > 0). A request that cannot be decoded is one
    problem and is left out; the others are kept."""
    records, complete = records_of(data)
    out = Decoded(complete=complete, records=len(records))
    if not complete and not records:
        out.problems.append("not a JSON array of trace records")
        return out
    requests: dict[object, _Request] = {}
    for record in records:
        if not isinstance(record, dict) or "id" not in record:
            continue
        key = record["id"]
        if not isinstance(key, (int, str)):
            continue
        request = requests.setdefault(key, _Request())
        if "model_name" in record:
            request.model = str(record["model_name"])
            request.version = str(record.get("model_version", ""))
        activity = record.get("activity")
        tensor = record.get("tensor")
        if activity in (INPUT, OUTPUT) and isinstance(tensor, dict):
            request.tensors.append((str(activity), tensor))
    unnamed = 0
    text: set[str] = set()
    skipped: dict[str, int] = {}
    parts: dict[tuple[str, str], list[Columns]] = {}
    for request in requests.values():
        if not request.tensors:
            continue
        if request.model is None:
            unnamed += 1
            continue
        try:
            columns = _columns(request, batched(request.model), text)
        except _Skip as problem:
            skipped[str(problem)] = skipped.get(str(problem), 0) + 1
            continue
        if columns:
            model = (request.model, request.version or "")
            parts.setdefault(model, []).append(columns)
            out.requests[model] = out.requests.get(model, 0) + 1
    if unnamed:
        out.problems.append(f"{unnamed} traced requests name no model (the trace level lacks "
                            f"TIMESTAMPS)")
    out.problems += [f"{count} traced requests left out: {problem}"
                     for problem, count in sorted(skipped.items())]
    out.problems += [f"tensor {name} holds text (BYTES): not judged from traces"
                     for name in sorted(text)]
    out.batches = {model: _concatenate(found) for model, found in parts.items()}
    return out


class _Skip(Exception):
    """A request that cannot be decoded (the message says why)."""


def _columns(request: _Request, batched: bool, text: set[str]) -> Columns:
    columns: Columns = {}
    rows: int | None = None
    for _, tensor in request.tensors:
        name, dtype = str(tensor.get("name", "")), str(tensor.get("dtype", ""))
        if dtype == "BYTES":
            text.add(name)  # text: not judged from traces (one problem per file)
            continue
        if dtype not in NUMERIC:
            raise _Skip(f"tensor {name} has an unknown dtype {dtype!r}")
        values, shape = _values(name, tensor)
        count = shape[0] if batched and len(shape) > 1 else 1
        width = math.prod(shape[1:]) if batched and len(shape) > 1 else math.prod(shape)
        if rows is not None and count != rows:
            raise _Skip(f"its tensors hold {rows} and {count} rows")
        rows = count
        matrix = values.reshape(count, width) if width else values.reshape(count, 0)
        if width == 1:
            columns[name] = matrix[:, 0]
        else:
            for index in range(width):
                columns[f"{name}_{index}"] = matrix[:, index]
    return columns


def _values(name: str, tensor: dict[str, object]) -> tuple[np.ndarray, list[int]]:
    try:
        shape = [int(part) for part in str(tensor.get("shape", "")).split(",") if part != ""]
    except ValueError:
        raise _Skip(f"tensor {name} has a shape that is not numbers") from None
    if any(dim < 0 for dim in shape):
        raise _Skip(f"tensor {name} has a negative dimension")
    text = str(tensor.get("data", ""))
    words = text.split(",") if text else []
    try:
        values = np.array([_number(word) for word in words], dtype=np.float64)
    except ValueError:
        raise _Skip(f"tensor {name} holds a value that is not a number") from None
    if values.size != math.prod(shape):
        raise _Skip(f"tensor {name} holds {values.size} values for shape "
                    f"{','.join(map(str, shape)) or 'scalar'}")
    return values, shape or [1]


def _number(word: str) -> float:
    boolean = _BOOLEAN.get(word.strip().lower())
    return boolean if boolean is not None else float(word)


def _concatenate(parts: list[Columns]) -> Columns:
    """The requests' columns one after the other; a column a request lacks is NaN there."""
    names: dict[str, None] = {}
    for part in parts:
        names.update(dict.fromkeys(part))
    out: Columns = {}
    for name in names:
        out[name] = np.concatenate([
            part[name] if name in part else np.full(len(next(iter(part.values()))), np.nan)
            for part in parts])
    return out


def renamed(columns: Columns, mapping: dict[str, str] | None) -> Columns:
    """The columns with the names ``mapping`` gives (drift.columns); the others unchanged."""
    if not mapping:
        return columns
    return {mapping.get(name, name): values for name, values in columns.items()}


# --- the files Triton writes ---------------------------------------------------------------------


def trace_files(prefix: str) -> list[Path]:
    """The trace files under ``prefix``: ``PATH.N`` (written every log_frequency traces) and
    ``PATH`` itself (written at exit when log_frequency is 0), oldest first."""
    base = Path(prefix)
    found: list[tuple[int, Path]] = []
    if base.is_file():
        found.append((-1, base))
    try:
        entries = list(base.parent.iterdir())
    except OSError:
        return [path for _, path in found]
    for path in entries:
        suffix = path.name[len(base.name) + 1:]
        if path.name.startswith(base.name + ".") and suffix.isdigit() and path.is_file():
            found.append((int(suffix), path))
    return [path for _, path in sorted(found, key=_oldest_first)]


def _oldest_first(item: tuple[int, Path]) -> tuple[float, int]:
    index, path = item
    try:
        return path.stat().st_mtime, index
    except OSError:
        return math.inf, index


def backlog(prefix: str) -> Iterator[tuple[Path, int]]:
    """Each trace file not yet consumed, with its size in bytes."""
    for path in trace_files(prefix):
        try:
            yield path, path.stat().st_size
        except OSError:
            continue
