"""Pushing predictions and labels over HTTP: a real listener on 127.0.0.1, a real store; batches
of 10,000 rows in JSON Lines and Arrow IPC, idempotent by id, behind the bearer token, and joined
by the quality task like the files are."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest
import requests
from lifecycled.api import push_handler, read_body
from lifecycled.config import parse_settings
from lifecycled.context import Context
from lifecycled.domain import ModelRef, ModelSpec, Status
from lifecycled.http import Api, HttpServer
from lifecycled.store.labels import received
from lifecycled.store.results import latest_quality
from lifecycled.tasks.quality import run_quality
from lifecycled.tasks.streams import push
from prometheus_client import CollectorRegistry

from tests.stores import open_test_store

pytestmark = pytest.mark.usefixtures("both_engines")
TOKEN = "push-t0ken"
REF = ModelRef("fraud_detection", "2")
NOW = 2_000_000_000.0
LIMIT = 8 * 2**20


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Context]]:
    settings = parse_settings({"models": {REF.name: {"quality": {
        "predictions": {"path": str(tmp_path / "none" / "*.jsonl")},
        "labels": {"path": str(tmp_path / "none" / "*.jsonl")},
        "score_column": "score", "maturity": "1d", "window": "30d", "min_coverage": 0.5}}}})
    store = open_test_store(tmp_path)
    store.register(ModelSpec(REF, owner_team="t", business_domain="d"), Status.PRODUCTION,
                   actor="test", reason="r", now=NOW - 60 * 86400)
    ctx = Context(settings, store, clock=lambda: NOW, environ={})
    api = Api(store, CollectorRegistry(), lambda: (True, {}), lambda: TOKEN,
              posts={"models": push_handler(lambda ref, kind, columns: push(
                  ctx, ref, kind, columns))})
    server = HttpServer(api, "127.0.0.1", 0, push_limit=LIMIT)
    server.start()
    yield f"http://127.0.0.1:{server.port}/api/v1/models/{REF.name}/{REF.version}", ctx
    server.stop()
    store.close()


def pushed(ctx: Context, kind: str, body: bytes, media: str = "application/x-ndjson"
           ) -> dict[str, Any]:
    """A batch pushed as the API does it: the body read into its columns, then stored."""
    return push(ctx, REF, kind, read_body(f"POST {kind}", body, media))


def batch(n: int, seed: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    score = rng.uniform(0, 1, n)
    return {"id": np.array([f"tx-{i:06d}" for i in range(n)]),
            "timestamp": NOW - 10 * 86400 + rng.uniform(0, 86400, n),
            "prediction": (score >= 0.5).astype(int), "score": score,
            "label": (rng.uniform(0, 1, n) < score).astype(int),
            "merchant": np.array([f"merchant-{i % 977:04d}-{'x' * 200}" for i in range(n)])}


def jsonl(data: dict[str, np.ndarray], columns: list[str]) -> bytes:
    n = len(data["id"])
    return "".join(json.dumps({c: data[c][i].item() for c in columns}) + "\n"
                   for i in range(n)).encode()


def arrow(data: dict[str, np.ndarray], columns: list[str]) -> bytes:
    table = pa.table({c: data[c] for c in columns})
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def post(url: str, body: bytes, media: str = "application/x-ndjson",
         token: str | None = TOKEN) -> requests.Response:
    headers = {"Content-Type": media}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.post(url, data=body, headers=headers, timeout=120)


@pytest.mark.slow
def test_batches_of_ten_thousand_rows_are_stored_once_and_joined(
        served: tuple[str, Context]) -> None:
    url, ctx = served
    data = batch(10_000)
    body = jsonl(data, ["id", "timestamp", "prediction", "score", "merchant"])
    assert len(body) > 2 * 2**20  # several MB
    first = post(f"{url}/predictions", body)
    assert first.status_code == 200, first.text
    assert first.json() == {"model": str(REF), "kind": "predictions", "rows": 10_000,
                            "new": 10_000}
    again = post(f"{url}/predictions", body)
    assert again.status_code == 200 and again.json()["new"] == 0  # idempotent by id
    labels = post(f"{url}/labels", arrow(data, ["id", "label"]),
                  "application/vnd.apache.arrow.stream")
    assert labels.status_code == 200 and labels.json()["new"] == 10_000, labels.text
    assert {(r[0], r[2]): r[3] for r in received(ctx.store)} == {
        (REF.name, "predictions"): 10_000, (REF.name, "labels"): 10_000}
    assert run_quality(ctx) == {str(REF): "ok"}
    (stored,) = latest_quality(ctx.store)
    assert stored.result["labels"]["coverage"] == 1.0
    expected = float(np.mean(data["prediction"] == data["label"]))
    assert stored.result["accuracy"] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("path", "body", "media", "token", "status", "says"), [
    ("/predictions", b'{"id": "a"}\n', "application/x-ndjson", None, 401, "bearer token"),
    ("/predictions", b'{"id": "a"}\n', "text/csv", TOKEN, 400, "Content-Type 'text/csv'"),
    ("/predictions", b'{"id": "a", "timestamp": 1}\n', "application/x-ndjson", TOKEN, 400,
     "missing column(s) prediction"),
    ("/predictions", b'{"id": null, "timestamp": 1, "prediction": 1, "score": 0.5}\n',
     "application/x-ndjson", TOKEN, 400, "id column 'id' row 1 is empty"),
    ("/labels", b'{"id": "a", "label": ' + b"[" * 40 + b"]" * 40 + b"}\n",
     "application/x-ndjson", TOKEN, 400, "opening brackets"),
    ("/labels", b"not arrow", "application/vnd.apache.arrow.stream", TOKEN, 400,
     "cannot read the body"),
    ("/labels", b"x" * (LIMIT + 1), "application/x-ndjson", TOKEN, 413, "body larger than"),
    # accepted before: a time of 1e300 (never pruned), a 1 MB id, 10,000 extra columns
    ("/predictions", b'{"id": "a", "timestamp": 1e300, "prediction": 1, "score": 0.5}\n',
     "application/x-ndjson", TOKEN, 400, "not a time between 1970 and 3000"),
    ("/predictions", b'{"id": "' + b"i" * 2**20 + b'", "timestamp": 1, "prediction": 1, '
     b'"score": 0.5}\n', "application/x-ndjson", TOKEN, 400, "longer than 256 characters"),
    ("/predictions", (b"{" + b", ".join(b'"c%d": 1' % i for i in range(10_000)) + b"}\n"),
     "application/x-ndjson", TOKEN, 400, "a push carries at most 1000"),
])
def test_a_bad_push_is_one_clear_error_and_stores_nothing(
        served: tuple[str, Context], path: str, body: bytes, media: str, token: str | None,
        status: int, says: str) -> None:
    url, ctx = served
    reply = post(url + path, body, media, token)
    assert reply.status_code == status, reply.text
    assert says in reply.json()["error"]
    assert received(ctx.store) == []


def test_an_unknown_model_version_is_a_404(served: tuple[str, Context]) -> None:
    url, _ = served
    reply: Any = post(url.replace("/2", "/9") + "/labels", b'{"id": "a", "label": 1}\n')
    assert reply.status_code == 404 and "fraud_detection:9" in reply.json()["error"]


@pytest.mark.parametrize("quality", [
    None,  # no quality section: the push API's default columns
    {"predictions": {}, "labels": {}, "score_column": "score", "maturity": "1d"},  # no files
])
def test_a_push_only_prediction_log_is_judged_like_files(
        tmp_path: Path, quality: dict[str, Any] | None) -> None:
    """Rows POSTed to …/predictions and …/labels were stored and counted, but the quality task
    judged a prediction log only when quality.predictions.path named a file."""
    models = {REF.name: {"quality": quality}} if quality else {}
    settings = parse_settings({"models": models})
    store = open_test_store(tmp_path)
    store.register(ModelSpec(REF, owner_team="t", business_domain="d"), Status.STAGING,
                   actor="test", reason="r", now=NOW - 60 * 86400)
    ctx = Context(settings, store, clock=lambda: NOW, environ={})
    data = batch(2_000, seed=5)
    assert run_quality(ctx) == {}  # nothing pushed yet: nothing to judge
    pushed(ctx, "predictions", jsonl(data, ["id", "timestamp", "prediction", "score"]))
    pushed(ctx, "labels", arrow({k: v[:1_800] for k, v in data.items()}, ["id", "label"]),
           "application/vnd.apache.arrow.stream")
    assert run_quality(ctx) == {str(REF): "ok"}
    (stored,) = latest_quality(store)
    assert stored.result["labels"]["coverage"] == pytest.approx(0.9)
    known = slice(0, 1_800)
    expected = float(np.mean(data["prediction"][known] == data["label"][known]))
    assert stored.result["accuracy"] == pytest.approx(expected, abs=1e-12)
    store.close()


def test_within_one_batch_the_first_row_of_an_id_wins(served: tuple[str, Context]) -> None:
    """The docs promise the first row of an id; a batch with the id twice kept the last."""
    _, ctx = served
    rows = (b'{"id": "a", "timestamp": 1, "prediction": 1, "score": 0.9}\n'
            b'{"id": "a", "timestamp": 2, "prediction": 0, "score": 0.1}\n')
    assert pushed(ctx, "predictions", rows)["new"] == 1
    pushed(ctx, "labels", b'{"id": "a", "label": 1}\n{"id": "a", "label": 0}\n')
    with ctx.store.read() as conn:
        stored = conn.execute("SELECT at, prediction FROM predictions WHERE id = 'a'").fetchall()
        label = conn.execute("SELECT label FROM labels WHERE id = 'a'").fetchall()
    assert [tuple(r) for r in stored] == [(1.0, "1")] and [r[0] for r in label] == ["1"]


def test_labels_for_ids_without_a_prediction_are_not_counted_as_received(
        served: tuple[str, Context]) -> None:
    """Labels for ids the model never predicted were counted as received: they are stored (the
    prediction may come later) but counted apart, and the reply says how many."""
    url, ctx = served
    rows = b"".join(b'{"id": "p%d", "timestamp": 1, "prediction": 1, "score": 0.9}\n' % i
                    for i in range(3))
    assert post(f"{url}/predictions", rows).status_code == 200
    labels = b"".join(b'{"id": "%s", "label": 1}\n' % i for i in (b"p0", b"p1", b"x0", b"x1"))
    reply = post(f"{url}/labels", labels)
    assert reply.json() == {"model": str(REF), "kind": "labels", "rows": 4, "new": 4,
                            "without_prediction": 2}, reply.text
    assert {(r[0], r[2]): r[3] for r in received(ctx.store)} == {
        (REF.name, "predictions"): 3, (REF.name, "labels"): 2,
        (REF.name, "labels_without_prediction"): 2}  # exported: tests/exporter
