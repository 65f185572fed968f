"""``training.cache``: cached inputs are returned as data; the training view shares parameters and
leaves the real model (encoder, config) untouched."""

from __future__ import annotations

import datasets
import numpy as np
import torch

from eno_hf.models import EnoForAudioTagging, EnoModelConfig
from eno_hf.training.cache import EMBEDDING_COLUMN, cache_inputs, training_view

HEADS = [{"name": "moods", "kind": "multilabel", "labels": ["a", "b"]}]


def _model() -> EnoForAudioTagging:
    torch.manual_seed(0)
    cfg = EnoModelConfig(encoder_type="mel_cnn", encoder_kwargs={"n_mels": 16, "channels": 2, "n_blocks": 1},
                         chunk_s=0.5, hidden_dim=4, heads=HEADS)
    return EnoForAudioTagging(cfg).eval()


def test_frozen_cache_returns_data_and_a_view_sharing_parameters(tmp_path):
    model = _model()
    rng = np.random.default_rng(0)
    split = datasets.Dataset.from_dict({"recording_id": ["r0", "r1"], "moods": [[0], [1]],
                                        "waveform": [rng.standard_normal(8_000).astype(np.float32),
                                                     rng.standard_normal(12_000).astype(np.float32)]})
    cached = cache_inputs(model, {"train": split}, ["recording_id", "moods"], tmp_path, "frozen", progress=False)
    train = cached.datasets["train"]
    assert list(train["recording_id"]) == ["r0", "r1", "r1"]  # one row per 0.5-s window (tail >= half kept)
    assert train[0][EMBEDDING_COLUMN].shape == (model.encoder.output_dim,)
    encoder, config = model.encoder, model.config.to_dict()
    view = training_view(model, cached)
    assert model.encoder is encoder and model.config.to_dict() == config  # not swapped in place
    assert view.encoder is cached.encoder and view.config.encoder_type == "embeddings"
    assert view.trunk is model.trunk and view.heads is model.heads
    out = view(torch.from_numpy(np.stack(train[:2][EMBEDDING_COLUMN])), labels={"moods": torch.tensor([[1.0, 0], [1, 0]])})
    out.loss.backward()
    assert model.heads["moods"].weight.grad is not None  # training the view trains the model
    with torch.no_grad():
        view.heads["moods"].bias.fill_(3.0)
    assert float(model.heads["moods"].bias.detach()[0]) == 3.0
    again = cache_inputs(model, {"train": split}, ["recording_id", "moods"], tmp_path, "frozen", progress=False)
    assert len(list(tmp_path.glob("train-*.features.npy"))) == 1  # reused from disk
    assert len(list(tmp_path.glob("train-*.arrow"))) == 1
    np.testing.assert_allclose(np.stack(again.datasets["train"][EMBEDDING_COLUMN]), np.stack(train[EMBEDDING_COLUMN]))
