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

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from lifecycled.context import Context
from lifecycled.core.cbpe import METRICS
from lifecycled.core.concept import SIGNIFICANCE
from lifecycled.core.outcomes import OutcomeColumns, numbers, quality_of
from lifecycled.core.regression import REGRESSION_METRICS
from lifecycled.core.segments import OTHER, label, label_text, masks, text, top_of
from lifecycled.domain import ModelRef
from lifecycled.errors import InputError, SourceError
from lifecycled.settings import LabelStream, ModelSettings, PredictionStream, QualitySettings
from lifecycled.sources.files import DataFile, expand
from lifecycled.sources.samples import check_flat_lines, plain_columns, read_table, table_to_columns
from lifecycled.store.labels import (
    Label,
    Matured,
    Prediction,
    Recent,
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

LATEST_TIME = 32_503_680_000.0  # 3000-01-01 in seconds since the epoch
MAX_ID = 256  # characters of a prediction id
MAX_PUSH_COLUMNS = 1_000  # columns of one pushed body


def _columns(file: str, data: dict[str, np.ndarray], needed: list[str]) -> None:
    missing = [c for c in needed if c not in data]
    if missing:
        raise SourceError(file, f"missing column(s) {', '.join(missing)}; found "
                                f"{', '.join(data) or 'none'}")


def _times(file: str, data: dict[str, np.ndarray], column: str) -> np.ndarray:
    values = data[column]
    if values.dtype.kind != "f":
        raise SourceError(file, f"timestamp column {column!r} is not numeric or a time")
    bad = ~np.isfinite(values)
    if bad.any():
        raise SourceError(file, f"timestamp column {column!r} row {int(np.argmax(bad)) + 1} "
                                f"has no time")
    outside = (values < 0) | (values > LATEST_TIME)
    if outside.any():
        row = int(np.argmax(outside))
        raise SourceError(file, f"timestamp column {column!r} row {row + 1} is {values[row]:g}, "
                                "not a time between 1970 and 3000 in seconds since the epoch "
                                "(milliseconds?)")
    return values


def _ids(file: str, data: dict[str, np.ndarray], column: str) -> list[str]:
    ids = label_text(data[column])
    missing = np.array([i is None for i in ids], dtype=bool)
    if missing.any():
        raise SourceError(file, f"id column {column!r} row {int(np.argmax(missing)) + 1} is "
                                f"empty")
    long = [n for n, i in enumerate(ids) if len(str(i)) > MAX_ID]
    if long:
        raise SourceError(file, f"id column {column!r} row {long[0] + 1} is longer than "
                                f"{MAX_ID} characters")
    return [str(i) for i in ids]


def _prediction_rows(file: str, data: dict[str, np.ndarray], ref: ModelRef,
                     stream: PredictionStream, model: ModelSettings) -> list[Prediction]:
    quality = model.quality
    needed = [stream.id_column, stream.timestamp_column, quality.prediction_column]
    needed += [quality.score_column] if quality.score_column else []
    needed += list(quality.score_columns.values())
    needed += [stream.version_column] if stream.version_column else []
    needed += list(model.segment_by)
    needed += list(quality.estimate_features)
    _columns(file, data, needed)
    keep = np.ones(len(data[stream.id_column]), dtype=bool)
    if stream.version_column:
        keep = label_text(data[stream.version_column]) == ref.version
    data = {k: v[keep] for k, v in data.items()}
    ids, at = _ids(file, data, stream.id_column), _times(file, data, stream.timestamp_column)
    predicted = label_text(data[quality.prediction_column])
    scores: list[str | None] = [None] * len(ids)
    if quality.score_column:
        scores = [None if not np.isfinite(v) else json.dumps(float(v))
                  for v in _numeric(file, data, quality.score_column)]
    elif quality.score_columns:
        per_class = {label: _numeric(file, data, column)
                     for label, column in quality.score_columns.items()}
        scores = [json.dumps({label: float(v[i]) for label, v in per_class.items()})
                  for i in range(len(ids))]
    segments: list[str | None] = [None] * len(ids)
    if model.segment_by:
        values = {column: text(data[column]).tolist() for column in model.segment_by}
        segments = [json.dumps({c: v[i] for c, v in values.items()}, sort_keys=True)
                    for i in range(len(ids))]
    features: list[str | None] = [None] * len(ids)
    if quality.estimate_features:
        given = {c: _numeric(file, data, c, "estimate feature")
                 for c in quality.estimate_features}
        features = [json.dumps({c: (float(v[i]) if np.isfinite(v[i]) else None)
                                for c, v in given.items()}) for i in range(len(ids))]
    return [Prediction(i, float(t), p, s, g, f) for i, t, p, s, g, f in zip(
        ids, at, predicted, scores, segments, features, strict=True)]


def _numeric(file: str, data: dict[str, np.ndarray], column: str, what: str = "score"
             ) -> np.ndarray:
    values = data[column]
    if values.dtype.kind in "iu":
        return values.astype(float)
    if values.dtype.kind != "f":
        raise SourceError(file, f"{what} column {column!r} is not numeric")
    return values


def _label_rows(file: str, data: dict[str, np.ndarray], stream: LabelStream,
                now: float) -> list[Label]:
    needed = [stream.id_column, stream.label_column]
    needed += [stream.timestamp_column] if stream.timestamp_column else []
    _columns(file, data, needed)
    ids = _ids(file, data, stream.id_column)
    at = (_times(file, data, stream.timestamp_column) if stream.timestamp_column
          else np.full(len(ids), now))
    return [Label(i, v, float(t)) for i, v, t in zip(ids, label_text(data[stream.label_column]),
                                                     at, strict=True)]


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


JSON_LINES = ("application/x-ndjson", "application/jsonl", "application/json-lines",
              "application/json")
ARROW_STREAM, ARROW_FILE = "application/vnd.apache.arrow.stream", "application/vnd.apache.arrow.file"


def push(ctx: Context, ref: ModelRef, kind: str, body: bytes, content_type: str
         ) -> dict[str, Any]:
    """Store a pushed batch of predictions or labels (JSON Lines or Arrow IPC) by id; the
    columns are the model's stream columns (the defaults when it has no stream configured)."""
    ctx.store.get(ref)  # an unknown version is a 404
    model = ctx.settings.model_settings(ref.name)
    quality = model.quality
    where = f"POST {kind} of {ref}"
    try:
        data = read_body(where, body, content_type)
        now = ctx.clock()
        if kind == "predictions":
            rows = _prediction_rows(where, data, ref, quality.predictions
                                    or PredictionStream(), model)
            with ctx.store.write() as conn:
                added = add_predictions_in(conn, ref, rows, now)
            count = len(rows)
        else:
            labels = _label_rows(where, data, quality.labels or LabelStream(), now)
            with ctx.store.write() as conn:
                stored = add_labels_in(conn, ref.name, labels, now)
            return {"model": str(ref), "kind": kind, "rows": len(labels), "new": stored.new,
                    "without_prediction": stored.without_prediction}
    except SourceError as exc:  # the sender's rows: a 400 naming the column and row
        raise InputError(str(exc)) from exc
    return {"model": str(ref), "kind": kind, "rows": count, "new": added}


def read_body(where: str, body: bytes, content_type: str) -> dict[str, np.ndarray]:
    """A pushed body's columns; SourceError (a 400) for anything that is not a flat table."""
    table = parse_body(where, body, content_type)
    if table.num_columns > MAX_PUSH_COLUMNS:
        raise SourceError(where, f"{table.num_columns} columns; a push carries at most "
                                 f"{MAX_PUSH_COLUMNS}")
    try:
        return table_to_columns(plain_columns(where, table))
    except (pa.ArrowException, ValueError) as exc:  # values the validation let through
        raise SourceError(where, f"cannot read the body: {exc}") from exc


def parse_body(where: str, body: bytes, content_type: str, *,
               decoded_limit: int | None = None,
               memory_pool: pa.MemoryPool | None = None) -> pa.Table:
    """The table a pushed body holds (JSON Lines or Arrow IPC); SourceError when it is not one.
    An Arrow body's decoded size is read from its metadata and bounded before any buffer is
    decompressed (1.7 MiB of zstd can expand to 770 MiB), then it is read batch by batch, each
    validated in full before any of its values is touched (pyarrow trusts a body's offsets, and a
    corrupted one crashed the process). The limit defaults to ``DECODED_PER_BODY_BYTE`` times the
    body, at least ``DECODED_FLOOR``."""
    import pyarrow.ipc as ipc
    import pyarrow.json as pa_json

    from lifecycled.core import ipc_size

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
    kept = []
    for batch in batches:
        batch.validate(full=True)  # offsets, lengths and UTF-8 checked: nothing read past a buffer
        kept.append(batch)
    return pa.Table.from_batches(kept, schema=schema)


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
    where = f"{ref} predictions and labels"
    labels, measured, estimate = _judge_window(where, window, newest, quality, since=since,
                                               until=until, now=now, alpha=alpha,
                                               model_type=model_type)
    result: dict[str, Any] = {"samples": window.labelled, "source": "predictions and labels"}
    if labels["judged"]:
        result.update(measured or {})
    if estimate is not None:
        result["estimate"] = estimate
    result["labels"] = labels
    if quality.use_estimate and not labels["judged"] and estimate and estimate.get("trusted") \
            and estimate.get("accuracy") is not None:
        # labels not mature: thresholds and triggers judge the estimate, and say so
        result.update({m: estimate.get(m) for m in METRICS})
        result["estimated"] = True
        result["samples"] = int(estimate["n"])
    if quality.estimate:
        realized = _realize(ctx, ref, quality, until=until, now=now, model_type=model_type)
        if estimate is not None and estimate.get("n"):
            with ctx.store.write() as conn:
                add_estimate_in(conn, ref, estimate, now)
        if realized is not None:
            result["estimation"] = realized
    if model.segment_by:
        result["segments"] = _segments(where, window, newest, model, since=since, until=until,
                                       now=now, alpha=alpha, model_type=model_type)
    return result


def _judge_window(where: str, window: Matured, newest: Recent | None, quality: QualitySettings,
                  *, since: float, until: float, now: float, alpha: float = SIGNIFICANCE,
                  model_type: str = "classification"
                  ) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any] | None]:
    """The coverage and label lag of a matured window (``labels``), its quality and concept
    drift when it has labels, and the estimate of the newest predictions (``newest``) calibrated
    on it: untrusted when the window shows concept drift."""
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
        return labels, None, None
    data, columns = _window_data(window, quality)
    measured = quality_of(where, data, columns, alpha=alpha, model_type=model_type)
    if newest is None:
        estimate = None
    elif model_type == "regression":
        estimate = _estimate_errors(where, window, quality, newest, since=until, until=now)
    else:
        estimate = _estimate(measured, data, quality, newest, since=until, until=now)
    labels["judged"] = coverage is not None and coverage >= quality.min_coverage
    if not labels["judged"]:  # too few labels yet: shown, never judged
        labels["provisional"] = {k: measured.get(k) for k in metrics_of(model_type)}
        labels["reason"] = (f"coverage {coverage:.1%} below min_coverage "
                            f"{quality.min_coverage:.0%}")
    concept = (measured.get("concept") or {}).get("severity")
    if estimate is not None and concept in ("medium", "high", "critical"):
        estimate["trusted"] = False
        estimate["reason"] = (f"concept drift ({concept}) in the labelled window: "
                              f"P(label | score) changed, the calibration no longer holds")
    return labels, measured, estimate


