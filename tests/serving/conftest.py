"""A tiny saved eno model (random mel_cnn, three heads) for the serving tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from serving_uploads import HEADS, SR

from eno_hf.models import EnoFeatureExtractor, EnoForAudioTagging, EnoModelConfig


@pytest.fixture(scope="session")
def serve_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random mel_cnn, 2-s windows, tuned thresholds on ``moods`` (calm/happy always, dark never)."""
    out = tmp_path_factory.mktemp("eno-serve-model")
    torch.manual_seed(0)
    cfg = EnoModelConfig(encoder_type="mel_cnn", encoder_kwargs={"n_mels": 32, "channels": 4, "n_blocks": 2},
                         chunk_s=2.0, hidden_dim=8, heads=HEADS, thresholds={"moods": [0.0, 1.0, 0.0]})
    EnoForAudioTagging(cfg).eval().save_pretrained(out)
    EnoFeatureExtractor(sampling_rate=SR, target_lufs=-18.0).save_pretrained(out)
    return out
