"""Ridge probes selected by inner grouped CV (``eno_hf.performance.probe``): synthetic, fast."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import Ridge

from eno_hf.performance.probe import Candidate, _fit_predict, nested_ridge_cv, pooled_blocks
from eno_hf.performance.samplers import grouped_folds


def test_kernel_ridge_matches_sklearn() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 8)), rng.normal(size=(60, 3))
    tr, te = np.arange(45), np.arange(45, 60)
    pred = _fit_predict(x @ x.T, y, tr, te, np.array([2.0]))[0]
    mu, sd = y[tr].mean(0), y[tr].std(0)
    ref = Ridge(alpha=2.0).fit(x[tr], (y[tr] - mu) / sd).predict(x[te]) * sd + mu
    np.testing.assert_allclose(pred, ref, atol=1e-8)


def _data(n: int = 240, seed: int = 0):
    rng = np.random.default_rng(seed)
    groups = [f"p{i % 12}" for i in range(n)]
    signal = rng.normal(size=(n, 6))
    y = signal @ rng.normal(size=(6, 4)) + 0.3 * rng.normal(size=(n, 4))
    frames = [np.concatenate([np.tile(signal[i], (5, 1)) + 0.05 * rng.normal(size=(5, 6)),
                              rng.normal(size=(5, 30))], axis=1) for i in range(n)]
    return groups, y, frames, rng


def test_nested_cv_picks_the_informative_layer_without_seeing_the_test_fold() -> None:
    groups, y, frames, rng = _data()
    blocks = pooled_blocks(frames, 30, "enc")          # prefix = the 6 informative columns
    blocks["midi"] = rng.normal(size=(len(y), 5))       # noise
    cands = [Candidate(None), Candidate("enc", "embedding", "mean"), Candidate("enc", "prefix+embedding", "mean")]
    folds = grouped_folds(groups, 4, 0)
    res = nested_ridge_cv(blocks, y, groups, folds, cands, inner_folds=3, fixed=[Candidate(None)])
    assert set(res["chosen_counts"]) == {"enc/prefix+embedding/mean"}
    r2 = 1 - ((y - res["selected"]) ** 2).sum(0) / ((y - y.mean(0)) ** 2).sum(0)
    assert r2.mean() > 0.7
    midi = res["fixed"]["midi_statistics"]
    assert (1 - ((y - midi) ** 2).sum(0) / ((y - y.mean(0)) ** 2).sum(0)).mean() < 0.05
    # changing the targets of one held-out fold changes no prediction of that fold
    tr, te = folds[0]
    y2 = y.copy()
    y2[te] = rng.normal(size=y2[te].shape)
    res2 = nested_ridge_cv(blocks, y2, groups, [folds[0]], cands, inner_folds=3)
    res1 = nested_ridge_cv(blocks, y, groups, [folds[0]], cands, inner_folds=3)
    np.testing.assert_allclose(res1["selected"][te], res2["selected"][te])


def test_model_card_lists_every_protocol_and_baseline() -> None:
    from eno_hf.performance.job import performance_model_card

    iv = {"low": 0.1, "high": 0.5}
    rep = {"embedder": "sota_tagger-mtat-musicnn-prefix+embedding", "n": 10, "pieces": {"a": 10},
           "performers": {"x": 5, "y": 5}, "only_cached": True, "tiers": {"t2": False, "t3": True},
           "published_mean_r2": {"symbolic": 0.35},
           "protocols": {p: {"folds": 5, "model": {"mean_r2": 0.2, "interval": iv, "mean_pairwise_accuracy": 0.6},
                             "baseline_ridge_midi": {"mean_r2": 0.37, "interval": iv, "mean_pairwise_accuracy": 0.6},
                             "baseline_mean": {"mean_r2": -0.03, "mean_pairwise_accuracy": 0.5}}
                         for p in ("performer", "piece")}}
    rep["ridge_selection"] = {"ridge": {"candidate": "frames/embedding/mean", "alpha": 31.6, "inner_r2": 0.1}}
    card = performance_model_card(rep)
    assert "`ridge` frames/embedding/mean (alpha 31.6)" in card
    assert "biased subset" in card and "t3" in card
    assert card.count("| ridge on MIDI statistics |") == 2
    assert "| performer (5 folds) | this model (MIDI input: embeddings + MIDI statistics) | 0.200 [0.100, 0.500]" in card
    assert "- performer: the model is -0.170 mean R² from the ridge on MIDI statistics (the model's interval includes" in card
    assert "set-aside" not in card
    rep["protocols"]["composition4fold"] = {**rep["protocols"]["piece"], "folds": 4, "set_aside": 12, "set_aside_test": {
        "n": 12, "mean_r2_per_fold": [0.1, 0.2, 0.3, 0.4], "mean_r2": 0.25, "ridge_midi_mean_r2": 0.3}}
    card = performance_model_card(rep)
    assert ("- composition4fold, its set-aside test set (12 performances): mean R² 0.250, ridge on MIDI statistics "
            "0.300 (means over the 4 folds' models).") in card
