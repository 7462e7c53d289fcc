"""Our CBPE beside NannyML's on the same data: a binary model whose raw score is not a
probability (P(positive | score) = score²), a labelled reference and ten windows of shifting
scores. Both estimate the same metrics from the scores alone; they must agree (last run with
NannyML 0.13.1: accuracy, precision, recall and F1 equal to 2e-16, ROC AUC within 0.0003).

NannyML is a test-only comparison and heavy (LightGBM, FLAML, plotly and more): it is not among
the test dependencies, so this test is skipped unless it is installed (``pip install nannyml``).
"""

from __future__ import annotations

import numpy as np
import pytest
from lifecycled.core.cbpe import estimate
from lifecycled.core.quality import METRICS

nml = pytest.importorskip("nannyml", reason="NannyML is not installed (pip install nannyml to "
                                            "compare against it)")
pd = pytest.importorskip("pandas")

WINDOW = 1000


@pytest.mark.filterwarnings("ignore")  # NannyML's own deprecation warnings under newer pandas
def test_our_estimate_agrees_with_nannyml_cbpe() -> None:
    rng = np.random.default_rng(11)
    reference = rng.uniform(0, 1, 5000)
    reference_labels = (rng.random(reference.size) < reference ** 2).astype(int)
    windows = [rng.beta(2, 1 + w % 3, WINDOW) for w in range(10)]
    threshold = 0.7

    def frame(scores: np.ndarray, labels: np.ndarray | None) -> pd.DataFrame:
        data = {"score": scores, "prediction": (scores >= threshold).astype(int)}
        if labels is not None:
            data["label"] = labels
        return pd.DataFrame(data)

    estimator = nml.CBPE(y_pred_proba="score", y_pred="prediction", y_true="label",
                         problem_type="classification_binary", chunk_size=WINDOW,
                         metrics=["accuracy", "precision", "recall", "f1", "roc_auc"])
    estimator.fit(frame(reference, reference_labels))
    theirs = estimator.estimate(frame(np.concatenate(windows), None)).filter(
        period="analysis").to_df()
    differences = {m: [] for m in METRICS}
    for index, scores in enumerate(windows):
        ours = estimate(reference, reference_labels, scores, scores >= threshold, seed=index)
        for metric in METRICS:
            value = float(theirs[(metric, "value")].iloc[index])
            differences[metric].append(abs(ours[metric] - value))
    worst = {metric: max(values) for metric, values in differences.items()}
    print(f"\nlargest difference from NannyML's CBPE over 10 windows: {worst}")
    # the expected confusion matrix is the same computation: equal to rounding; ROC AUC is
    # estimated by each in its own way
    assert max(worst[m] for m in ("accuracy", "precision", "recall", "f1")) < 1e-9, worst
    assert worst["roc_auc"] < 0.002, worst
