"""Quality from an outcome file (a URL or a glob): each prediction beside its label in one
table, judged whole and per segment. The ``quality`` task reads a model's configured file with
it, and ``lifecycled quality`` any file."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from lifecycled.core.columns import text
from lifecycled.core.concept import SIGNIFICANCE
from lifecycled.core.quality import OutcomeColumns, judge_outcomes
from lifecycled.core.segments import OTHER, label, masks, top_values
from lifecycled.domain import QUALITY_METRICS, ModelRef
from lifecycled.errors import SourceError
from lifecycled.settings import ModelSettings
from lifecycled.sources.files import DEFAULT_TIMEOUT
from lifecycled.sources.samples import read_sample


def judge_file(model: ModelSettings, ref: ModelRef, timeout: float, alpha: float,
               model_type: str) -> dict[str, Any]:
    """The quality of a version from its model's outcome file (``quality.outcomes``, its
    ``{version}`` replaced)."""
    settings = model.quality
    assert settings.outcomes is not None
    columns = OutcomeColumns(settings.prediction_column, settings.label_column,
                             settings.score_column, settings.timestamp_column,
                             dict(settings.score_columns) or None)
    return check_quality(settings.outcomes.replace("{version}", ref.version), columns,
                         timeout=timeout, segment_by=model.segment_by,
                         segment_top=model.segment_top, alpha=alpha, model_type=model_type)


def check_quality(pattern: str, columns: OutcomeColumns, *, positive_label: str | None = None,
                  min_samples: int = 100, timeout: float = DEFAULT_TIMEOUT,
                  segment_by: Sequence[str] = (), segment_top: int = 10,
                  alpha: float = SIGNIFICANCE, model_type: str = "classification"
                  ) -> dict[str, Any]:
    """Return quality metrics and concept drift (JSON form) for an outcomes file, URL or glob,
    and per segment of the ``segment_by`` columns (``core.segments``)."""
    sample = read_sample(pattern, timestamp_column=columns.timestamp, timeout=timeout)
    result = judge_outcomes(pattern, sample.columns, columns, positive_label=positive_label,
                            min_samples=min_samples, alpha=alpha, model_type=model_type)
    result["files"] = list(sample.files)
    if segment_by:
        result["segments"] = list(_segments(pattern, sample.columns, columns, segment_by,
                                            segment_top, positive_label, min_samples, alpha,
                                            model_type))
    return result


def _segments(pattern: str, data: Mapping[str, np.ndarray], columns: OutcomeColumns,
              segment_by: Sequence[str], top: int, positive_label: str | None,
              min_samples: int, alpha: float, model_type: str) -> Iterator[dict[str, Any]]:
    for column in segment_by:
        if column not in data:
            yield {"segment": label(column, OTHER), "column": column, "value": OTHER,
                   "error": f"no column {column!r} in {pattern}"}
            continue
        values = text(data[column])
        for value, rows in masks(values, top_values(values, top)).items():
            entry: dict[str, Any] = {"segment": label(column, value), "column": column,
                                     "value": value, "predictions": int(rows.sum())}
            if not rows.any():  # "other" when the chosen values cover every row
                yield {**entry, "labelled": 0, "samples": 0, "judged": False}
                continue
            try:
                found = judge_outcomes(f"{pattern}, segment {label(column, value)}",
                                       {k: v[rows] for k, v in data.items()}, columns,
                                       positive_label=positive_label, min_samples=min_samples,
                                       alpha=alpha, model_type=model_type)
            except SourceError as exc:  # e.g. a segment whose labels share nothing
                yield {**entry, "error": str(exc)}
                continue
            labelled = int(rows.sum()) - int(found["unlabelled"])
            yield {**entry, "labelled": labelled, "samples": labelled, "judged": labelled > 0,
                   **{m.name: found.get(m.name) for m in QUALITY_METRICS}}
