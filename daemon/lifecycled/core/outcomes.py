"""Quality of predictions beside their labels, as a source's columns hold them: the columns
that name prediction, label and scores, and the judgement of one set of outcomes (metrics and
concept drift, JSON form). Shared by the outcome files and the joined prediction log."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from lifecycled.core.concept import SIGNIFICANCE, concept_drift, concept_to_json
from lifecycled.core.quality import evaluate_quality, normalise, quality_to_json
from lifecycled.core.segments import label_text
from lifecycled.errors import InputError, SourceError


@dataclass(frozen=True)
class OutcomeColumns:
    prediction: str = "prediction"
    label: str = "label"
    score: str | None = None
    timestamp: str | None = None
    class_scores: Mapping[str, str] | None = None  # class label -> its score column (multiclass)


def quality_of(where: str, data: Mapping[str, np.ndarray], columns: OutcomeColumns, *,
               positive_label: str | None = None, min_samples: int = 100,
               alpha: float = SIGNIFICANCE) -> dict[str, Any]:
    """Quality metrics and concept drift (JSON form) of predictions beside their labels, in the
    order they were made; ``where`` names their source in errors. Concept drift's indicators and
    the accuracy's upper confidence bound (``accuracy_upper``) are at ``alpha``."""
    pattern = where
    needed = [c for c in (columns.prediction, columns.label, columns.score) if c]
    needed += list((columns.class_scores or {}).values())
    missing = [c for c in needed if c not in data]
    if missing:
        raise SourceError(pattern, f"missing column(s) {', '.join(missing)}; "
                                   f"found {', '.join(data) or 'none'}")
    predictions, labels = label_text(data[columns.prediction]), label_text(data[columns.label])
    known = np.array([p is not None and t is not None for p, t in zip(predictions, labels,
                                                                       strict=True)], dtype=bool)
    scores = _numeric(pattern, data, columns.score, known) if columns.score else None
    class_scores = {label: _numeric(pattern, data, column, known)
                    for label, column in (columns.class_scores or {}).items()}
    try:
        quality = evaluate_quality(predictions[known], labels[known], scores,
                                   positive_label=positive_label, class_scores=class_scores)
        pred, true = normalise(predictions[known], labels[known])
    except InputError as exc:
        raise SourceError(pattern, str(exc)) from exc
    correct = pred == true
    result = quality_to_json(quality)
    result["unlabelled"] = int((~known).sum())
    result["concept"] = concept_to_json(concept_drift(correct, min_samples=min_samples,
                                                      alpha=alpha))
    result["accuracy_upper"] = accuracy_upper_bound(int(correct.sum()), int(correct.size), alpha)
    result["alpha"] = alpha
    return result


def accuracy_upper_bound(right: int, outcomes: int, alpha: float) -> float | None:
    """The one-sided upper confidence bound of an accuracy of ``right`` out of ``outcomes`` at
    level 1 - alpha (Clopper-Pearson, exact): a minimum accuracy is breached beyond chance only
    when even this bound is below it. None without outcomes."""
    if outcomes == 0:
        return None
    if right >= outcomes:
        return 1.0
    return float(stats.beta.ppf(1 - alpha, right + 1, outcomes - right))


def _numeric(pattern: str, data: Mapping[str, np.ndarray], column: str, known: np.ndarray
             ) -> np.ndarray:
    values = data[column][known]
    if values.dtype.kind not in "iuf":
        raise SourceError(pattern, f"score column {column!r} is not numeric")
    return values.astype(float)
