"""The request body of the update pipeline's progress reports: every problem named, nothing
accepted that the job log or the gate could not use."""

from __future__ import annotations

import json

import pytest
from lifecycled.api import MAX_LINE, MAX_LOG_LINES, JobEvent
from lifecycled.errors import InputError


def parse(body: object) -> JobEvent:
    return JobEvent.parse(json.dumps(body).encode())


def test_a_full_report_and_a_single_log_line() -> None:
    event = parse({"state": "validating", "progress": 40, "log": "epoch 3",
                   "validation_metrics": {"accuracy": 0.91}, "message": "ok"})
    assert (event.state, event.progress, event.log) == ("validating", 40, ["epoch 3"])
    assert event.validation_metrics == {"accuracy": 0.91}
    assert parse({}).log == []


@pytest.mark.parametrize(("body", "problem"), [
    ({"colour": "red"}, "colour: unknown key"),
    ({"progress": 140}, "progress: input should be less than or equal to 100"),
    ({"progress": True}, "progress: input should be a valid number"),
    ({"state": "exploded"}, "state: input should be 'training'"),
    ({"validation_metrics": {"accuracy": "high"}}, "validation_metrics.accuracy"),
    ({"log": [1]}, "log.0: input should be a valid string"),
    ({"log": ["x"] * (MAX_LOG_LINES + 1)}, "log: value should have at most 100 items"),
    ({"log": ["x" * (MAX_LINE + 1)]}, "log.0: string should have at most 2000 characters"),
])
def test_each_bad_field_is_named(body: object, problem: str) -> None:
    with pytest.raises(InputError) as raised:
        parse(body)
    assert problem in str(raised.value)


def test_non_finite_metrics_and_bodies_that_are_not_objects() -> None:
    with pytest.raises(InputError, match="must be a finite number"):
        JobEvent.parse(b'{"validation_metrics": {"accuracy": NaN}}')
    with pytest.raises(InputError, match="not valid JSON"):
        JobEvent.parse(b"{not json")
    with pytest.raises(InputError, match="must be a JSON object"):
        JobEvent.parse(b"[1]")
    assert len(parse({"message": "m" * 5000}).message) == MAX_LINE
