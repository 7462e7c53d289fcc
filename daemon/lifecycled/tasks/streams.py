"""Quality from a prediction log and late labels: read what is new in each stream, store it by
id, then judge the predictions old enough to have their labels (``maturity``).

Each pass reads only the files a stream has not read yet (or that changed since: a file is read
whole and its rows already held are skipped by id), so the daemon never re-reads old data and
holds one file at a time. The window judged is the predictions made in
``(now - maturity - window, now - maturity]``; its **coverage** is the labelled share of them. The
metrics count only when the coverage reaches ``min_coverage``: below it they are reported as
provisional and the thresholds see them as unknown, never as a verdict on a 5 % sample.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa

from lifecycled.context import Context
from lifecycled.core import columns as cols
from lifecycled.core.cbpe import Estimate, estimate_window
from lifecycled.core.concept import SIGNIFICANCE
from lifecycled.core.quality import OutcomeColumns, judge_outcomes, metrics_of
from lifecycled.core.segments import OTHER, label, masks, top_of
from lifecycled.domain import ModelRef
from lifecycled.errors import InputError, SourceError
from lifecycled.settings import LabelStream, ModelSettings, PredictionStream, QualitySettings
from lifecycled.sources.files import DataFile, expand
from lifecycled.sources.samples import read_table, table_to_columns
from lifecycled.store.labels import (
    Label,
    Matured,
    Prediction,
    Recent,
    Scores,
    add_estimate_in,
    add_labels_in,
    add_predictions_in,
    files_read,
    latest_realized,
    mark_read_in,
    matured,
    pending_estimate,
    realize_in,
    recent,
)


def _prediction_rows(where: str, data: Mapping[str, np.ndarray], ref: ModelRef,
                     stream: PredictionStream, model: ModelSettings) -> list[Prediction]:
    quality = model.quality
    cols.require(where, data, [stream.id_column, stream.timestamp_column,
                               quality.prediction_column, quality.score_column,
                               *quality.score_columns.values(), stream.version_column,
                               *model.segment_by, *quality.estimate_features])
    if stream.version_column:
        keep = cols.label_text(data[stream.version_column]) == ref.version
        data = {k: v[keep] for k, v in data.items()}
    ids = cols.ids(where, data[stream.id_column], stream.id_column)
    at = cols.timestamps(where, data[stream.timestamp_column], stream.timestamp_column)
    predicted = cols.label_text(data[quality.prediction_column])
    scores: list[Scores] = [None] * len(ids)
    if quality.score_column:
        scores = [float(v) if np.isfinite(v) else None for v in cols.numeric(
            where, data[quality.score_column], quality.score_column)]
    elif quality.score_columns:
        per_class = {label: cols.numeric(where, data[column], column)
                     for label, column in quality.score_columns.items()}
        scores = [{label: float(v[i]) for label, v in per_class.items()}
                  for i in range(len(ids))]
    segments: list[dict[str, str | None] | None] = [None] * len(ids)
    if model.segment_by:
        values = {column: cols.text(data[column]).tolist() for column in model.segment_by}
        segments = [{c: v[i] for c, v in values.items()} for i in range(len(ids))]
    features: list[dict[str, float | None] | None] = [None] * len(ids)
    if quality.estimate_features:
        given = {c: cols.numeric(where, data[c], c, "estimate feature")
                 for c in quality.estimate_features}
        features = [{c: (float(v[i]) if np.isfinite(v[i]) else None) for c, v in given.items()}
                    for i in range(len(ids))]
    return [Prediction(i, float(t), p, s, g, f) for i, t, p, s, g, f in zip(
        ids, at, predicted, scores, segments, features, strict=True)]


def _label_rows(where: str, data: Mapping[str, np.ndarray], stream: LabelStream,
                now: float) -> list[Label]:
    cols.require(where, data, [stream.id_column, stream.label_column, stream.timestamp_column])
    ids = cols.ids(where, data[stream.id_column], stream.id_column)
    at = (cols.timestamps(where, data[stream.timestamp_column], stream.timestamp_column)
          if stream.timestamp_column else np.full(len(ids), now))
    return [Label(i, v, float(t)) for i, v, t in zip(
        ids, cols.label_text(data[stream.label_column]), at, strict=True)]


def ingest(ctx: Context, ref: ModelRef, model: ModelSettings, now: float) -> dict[str, int]:
    """Read what is new in the model's prediction log and label files (none where rows arrive
    only as pushes); return the rows added."""
    predictions, labels = model.quality.predictions, model.quality.labels
    added = {"predictions": 0, "labels": 0}
    if predictions is None or labels is None:
        return added
    for file, data, stamp in _new_files(ctx, f"predictions:{ref}", predictions.path and
                                        predictions.path.replace("{version}", ref.version)):
        rows = _prediction_rows(str(file), data, ref, predictions, model)
        with ctx.store.write() as conn:
            added["predictions"] += add_predictions_in(conn, ref, rows, now)
            mark_read_in(conn, f"predictions:{ref}", str(file), stamp, len(rows), now)
    for file, data, stamp in _new_files(ctx, f"labels:{ref.name}", labels.path):
        rows_of_labels = _label_rows(str(file), data, labels, now)
        with ctx.store.write() as conn:
            added["labels"] += add_labels_in(conn, ref.name, rows_of_labels, now).new
            mark_read_in(conn, f"labels:{ref.name}", str(file), stamp, len(rows_of_labels), now)
    return added


def _new_files(ctx: Context, stream: str, pattern: str | None
               ) -> Iterator[tuple[DataFile, dict[str, np.ndarray], str]]:
    """Each file of ``pattern`` the stream has not read in this version, read, one at a time
    (none without a pattern)."""
    if not pattern:
        return
    seen = files_read(ctx.store, stream)
    for file in expand(pattern, timeout=ctx.settings.sources.files.timeout, allow_empty=True):
        try:
            stamp = file.stamp()
        except (OSError, pa.ArrowException) as exc:
            raise SourceError(str(file), "file not found" if isinstance(exc, FileNotFoundError)
                              else f"cannot read: {exc}") from exc
        if seen.get(str(file)) != stamp:
            yield file, table_to_columns(read_table(file)), stamp


def push(ctx: Context, ref: ModelRef, kind: str, data: Mapping[str, np.ndarray]
         ) -> dict[str, Any]:
    """Store a pushed batch of predictions or labels (its columns, as ``api`` read them from the
    body) by id; the columns are the model's stream columns (the defaults when it has no stream
    configured). A row the columns cannot give is an InputError (a 400) naming it."""
    ctx.store.get(ref)  # an unknown version is a 404
    model = ctx.settings.model_settings(ref.name)
    quality = model.quality
    where = f"POST {kind} of {ref}"
    now = ctx.clock()
    try:
        if kind == "predictions":
            rows = _prediction_rows(where, data, ref, quality.predictions or PredictionStream(),
                                    model)
            with ctx.store.write() as conn:
                added = add_predictions_in(conn, ref, rows, now)
            return {"model": str(ref), "kind": kind, "rows": len(rows), "new": added}
        labels = _label_rows(where, data, quality.labels or LabelStream(), now)
    except SourceError as exc:  # the sender's rows: a 400 naming the column and row
        raise InputError(str(exc)) from exc
    with ctx.store.write() as conn:
        stored = add_labels_in(conn, ref.name, labels, now)
    return {"model": str(ref), "kind": kind, "rows": len(labels), "new": stored.new,
            "without_prediction": stored.without_prediction}


def judge(ctx: Context, ref: ModelRef, model: ModelSettings, now: float,
          alpha: float = SIGNIFICANCE, model_type: str = "classification") -> dict[str, Any]:
    """The quality result of the matured window, with its coverage and label lag, and the
    same per segment (``segment_by``), by the metrics ``model_type`` means; concept drift and
    the accuracy's bound at ``alpha``. The newest predictions are estimated before their labels:
    a classifier's by CBPE (from its scores), a regression model's by DLE."""
    quality = model.quality
    until = now - quality.maturity
    since = until - quality.window
    window = matured(ctx.store, ref, since=since, until=until)
    newest = (recent(ctx.store, ref, since=until, until=now)
              if quality.estimate and (model_type == "regression" or quality.score_column
                                       or quality.score_columns) else None)
    judged = _judge_window(f"{ref} predictions and labels", window, newest, quality,
                           since=since, until=until, now=now, alpha=alpha, model_type=model_type)
    result: dict[str, Any] = {"samples": window.labelled, "source": "predictions and labels"}
    if judged.labels["judged"]:
        result.update(judged.measured or {})
    estimate = judged.estimate
    if estimate is not None:
        result["estimate"] = estimate.to_json()
    result["labels"] = judged.labels
    if quality.use_estimate and not judged.labels["judged"] and estimate is not None \
            and estimate.trusted and estimate.value("accuracy") is not None:
        # labels not mature: thresholds and triggers judge the estimate, and say so
        result.update({m: estimate.value(m) for m in metrics_of(model_type)})
        result["estimated"] = True
        result["samples"] = estimate.n
    if quality.estimate:
        realized = _realize(ctx, ref, quality, until=until, now=now, model_type=model_type)
        if estimate is not None and estimate.n:
            with ctx.store.write() as conn:
                add_estimate_in(conn, ref, estimate, now)
        if realized is not None:
            result["estimation"] = realized
    if model.segment_by:
        result["segments"] = _segments(f"{ref} predictions and labels", window, newest, model,
                                       since=since, until=until, now=now, alpha=alpha,
                                       model_type=model_type)
    return result


@dataclass(frozen=True)
class Judged:
    """One matured window judged: its coverage and label lag (``labels``, JSON form), its
    quality and concept drift when it has labels, and the estimate of the newest predictions."""

    labels: dict[str, Any]
    measured: dict[str, Any] | None = None
    estimate: Estimate | None = None


def _judge_window(where: str, window: Matured, newest: Recent | None, quality: QualitySettings,
                  *, since: float, until: float, now: float, alpha: float = SIGNIFICANCE,
                  model_type: str = "classification") -> Judged:
    """The coverage, label lag, quality and concept drift of a matured window, and the estimate
    of the newest predictions (``newest``) calibrated on it: untrusted when the window shows
    concept drift."""
    coverage = window.labelled / window.predictions if window.predictions else None
    labels: dict[str, Any] = {
        "window_start": since, "window_end": until, "predictions": window.predictions,
        "labelled": window.labelled, "coverage": coverage, "min_coverage": quality.min_coverage,
        "lag_p50_seconds": float(np.percentile(window.lag, 50)) if window.labelled else None,
        "lag_p95_seconds": float(np.percentile(window.lag, 95)) if window.labelled else None,
        "judged": False}
    if not window.labelled:
        labels["reason"] = ("no predictions in the matured window" if not window.predictions
                            else "no labels yet for the matured window")
        return Judged(labels)
    data, columns = _window_data(window, quality)
    measured = judge_outcomes(where, data, columns, alpha=alpha, model_type=model_type)
    estimate = None
    if newest is not None and model_type == "regression":
        estimate = _estimate_errors(where, window, quality, newest, since=until, until=now)
    elif newest is not None:
        estimate = estimate_window(data, columns, measured.get("positive_label"),
                                   newest.prediction, newest.scores, window_start=until,
                                   window_end=now)
    labels["judged"] = coverage is not None and coverage >= quality.min_coverage
    if not labels["judged"]:  # too few labels yet: shown, never judged
        labels["provisional"] = {k: measured.get(k) for k in metrics_of(model_type)}
        labels["reason"] = (f"coverage {coverage:.1%} below min_coverage "
                            f"{quality.min_coverage:.0%}")
    if estimate is not None:
        estimate = estimate.judged_with((measured.get("concept") or {}).get("severity"))
    return Judged(labels, measured, estimate)


def _segments(where: str, window: Matured, newest: Recent | None, model: ModelSettings, *,
              since: float, until: float, now: float, alpha: float,
              model_type: str) -> list[dict[str, Any]]:
    """Coverage, quality and the estimate of each segment (``core.segments``): the segments
    are the values with the most predictions in the matured window."""
    def values(stored: list[dict[str, str | None] | None], column: str) -> np.ndarray:
        return np.array([s.get(column) if s else None for s in stored], dtype=object)

    found = []
    for column in model.segment_by:
        counts: dict[str | None, int] = {}
        for stored, n in window.totals:
            counts[stored.get(column)] = counts.get(stored.get(column), 0) + n
        chosen = top_of(counts, model.segment_top)
        latest = masks(values(newest.segments, column), chosen) if newest is not None else {}
        for value, rows in masks(values(window.segments, column), chosen).items():
            size = (counts.get(value, 0) if value != OTHER else
                    sum(n for v, n in counts.items() if v not in chosen))
            part = window.where(rows, size)
            entry: dict[str, Any] = {"segment": label(column, value), "column": column,
                                     "value": value}
            try:
                judged = _judge_window(
                    f"{where}, segment {label(column, value)}", part,
                    newest.where(latest[value]) if newest is not None else None, model.quality,
                    since=since, until=until, now=now, alpha=alpha, model_type=model_type)
            except SourceError as exc:  # e.g. a segment whose labels share nothing
                entry["error"] = str(exc)
                found.append(entry)
                continue
            entry.update(judged.labels)
            if judged.labels["judged"] and judged.measured is not None:
                entry.update({m: judged.measured.get(m) for m in metrics_of(model_type)})
                entry["samples"] = part.labelled
            if judged.estimate is not None:
                entry["estimate"] = judged.estimate.to_json()
            found.append(entry)
    return found


ESTIMATED_ERRORS = ("mae", "rmse")  # what a regression model's estimate (DLE) gives


def _window_data(window: Matured, quality: QualitySettings
                 ) -> tuple[dict[str, np.ndarray], OutcomeColumns]:
    """The labelled predictions of a window as columns ``judge_outcomes`` judges."""
    data: dict[str, np.ndarray] = {"prediction": window.prediction, "label": window.label}
    columns = OutcomeColumns("prediction", "label")
    scores = window.scores
    if quality.score_column and all(isinstance(s, float) for s in scores):
        data["score"] = np.array(scores, dtype=float)
        columns = OutcomeColumns("prediction", "label", score="score")
    elif quality.score_columns and all(isinstance(s, dict) for s in scores):
        for label in quality.score_columns:
            data[f"score:{label}"] = np.array([s[label] for s in scores  # type: ignore[index]
                                               ], dtype=float)
        columns = OutcomeColumns("prediction", "label", class_scores={
            label: f"score:{label}" for label in quality.score_columns})
    return data, columns


def _realize(ctx: Context, ref: ModelRef, quality: QualitySettings, *, until: float,
             now: float, model_type: str = "classification") -> dict[str, Any] | None:
    """Once the window of an earlier estimate has matured with enough labels, store what its
    labels show beside it (the newest such estimate; older ones waiting are superseded), and
    return the newest estimate with its realized values and the error (realized - estimated)."""
    row = pending_estimate(ctx.store, ref, matured_by=until)
    window = matured(ctx.store, ref, since=row.window_start, until=row.window_end) \
        if row is not None else None
    # the newest matured estimate only, once enough of its labels are in (else next pass)
    if row is not None and window is not None and window.labelled \
            and window.labelled / window.predictions >= quality.min_coverage:
        data, columns = _window_data(window, quality)
        measured = judge_outcomes(f"{ref} predictions and labels", data, columns,
                                  model_type=model_type)
        realized = {m: measured.get(m) for m in metrics_of(model_type)}
        realized["coverage"] = window.labelled / window.predictions
        with ctx.store.write() as conn:
            realize_in(conn, row.id, realized, now, supersede_before=row.window_end)
    found = latest_realized(ctx.store, ref)
    if found is None:
        return None
    estimated = ESTIMATED_ERRORS if model_type == "regression" else metrics_of(model_type)
    error = {m: found.realized[m] - value for m in estimated
             if isinstance(found.realized.get(m), int | float)
             and (value := found.estimate.value(m)) is not None}
    return {"window_start": found.window_start, "window_end": found.window_end,
            "estimated_at": found.at, "estimated": {m: found.estimate.value(m) for m in estimated},
            "realized": found.realized, "error": error}


def _estimate_errors(where: str, window: Matured, quality: QualitySettings, newest: Recent, *,
                     since: float, until: float) -> Estimate:
    """DLE on the predictions newer than the matured window: a regression model's MAE and RMSE
    learnt from the labelled window's errors (``lifecycled.dle``)."""
    from lifecycled import dle

    names = list(quality.estimate_features)
    found = Estimate(since, until, method="DLE")
    reference, latest = dle.columns_of(window.features, names), dle.columns_of(newest.features,
                                                                                names)
    if names and not (reference and latest):
        return replace(found, n=int(newest.prediction.size)).untrusted(
            f"features missing from the stored predictions: {', '.join(names)} "
            "(quality.estimate_features; pushed rows must carry them too)")
    predicted = cols.numbers(where, window.prediction, "prediction")
    labels = cols.numbers(where, window.label, "label")
    usable = np.isfinite(predicted) & np.isfinite(labels)
    latest_predicted = cols.numbers(where, newest.prediction, "prediction")
    fresh = np.isfinite(latest_predicted)
    return Estimate.from_json({"window_start": since, "window_end": until, **dle.estimate_errors(
        {c: v[usable] for c, v in reference.items()}, predicted[usable], labels[usable],
        {c: v[fresh] for c, v in latest.items()}, latest_predicted[fresh])})
