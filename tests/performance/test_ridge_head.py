"""The closed-form ratings head of ``EnoForPerformanceEvaluation`` (``ratings_fit="ridge"``).

The equivalence tests use small random frame tensors (the check is algebra: the model's folded
linear map must give the probe's kernel-ridge predictions); the quality test uses real PercePiano
performances (their MIDI statistics as one-frame embeddings, as in ``test_tiers.py``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eno_hf.inference.performance import load_performance_model, predict_heads
from eno_hf.models.heads import HeadSpec
from eno_hf.performance.data import EmbeddingTable
from eno_hf.performance.metrics import regression_report
from eno_hf.performance.model import EnoForPerformanceEvaluation, EnoPerformanceConfig
from eno_hf.performance.percepiano import DIMENSIONS
from eno_hf.performance.probe import Candidate, _fit_predict, _scaled, fit_ridge, pooled_blocks, select_ridge
from eno_hf.performance.samplers import grouped_folds
from eno_hf.performance.trainer import fit_ridge_heads, fit_tiers


def _random_table(n: int = 60, dim: int = 10, seed: int = 0) -> tuple[EmbeddingTable, np.ndarray, np.ndarray, list]:
    g = np.random.default_rng(seed)
    tensors = [torch.tensor(g.normal(size=(int(g.integers(2, 7)), dim)) * 3 + 1, dtype=torch.float32) for _ in range(n)]
    feats = np.stack([np.concatenate([t.numpy().mean(0), t.numpy().std(0)]) for t in tensors])
    y = feats @ g.normal(size=(2 * dim, 3)) * 0.1 + g.normal(size=(n, 3)) * 0.2 + 0.5
    midi = g.normal(size=(n, 4)) * [1, 10, 100, 0.1]
    keys = [f"g{i % 8}" for i in range(n)]
    return EmbeddingTable(tensors, [{"segment_id": f"s{i}"} for i in range(n)]), y, midi, keys


def _model(dim: int, prefix: int, midi: int) -> EnoForPerformanceEvaluation:
    cfg = EnoPerformanceConfig(input_dim=dim, hidden_dim=8, heads=[HeadSpec("ratings", "regression", labels=["a", "b", "c"])],
                               ratings_fit="ridge", prefix_dim=prefix, midi_statistics=[f"m{i}" for i in range(midi)])
    model = EnoForPerformanceEvaluation(cfg).eval()
    return model


def test_fit_ridge_in_raw_units_equals_the_kernel_solution() -> None:
    table, y, midi, _ = _random_table()
    blocks = pooled_blocks([t.numpy().astype(np.float64) for t in table.tensors], 6, "e")
    blocks["midi"] = midi
    tr, te = np.arange(45), np.arange(45, 60)
    for cand in (Candidate("e", "prefix+embedding", "meanstd", 4.0), Candidate("e", "embedding", "mean"), Candidate(None)):
        names = cand.blocks()
        x = np.concatenate([_scaled(blocks, [(b, 1.0)], tr) * np.sqrt(w) for b, w in names], axis=1)
        want = _fit_predict(x @ x.T, y, tr, te, np.array([3.0]))[0]
        got = fit_ridge(blocks, y, tr, cand, 3.0).predict(blocks, te)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


def test_model_reproduces_the_selected_ridge_with_and_without_midi(tmp_path) -> None:
    table, y, midi, keys = _random_table()
    model = _model(10, 4, 4)
    mean, std = table.frame_stats()
    model.set_standardization(mean, std)
    sel = fit_ridge_heads(model, table, y, keys, midi, inner_folds=3)
    assert set(sel) == {"ridge", "ridge_midi"} and "midi" not in sel["ridge"]["candidate"]
    blocks = pooled_blocks([t.numpy().astype(np.float64) for t in table.tensors], 6, "frames")
    rows = np.arange(len(y))
    audio = [Candidate("frames", la, po) for la in ("embedding", "prefix+embedding") for po in ("mean", "meanstd")]
    want_audio = select_ridge(blocks, y, keys, rows, audio, inner_folds=3)[0].predict(blocks)
    got_audio = predict_heads(model, table.tensors)["ratings"]
    np.testing.assert_allclose(got_audio, want_audio, atol=2e-4)
    blocks["midi"] = midi
    with_midi = [Candidate(None)] + [Candidate(c.encoder, c.layers, c.pooling, w) for c in audio for w in (1.0, 4.0)]
    fit = select_ridge(blocks, y, keys, rows, with_midi, inner_folds=3)[0]
    assert sel["ridge_midi"]["candidate"] == fit.candidate.key
    got_midi = predict_heads(model, table.tensors, midi=midi)["ratings"]
    np.testing.assert_allclose(got_midi, fit.predict(blocks), atol=2e-4)
    assert np.abs(got_midi - got_audio).max() > 1e-3            # the MIDI statistics are used
    model.save_pretrained(tmp_path / "m")
    again = load_performance_model(tmp_path / "m")
    assert again.config.ridge_selection == sel
    np.testing.assert_allclose(predict_heads(again, table.tensors, midi=midi)["ratings"], got_midi, atol=1e-6)


def test_transcription_map_is_fitted_on_transcriptions_and_read_only_for_them(tmp_path) -> None:
    """``ridge_transcription``: the same selection as ``ridge_midi`` with the transcriptions'
    statistics in place of the MIDI file's; ``statistics_source="transcription"`` reads it, the
    default reads ``ridge_midi``; it survives save/load."""
    table, y, midi, keys = _random_table()
    g = np.random.default_rng(1)
    trans = midi * [1, 0, 0, 1] + g.normal(size=midi.shape) * [0.3, 10, 100, 0.03]  # two columns lost, noise
    cfg = EnoPerformanceConfig(input_dim=10, hidden_dim=8, heads=[HeadSpec("ratings", "regression", labels=["a", "b", "c"])],
                               ratings_fit="ridge", prefix_dim=4, midi_statistics=[f"m{i}" for i in range(4)],
                               transcription_map=True)
    model = EnoForPerformanceEvaluation(cfg).eval()
    model.set_standardization(*table.frame_stats())
    with pytest.raises(ValueError, match="pass transcription"):  # ridge_transcription must not stay random
        fit_ridge_heads(model, table, y, keys, midi, inner_folds=3)
    sel = fit_ridge_heads(model, table, y, keys, midi, inner_folds=3, transcription=trans)
    assert set(sel) == {"ridge", "ridge_midi", "ridge_transcription"}
    blocks = pooled_blocks([t.numpy().astype(np.float64) for t in table.tensors], 6, "frames")
    blocks["midi"] = trans
    audio = [Candidate("frames", la, po) for la in ("embedding", "prefix+embedding") for po in ("mean", "meanstd")]
    with_stats = [Candidate(None)] + [Candidate(c.encoder, c.layers, c.pooling, w) for c in audio for w in (1.0, 4.0)]
    fit = select_ridge(blocks, y, keys, np.arange(len(y)), with_stats, inner_folds=3)[0]
    assert sel["ridge_transcription"]["candidate"] == fit.candidate.key
    got = predict_heads(model, table.tensors, midi=trans, statistics_source="transcription")["ratings"]
    np.testing.assert_allclose(got, fit.predict(blocks), atol=2e-4)
    as_midi = predict_heads(model, table.tensors, midi=trans)["ratings"]  # the MIDI map on the same input
    assert np.abs(got - as_midi).max() > 1e-3
    model.save_pretrained(tmp_path / "m")
    again = load_performance_model(tmp_path / "m")
    assert again.config.transcription_map and again.ridge_transcription is not None
    np.testing.assert_allclose(predict_heads(again, table.tensors, midi=trans, statistics_source="transcription")["ratings"],
                               got, atol=1e-6)
    with pytest.raises(ValueError, match="no ridge_transcription"):  # a model without the map says so
        predict_heads(_model(10, 4, 4), table.tensors, midi=trans, statistics_source="transcription")
    with pytest.raises(ValueError, match="statistics_source"):
        predict_heads(model, table.tensors, midi=trans, statistics_source="score")


def test_midi_statistics_only_makes_ridge_midi_the_baseline_ridge() -> None:
    """``midi_statistics_only``: ``ridge_midi`` is the ridge on the MIDI statistics alone, as the
    CV's ``baseline_ridge_midi`` fits it (alpha by the same inner folds), and ignores the frames."""
    table, y, midi, keys = _random_table()
    model = _model(10, 4, 4)
    model.set_standardization(*table.frame_stats())
    sel = fit_ridge_heads(model, table, y, keys, midi, inner_folds=3, midi_statistics_only=True)
    assert sel["ridge_midi"]["candidate"] == Candidate(None).key
    want = select_ridge({"midi": midi}, y, keys, np.arange(len(y)), [Candidate(None)], inner_folds=3)[0]
    np.testing.assert_allclose(predict_heads(model, table.tensors, midi=midi)["ratings"], want.predict({"midi": midi}),
                               atol=2e-4)
    shuffled = [t[torch.randperm(t.shape[0])] * 0 + 5 for t in table.tensors]  # other frames, same statistics
    np.testing.assert_allclose(predict_heads(model, shuffled, midi=midi)["ratings"], want.predict({"midi": midi}),
                               atol=2e-4)