def _segments(where: str, window: Matured, newest: Recent | None, model: ModelSettings, *,
              since: float, until: float, now: float, alpha: float,
              model_type: str) -> list[dict[str, Any]]:
    """Coverage, quality and the estimate of each segment (``core.segments``): the segments
    are the values with the most predictions in the matured window."""
    def values(stored: list[str | None], column: str) -> np.ndarray:
        return np.array([json.loads(s).get(column) if s else None for s in stored],
                        dtype=object)

    found = []
    totals = [(json.loads(k) if k else {}, n) for k, n in window.totals.items()]
    for column in model.segment_by:
        counts: dict[str | None, int] = {}
        for decoded, n in totals:
            counts[decoded.get(column)] = counts.get(decoded.get(column), 0) + n
        chosen = top_of(counts, model.segment_top)
        latest = masks(values(newest.segments, column), chosen) if newest is not None else {}
        for value, rows in masks(values(window.segments, column), chosen).items():
            size = (counts.get(value, 0) if value != OTHER else
                    sum(n for v, n in counts.items() if v not in chosen))
            part = window.where(rows, size)
            entry: dict[str, Any] = {"segment": label(column, value), "column": column,
                                     "value": value}
            try:
                labels, measured, estimate = _judge_window(
                    f"{where}, segment {label(column, value)}", part,
                    newest.where(latest[value]) if newest is not None else None, model.quality,
                    since=since, until=until, now=now, alpha=alpha, model_type=model_type)
            except SourceError as exc:  # e.g. a segment whose labels share nothing
                entry["error"] = str(exc)
                found.append(entry)
                continue
            entry.update(labels)
            if labels["judged"] and measured is not None:
                entry.update({m: measured.get(m) for m in metrics_of(model_type)})
                entry["samples"] = part.labelled
            if estimate is not None:
                entry["estimate"] = estimate
            found.append(entry)
    return found


