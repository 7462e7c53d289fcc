"""Prediction logs and late labels: stored as they arrive, idempotent by id, joined by id.

A prediction is keyed by (model, version, id), a label by (model, id): a label may arrive before
or after its prediction, and sending either again changes nothing (the first row stays). Each
stream records the files it has read (``stream_files``), so a pass reads only new files, and
counts the rows it received (``stream_counts``, exported as counters).

A prediction's scores, segment values and features are stored as JSON text and given back
decoded: this module is the only one that knows their encoding."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from lifecycled.core.cbpe import Estimate
from lifecycled.domain import ModelRef
from lifecycled.store.core import Connection, Store, dumps

BATCH = 5000  # rows per statement
SUPERSEDED = '{"superseded":true}'  # an estimate a newer one was compared in place of


Scores = float | dict[str, float] | None  # a binary score, or class -> score
Segments = dict[str, str | None]  # segment column -> value
Features = dict[str, float | None]  # column -> number, what a regression estimate learns from


@dataclass(frozen=True)
class Prediction:
    id: str
    at: float
    prediction: str | None
    scores: Scores = None
    segments: Segments | None = None
    features: Features | None = None


def _encode(value: Any, *, canonical: bool = False) -> str | None:
    """A stored prediction's JSON column (segments are canonical: windows group by their text)."""
    return None if value is None else json.dumps(value, sort_keys=canonical)


def _decode(text: str | None) -> Any:
    return None if text is None else json.loads(text)


@dataclass(frozen=True)
class Label:
    id: str
    label: str | None
    at: float


def _count(conn: Connection, name: str, version: str, kind: str, added: int) -> None:
    if added:
        conn.execute("INSERT INTO stream_counts (name, version, kind, received) VALUES "
                     "(?, ?, ?, ?) ON CONFLICT (name, version, kind) DO UPDATE SET received = "
                     "stream_counts.received + excluded.received", (name, version, kind, added))


def add_predictions_in(conn: Connection, ref: ModelRef, rows: Sequence[Prediction],
                       now: float) -> int:
    """Store predictions not seen before; return how many were new."""
    added = 0
    for start in range(0, len(rows), BATCH):
        chunk = rows[start:start + BATCH]
        before = _known(conn, "predictions", "name = ? AND version = ?",
                        (ref.name, ref.version), [r.id for r in chunk])
        fresh = _first_of_each(chunk, before)
        conn.executemany(
            "INSERT INTO predictions (name, version, id, at, prediction, scores, segments, "
            "features, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name, "
            "version, id) DO NOTHING",
            [(ref.name, ref.version, r.id, r.at, r.prediction, _encode(r.scores),
              _encode(r.segments, canonical=True), _encode(r.features), now)
             for r in fresh.values()])
        added += len(fresh)
    _count(conn, ref.name, ref.version, "predictions", added)
    return added


@dataclass(frozen=True)
class LabelsAdded:
    """New labels, and how many of them matched no stored prediction of the model when they
    came (kept: their prediction may come later; counted apart, not as received)."""

    new: int
    without_prediction: int


def add_labels_in(conn: Connection, name: str, rows: Sequence[Label], now: float) -> LabelsAdded:
    """Store labels not seen before."""
    added = unmatched = 0
    for start in range(0, len(rows), BATCH):
        chunk = rows[start:start + BATCH]
        before = _known(conn, "labels", "name = ?", (name,), [r.id for r in chunk])
        fresh = _first_of_each(chunk, before)
        conn.executemany(
            "INSERT INTO labels (name, id, label, at, received_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (name, id) DO NOTHING",
            [(name, r.id, r.label, r.at, now) for r in fresh.values()])
        matched = _known(conn, "predictions", "name = ?", (name,), list(fresh))
        added += len(fresh)
        unmatched += len(fresh) - len(matched)
    _count(conn, name, "", "labels", added - unmatched)
    _count(conn, name, "", "labels_without_prediction", unmatched)
    return LabelsAdded(added, unmatched)


RowT = TypeVar("RowT", Prediction, Label)


def _first_of_each(rows: Sequence[RowT], stored: set[str]) -> dict[str, RowT]:
    """The rows whose id is not stored yet, the first of each id (a later one is a resend)."""
    fresh: dict[str, RowT] = {}
    for row in rows:
        if row.id not in stored and row.id not in fresh:
            fresh[row.id] = row
    return fresh


