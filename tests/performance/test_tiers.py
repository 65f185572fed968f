"""Each tier's loss falls and its metric beats chance on held-out folds of real PercePiano data.

Fast tests use the MIDI statistics of real performances as one-frame "embeddings" (the model is
the same; only the input features differ); the T4 test (slow) renders real MIDI, augments the
audio with the pedalboard chain and embeds it with the pretrained Musicnn.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from eno_hf.features.midi import midi_statistics
from eno_hf.inference.performance import predict_heads
from eno_hf.models.heads import HeadSpec
from eno_hf.performance.data import EmbeddingTable
from eno_hf.performance.degrade import DEGRADATIONS, degrade_midi
from eno_hf.performance.metrics import ordinal_metrics, regression_report, retrieval_metrics
from eno_hf.performance.model import EnoForPerformanceEvaluation, EnoPerformanceConfig
from eno_hf.performance.percepiano import DIMENSIONS
from eno_hf.performance.samplers import grouped_folds
from eno_hf.performance.trainer import InvarianceData, OrdinalData, fit_tiers


def _features(paths) -> np.ndarray:
    x = np.nan_to_num(np.array([list(midi_statistics(p).values()) for p in paths]))
    return np.sign(x) * np.log1p(np.abs(x))            # heavy-tailed counts -> log scale


def _table(x: np.ndarray, ids) -> EmbeddingTable:
    return EmbeddingTable([torch.tensor(r[None, :], dtype=torch.float32) for r in x], [{"segment_id": i} for i in ids])


def _curve(hist, key):
    vals = [h[key] for h in hist if key in h]
    return vals[0], vals[-1]


@pytest.fixture(scope="module")
def beethoven(beethoven_midi_statistics):
    rows, stats = beethoven_midi_statistics
    x = np.sign(stats) * np.log1p(np.abs(stats))            # heavy-tailed counts -> log scale
    return rows, x, np.stack([r.labels for r in rows]).astype(np.float64)


def _cfg(dim: int, heads, **kw) -> EnoPerformanceConfig:
    return EnoPerformanceConfig(input_dim=dim, pooling="mean", hidden_dim=64, dropout=0.1, input_dropout=0.0,
                                heads=heads, **kw)


@pytest.mark.slow
def test_t1_regression_and_ranking_beat_the_mean_on_unseen_performers(beethoven) -> None:
    rows, x, y = beethoven
    tr, te = grouped_folds([r.performer for r in rows], 2, seed=0)[0]
    table = _table(x, [r.segment_id for r in rows])
    hist: list = []
    model = fit_tiers(_cfg(x.shape[1], [HeadSpec("ratings", "regression", labels=DIMENSIONS)]), table.subset(tr), y[tr],
                      [rows[i].passage for i in tr], epochs=40, seed=0, log_history=hist)
    first, last = _curve(hist, "loss_t1_mse")
    assert last < first
    _, last_rank = _curve(hist, "loss_t1_rank")
    assert last_rank < np.log(2)                                         # below the chance-level RankNet loss
    pred = predict_heads(model, [table.tensors[i] for i in te])["ratings"]
    rep = regression_report(y[te], pred, [rows[i].passage for i in te], DIMENSIONS)
    mean_rep = regression_report(y[te], np.tile(np.nanmean(y[tr], 0), (len(te), 1)), [rows[i].passage for i in te], DIMENSIONS)
    assert rep["mean_r2"] > mean_rep["mean_r2"] + 0.05
    assert rep["mean_pairwise_accuracy"] > 0.52 and rep["mean_pearson"] > 0.2          # chance: 0.5 and 0


@pytest.mark.slow
def test_t3_contrastive_retrieves_the_same_passage_for_unseen_performers(beethoven) -> None:
    rows, x, y = beethoven
    tr, te = grouped_folds([r.performer for r in rows], 2, seed=0)[0]
    table = _table(x, [r.segment_id for r in rows])
    heads = [HeadSpec("ratings", "regression", labels=DIMENSIONS), HeadSpec("passage", "projection", dim=32)]
    hist: list = []
    model = fit_tiers(_cfg(x.shape[1], heads, tier_weights={"t1": 1.0, "t3": 1.0}), table.subset(tr), y[tr],
                      [rows[i].passage for i in tr], epochs=40, seed=0, log_history=hist)
    first, last = _curve(hist, "loss_t1_nce")
    assert last < first
    z = predict_heads(model, [table.tensors[i] for i in te])["passage"]
    m = retrieval_metrics(z, [rows[i].passage for i in te])
    assert m["recall@1"] > 2 * m["chance_recall@1"] and m["mrr"] > 2 * m["chance_mrr"]


@pytest.fixture(scope="module")
def degraded(percepiano_rows, tmp_path_factory):
    """12 real Beethoven performances x 3 degradations x severities 0-3 (MIDI statistics as
    one-frame inputs): table, order, groups, source; the first 8 sources train, the rest test."""
    tmp = tmp_path_factory.mktemp("degraded")
    rows = [r for r in percepiano_rows if r.rated and r.piece.startswith("Beethoven")][::14][:12]
    paths, order, groups, source = [], [], [], []
    for r in rows:
        for kind in DEGRADATIONS:
            for sev in range(4):
                p = tmp / f"{r.segment_id}_{kind}{sev}.mid"
                p.write_bytes(degrade_midi(r.midi, kind, sev, 3, seed=0))
                paths.append(p)
                order.append(-sev)
                groups.append(f"{r.segment_id}/{kind}")
                source.append(r.segment_id)
    x = _features(paths)
    table = _table(x, [p.stem for p in paths])
    train = [i for i, s in enumerate(source) if s in {r.segment_id for r in rows[:8]}]
    test = [i for i in range(len(paths)) if i not in train]
    ratings_rows = [r for r in percepiano_rows if r.rated][:64]
    t1 = _table(_features([r.midi for r in ratings_rows]), [r.segment_id for r in ratings_rows])
    return {"x": x, "table": table, "order": np.array(order, float), "groups": groups, "source": source,
            "train": train, "test": test, "t1": t1, "ratings_rows": ratings_rows}


@pytest.mark.slow
def test_t2_ranks_degraded_performances_in_severity_order(degraded) -> None:
    d = degraded
    table, order, groups, train, test, ratings_rows = (d[k] for k in ("table", "order", "groups", "train", "test",
                                                                      "ratings_rows"))
    heads = [HeadSpec("ratings", "regression", labels=DIMENSIONS), HeadSpec("quality", "ranking")]
    hist: list = []
    model = fit_tiers(_cfg(d["x"].shape[1], heads, tier_weights={"t1": 0.2, "t2": 1.0}), d["t1"],
                      np.stack([r.labels for r in ratings_rows]), [r.passage for r in ratings_rows],
                      t2=OrdinalData(table.subset(train), order[train], [groups[i] for i in train]), epochs=60, seed=0,
                      log_history=hist)
    first, last = _curve(hist, "loss_t2_ordinal")
    assert last < first
    score = predict_heads(model, [table.tensors[i] for i in test])["quality"]
    m = ordinal_metrics(score, order[test], [groups[i] for i in test])
    assert m["spearman"] > 0.3 and m["pairwise_accuracy"] > 0.65


@pytest.mark.slow
def test_t2_closed_form_ranking_ridge_orders_unseen_sources(degraded, tmp_path: Path) -> None:
    """``quality_fit="ridge"``: the pairwise ranking ridge (alpha by inner folds grouped by source)
    ranks the held-out sources' severities, survives save/load, and trains nothing by gradient."""
    d = degraded
    table, order, groups, source, train, test = (d[k] for k in ("table", "order", "groups", "source", "train", "test"))
    heads = [HeadSpec("ratings", "regression", labels=DIMENSIONS), HeadSpec("quality", "ranking")]
    cfg = _cfg(d["x"].shape[1], heads, ratings_fit="ridge", quality_fit="ridge")
    rr = d["ratings_rows"]
    model = fit_tiers(cfg, d["t1"], np.stack([r.labels for r in rr]), [r.passage for r in rr],
                      t2=OrdinalData(table.subset(train), order[train], [groups[i] for i in train],
                                     keys=[source[i] for i in train]), epochs=2, seed=0,
                      ridge_groups=[r.performer for r in rr])
    sel = model.config.ridge_selection["quality"]
    assert sel["pairs"] == 8 * 3 * 6 and sel["alpha"] > 0 and np.isfinite(sel["inner_spearman"])
    assert "quality" not in model.heads and not model.quality_ridge.weight.requires_grad
    score = predict_heads(model, [table.tensors[i] for i in test])["quality"]
    m = ordinal_metrics(score, order[test], [groups[i] for i in test])
    assert m["spearman"] > 0.3 and m["pairwise_accuracy"] > 0.65
    model.save_pretrained(tmp_path / "m")
    again = EnoForPerformanceEvaluation.from_pretrained(str(tmp_path / "m"), local_files_only=True)
    np.testing.assert_allclose(predict_heads(again, [table.tensors[i] for i in test])["quality"], score, atol=1e-5)
    with pytest.raises(ValueError, match="quality_ridge"):
        EnoForPerformanceEvaluation(_cfg(4, heads)).set_quality_ridge(torch.zeros(4), torch.zeros(4))


