"""A tiny saved eno model (random mel_cnn, three heads) for inference tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from eno_hf.models import EnoFeatureExtractor, EnoForAudioTagging, EnoModelConfig

HEADS = [
    {"name": "quadrant", "kind": "singlelabel", "labels": ["Q1", "Q2", "Q3", "Q4"]},
    {"name": "moods", "kind": "multilabel", "labels": ["calm", "dark", "happy"]},
    {"name": "valence", "kind": "regression"},
]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("eno-model")
    torch.manual_seed(0)
    cfg = EnoModelConfig(encoder_type="mel_cnn", encoder_kwargs={"n_mels": 32, "channels": 4, "n_blocks": 2},
                         chunk_s=2.0, hidden_dim=8, heads=HEADS, thresholds={"moods": [0.0, 1.0, 0.0]})
    EnoForAudioTagging(cfg).eval().save_pretrained(out)
    EnoFeatureExtractor(sampling_rate=16_000, target_lufs=-18.0).save_pretrained(out)
    return out
