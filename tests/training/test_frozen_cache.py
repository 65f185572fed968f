"""train_model with model.finetune=frozen: encoder outputs cached once, trunk + heads trained on them.

A tiny random-initialized TaggerEnsembleEncoder (one Musicnn, 3-s window) stands in for the
published weights (``load_tagger_ensemble`` is patched), so the test needs no weight files.
"""

from __future__ import annotations

import datasets
import numpy as np
import pytest
import torch

from eno_hf.config import Settings
from eno_hf.models.encoders import tagger_ensemble
from eno_hf.models.encoders.tagger_ensemble import TaggerEnsembleEncoder
from eno_hf.training import cache as train_mod
from eno_hf.training.cache import CACHE_SUBDIR
from eno_hf.inference.predict import predict_dataset
from eno_hf.training.train import train_model

SR = 16_000
MOODS = ["calm", "dark", "happy"]
QUADS = ["Q1", "Q2"]


def _split(n_rec: int, seed: int) -> datasets.Dataset:
    rng = np.random.default_rng(seed)
    rows = {"segment_id": [], "recording_id": [], "waveform": [], "moods": [], "quadrant": []}
    for r in range(n_rec):
        q = r % 2
        n = 16_000 + 4_000 * (r % 3)
        t = np.arange(n) / SR
        wave = 0.3 * np.sin(2 * np.pi * (220 if q == 0 else 1760) * t) + 0.05 * rng.standard_normal(n)
        rows["segment_id"].append(f"s{seed}_r{r}_seg000")
        rows["recording_id"].append(f"s{seed}_r{r}")
        rows["waveform"].append(wave.astype(np.float16))
        rows["moods"].append([0, 2] if q == 0 else [1])
        rows["quadrant"].append(q)
    feats = datasets.Features({
        "segment_id": datasets.Value("string"), "recording_id": datasets.Value("string"),
        "waveform": datasets.Sequence(datasets.Value("float16")),
        "moods": datasets.Sequence(datasets.ClassLabel(names=MOODS)),
        "quadrant": datasets.ClassLabel(names=QUADS),
    })
    return datasets.Dataset.from_dict(rows, features=feats)


@pytest.fixture(scope="module")
def tiny_dataset() -> datasets.DatasetDict:
    return datasets.DatasetDict({"train": _split(6, 0), "validation": _split(4, 1), "test": _split(2, 2)})


@pytest.fixture()
def random_ensemble(monkeypatch):
    def fake_load(names, models_dir=None, native_input_s=30.0):
        torch.manual_seed(123)
        specs = [{"name": n, "arch": n.rsplit("-", 1)[-1]} for n in names]
        return TaggerEnsembleEncoder(specs, native_input_s=3.0).eval()

    monkeypatch.setattr(tagger_ensemble, "load_tagger_ensemble", fake_load)
    return fake_load


def _settings(finetune: str = "frozen") -> Settings:
    return Settings.model_validate({
        "model": {"encoder": "tagger_ensemble", "taggers": ["rand-musicnn"], "finetune": finetune,
                  "hidden_dim": 8, "dropout": 0.1,
                  "heads": [{"name": "moods", "kind": "multilabel"},
                            {"name": "quad", "kind": "singlelabel", "column": "quadrant"}]},
        "train": {"epochs": 3, "batch_size": 4, "eval_batch_size": 4, "learning_rate": 0.01,
                  "warmup_ratio": 0.0, "augment": True, "early_stopping_patience": 5},
        "registry": {"clearml": False},
    })


def test_frozen_cache_trains_heads_only_and_saves_raw_audio_model(tiny_dataset, tmp_path, random_ensemble,
                                                                  monkeypatch):
    from transformers import AutoModelForAudioClassification

    import eno_hf  # noqa: F401  (Auto-class registration)

    init = random_ensemble(["rand-musicnn"]).state_dict()
    out = tmp_path / "run"
    res = train_model(_settings(), tiny_dataset, output_dir=out)

    caches = sorted(p.name.split("-")[0] for p in (out / CACHE_SUBDIR).glob("*.features.npy"))
    assert caches == ["test", "train", "validation"]
    assert len([h for h in res.history if "eval_score" in h]) == 3

    model = AutoModelForAudioClassification.from_pretrained(res.model_dir).eval()
    assert model.config.encoder_type in ("tagger_ensemble", "sota_tagger")
    assert model.config.encoder_kwargs["taggers"][0]["name"] == "rand-musicnn"
    state = model.state_dict()
    # Encoder weights unchanged; the standardization buffers hold training-split statistics.
    for key, value in init.items():
        if key.startswith("feature_"):
            continue
        assert torch.equal(state[f"encoder.{key}"], value), key
    assert state["encoder.feature_mean"].abs().sum() > 0
    assert not torch.allclose(state["encoder.feature_std"], torch.ones_like(state["encoder.feature_std"]))

    # Validation predictions of TrainResult (from cached vectors) == the saved model on raw audio.
    raw = predict_dataset(model, tiny_dataset["validation"], batch_size=3)
    assert raw.recording_ids == res.val_predictions.recording_ids
    for head in ("moods", "quad"):
        np.testing.assert_allclose(raw.probs[head], res.val_predictions.probs[head], atol=1e-4)
    assert res.test_predictions is not None and len(res.test_predictions.recording_ids) == 2

    # A second run in the same directory reuses the cached features (no encoder pass).
    def no_encoding(*args, **kwargs):
        raise AssertionError("features should come from the cache")

    monkeypatch.setattr(train_mod, "encode_split", no_encoding)
    again = train_model(_settings(), tiny_dataset, output_dir=out)
    assert again.model_dir == res.model_dir


