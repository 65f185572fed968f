"""The default model cross-validated on cached prefixes (eno_hf.evaluation.cv_finetune), on real 4Q clips
with the real pretrained taggers (skips when ../shared is absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from eno_hf.evaluation.cv import CANDIDATES, Candidate, CVData, make_folds, run_cv

ROOT = Path(__file__).resolve().parents[2]
HEADS = [{"name": "quadrant", "kind": "singlelabel", "labels": ["Q1", "Q2", "Q3", "Q4"]},
         {"name": "descriptors", "kind": "multilabel", "labels": [f"m{i}" for i in range(5)]},
         {"name": "genres", "kind": "multilabel", "labels": ["pop", "rock", "jazz"]}]


@pytest.fixture(scope="module")
def real(fourq_clips: list[Path], sota_models_dir: Path) -> dict:
    """Prefixes of one 12-s excerpt per quadrant (real audio, real taggers) and the settings."""
    from datasets import Dataset

    from eno_hf.audio.io import load_audio
    from eno_hf.config import load_config
    from eno_hf.evaluation.cv_finetune import _model, encode_prefixes

    settings = load_config(ROOT / "configs" / "small.yaml", ["train.epochs=12", "train.early_stopping_patience=4"])
    clips = [fourq_clips[2 * q] for q in range(4)]
    waves = [load_audio(c, 16000)[0][: 12 * 16000].astype(np.float32) for c in clips]
    split = Dataset.from_dict({"recording_id": [c.stem for c in clips], "waveform": [w.tolist() for w in waves]})
    model = _model(settings, HEADS)
    feats, ids = encode_prefixes(model, split)
    return {"settings": settings, "model": model, "waves": waves, "prefix": feats, "ids": ids}


def test_prefix_cache_reproduces_the_frozen_encoder(real: dict) -> None:
    import torch

    from eno_hf.evaluation.cv_finetune import frozen_features

    model, feats = real["model"], real["prefix"]
    assert feats.shape == (4, model.encoder.prefix_dim(model.window_samples))  # one 30-s window per clip
    ids = np.asarray(real["ids"])
    frozen = frozen_features(real["settings"], HEADS, {"features": feats, "ids": ids}, ids[::-1].copy())
    with torch.no_grad():
        windows = torch.stack([model.split_windows(torch.from_numpy(w)[None])[0][0, 0] for w in real["waves"]])
        direct = model.encoder.eval().raw_features(windows).double().numpy()
    np.testing.assert_allclose(frozen, direct[::-1], rtol=1e-4, atol=1e-4)  # rows follow the given ids


def _copies(real: dict) -> CVData:
    """16 'recordings' = noisy copies of the 4 clips' prefixes (quadrant = clip), 8 artists."""
    rng = np.random.default_rng(0)
    base = real["prefix"]
    n = 16
    clip = np.arange(n) % 4
    feats = base[clip] * (1 + 0.05 * rng.standard_normal(base[clip].shape)).astype(np.float32)
    ids = np.asarray([f"r{i:02d}" for i in range(n)])
    tags = np.zeros((n, 5), dtype=np.int64)
    tags[np.arange(n), clip] = 1
    genres = np.eye(3, dtype=np.int64)[clip % 3]
    data = CVData(ids, np.asarray([f"a{i // 2}" for i in range(n)]), HEADS,
                  {"quadrant": clip, "descriptors": tags, "genres": genres}, {},
                  settings=real["settings"], prefix={"features": feats, "ids": ids})
    return data


@pytest.mark.parametrize("refit", [False, True])
def test_default_candidate_learns_under_grouped_cv(real: dict, refit: bool) -> None:
    """On ``_copies`` the LoRA-top model trained per fold (and, with ``refit``, retrained on the whole
    training part at the chosen epoch) must classify the held-out copies far above chance."""
    data = _copies(real)
    folds = make_folds(data.ids, data.groups, data.labels["quadrant"], n_folds=2, n_repeats=1, seed=0)
    report = run_cv(data, [Candidate("default", "default", refit=refit)], folds, n_inner=2, reference=None)
    res = report["candidates"]["default"]
    assert res["metrics"]["quadrant/f1_macro"]["mean"] > 0.6
    assert res["metrics"]["descriptors/roc_auc_macro"]["mean"] > 0.7
    for info in res["info"]:
        assert all(1 <= b <= e <= 12 for b, e in zip(info["best_epoch"], info["epochs_run"]))
        assert info["quadrant_temperature"] > 0


def test_registry_has_the_default_and_the_logistic_peer() -> None:
    assert CANDIDATES["default"].model == "default"
    assert CANDIDATES["msd-musicnn-logreg"].model == "linear"
    assert CANDIDATES["msd-musicnn-logreg"].features == ["msd-musicnn"]


def test_train_default_without_validation_stops_after_the_given_epoch(real: dict) -> None:
    """The refit: no validation data, exactly ``stop_after`` epochs, recording-level probabilities."""
    from eno_hf.evaluation.cv_finetune import train_default

    data = _copies(real)
    labels = {k: v for k, v in data.labels.items()}
    predict, info = train_default(real["settings"], HEADS, data.prefix["features"], labels, None, None, None,
                                  seed=0, stop_after=3)
    assert info["best_epoch"] == info["epochs_run"] == 3
    probs = predict(data.prefix["features"], np.arange(len(data.ids)), len(data.ids))
    assert probs["quadrant"].shape == (16, 4)
    np.testing.assert_allclose(probs["quadrant"].sum(axis=1), 1.0, rtol=1e-5)
    assert ((probs["genres"] >= 0) & (probs["genres"] <= 1)).all()


def test_validation_part_follows_the_config_split() -> None:
    """The CV default picks its epoch on the same share of its non-test data as ``eno train``."""
    from eno_hf.config import load_config
    from eno_hf.evaluation.cv_finetune import validation_inner

    settings = load_config(ROOT / "configs" / "small.yaml")
    assert validation_inner(settings) == 9  # 80/10/10
    assert validation_inner(load_config(ROOT / "configs" / "small.yaml", [
        "dataset.split.train=0.6", "dataset.split.validation=0.2", "dataset.split.test=0.2"])) == 4
    with pytest.raises(ValueError, match="validation"):
        validation_inner(load_config(ROOT / "configs" / "small.yaml", [
            "dataset.split.train=0.9", "dataset.split.validation=0.0", "dataset.split.test=0.1"]))
