"""Quality checks: read labelled outcomes, compute quality metrics and concept drift."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lifecycled.core.concept import concept_drift, concept_to_json
from lifecycled.core.quality import evaluate_quality, quality_to_json
from lifecycled.errors import SourceError
from lifecycled.sources.samples import read_sample


@dataclass(frozen=True)
class OutcomeColumns:
    prediction: str = "prediction"
    label: str = "label"
    score: str | None = None
    timestamp: str | None = None


def check_quality(pattern: str, columns: OutcomeColumns, *, positive_label: str | None = None,
                  min_samples: int = 100) -> dict[str, Any]:
    """Return quality metrics and concept drift (JSON form) for an outcomes file or glob."""
    sample = read_sample(pattern, timestamp_column=columns.timestamp)
    data = sample.columns
    needed = [c for c in (columns.prediction, columns.label, columns.score) if c]
    missing = [c for c in needed if c not in data]
    if missing:
        raise SourceError(pattern, f"missing column(s) {', '.join(missing)}; "
                                   f"found {', '.join(data) or 'none'}")
    predictions, labels = _labels(data[columns.prediction]), _labels(data[columns.label])
    known = np.array([p is not None and t is not None for p, t in zip(predictions, labels,
                                                                       strict=True)], dtype=bool)
    scores = data[columns.score][known] if columns.score else None
    if scores is not None and scores.dtype.kind != "f":
        raise SourceError(pattern, f"score column {columns.score!r} is not numeric")
    quality = evaluate_quality(predictions[known], labels[known], scores,
                               positive_label=positive_label)
    correct = predictions[known] == labels[known]
    result = quality_to_json(quality)
    result["unlabelled"] = int((~known).sum())
    result["concept"] = concept_to_json(concept_drift(correct, min_samples=min_samples))
    result["files"] = list(sample.files)
    return result


def _labels(values: np.ndarray) -> np.ndarray:
    """Normalise labels to str: 1.0 -> '1'; NaN/None -> None."""
    if values.dtype.kind == "f":
        out = np.empty(values.size, dtype=object)
        finite = np.isfinite(values)
        whole = finite & (values == np.round(values))
        out[whole] = values[whole].astype(np.int64).astype(str)
        out[finite & ~whole] = values[finite & ~whole].astype(str)
        out[~finite] = None
        return out
    return values.astype(object)
