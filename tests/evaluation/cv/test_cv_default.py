"""evaluation.cv.default: the default model cross-validated through eno_hf.training's one trainer.

The first tests use a tiny random-initialised tagger ensemble (``load_tagger_ensemble`` patched, no
weight files); the last ones the real pretrained taggers on real 4Q clips (skipped without ../shared).
"""

from __future__ import annotations

from pathlib import Path

import datasets
import numpy as np
import pytest
import torch

from eno_hf.config import Settings, load_config
from eno_hf.evaluation.cv import Candidate, CVData, PrefixPart, load_cv_data, make_folds, run_cv
from eno_hf.evaluation.cv.data import owner_index
from eno_hf.evaluation.cv.default import (
    fit_predict_default, frozen_features, load_prefix, predict_recordings, train_fold, validation_inner,
)
from eno_hf.models.encoders import tagger_ensemble
from eno_hf.models.encoders.tagger_ensemble import TaggerEnsembleEncoder
from eno_hf.models.heads import HeadSpec

ROOT = Path(__file__).resolve().parents[3]
SR = 16_000
MOODS = ["calm", "dark", "happy"]
QUADS = ["Q1", "Q2"]


def _split(n_rec: int, seed: int) -> datasets.Dataset:
    rng = np.random.default_rng(seed)
    rows = {"segment_id": [], "recording_id": [], "group": [], "waveform": [], "fingerprint": [], "moods": [],
            "quadrant": []}
    for r in range(n_rec):
        q = r % 2
        n = 16_000 + 4_000 * (r % 3)
        t = np.arange(n) / SR
        wave = 0.3 * np.sin(2 * np.pi * (220 if q == 0 else 1760) * t) + 0.05 * rng.standard_normal(n)
        rows["segment_id"].append(f"s{seed}_r{r}_seg000")
        rows["recording_id"].append(f"s{seed}_r{r}")
        rows["group"].append(f"s{seed}_a{r // 2}")
        rows["waveform"].append(wave.astype(np.float16))
        rows["fingerprint"].append(rng.standard_normal(4).astype(np.float32))
        rows["moods"].append([0, 2] if q == 0 else ([] if r % 3 else [1]))
        rows["quadrant"].append(q)
    feats = datasets.Features({
        "segment_id": datasets.Value("string"), "recording_id": datasets.Value("string"),
        "group": datasets.Value("string"), "waveform": datasets.Sequence(datasets.Value("float16")),
        "fingerprint": datasets.Sequence(datasets.Value("float32")),
        "moods": datasets.Sequence(datasets.ClassLabel(names=MOODS)),
        "quadrant": datasets.ClassLabel(names=QUADS),
    })
    return datasets.Dataset.from_dict(rows, features=feats)


@pytest.fixture()
def random_ensemble(monkeypatch):
    def fake_load(names, models_dir=None, native_input_s=30.0):
        torch.manual_seed(123)
        specs = [{"name": n, "arch": n.rsplit("-", 1)[-1]} for n in names]
        return TaggerEnsembleEncoder(specs, native_input_s=3.0).eval()

    monkeypatch.setattr(tagger_ensemble, "load_tagger_ensemble", fake_load)
    return fake_load


def _settings(pos_weight: bool = False) -> Settings:
    return Settings.model_validate({
        "model": {"encoder": "tagger_ensemble", "taggers": ["rand-musicnn"], "finetune": "lora",
                  "hidden_dim": 8, "dropout": 0.1,
                  "heads": [{"name": "moods", "kind": "multilabel", "pos_weight": pos_weight},
                            {"name": "quad", "kind": "singlelabel", "column": "quadrant"}]},
        "train": {"epochs": 4, "batch_size": 4, "eval_batch_size": 4, "learning_rate": 0.01,
                  "warmup_ratio": 0.1, "augment": False, "early_stopping_patience": 2, "seed": 7},
        "registry": {"clearml": False},
    })


def _cv_data(settings: Settings, ds: datasets.DatasetDict, root: Path) -> CVData:
    path = root / "datasets" / "tiny" / "v1"
    data = load_cv_data(ds, path, root, settings.model.heads, [])
    data.settings = settings
    data.prefix = load_prefix(settings, ds, path, root, data.ids)
    return data