@pytest.mark.slow
def test_t2_ranking_ridge_with_midi_statistics_orders_unseen_sources_from_midi(degraded, tmp_path: Path) -> None:
    """With ``midi_statistics``, ``quality_ridge_midi`` (embeddings + the degraded files' MIDI
    statistics) ranks held-out severities although the embeddings carry nothing (seeded noise), and
    ``quality_ridge`` (embeddings alone) cannot; the installed map is the raw-units formula."""
    from eno_hf.features.midi import MIDI_STATISTICS

    d = degraded
    order, groups, source, train, test = (d[k] for k in ("order", "groups", "source", "train", "test"))
    midi = d["x"]
    assert midi.shape[1] == len(MIDI_STATISTICS)
    rng = np.random.default_rng(0)
    noise = _table(rng.normal(size=(len(midi), 6)), [f"n{i}" for i in range(len(midi))])
    heads = [HeadSpec("ratings", "regression", labels=DIMENSIONS), HeadSpec("quality", "ranking")]
    cfg = _cfg(6, heads, ratings_fit="ridge", quality_fit="ridge", midi_statistics=list(MIDI_STATISTICS))
    rr = d["ratings_rows"]
    t1_midi = np.stack([t[0].numpy() for t in d["t1"].tensors]).astype(np.float64)
    t1 = _table(rng.normal(size=(len(rr), 6)), [r.segment_id for r in rr])
    model = fit_tiers(cfg, t1, np.stack([r.labels for r in rr]), [r.passage for r in rr],
                      t2=OrdinalData(noise, order, groups, keys=source, midi=midi).subset(train), epochs=2, seed=0,
                      ridge_groups=[r.performer for r in rr], midi=t1_midi)
    sel = model.config.ridge_selection["quality"]
    assert set(sel["midi"]) == {"alpha", "inner_spearman", "block_weights"} and sel["midi"]["inner_spearman"] > 0.3
    tensors = [noise.tensors[i] for i in test]
    with_midi = predict_heads(model, tensors, midi=midi[test])["quality"]
    audio = predict_heads(model, tensors)["quality"]
    m, m_audio = (ordinal_metrics(s, order[test], [groups[i] for i in test]) for s in (with_midi, audio))
    assert m["spearman"] > 0.3 and m["pairwise_accuracy"] > 0.65
    assert m_audio["spearman"] < m["spearman"] - 0.2
    # raw units: score = w_mean . frame mean + w_std . frame std + w_midi . midi + b (one frame: std 0)
    w, b = model.quality_ridge_midi.weight[0].detach().double().numpy(), float(model.quality_ridge_midi.bias)
    z = (np.stack([t[0].numpy() for t in tensors]) - model.feature_mean.numpy()) / model.feature_std.numpy()
    np.testing.assert_allclose(z @ w[:6] + midi[test] @ w[12:] + b, with_midi, rtol=1e-4, atol=1e-4)
    model.save_pretrained(tmp_path / "m")
    again = EnoForPerformanceEvaluation.from_pretrained(str(tmp_path / "m"), local_files_only=True)
    np.testing.assert_allclose(predict_heads(again, tensors, midi=midi[test])["quality"], with_midi, atol=1e-5)
    from eno_hf.performance.trainer import fit_quality_ridge

    with pytest.raises(ValueError, match="t2.midi is None"):   # would leave quality_ridge_midi random
        fit_quality_ridge(again, OrdinalData(noise, order, groups, keys=source).subset(train))
    with pytest.raises(ValueError, match="quality_ridge_midi"):
        EnoForPerformanceEvaluation(_cfg(4, heads, quality_fit="ridge")).set_quality_ridge(
            torch.zeros(4), torch.zeros(4), weight_midi=torch.zeros(3))