def test_heads_learn_on_cached_features(tiny_dataset, tmp_path, random_ensemble):
    settings = _settings()
    settings.train.epochs = 30
    settings.train.early_stopping_patience = 30
    res = train_model(settings, tiny_dataset, output_dir=tmp_path / "run")
    losses = [h["loss"] for h in res.history if "loss" in h]
    assert losses[-1] < losses[0]
    # two tones per class: the heads separate the quadrants of the validation recordings
    assert res.best_metric is not None and res.best_metric > 0.9


def test_lora_on_cached_prefixes_adapts_the_top_layers_only(tiny_dataset, tmp_path, random_ensemble):
    """finetune=lora on a tagger ensemble: frozen prefixes cached once, LoRA on the suffix (Musicnn
    dense1) trained with trunk + heads, merged; the saved raw-audio model reproduces the
    predictions made on the cache."""
    from transformers import AutoModelForAudioClassification

    import eno_hf  # noqa: F401  (Auto-class registration)

    init = random_ensemble(["rand-musicnn"]).state_dict()
    settings = _settings("lora")
    settings.train.epochs = 4
    out = tmp_path / "run"
    assert train_mod.cache_mode(settings, _lora_model(settings)) == "prefix"
    res = train_model(settings, tiny_dataset, output_dir=out)
    assert len(list((out / CACHE_SUBDIR).glob("*.features.npy"))) == 3

    model = AutoModelForAudioClassification.from_pretrained(res.model_dir).eval()
    state = model.state_dict()
    assert not any("lora_" in k or "base_layer" in k for k in state)  # merged
    changed = {k for k, v in init.items() if not k.startswith("feature_") and not torch.equal(state[f"encoder.{k}"], v)}
    assert changed == {"taggers.0.dense1.weight"}  # LoRA delta merged into the suffix only

    raw = predict_dataset(model, tiny_dataset["validation"], batch_size=3)
    for head in ("moods", "quad"):
        np.testing.assert_allclose(raw.probs[head], res.val_predictions.probs[head], atol=1e-4)


def _lora_model(settings):
    from eno_hf.models.factory import create_model
    from eno_hf.models.lora import apply_finetune

    model = create_model(settings, {"moods": MOODS, "quad": QUADS})
    return apply_finetune(model, settings.model)


@pytest.mark.parametrize("finetune", ["frozen", "lora"])
def test_memory_mapped_cache_inputs_equal_the_in_memory_computation(tiny_dataset, tmp_path, random_ensemble, finetune):
    """cache_inputs (features on disk, memory-mapped Arrow datasets) gives bit for bit the
    standardization buffers and the per-window datasets of the former in-memory computation."""
    import copy

    from eno_hf.models.factory import create_model
    from eno_hf.training.cache import EMBEDDING_COLUMN, cache_inputs, encode_split

    settings = _settings(finetune)
    model = (_lora_model(settings) if finetune == "lora" else create_model(settings, {"moods": MOODS, "quad": QUADS}))
    mode = train_mod.cache_mode(settings, model)
    assert mode == ("prefix" if finetune == "lora" else "frozen")
    prefix = mode == "prefix"
    reference = copy.deepcopy(model)
    columns = ["recording_id", "moods", "quadrant"]
    cached = cache_inputs(model, tiny_dataset, columns, tmp_path, mode, progress=False)

    # the former computation: everything in memory
    encoded = {name: tuple(np.array(a) for a in encode_split(reference, split, workers=1, progress=False, prefix=prefix))
               for name, split in tiny_dataset.items()}
    enc = reference.encoder
    train = torch.from_numpy(encoded["train"][0])
    if prefix:
        with torch.no_grad():
            enc.eval()
            train = torch.cat([enc.raw_from_prefix(part, reference.window_samples) for part in train.split(64)])
    enc.set_standardization(train.mean(dim=0), train.std(dim=0, unbiased=False))
    for buf in ("feature_mean", "feature_std"):
        assert torch.equal(getattr(model.encoder, buf), getattr(enc, buf)), buf
    assert model.encoder.feature_std.ne(1).any()  # statistics were set
    for name, (feats, rows) in encoded.items():
        if not prefix:
            with torch.no_grad():
                feats = enc.standardize(torch.from_numpy(feats)).numpy()
        got = cached.datasets[name]
        assert got.cache_files and got.cache_files[0]["filename"].endswith(".arrow")  # memory-mapped
        assert len(got) == len(rows) and got.format["type"] == "numpy"
        assert np.array_equal(np.stack(got[EMBEDDING_COLUMN]), feats)  # bit for bit
        base = tiny_dataset[name].select(rows.tolist())
        assert list(got["recording_id"]) == list(base["recording_id"])
        assert list(got["quadrant"]) == list(base["quadrant"])
    again = cache_inputs(model, tiny_dataset, columns, tmp_path, mode, progress=False)  # reused: same files
    assert again.datasets["train"].cache_files == cached.datasets["train"].cache_files
    assert len(list(tmp_path.glob("*.arrow"))) == 3
