"""The state-changing API calls (POST /api/v1/...): their request bodies, read and validated here
(a job event with pydantic like the configuration; a pushed batch of rows as a table whose every
value is checked before it is touched), and the handlers ``lifecycled.http`` routes to."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from lifecycled.config import format_error
from lifecycled.domain import ModelRef
from lifecycled.errors import InputError, SourceError

if TYPE_CHECKING:  # a job command imports this module: numpy and pyarrow only for pushes
    import numpy as np
    import pyarrow as pa

MAX_LOG_LINES, MAX_LINE = 100, 2000
ReportedState = Literal["training", "validating", "deploying", "completed", "failed"]


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def _lines(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Line = Annotated[str, Field(max_length=MAX_LINE)]
Metric = Annotated[float, Field(strict=True), AfterValidator(_finite)]


class JobEvent(BaseModel):
    """A progress report from the update pipeline (POST /api/v1/jobs/{id}/events)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    state: ReportedState | None = None
    progress: Annotated[float, Field(strict=True, ge=0, le=100)] | None = None
    log: Annotated[list[Line], BeforeValidator(_lines), Field(max_length=MAX_LOG_LINES)] = []
    validation_metrics: dict[str, Metric] = {}
    message: Annotated[str, AfterValidator(lambda text: text[:MAX_LINE])] = ""

    @classmethod
    def parse(cls, raw: bytes | None) -> JobEvent:
        """Parse a request body; InputError names every problem."""
        try:
            body = json.loads(raw or b"null")
        except ValueError as exc:
            raise InputError(f"the body is not valid JSON: {exc}") from exc
        except RecursionError:  # nested deeper than the parser goes, within the size limit
            raise InputError("the body is nested too deeply") from None
        if not isinstance(body, dict):
            raise InputError("the body must be a JSON object")
        try:
            return cls.model_validate(body)
        except ValidationError as exc:
            raise InputError("; ".join(format_error(e) for e in exc.errors(include_url=False))
                             ) from exc


Push = Callable[[ModelRef, str, "dict[str, np.ndarray]"], dict[str, Any]]  # (ref, kind, columns)


def push_handler(push: Push) -> Callable[[Any], tuple[int, Any]]:
    """POST /api/v1/models/{name}/{version}/predictions (or /labels): a batch of rows, JSON
    Lines or Arrow IPC, read into its columns here and stored by id (``push``: the composition
    root passes the stream action; sending a batch again changes nothing)."""

    def handle(request: Any) -> tuple[int, Any]:
        parts = request.parts
        if len(parts) != 6 or parts[5] not in ("predictions", "labels"):
            return 404, {"error": f"no route for POST {request.path}"}
        ref, kind = ModelRef(parts[3], parts[4]), parts[5]
        kind_of_body = request.headers.get("content-type", "application/x-ndjson")
        try:
            columns = read_body(f"POST {kind} of {ref}", request.body or b"", kind_of_body)
        except SourceError as exc:  # not a flat table: a 400 saying why
            raise InputError(str(exc)) from exc
        return 200, push(ref, kind, columns)

    return handle


ApplyJobEvent = Callable[[str, JobEvent], Any]  # (job id, event) -> the job (with to_json())


def job_events_handler(apply: ApplyJobEvent) -> Callable[[Any], tuple[int, Any]]:
    """POST /api/v1/jobs/{id}/events: a progress report from the update pipeline, validated
    here and handed to ``apply`` (the composition root passes the update-job action)."""

    def handle(request: Any) -> tuple[int, Any]:
        if len(request.parts) != 5 or request.parts[4] != "events":
            return 404, {"error": f"no route for POST {request.path}"}
        return 200, apply(request.parts[3], JobEvent.parse(request.body)).to_json()

    return handle


MAX_PUSH_COLUMNS = 1_000  # columns of one pushed body


def read_body(where: str, body: bytes, content_type: str) -> dict[str, np.ndarray]:
    """A pushed body's columns; SourceError for anything that is not a flat table."""
    import pyarrow as pa

    from lifecycled.sources.samples import plain_columns, table_to_columns

    table = parse_body(where, body, content_type)
    if table.num_columns > MAX_PUSH_COLUMNS:
        raise SourceError(where, f"{table.num_columns} columns; a push carries at most "
                                 f"{MAX_PUSH_COLUMNS}")
    try:
        return table_to_columns(plain_columns(where, table))
    except (pa.ArrowException, ValueError) as exc:  # values the validation let through
        raise SourceError(where, f"cannot read the body: {exc}") from exc


JSON_LINES = ("application/x-ndjson", "application/jsonl", "application/json-lines",
              "application/json")
ARROW_STREAM, ARROW_FILE = "application/vnd.apache.arrow.stream", "application/vnd.apache.arrow.file"


def parse_body(where: str, body: bytes, content_type: str, *,
               decoded_limit: int | None = None,
               memory_pool: pa.MemoryPool | None = None) -> pa.Table:
    """The table a pushed body holds (JSON Lines or Arrow IPC); SourceError when it is not one.
    An Arrow body's decoded size is read from its metadata and bounded before any buffer is
    decompressed (1.7 MiB of zstd can expand to 770 MiB), then it is read batch by batch, each
    validated in full before any of its values is touched (pyarrow trusts a body's offsets, and a
    corrupted one crashed the process). The limit defaults to ``DECODED_PER_BODY_BYTE`` times the
    body, at least ``DECODED_FLOOR``."""
    import pyarrow as pa
    import pyarrow.ipc as ipc
    import pyarrow.json as pa_json

    from lifecycled.core import ipc_size
    from lifecycled.sources.samples import check_flat_lines

    media = content_type.split(";", 1)[0].strip().lower()
    limit = decoded_limit or max(DECODED_FLOOR, DECODED_PER_BODY_BYTE * len(body))
    try:
        if media in JSON_LINES:
            check_flat_lines(where, body)  # pyarrow's JSON reader crashes on deep nesting
            return pa_json.read_json(pa.BufferReader(body), memory_pool=memory_pool)
        if media == ARROW_STREAM:
            _bounded(where, ipc_size.stream_size(body), limit)
            stream = ipc.open_stream(pa.BufferReader(body), memory_pool=memory_pool)
            return _validated(stream.schema, iter(stream))
        if media == ARROW_FILE:
            _bounded(where, ipc_size.file_size(body), limit)
            file = ipc.open_file(pa.BufferReader(body), memory_pool=memory_pool)
            return _validated(file.schema, (file.get_batch(i)
                                            for i in range(file.num_record_batches)))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise SourceError(where, f"cannot read the body: {exc}") from exc
    raise SourceError(where, f"Content-Type {media!r}: send JSON Lines (application/x-ndjson) "
                             f"or Arrow IPC ({ARROW_STREAM})")


DECODED_PER_BODY_BYTE = 16  # decoded bytes allowed per byte of an Arrow body ...
DECODED_FLOOR = 256 * 2**20  # ... and at least this many


def _bounded(where: str, decoded: int, limit: int) -> None:
    if decoded > limit:
        raise SourceError(where, f"the body decodes to {decoded} bytes, more than the "
                                 f"{limit} allowed")


def _validated(schema: pa.Schema, batches: Iterator[pa.RecordBatch]) -> pa.Table:
    import pyarrow as pa

    kept = []
    for batch in batches:
        batch.validate(full=True)  # offsets, lengths and UTF-8 checked: nothing read past a buffer
        kept.append(batch)
    return pa.Table.from_batches(kept, schema=schema)