@pytest.mark.parametrize("pos_weight", [False, True])
def test_eno_train_and_the_cv_path_train_the_same_model(tmp_path: Path, random_ensemble, pos_weight: bool) -> None:
    """The default recipe trained once by ``eno train`` (``train_model``) and once by the CV path
    (``train_fold``) on the same fold (training part = the train split, validation part = the
    validation split) with the same seed: same epochs, same validation score and predictions."""
    from eno_hf.training.train import train_model

    settings = _settings(pos_weight)
    ds = datasets.DatasetDict({"train": _split(8, 0), "validation": _split(4, 1), "test": _split(2, 2)})
    res = train_model(settings, ds, output_dir=tmp_path / "run")

    data = _cv_data(settings, ds, tmp_path / "cv-root")
    fit_rec = owner_index(ds["train"]["recording_id"], data.ids)
    val_rec = owner_index(ds["validation"]["recording_id"], data.ids)
    model, info = train_fold(settings, data, fit_rec, val_rec, settings.train.seed, tmp_path / "fold")
    assert info["val_score"] == pytest.approx(res.best_metric, abs=1e-6)
    evals = [e for e in res.history if "eval_score" in e]
    assert info["epochs_run"] == len(evals) and 1 <= info["best_epoch"] <= len(evals)
    probs = predict_recordings(model, data, val_rec, 4)
    order = owner_index(data.ids[val_rec], np.asarray(res.val_predictions.recording_ids, dtype=str))
    for head in ("moods", "quad"):
        np.testing.assert_allclose(probs[head], res.val_predictions.probs[head][order], atol=1e-6)
    # the fold really trained: a different seed gives other predictions
    other, _ = train_fold(settings, data, fit_rec, val_rec, settings.train.seed + 1, tmp_path / "fold2")
    assert not np.allclose(predict_recordings(other, data, val_rec, 4)["quad"], probs["quad"], atol=1e-6)