MIN_AGREEMENT = 0.99  # share of predictions a threshold of the score must reproduce


def _threshold_agreement(scores: np.ndarray, positive: np.ndarray) -> float:
    """The largest share of predictions that "positive when the score is at least t" gives
    right, over every t: 1.0 when the predictions are a threshold of the score."""
    order = np.argsort(scores, kind="stable")
    flags = positive[order].astype(bool)
    negatives_below = np.concatenate([[0], np.cumsum(~flags)])
    positives_from = flags.sum() - np.concatenate([[0], np.cumsum(flags)])
    return float(np.max(negatives_below + positives_from) / max(1, flags.size))


ESTIMATED_ERRORS = ("mae", "rmse")  # what a regression model's estimate (DLE) gives


def metrics_of(model_type: str) -> tuple[str, ...]:
    """The metrics a model of ``model_type`` is judged by, by name in results."""
    return REGRESSION_METRICS if model_type == "regression" else METRICS


def _window_data(window: Matured, quality: QualitySettings
                 ) -> tuple[dict[str, np.ndarray], OutcomeColumns]:
    """The labelled predictions of a window as columns ``quality_of`` judges."""
    data: dict[str, np.ndarray] = {"prediction": window.prediction, "label": window.label}
    columns = OutcomeColumns("prediction", "label")
    decoded: list[Any] = [json.loads(s) if s is not None else None for s in window.scores]
    if quality.score_column and all(isinstance(s, float) for s in decoded):
        data["score"] = np.array(decoded, dtype=float)
        columns = OutcomeColumns("prediction", "label", score="score")
    elif quality.score_columns and all(isinstance(s, dict) for s in decoded):
        for label in quality.score_columns:
            data[f"score:{label}"] = np.array([s[label] for s in decoded], dtype=float)
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
        measured = quality_of(f"{ref} predictions and labels", data, columns,
                              model_type=model_type)
        realized = {m: measured.get(m) for m in metrics_of(model_type)}
        realized["coverage"] = window.labelled / window.predictions
        with ctx.store.write() as conn:
            realize_in(conn, row.id, realized, now, supersede_before=row.window_end)
    found = latest_realized(ctx.store, ref)
    if found is None:
        return None
    estimated = ESTIMATED_ERRORS if model_type == "regression" else METRICS
    error = {m: found.realized[m] - found.estimate[m] for m in estimated
             if isinstance(found.realized.get(m), (int, float))
             and isinstance(found.estimate.get(m), (int, float))}
    return {"window_start": found.window_start, "window_end": found.window_end,
            "estimated_at": found.at, "estimated": {m: found.estimate.get(m) for m in estimated},
            "realized": found.realized, "error": error}


