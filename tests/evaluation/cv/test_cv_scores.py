"""evaluation.cv.scores: metrics by head kind, equal to the metrics module's."""

from __future__ import annotations

import numpy as np
import pytest

from eno_hf.evaluation.cv.scores import KIND_METRICS, fold_metrics, macro_average_precision, macro_roc_auc
from eno_hf.models.heads import HeadSpec


def test_fast_macro_roc_auc_equals_metrics_module() -> None:
    from eno_hf.metrics import multilabel_metrics

    rng = np.random.default_rng(5)
    y = (rng.random((60, 7)) < 0.3).astype(np.int64)
    y[:, 6] = 0  # single-class tag: left out of both
    scores = np.round(rng.random((60, 7)) + 0.5 * y, 1)  # ties
    ref = multilabel_metrics(y, scores)
    assert macro_roc_auc(y, scores) == pytest.approx(ref["roc_auc_macro"], abs=1e-12)
    assert macro_average_precision(y, scores) == pytest.approx(ref["pr_auc_macro"], abs=1e-12)
    y_missing = np.vstack([y, -np.ones((5, 7), dtype=np.int64)])  # unlabelled rows change nothing
    s_missing = np.vstack([scores, np.ones((5, 7))])
    assert macro_roc_auc(y_missing, s_missing) == pytest.approx(ref["roc_auc_macro"], abs=1e-12)


def test_fold_metrics_follow_the_heads_not_a_fixed_list() -> None:
    """Any dataset's heads: rows named ``head/metric`` by kind; other kinds are not scored."""
    heads = [HeadSpec("mood", "singlelabel", ("calm", "tense")), HeadSpec("instruments", "multilabel", ("piano", "voice")),
             HeadSpec("valence", "regression")]
    y = np.asarray([0, 1, 1, 0])
    tags = np.asarray([[1, 0], [0, 1], [1, 1], [0, 0]])
    probs = {"mood": np.eye(2)[y] * 0.8 + 0.1, "instruments": tags * 0.9 + 0.05}
    m = fold_metrics(heads, {"mood": y, "instruments": tags, "valence": np.zeros(4)}, probs)
    assert list(m) == [f"mood/{k}" for k, _ in KIND_METRICS["singlelabel"]] + \
        [f"instruments/{k}" for k, _ in KIND_METRICS["multilabel"]]
    assert m["mood/f1_macro"] == pytest.approx(1.0) and m["instruments/roc_auc_macro"] == pytest.approx(1.0)
    assert m["mood/ece"] == pytest.approx(0.1)
