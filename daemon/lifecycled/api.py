"""The state-changing API calls (POST /api/v1/...): their request bodies, validated with pydantic
like the configuration, and the handlers ``lifecycled.http`` routes to."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from lifecycled.config import format_error
from lifecycled.domain import ModelRef
from lifecycled.errors import InputError

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


Push = Callable[[ModelRef, str, bytes, str], dict[str, Any]]  # (ref, kind, body, content type)


def push_handler(push: Push) -> Callable[[Any], tuple[int, Any]]:
    """POST /api/v1/models/{name}/{version}/predictions (or /labels): a batch of rows, JSON
    Lines or Arrow IPC, stored by id (``push``: the composition root passes the stream action;
    sending a batch again changes nothing)."""

    def handle(request: Any) -> tuple[int, Any]:
        parts = request.parts
        if len(parts) != 6 or parts[5] not in ("predictions", "labels"):
            return 404, {"error": f"no route for POST {request.path}"}
        kind_of_body = request.headers.get("content-type", "application/x-ndjson")
        return 200, push(ModelRef(parts[3], parts[4]), parts[5], request.body, kind_of_body)

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
