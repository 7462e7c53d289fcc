"""Drift and quality results: append one row per check, read the latest."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lifecycled.domain import ModelRef
from lifecycled.store.core import Store, dumps, newest_join


@dataclass(frozen=True)
class StoredResult:
    ref: ModelRef
    at: float
    result: dict[str, Any]
    row_id: int  # the row's id: rows never change, so it identifies the result


def add_drift_result(store: Store, ref: ModelRef, result: dict[str, Any], *, now: float,
                     events: Sequence[tuple[str, dict[str, Any]]] = ()) -> None:
    """Append a drift result (the JSON of core.drift.result_to_json plus context) and the events
    it causes, in one transaction."""
    with store.write() as conn:
        store.get_in(conn, ref)
        for event_type, data in events:
            store.emit_in(conn, event_type, ref, data, now)
        conn.execute(
            "INSERT INTO drift_results (name, version, at, severity, drifted_share, current_rows,"
            " inputs_key, result) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (ref.name, ref.version, now, result["severity"], result.get("drifted_share"),
             int(result.get("current_rows", 0)), result.get("inputs_key"), dumps(result)),
        )


def add_quality_result(store: Store, ref: ModelRef, result: dict[str, Any], *, now: float) -> None:
    """Append a quality (and concept drift) result."""
    with store.write() as conn:
        store.get_in(conn, ref)
        concept = result.get("concept") or {}
        conn.execute(
            "INSERT INTO quality_results (name, version, at, samples, accuracy, concept_severity,"
            " result) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (ref.name, ref.version, now, int(result["samples"]), result.get("accuracy"),
             concept.get("severity"), dumps(result)),
        )


Decoded = dict[int, Any]  # row id -> the decoded result


def latest(store: Store, table: str, ref: ModelRef | None, cache: Decoded | None = None,
           decode: Callable[[str], Any] = json.loads) -> list[StoredResult]:
    """Newest row per model version, its result decoded by ``decode``. Rows never change once
    written, so a caller that reads often (the exporter) may pass ``cache``; it is refreshed to
    hold exactly the rows returned."""
    where, params = ("WHERE m.name = ? AND m.version = ?", (ref.name, ref.version)) if ref \
        else ("", ())
    with store.read() as conn:
        rows = conn.execute(
            f"SELECT t.id, t.name, t.version, t.at, t.result FROM {newest_join(table)} {where} "
            f"ORDER BY t.name, t.version", params).fetchall()
    known = cache if cache is not None else {}
    decoded = {r["id"]: known[r["id"]] if r["id"] in known else decode(r["result"])
               for r in rows}
    if cache is not None:
        cache.clear()
        cache.update(decoded)
    return [StoredResult(ModelRef(r["name"], r["version"]), r["at"], decoded[r["id"]], r["id"])
            for r in rows]


def latest_drift(store: Store, ref: ModelRef | None = None,
                 cache: Decoded | None = None) -> list[StoredResult]:
    """The newest drift result of ``ref`` (or of every model version)."""
    return latest(store, "drift_results", ref, cache)


def drift_taken_on(store: Store, ref: ModelRef, key: str) -> dict[str, Any] | None:
    """The newest drift result of ``ref`` if it was taken on ``key`` (its ``inputs_key``),
    else None; only then is the result decoded."""
    with store.read() as conn:
        row = conn.execute(
            f"SELECT t.inputs_key, t.result FROM {newest_join('drift_results')} "
            "WHERE m.name = ? AND m.version = ?", (ref.name, ref.version)).fetchone()
    if row is None or row["inputs_key"] != key:
        return None
    result: dict[str, Any] = json.loads(row["result"])
    return result


def latest_quality(store: Store, ref: ModelRef | None = None,
                   cache: Decoded | None = None) -> list[StoredResult]:
    """The newest quality result of ``ref`` (or of every model version)."""
    return latest(store, "quality_results", ref, cache)


@dataclass(frozen=True)
class Evaluation:
    """An evaluation (core.thresholds.evaluation_to_json) of a snapshot and the events it causes."""

    ref: ModelRef
    result: dict[str, Any]
    snapshot_id: int | None
    events: Sequence[tuple[str, dict[str, Any]]] = ()


def add_evaluation(store: Store, ref: ModelRef, result: dict[str, Any], *, snapshot_id: int | None,
                   now: float, events: Sequence[tuple[str, dict[str, Any]]] = ()) -> None:
    """Append an evaluation of a snapshot, and the events it causes, in one transaction."""
    add_evaluations(store, [Evaluation(ref, result, snapshot_id, events)], now=now)


def add_evaluations(store: Store, evaluations: Sequence[Evaluation], *, now: float) -> None:
    """Append a pass's evaluations and their events in one transaction (one round trip each,
    not a transaction each: what a pass over thousands of models costs on PostgreSQL)."""
    if not evaluations:
        return
    with store.write() as conn:
        for evaluation in evaluations:
            for event_type, data in evaluation.events:
                store.emit_in(conn, event_type, evaluation.ref, data, now)
        conn.executemany(
            "INSERT INTO evaluations (name, version, at, snapshot_id, score, level, result)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(e.ref.name, e.ref.version, now, e.snapshot_id, e.result.get("score"),
              e.result["level"], dumps(e.result)) for e in evaluations])


def latest_evaluation(store: Store, ref: ModelRef | None = None,
                      cache: Decoded | None = None) -> list[StoredResult]:
    """The newest evaluation of ``ref`` (or of every model version)."""
    return latest(store, "evaluations", ref, cache)