@pytest.mark.slow
def test_t4_invariance_makes_predictions_stable_under_augmentation(percepiano_rows, tmp_path: Path) -> None:
    from eno_hf.embeddings.embed import EmbedItem, embed_items
    from eno_hf.embeddings.frames import EmbedderSpec, build_frame_embedder
    from eno_hf.performance.augment import AugmentConfig, augment_waveform

    models = Path(__file__).resolve().parents[2].parent / "shared" / "models" / "sota-music-tagging"
    if not models.is_dir():
        pytest.skip("real data not available: ../shared/models/sota-music-tagging")
    rows = sorted([r for r in percepiano_rows if r.rated and r.piece.startswith("Beethoven")],
                  key=lambda r: r.midi.stat().st_size)[:16]
    emb = build_frame_embedder(EmbedderSpec("sota_tagger", "mtat-musicnn", "embedding"), models)
    items = [EmbedItem(r.segment_id, path=str(r.midi)) for r in rows]
    cfg_aug = AugmentConfig(seed=0, reverb={"p": 1.0, "low": 0.5, "high": 0.9}, pink_noise={"p": 1.0, "low": 10, "high": 20})
    embed_items(items, emb, tmp_path / "clean", render_cache=tmp_path / "render")
    embed_items(items, emb, tmp_path / "aug", render_cache=tmp_path / "render",
                transform=lambda w, it: augment_waveform(w, 16000, cfg_aug, it.segment_id)[0])
    clean, aug = EmbeddingTable.from_folder(tmp_path / "clean"), EmbeddingTable.from_folder(tmp_path / "aug")
    assert len(clean) == len(aug) == 16
    y = np.stack([r.labels for r in rows]).astype(float)
    tr, te = list(range(10)), list(range(10, 16))
    heads = [HeadSpec("ratings", "regression", labels=DIMENSIONS)]
    gaps = {}
    for use_t4 in (False, True):
        hist: list = []
        cfg = _cfg(clean.dim, heads, tier_weights={"t1": 1.0, "t4": 3.0})
        model = fit_tiers(cfg, clean.subset(tr), y[tr], [rows[i].passage for i in tr], epochs=60, seed=0, log_history=hist,
                          t4=InvarianceData(clean.subset(tr), aug.subset(tr)) if use_t4 else None)
        if use_t4:
            first, last = _curve(hist, "loss_t4_invariance")
            assert last < first
        a = predict_heads(model, [clean.tensors[i] for i in te])["ratings"]
        b = predict_heads(model, [aug.tensors[i] for i in te])["ratings"]
        gaps[use_t4] = float(np.abs(a - b).mean())
    assert gaps[True] < 0.7 * gaps[False]