def test_errors_are_clear() -> None:
    table, y, midi, keys = _random_table(n=24)
    grad = EnoForPerformanceEvaluation(EnoPerformanceConfig(input_dim=10, heads=[HeadSpec("ratings", "regression", labels=["a", "b", "c"])]))
    with pytest.raises(ValueError, match="ratings_fit"):
        fit_ridge_heads(grad, table, y, keys)
    with pytest.raises(ValueError, match="no ridge_midi"):
        _model(10, 0, 0).set_ridge(torch.zeros(3, 10), torch.zeros(3, 10), torch.zeros(3), torch.zeros(3, 2))
    y_nan = y.copy()
    y_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        fit_ridge_heads(_model(10, 0, 4), table, y_nan, keys, inner_folds=2)
    with pytest.raises(ValueError, match="pass midi"):                   # ridge_midi must not stay random
        fit_ridge_heads(_model(10, 0, 4), table, y, keys, inner_folds=2)
    with pytest.raises(ValueError, match="midi must be"):
        fit_ridge_heads(_model(10, 0, 4), table, y, keys, midi[:, :2], inner_folds=2)
    with pytest.raises(ValueError, match="ratings_fit must be"):
        EnoPerformanceConfig(ratings_fit="lasso")


def test_ridge_head_beats_the_mean_on_unseen_performers_of_real_performances(percepiano_rows) -> None:
    from eno_hf.features.midi import midi_statistics

    rows = [r for r in percepiano_rows if r.rated and r.piece.startswith("Beethoven")]
    stats = np.nan_to_num(np.array([list(midi_statistics(r.midi).values()) for r in rows]))
    x = np.sign(stats) * np.log1p(np.abs(stats))
    y = np.stack([r.labels for r in rows]).astype(np.float64)
    table = EmbeddingTable([torch.tensor(v[None, :], dtype=torch.float32) for v in x], [{"segment_id": r.segment_id} for r in rows])
    tr, te = grouped_folds([r.performer for r in rows], 2, seed=0)[0]
    heads = [HeadSpec("ratings", "regression", labels=DIMENSIONS), HeadSpec("passage", "projection", dim=16)]
    cfg = EnoPerformanceConfig(input_dim=x.shape[1], pooling="mean", hidden_dim=32, heads=heads, ratings_fit="ridge")
    hist: list = []
    model = fit_tiers(cfg, table.subset(tr), y[tr], [rows[i].passage for i in tr], epochs=10, log_history=hist,
                      ridge_groups=[rows[i].performer for i in tr])
    logged = {k for h in hist for k in h}
    assert "loss_t1_nce" in logged and "loss_t1_mse" not in logged     # the ratings are not fit by gradient
    pred = predict_heads(model, [table.tensors[i] for i in te])["ratings"]
    passages = [rows[i].passage for i in te]
    rep = regression_report(y[te], pred, passages, DIMENSIONS)
    base = regression_report(y[te], np.tile(y[tr].mean(0), (len(te), 1)), passages, DIMENSIONS)
    assert rep["mean_r2"] > base["mean_r2"] + 0.05
    assert model.config.ridge_selection["ridge"]["alpha"] > 0


def test_t2_sources_spread_over_performers_and_pieces(percepiano_rows) -> None:
    """T2/T4 sources (``balanced_rows``): 16 distinct performers and 15 of the 16 pieces, so every
    outer fold of both protocols tests on some and trains on most (the 16 shortest overall put
    15 in one performer fold: trained on 1, tested on 15)."""
    from eno_hf.performance.job import balanced_rows
    from eno_hf.performance.samplers import grouped_folds

    rows = sorted([r for r in percepiano_rows if r.rated], key=lambda r: r.segment_id)
    chosen = balanced_rows(rows, 16)
    sub = {r.segment_id for r in chosen}
    assert len(sub) == 16 and len({r.performer for r in chosen}) == 16 and len({r.piece for r in chosen}) >= 15
    for protocol in ("performer", "piece"):
        for tr, te in grouped_folds([getattr(r, protocol) for r in rows], 5, 0):
            n_test = sum(rows[i].segment_id in sub for i in te)
            assert 1 <= n_test <= 6, (protocol, n_test)