def _known(conn: Connection, table: str, where: str, params: tuple[Any, ...],
           ids: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        part = ids[start:start + 500]
        marks = ", ".join("?" * len(part))
        found.update(r[0] for r in conn.execute(
            f"SELECT id FROM {table} WHERE {where} AND id IN ({marks})", (*params, *part)))
    return found


def files_read(store: Store, stream: str) -> dict[str, str]:
    """The files a stream has read: file -> the version (size and modification time) read."""
    with store.read() as conn:
        return {r[0]: r[1] for r in conn.execute(
            "SELECT file, version FROM stream_files WHERE stream = ?", (stream,))}


def mark_read_in(conn: Connection, stream: str, file: str, version: str, rows: int,
                 now: float) -> None:
    conn.execute("INSERT INTO stream_files (stream, file, version, rows, read_at) VALUES "
                 "(?, ?, ?, ?, ?) ON CONFLICT (stream, file) DO UPDATE SET version = "
                 "excluded.version, rows = excluded.rows, read_at = excluded.read_at",
                 (stream, file, version, rows, now))


def received(store: Store) -> list[tuple[str, str, str, int]]:
    """(model, version, kind, rows received) for every stream; labels have version ''."""
    with store.read() as conn:
        return [(r[0], r[1], r[2], int(r[3])) for r in conn.execute(
            "SELECT name, version, kind, received FROM stream_counts ORDER BY name, version, "
            "kind")]


def pushed_versions(store: Store) -> set[ModelRef]:
    """The versions with predictions received (through pushes or files)."""
    return {ModelRef(name, version) for name, version, kind, rows in received(store)
            if kind == "predictions" and rows > 0}


@dataclass(frozen=True)
class Matured:
    """The predictions of one window old enough to be judged, with the labels they have."""

    predictions: int  # in the window
    ids: list[str]
    prediction: np.ndarray  # object (str or None), labelled rows only
    scores: list[Scores]
    label: np.ndarray  # object
    lag: np.ndarray  # seconds from prediction to label, labelled rows only
    segments: list[Segments | None] = field(default_factory=list)  # labelled rows only
    # predictions of the window per distinct segment values ({} when none were stored)
    totals: list[tuple[Segments, int]] = field(default_factory=list)
    features: list[Features | None] = field(default_factory=list)  # labelled rows only

    @property
    def labelled(self) -> int:
        return len(self.ids)

    def where(self, rows: np.ndarray, predictions: int) -> Matured:
        """The labelled rows of ``rows`` (a mask), of ``predictions`` in the window."""
        kept = np.flatnonzero(rows).tolist()
        return Matured(predictions, [self.ids[i] for i in kept], self.prediction[rows],
                       [self.scores[i] for i in kept], self.label[rows], self.lag[rows],
                       [self.segments[i] for i in kept],
                       features=[self.features[i] for i in kept] if self.features else [])


def matured(store: Store, ref: ModelRef, *, since: float, until: float) -> Matured:
    """Predictions made in (since, until], and the labels of those that have one."""
    with store.read() as conn:
        totals = {r[0]: int(r[1]) for r in conn.execute(
            "SELECT segments, COUNT(*) FROM predictions WHERE name = ? AND version = ? AND "
            "at > ? AND at <= ? GROUP BY segments", (ref.name, ref.version, since, until))}
        rows = conn.execute(
            "SELECT p.id, p.prediction, p.scores, l.label, l.at - p.at, p.segments, p.features "
            "FROM "
            "predictions p JOIN labels l ON l.name = p.name AND l.id = p.id WHERE p.name = ? "
            "AND p.version = ? AND p.at > ? AND p.at <= ? ORDER BY p.at, p.id",
            (ref.name, ref.version, since, until)).fetchall()
    return Matured(sum(totals.values()), [r[0] for r in rows],
                   np.array([r[1] for r in rows], dtype=object), [_decode(r[2]) for r in rows],
                   np.array([r[3] for r in rows], dtype=object),
                   np.array([float(r[4]) for r in rows], dtype=float),
                   [_decode(r[5]) for r in rows],
                   [(_decode(k) or {}, n) for k, n in totals.items()],
                   [_decode(r[6]) for r in rows])


def prune_predictions_in(conn: Connection, ref: ModelRef, *, older_than: float) -> int:
    """Forget predictions made before ``older_than`` (no window judges them again)."""
    return int(conn.execute("DELETE FROM predictions WHERE name = ? AND version = ? AND at < ?",
                            (ref.name, ref.version, older_than)).rowcount)


def prune_labels_in(conn: Connection, name: str, *, older_than: float) -> int:
    return int(conn.execute("DELETE FROM labels WHERE name = ? AND at < ?",
                            (name, older_than)).rowcount)


@dataclass(frozen=True)
class Recent:
    """The predictions of a window, labelled or not."""

    prediction: np.ndarray  # object
    scores: list[Scores]
    segments: list[Segments | None]
    features: list[Features | None] = field(default_factory=list)

    def where(self, rows: np.ndarray) -> Recent:
        kept = np.flatnonzero(rows).tolist()
        return Recent(self.prediction[rows], [self.scores[i] for i in kept],
                      [self.segments[i] for i in kept],
                      [self.features[i] for i in kept] if self.features else [])


def recent(store: Store, ref: ModelRef, *, since: float, until: float) -> Recent:
    """The predictions, scores and segments made in (since, until], labelled or not."""
    with store.read() as conn:
        rows = conn.execute(
            "SELECT prediction, scores, segments, features FROM predictions WHERE name = ? AND "
            "version = ? AND at > ? AND at <= ? ORDER BY at, id",
            (ref.name, ref.version, since, until)).fetchall()
    return Recent(np.array([r[0] for r in rows], dtype=object), [_decode(r[1]) for r in rows],
                  [_decode(r[2]) for r in rows], [_decode(r[3]) for r in rows])


@dataclass(frozen=True)
class StoredEstimate:
    id: int
    at: float
    window_start: float
    window_end: float
    estimate: Estimate
    realized: dict[str, Any]


def add_estimate_in(conn: Connection, ref: ModelRef, estimate: Estimate, now: float) -> None:
    conn.execute("INSERT INTO estimates (name, version, at, window_start, window_end, estimate) "
                 "VALUES (?, ?, ?, ?, ?, ?)",
                 (ref.name, ref.version, now, estimate.window_start, estimate.window_end,
                  dumps(estimate.to_json())))


def _estimates(rows: Any) -> list[StoredEstimate]:
    return [StoredEstimate(int(r[0]), float(r[1]), float(r[2]), float(r[3]),
                           Estimate.from_json(json.loads(r[4])),
                           json.loads(r[5]) if r[5] else {}) for r in rows]


def _newest_estimate(store: Store, ref: ModelRef, where: str, params: tuple[Any, ...]
                     ) -> StoredEstimate | None:
    with store.read() as conn:
        found = _estimates(conn.execute(
            "SELECT id, at, window_start, window_end, estimate, realized FROM estimates WHERE "
            f"name = ? AND version = ? AND {where} ORDER BY window_end DESC, id DESC LIMIT 1",
            (ref.name, ref.version, *params)))
    return found[0] if found else None


def pending_estimate(store: Store, ref: ModelRef, *, matured_by: float
                     ) -> StoredEstimate | None:
    """The newest estimate whose window has matured and whose labels have not been compared
    with it yet."""
    return _newest_estimate(store, ref, "realized IS NULL AND window_end <= ?", (matured_by,))


def realize_in(conn: Connection, estimate_id: int, realized: dict[str, Any], now: float, *,
               supersede_before: float) -> None:
    """Store the realized values beside an estimate; older estimates still waiting will not be
    compared (one per window end is enough, and the newest is the one shown)."""
    row = conn.execute("SELECT name, version FROM estimates WHERE id = ?",
                       (estimate_id,)).fetchone()
    conn.execute("UPDATE estimates SET realized = ?, realized_at = ? WHERE id = ?",
                 (dumps(realized), now, estimate_id))
    conn.execute("UPDATE estimates SET realized = ?, realized_at = ? WHERE name = ? AND "
                 "version = ? AND realized IS NULL AND window_end < ?",
                 (SUPERSEDED, now, row[0], row[1], supersede_before))


def latest_realized(store: Store, ref: ModelRef) -> StoredEstimate | None:
    """The newest estimate compared with its labels."""
    return _newest_estimate(store, ref, "realized IS NOT NULL AND realized != ?", (SUPERSEDED,))


def prune_estimates_in(conn: Connection, ref: ModelRef, *, older_than: float) -> int:
    return int(conn.execute("DELETE FROM estimates WHERE name = ? AND version = ? AND "
                            "window_end < ?", (ref.name, ref.version, older_than)).rowcount)