def _estimate_errors(where: str, window: Matured, quality: QualitySettings, newest: Recent, *,
                     since: float, until: float) -> dict[str, Any]:
    """DLE on the predictions newer than the matured window: a regression model's MAE and RMSE
    learnt from the labelled window's errors (``lifecycled.dle``)."""
    from lifecycled import dle

    names = list(quality.estimate_features)
    found: dict[str, Any] = {"window_start": since, "window_end": until}
    reference, latest = dle.columns_of(window.features, names), dle.columns_of(newest.features,
                                                                                names)
    if names and not (reference and latest):
        return {**found, "method": "DLE", "n": int(newest.prediction.size), "trusted": False,
                "reason": f"features missing from the stored predictions: {', '.join(names)} "
                          "(quality.estimate_features; pushed rows must carry them too)"}
    predicted = numbers(where, window.prediction, "prediction")
    labels = numbers(where, window.label, "label")
    usable = np.isfinite(predicted) & np.isfinite(labels)
    latest_predicted = numbers(where, newest.prediction, "prediction")
    fresh = np.isfinite(latest_predicted)
    return {**found, **dle.estimate_errors(
        {c: v[usable] for c, v in reference.items()}, predicted[usable], labels[usable],
        {c: v[fresh] for c, v in latest.items()}, latest_predicted[fresh])}


