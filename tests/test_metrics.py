"""Metrics on synthetic arrays with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eno_hf.metrics import (
    aggregate_by_recording, evaluate_heads, first_by_recording, flatten_metrics,
    multilabel_metrics, regression_metrics, singlelabel_metrics, summary_score,
)


def _labels(n: int = 200, n_tags: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = (rng.random((n, n_tags)) < 0.3).astype(int)
    y[:2] = [1] * n_tags, [0] * n_tags  # every tag has both classes
    return y


def test_multilabel_perfect_predictions():
    y = _labels()
    r = multilabel_metrics(y, y * 0.8 + 0.1)
    assert r["roc_auc_macro"] == pytest.approx(1.0)
    assert r["roc_auc_micro"] == pytest.approx(1.0)
    assert r["pr_auc_macro"] == pytest.approx(1.0)
    assert r["f1_macro"] == pytest.approx(1.0)
    assert r["f1_micro"] == pytest.approx(1.0)
    assert r["n_samples"] == 200 and r["n_tags_evaluated"] == 6 and r["n_tags_single_class"] == 0


def test_multilabel_inverted_predictions():
    y = _labels()
    r = multilabel_metrics(y, 1.0 - (y * 0.8 + 0.1))
    assert r["roc_auc_macro"] == pytest.approx(0.0)
    assert r["f1_macro"] == pytest.approx(0.0)


def test_multilabel_random_predictions_near_chance():
    y = _labels(n=4000)
    probs = np.random.default_rng(1).random(y.shape)
    r = multilabel_metrics(y, probs)
    assert abs(r["roc_auc_macro"] - 0.5) < 0.03
    prevalence = y.mean(axis=0).mean()
    assert abs(r["pr_auc_macro"] - prevalence) < 0.03


def test_multilabel_known_values():
    y = np.array([[0], [0], [1], [1]])
    p = np.array([[0.1], [0.4], [0.35], [0.8]])
    r = multilabel_metrics(y, p, labels=["sad"])
    row = r["per_tag"][0]
    assert row["tag"] == "sad" and row["support"] == 2
    assert row["roc_auc"] == pytest.approx(0.75)
    assert row["ap"] == pytest.approx(0.5 * 1.0 + 0.5 * 2 / 3)
    # threshold 0.5: one TP (0.8), one FN (0.35), no FP -> F1 = 2/3
    assert row["f1"] == pytest.approx(2 / 3)
    # threshold 0.3: TP=2, FP=1 (0.4) -> F1 = 0.8
    assert multilabel_metrics(y, p, thresholds=[0.3])["per_tag"][0]["f1"] == pytest.approx(0.8)


def test_multilabel_missing_rows_are_dropped():
    y = _labels(n=50)
    p = y * 0.6 + 0.2
    y_missing = np.vstack([y, -np.ones((3, y.shape[1]), int)])
    p_missing = np.vstack([p, np.full((3, y.shape[1]), 0.99)])  # would hurt if counted
    r, r_m = multilabel_metrics(y, p), multilabel_metrics(y_missing, p_missing)
    assert r_m["n_samples"] == 50
    assert r_m["roc_auc_macro"] == pytest.approx(r["roc_auc_macro"])
    assert r_m["f1_micro"] == pytest.approx(r["f1_micro"])


def test_multilabel_single_class_tags_excluded_from_macro():
    y = _labels(n=100, n_tags=3)
    y[:, 1] = 0            # no positive
    y[:, 2] = 1            # no negative
    p = np.where(y == 1, 0.9, 0.1)
    p[:, 1] = 0.9          # all false positives for tag 1 (would drag macro F1 to 0.33)
    r = multilabel_metrics(y, p, labels=["a", "b", "c"])
    assert r["n_tags_single_class"] == 2 and r["single_class_tags"] == ["b", "c"]
    assert r["n_tags_evaluated"] == 1
    assert r["roc_auc_macro"] == pytest.approx(1.0)
    assert r["f1_macro"] == pytest.approx(1.0)
    assert math.isnan(r["per_tag"][1]["roc_auc"]) and math.isnan(r["per_tag"][2]["ap"])
    assert r["per_tag"][1]["f1"] == 0.0  # still reported per tag


def test_multilabel_shape_errors():
    with pytest.raises(ValueError, match="shape"):
        multilabel_metrics(np.zeros((4, 2)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="labels"):
        multilabel_metrics(np.zeros((4, 2)), np.zeros((4, 2)), labels=["a"])
    with pytest.raises(ValueError, match="thresholds"):
        multilabel_metrics(np.zeros((4, 2)), np.zeros((4, 2)), thresholds=[0.5, 0.5, 0.5])


def test_singlelabel_known_confusion():
    y = np.array([0, 0, 1, 1, 2, 2, -1, -100])
    pred = np.array([0, 1, 1, 1, 2, 0, 2, 2])
    probs = np.eye(3)[pred] * 0.7 + 0.1
    r = singlelabel_metrics(y, probs, ["Q1", "Q2", "Q3"])
    assert r["n_samples"] == 6
    assert r["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert r["accuracy"] == pytest.approx(4 / 6)
    assert r["balanced_accuracy"] == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    f1 = [2 * 0.5 * 0.5 / 1.0, 2 * (2 / 3) * 1 / (2 / 3 + 1), 2 * 1 * 0.5 / 1.5]
    assert r["f1_macro"] == pytest.approx(np.mean(f1))
    assert [c["support"] for c in r["per_class"]] == [2, 2, 2]


def test_singlelabel_perfect_and_errors():
    y = np.array([0, 1, 2, 3] * 5)
    r = singlelabel_metrics(y, np.eye(4)[y])
    assert r["accuracy"] == 1.0 and r["f1_macro"] == 1.0 and r["roc_auc_macro"] == 1.0
    with pytest.raises(ValueError, match="class index 5 >= n_classes 4"):
        singlelabel_metrics(np.array([0, 5]), np.eye(4)[:2])
    empty = singlelabel_metrics(np.array([-1, -1]), np.eye(4)[:2])
    assert empty["n_samples"] == 0 and math.isnan(empty["accuracy"])


def test_regression_metrics_known_values():
    y = np.array([1.0, 2.0, 3.0, np.nan])
    pred = np.array([1.0, 2.0, 5.0, 100.0])
    r = regression_metrics(y, pred)
    assert r["n_samples"] == 3
    assert r["mae"] == pytest.approx(2 / 3)
    assert r["rmse"] == pytest.approx(np.sqrt(4 / 3))
    assert r["spearman"] == pytest.approx(1.0)
    assert r["pearson"] == pytest.approx(np.corrcoef([1, 2, 3], [1, 2, 5])[0, 1])
    inv = regression_metrics([1, 2, 3], [3, 2, 1])
    assert inv["pearson"] == pytest.approx(-1.0) and inv["spearman"] == pytest.approx(-1.0)
    assert math.isnan(regression_metrics([1, 2, 3], [2, 2, 2])["pearson"])


def test_aggregate_by_recording_means():
    ids = ["b", "a", "b", "a", "c"]
    probs = np.array([[1.0, 0.0], [0.2, 0.4], [0.0, 1.0], [0.4, 0.0], [0.3, 0.3]])
    uniq, mean = aggregate_by_recording(ids, probs)
    assert uniq.tolist() == ["a", "b", "c"]
    np.testing.assert_allclose(mean, [[0.3, 0.2], [0.5, 0.5], [0.3, 0.3]])
    u2, first = first_by_recording(ids, np.array([10, 20, 11, 21, 30]))
    assert u2.tolist() == uniq.tolist() and first.tolist() == [20, 10, 30]
    with pytest.raises(ValueError, match="1 ids for 5 rows"):
        aggregate_by_recording(["a"], probs)


def test_evaluate_heads_score_and_flatten():
    y_ml = _labels(n=40, n_tags=4)
    y_sl = np.array([0, 1, 2, 3] * 10)
    probs_sl = np.eye(4)[(y_sl + (np.arange(40) % 2)) % 4]  # half right
    heads = [
        {"name": "moods", "kind": "multilabel", "labels": list("abcd")},
        {"name": "quadrant", "kind": "singlelabel", "labels": ["Q1", "Q2", "Q3", "Q4"]},
        {"name": "valence", "kind": "regression"},
        {"name": "emb", "kind": "projection"},
        {"name": "unpredicted", "kind": "multilabel", "labels": ["x"]},
    ]
    preds = {"moods": y_ml * 0.8 + 0.1, "quadrant": probs_sl, "valence": np.arange(40.0),
             "emb": np.zeros((40, 8))}
    labels = {"moods": y_ml, "quadrant": y_sl, "valence": np.arange(40.0) * 2}
    res = evaluate_heads(heads, preds, labels)
    assert set(res) == {"moods", "quadrant", "valence", "score"}
    assert res["moods"]["per_tag"][0]["tag"] == "a"
    assert res["quadrant"]["accuracy"] == pytest.approx(0.5)
    expected = np.mean([res["moods"]["roc_auc_macro"], res["quadrant"]["f1_macro"]])
    assert res["score"] == pytest.approx(expected) and res["score"] == summary_score(res)
    flat = flatten_metrics(res, prefix="eval_")
    assert flat["eval_score"] == pytest.approx(expected)
    assert flat["eval_moods/roc_auc_macro"] == pytest.approx(1.0)
    assert flat["eval_valence/pearson"] == pytest.approx(1.0)
    # per-head thresholds are applied
    thr = evaluate_heads(heads[:1], preds, labels, thresholds={"moods": np.full(4, 0.95)})
    assert thr["moods"]["f1_macro"] == 0.0 and thr["moods"]["thresholds"] == [0.95] * 4
    with pytest.raises(ValueError, match="score"):
        evaluate_heads([{"name": "score", "kind": "multilabel"}], preds, labels)


def test_evaluate_heads_accepts_objects():
    from eno_hf.config import HeadConfig

    y = _labels(n=20, n_tags=2)
    res = evaluate_heads([HeadConfig(name="moods", kind="multilabel")], {"moods": y * 1.0},
                         {"moods": y})
    assert res["moods"]["roc_auc_macro"] == pytest.approx(1.0)
    assert res["moods"]["per_tag"][0]["tag"] == "tag_0"


def test_multilabel_f1_is_scikit_learns() -> None:
    """The per-tag and micro F1 (closed form) equal ``sklearn.metrics.f1_score(zero_division=0)``,
    including tags never true, never predicted, or both, and missing entries."""
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(3)
    y = (rng.random((50, 9)) < 0.3).astype(float)
    probs = rng.random((50, 9))
    y[:, 0] = 0                      # never true
    probs[:, 1] = 0.1                # never predicted
    y[:, 2], probs[:, 2] = 0, 0.2    # neither: F1 0/0 -> 0
    y[rng.random(y.shape) < 0.1] = -1  # missing entries
    m = multilabel_metrics(y, probs, thresholds=0.4)
    for j, row in enumerate(m["per_tag"]):
        ok = y[:, j] >= 0
        assert row["f1"] == pytest.approx(f1_score(y[ok, j].astype(int), probs[ok, j] >= 0.4, zero_division=0), abs=1e-12)
    ok = y >= 0
    assert m["f1_micro"] == pytest.approx(f1_score(y[ok].astype(int), probs[ok] >= 0.4, zero_division=0), abs=1e-12)


def test_regression_metrics_match_scikit_learn() -> None:
    """MAE, RMSE and R² (computed in numpy) equal scikit-learn's, constant targets included."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    rng = np.random.default_rng(5)
    cases = [(rng.standard_normal(30), rng.standard_normal(30)), (np.full(6, 0.5), np.full(6, 0.5)),
             (np.full(6, 0.5), np.linspace(0, 1, 6)), (np.arange(5.0), np.arange(5.0) * 1.1)]
    for y, pred in cases:
        r = regression_metrics(y, pred)
        assert r["mae"] == pytest.approx(mean_absolute_error(y, pred), abs=1e-12)
        assert r["rmse"] == pytest.approx(np.sqrt(mean_squared_error(y, pred)), abs=1e-12)
        assert r["r2"] == pytest.approx(r2_score(y, pred), abs=1e-12)
