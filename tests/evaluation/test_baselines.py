"""Baselines on a tiny synthetic DatasetDict whose features are correlated with the labels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eno_hf.evaluation.baselines import (
    feature_probe_baseline, label_prior_baseline, recording_table, resolve_heads, run_baselines,
)


def test_resolve_heads_reads_vocabularies(synthetic_dd, heads, vocab):
    r = resolve_heads(synthetic_dd["train"].features, heads + [{"name": "nope", "kind": "singlelabel"}])
    assert [h.name for h in r] == ["moods", "quadrant", "valence"]
    assert list(r[0].labels) == vocab["moods"] and list(r[1].labels) == vocab["quadrant"] and r[2].labels == ()


def test_recording_table(synthetic_dd, heads):
    t = recording_table(synthetic_dd["train"], heads)
    assert len(t.ids) == 60 and list(t.ids) == sorted(t.ids)
    assert t.X.shape == (60, 64 + 2 * 4)  # fingerprint mean + MFCC mean + MFCC std
    assert t.labels["moods"].shape == (60, 4)
    assert (t.labels["moods"][0] == -1).all()        # recording 0 has moods=None -> missing
    assert set(np.unique(t.labels["moods"][1:])) <= {0, 1}
    assert t.labels["moods"][:, 3].max() <= 0         # the rare tag never occurs in train
    assert t.labels["quadrant"].dtype.kind == "i" and set(t.labels["quadrant"]) <= {0, 1, 2, 3}
    # features: mean over both segments' fingerprints; MFCC std over all frames is positive
    seg = synthetic_dd["train"].select(range(2)).with_format("numpy")
    fp = np.mean([np.asarray(x, np.float64) for x in seg["fingerprint"]], axis=0)
    np.testing.assert_allclose(t.X[0, :64], fp, rtol=1e-5)
    frames = np.concatenate([np.asarray([np.asarray(r) for r in m], np.float64) for m in seg["mfcc"]], axis=1)
    np.testing.assert_allclose(t.X[0, 64:68], frames.mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(t.X[0, 68:72], frames.std(axis=1), rtol=1e-5)


def test_recording_table_needs_features(synthetic_dd, heads):
    with pytest.raises(ValueError, match="feature columns"):
        recording_table(synthetic_dd["train"].remove_columns(["fingerprint", "mfcc"]), heads)


def test_label_prior_baseline(synthetic_dd, heads):
    res = label_prior_baseline(synthetic_dd["train"], synthetic_dd["test"], heads)
    assert set(res) == {"moods", "quadrant", "valence", "score"}
    assert res["moods"]["roc_auc_macro"] == pytest.approx(0.5)
    assert res["quadrant"]["roc_auc_macro"] == pytest.approx(0.5)
    # the majority training class is predicted for everyone
    assert len({tuple(r) for r in np.asarray(res["quadrant"]["confusion_matrix"]).T if sum(r)}) == 1
    assert math.isnan(res["valence"]["pearson"])  # constant prediction
    assert res["moods"]["n_samples"] == 39          # recording 0 of test has no moods


def test_feature_probe_beats_prior(synthetic_dd, heads):
    dd = synthetic_dd
    prior = label_prior_baseline(dd["train"], dd["test"], heads, validation=dd["validation"])
    probe = feature_probe_baseline(dd["train"], dd["validation"], dd["test"], heads)
    assert probe["score"] > prior["score"] + 0.2
    assert probe["moods"]["roc_auc_macro"] > 0.7
    assert probe["quadrant"]["f1_macro"] > prior["quadrant"]["f1_macro"] + 0.2
    assert probe["valence"]["pearson"] > 0.7
    assert probe["moods"]["probe_C"] in (0.01, 0.1, 1.0, 10.0)
    # the tag absent from train is predicted 0 for every recording -> chance ROC-AUC, F1 0
    rare = probe["moods"]["per_tag"][3]
    assert rare["tag"] == "rare_never_in_train" and rare["support"] > 0
    assert rare["roc_auc"] == pytest.approx(0.5) and rare["f1"] == 0.0
    # thresholds were tuned on validation (not all 0.5)
    assert probe["moods"]["thresholds"] != [0.5] * 4


def test_run_baselines(synthetic_dd, heads):
    out = run_baselines(synthetic_dd, heads)
    assert set(out) == {"label_prior", "feature_probe"}
    assert out["feature_probe"]["score"] > out["label_prior"]["score"]
    with pytest.raises(KeyError, match="test"):
        run_baselines({"train": synthetic_dd["train"]}, heads)


def test_empty_splits_give_undefined_metrics_not_errors(synthetic_dd, heads):
    from datasets import DatasetDict

    dd = DatasetDict({"train": synthetic_dd["train"], "validation": synthetic_dd["validation"].select([]),
                      "test": synthetic_dd["test"].select([])})
    out = run_baselines(dd, heads)
    for res in out.values():
        assert res["moods"]["n_samples"] == 0 and math.isnan(res["moods"]["roc_auc_macro"])
        assert math.isnan(res["score"])
    with pytest.raises(ValueError, match="train split has no recordings"):
        feature_probe_baseline(synthetic_dd["train"].select([]), None, synthetic_dd["test"], heads)