def _estimate(measured: dict[str, Any], reference: dict[str, np.ndarray],
              quality: QualitySettings, newest: Recent, *, since: float, until: float
              ) -> dict[str, Any]:
    """CBPE on the predictions newer than the matured window (their labels not in yet), with
    the labelled matured window as the reference it is calibrated on: binary models from their
    score, multiclass models from their score per class."""
    from lifecycled.core.cbpe import MIN_REFERENCE, estimate, estimate_classes
    from lifecycled.core.quality import comparable, normalise

    found: dict[str, Any] = {"window_start": since, "window_end": until, "trusted": True}

    def untrusted(reason: str) -> dict[str, Any]:
        return {**found, "trusted": False, "reason": reason}

    positive = measured.get("positive_label")
    classes = list(quality.score_columns)
    if positive is not None and "score" not in reference:
        return untrusted("a binary model is estimated from its score (score_column)")
    if positive is None and not (classes and all(f"score:{c}" in reference for c in classes)):
        return untrusted("a multiclass model is estimated from a score per class "
                         "(score_columns)")
    _, labels = normalise(reference["prediction"], reference["label"])
    if labels.size < MIN_REFERENCE:
        return untrusted(f"{labels.size} labelled predictions to calibrate on, fewer than "
                         f"{MIN_REFERENCE}")
    predicted, stored = newest.prediction, newest.scores
    if positive is not None:
        agreement = _threshold_agreement(reference["score"],
                                         comparable(reference["prediction"]) == positive)
        if agreement < MIN_AGREEMENT:
            return untrusted(f"the predictions are not a threshold of the score (the best "
                             f"threshold agrees with {agreement:.1%} of them): the estimate "
                             f"assumes they are")
        usable = [i for i, s in enumerate(stored) if s is not None]
        values = np.array([float(json.loads(str(stored[i]))) for i in usable])
        flags = comparable(predicted[usable]) == positive if usable else np.zeros(0, dtype=bool)
        found.update(estimate(reference["score"], (labels == positive).astype(int), values,
                              flags), reference=int(labels.size))
        return found
    unknown = sorted(set(labels.tolist()) - set(classes))
    if unknown:
        return untrusted(f"labels without a score column: {', '.join(unknown)}")
    matrix = np.column_stack([reference[f"score:{c}"] for c in classes])
    agreement = float(np.mean(comparable(reference["prediction"])
                              == np.array(classes, dtype=object)[matrix.argmax(axis=1)]))
    if agreement < MIN_AGREEMENT:
        return untrusted(f"the predictions are not the class of the highest score ({agreement:.1%} "
                         f"of them are): the estimate assumes they are")
    index = {c: i for i, c in enumerate(classes)}
    decoded: list[Any] = [json.loads(s) if s is not None else None for s in stored]
    usable = [i for i, d in enumerate(decoded) if isinstance(d, dict)
              and all(isinstance(d.get(c), (int, float)) for c in classes)]
    chosen = comparable(predicted[usable]) if usable else np.zeros(0, dtype=object)
    outside = sorted({str(c) for c in chosen.tolist()} - set(classes))
    if outside:
        return untrusted(f"predictions of classes without a score column: {', '.join(outside)}")
    window = np.array([[float(decoded[i][c]) for c in classes] for i in usable]).reshape(
        len(usable), len(classes))
    found.update(estimate_classes(matrix, np.array([index[c] for c in labels.tolist()]), window,
                                  np.array([index[c] for c in chosen.tolist()], dtype=int)),
                 reference=int(labels.size), classes=classes)
    return found