def test_refit_stops_at_the_chosen_epoch_and_folds_predict_calibrated_probabilities(tmp_path: Path,
                                                                                     random_ensemble) -> None:
    settings = _settings()
    ds = datasets.DatasetDict({"train": _split(12, 0), "validation": _split(4, 1)})
    data = _cv_data(settings, ds, tmp_path)
    every = np.arange(len(data.ids))
    model, info = train_fold(settings, data, every, None, 0, tmp_path / "refit", stop_after=2)
    assert info["epochs_run"] == info["best_epoch"] == 2 and np.isnan(info["val_score"])
    train, test = every[:12], every[12:]
    probs, out = fit_predict_default(Candidate("default-refit", "default", refit=True, val_inner=3), data, train, test)
    assert probs["quad"].shape == (4, 2) and probs["moods"].shape == (4, 3)
    np.testing.assert_allclose(probs["quad"].sum(1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(probs["quad:raw"].sum(1), 1.0, rtol=1e-6)
    assert out["quad_temperature"] > 0 and 1 <= out["best_epoch"][0] <= out["epochs_run"][0] <= 4


def test_prefix_cache_is_training_caches_and_reused(tmp_path: Path, random_ensemble) -> None:
    """``load_prefix`` writes ``training.cache``'s memory-mapped ``.npy`` pairs once per split and
    reads them back; ``frozen_features`` averages the un-adapted tops per recording."""
    settings = _settings()
    ds = datasets.DatasetDict({"train": _split(4, 0), "validation": _split(2, 1)})
    data = _cv_data(settings, ds, tmp_path)
    files = sorted((tmp_path / "cache" / "cv-features" / "tiny-v1" / "prefix").glob("*.npy"))
    assert len(files) == 4 and all(isinstance(p.features, np.memmap) for p in data.prefix)
    again = load_prefix(settings, ds, tmp_path / "datasets" / "tiny" / "v1", tmp_path, data.ids)
    for a, b in zip(data.prefix, again):
        np.testing.assert_array_equal(a.features, b.features)
    frozen = frozen_features(settings, data.prefix, len(data.ids))
    assert frozen.shape[0] == 6 and np.isfinite(frozen).all()


def test_validation_part_follows_the_config_split() -> None:
    """The CV default picks its epoch on the same share of its non-test data as ``eno train``."""
    settings = load_config(ROOT / "configs" / "small.yaml")
    assert validation_inner(settings) == 9  # 80/10/10
    assert validation_inner(load_config(ROOT / "configs" / "small.yaml", [
        "dataset.split.train=0.6", "dataset.split.validation=0.2", "dataset.split.test=0.2"])) == 4
    with pytest.raises(ValueError, match="validation"):
        validation_inner(load_config(ROOT / "configs" / "small.yaml", [
            "dataset.split.train=0.9", "dataset.split.validation=0.0", "dataset.split.test=0.1"]))


# ----------------------------------------------------------------------------- real taggers, real clips
HEADS = [HeadSpec("quadrant", "singlelabel", ("Q1", "Q2", "Q3", "Q4")),
         HeadSpec("descriptors", "multilabel", tuple(f"m{i}" for i in range(5))),
         HeadSpec("genres", "multilabel", ("pop", "rock", "jazz"))]


def _label_split(ids: np.ndarray, labels: dict[str, np.ndarray]) -> datasets.Dataset:
    """One row per recording with the HEADS' label columns in the dataset's format."""
    feats = datasets.Features({"recording_id": datasets.Value("string"),
                               "quadrant": datasets.ClassLabel(names=list(HEADS[0].labels)),
                               "descriptors": datasets.Sequence(datasets.ClassLabel(names=list(HEADS[1].labels))),
                               "genres": datasets.Sequence(datasets.ClassLabel(names=list(HEADS[2].labels)))})
    return datasets.Dataset.from_dict({
        "recording_id": list(ids), "quadrant": labels["quadrant"].tolist(),
        "descriptors": [np.flatnonzero(r).tolist() for r in labels["descriptors"]],
        "genres": [np.flatnonzero(r).tolist() for r in labels["genres"]]}, features=feats)


@pytest.fixture(scope="module")
def real(fourq_clips: list[Path], sota_models_dir: Path) -> dict:
    """Prefixes of one 12-s excerpt per quadrant (real audio, real taggers) and the settings."""
    from eno_hf.audio.io import load_audio
    from eno_hf.evaluation.cv.default import fresh_model, model_heads

    settings = load_config(ROOT / "configs" / "small.yaml", ["train.epochs=12", "train.early_stopping_patience=4"])
    clips = [fourq_clips[2 * q] for q in range(4)]
    waves = [load_audio(c, 16000)[0][: 12 * 16000].astype(np.float32) for c in clips]
    ids = np.asarray([c.stem for c in clips])
    labels = {"quadrant": np.arange(4), "descriptors": np.eye(5, dtype=np.int64)[:4],
              "genres": np.eye(3, dtype=np.int64)[np.arange(4) % 3]}
    split = _label_split(ids, labels).add_column("waveform", [w.tolist() for w in waves])
    from eno_hf.training.cache import encode_split

    model = fresh_model(settings, model_heads(settings, split), 0)
    feats, rows = encode_split(model, split, prefix=True)
    return {"settings": settings, "model": model, "waves": waves, "prefix": np.asarray(feats), "rows": np.asarray(rows),
            "ids": ids, "split": split}


def test_prefix_cache_reproduces_the_frozen_encoder(real: dict) -> None:
    model, feats = real["model"], real["prefix"]
    assert feats.shape == (4, model.encoder.prefix_dim(model.window_samples))  # one 30-s window per clip
    part = PrefixPart(real["split"], feats, real["rows"], real["rows"][::-1].copy())  # recordings in reverse
    frozen = frozen_features(real["settings"], [part], 4)
    with torch.no_grad():
        windows = torch.stack([model.split_windows(torch.from_numpy(w)[None])[0][0, 0] for w in real["waves"]])
        direct = model.encoder.eval().raw_features(windows).double().numpy()
    np.testing.assert_allclose(frozen, direct[::-1], rtol=1e-4, atol=1e-4)  # rows follow the owner index


def _copies(real: dict) -> CVData:
    """16 'recordings' = noisy copies of the 4 clips' prefixes (quadrant = clip), 8 artists."""
    rng = np.random.default_rng(0)
    n = 16
    clip = np.arange(n) % 4
    feats = (real["prefix"][clip] * (1 + 0.05 * rng.standard_normal(real["prefix"][clip].shape))).astype(np.float32)
    ids = np.asarray([f"r{i:02d}" for i in range(n)])
    tags = np.zeros((n, 5), dtype=np.int64)
    tags[np.arange(n), clip] = 1
    labels = {"quadrant": clip, "descriptors": tags, "genres": np.eye(3, dtype=np.int64)[clip % 3]}
    part = PrefixPart(_label_split(ids, labels), feats, np.arange(n), np.arange(n))
    return CVData(ids, np.asarray([f"a{i // 2}" for i in range(n)]), HEADS, labels, {},
                  settings=real["settings"], prefix=[part])


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