def test_model_saves_loads_and_computes_its_loss(tmp_path: Path) -> None:
    heads = [HeadSpec("ratings", "regression", labels=("a", "b")), HeadSpec("quality", "ranking"),
             HeadSpec("passage", "projection", dim=8)]
    model = EnoForPerformanceEvaluation(_cfg(6, heads)).eval()
    x = torch.randn(5, 3, 6)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 1, 1], [1, 1, 1]], dtype=torch.bool)
    out = model(embeddings=x, frame_mask=mask, labels={"ratings": torch.rand(5, 2), "group": torch.tensor([0, 0, 1, 1, 2])})
    assert out.loss is not None and out.loss.ndim == 0 and set(out.losses) == {"mse", "rank", "nce"}
    assert out.heads["ratings"].shape == (5, 2) and out.heads["quality"].shape == (5,)
    assert torch.allclose(out.heads["passage"].norm(dim=1), torch.ones(5))
    x2 = x.clone()
    x2[2, 1:] = 99.0                                                         # padding must not matter
    assert torch.allclose(model(embeddings=x2, frame_mask=mask).heads["ratings"], out.heads["ratings"])
    model.save_pretrained(tmp_path / "m")
    again = EnoForPerformanceEvaluation.from_pretrained(tmp_path / "m")
    assert again.config.head_specs == model.config.head_specs
    assert torch.allclose(again(embeddings=x, frame_mask=mask).heads["ratings"], out.heads["ratings"])
    with pytest.raises(ValueError, match="name must be non-empty without '/'"):
        HeadSpec("bad/name", "regression")
    with pytest.raises(ValueError, match="a multilabel head needs labels"):
        HeadSpec("c", "multilabel")
