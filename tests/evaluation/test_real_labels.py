"""Metrics and thresholds on the real 4Q label matrix (AllMusic moods, ~200 sparse tags).

Predictions are simple functions of the labels, so the expected answers are known; the point is
robustness on real label sparsity (many tags with a single class in a small split).
"""

from __future__ import annotations

import numpy as np
import pytest

from eno_hf.metrics import multilabel_metrics, singlelabel_metrics
from eno_hf.evaluation.thresholds import tune_thresholds


@pytest.fixture(scope="module")
def moods(fourq_dir):
    import pandas as pd

    df = pd.read_csv(fourq_dir / "panda_dataset_taffc_metadata.csv")
    tags = [[t.strip().lower() for t in str(s).split(";") if t.strip()] for s in df["MoodsStrSplit"]]
    vocab = sorted({t for ts in tags for t in ts})
    y = np.zeros((len(df), len(vocab)), dtype=int)
    for i, ts in enumerate(tags):
        y[i, [vocab.index(t) for t in ts]] = 1
    quadrant = df["Quadrant"].map({"Q1": 0, "Q2": 1, "Q3": 2, "Q4": 3}).to_numpy()
    return y, vocab, quadrant


def test_prior_and_oracle_on_real_moods(moods):
    y, vocab, _ = moods
    assert len(vocab) > 100 and y.sum(axis=1).min() >= 1
    train, test = y[::2], y[1::2]
    prior = np.broadcast_to(train.mean(axis=0), test.shape)
    r = multilabel_metrics(test, prior, labels=vocab)
    assert r["n_tags"] == len(vocab) and r["n_samples"] == len(test)
    assert r["n_tags_single_class"] > 0  # rare tags absent from this half
    assert r["n_tags_evaluated"] + r["n_tags_single_class"] == len(vocab)
    assert r["roc_auc_macro"] == pytest.approx(0.5)
    assert r["pr_auc_macro"] == pytest.approx(
        np.mean([row["support"] / row["n_labelled"] for row in r["per_tag"]
                 if row["tag"] not in r["single_class_tags"]]))
    noisy = np.clip(test * 0.3 + np.random.default_rng(0).random(test.shape) * 0.7, 0, 1)
    r_noisy = multilabel_metrics(test, noisy, labels=vocab)
    assert 0.6 < r_noisy["roc_auc_macro"] < 1.0
    thr = tune_thresholds(y[::2], np.clip(y[::2] * 0.3 + np.random.default_rng(1).random(train.shape) * 0.7, 0, 1))
    assert multilabel_metrics(test, noisy, thr)["f1_micro"] > r_noisy["f1_micro"]


def test_quadrant_prior_on_real_labels(moods):
    _, _, quadrant = moods
    probs = np.tile([0.25, 0.25, 0.25, 0.25], (len(quadrant), 1))
    r = singlelabel_metrics(quadrant, probs, ["Q1", "Q2", "Q3", "Q4"])
    assert r["n_samples"] == 360
    assert r["accuracy"] == pytest.approx(0.25)  # 90 per quadrant, argmax -> Q1
    assert r["balanced_accuracy"] == pytest.approx(0.25)
