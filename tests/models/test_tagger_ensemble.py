"""TaggerEnsembleEncoder from random-initialized SotaTaggerEncoders (no weight files needed)."""

from __future__ import annotations

import pytest
import torch

from eno_hf.models.configuration import EnoModelConfig
from eno_hf.models.encoders import build_encoder
from eno_hf.models.encoders.tagger_ensemble import TaggerEnsembleEncoder

SR = 16_000
SPECS = [{"name": "a-musicnn", "arch": "musicnn"}, {"name": "b-crnn", "arch": "crnn"}]


@pytest.fixture(scope="module")
def ensemble() -> TaggerEnsembleEncoder:
    torch.manual_seed(0)
    return TaggerEnsembleEncoder(SPECS).eval()


def test_dims_and_attributes(ensemble):
    assert ensemble.output_dim == 2 * 200 + 2 * 32
    assert ensemble.native_input_s == 30.0 and ensemble.sample_rate == SR
    assert ensemble.tagger_names == ["a-musicnn", "b-crnn"]
    assert ensemble.default_lora_targets == []
    assert set(ensemble.state_dict()) >= {"feature_mean", "feature_std", "taggers.0.dense1.weight"}


@pytest.mark.parametrize("seconds", [1.0, 7.0])
def test_forward_shapes_short_and_long(ensemble, seconds):
    wave = 0.1 * torch.randn(2, int(seconds * SR))
    with torch.no_grad():
        out = ensemble(wave)
    assert out.shape == (2, ensemble.output_dim) and out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_mean_and_max_pool_over_windows(ensemble):
    """Two 3-s musicnn windows: the features are the mean and the max of the window embeddings."""
    torch.manual_seed(1)
    wave = 0.1 * torch.randn(1, 6 * SR)
    musicnn = ensemble.taggers[0]
    with torch.no_grad():
        per_window = musicnn(wave.reshape(2, 3 * SR))
        feats = ensemble.raw_features(wave)
    assert torch.allclose(feats[0, :200], per_window.mean(dim=0), atol=1e-5)
    assert torch.allclose(feats[0, 200:400], per_window.amax(dim=0), atol=1e-5)


def test_zero_padding_windows_are_ignored(ensemble):
    """A 3-s clip zero-padded to 9 s pools over its one real musicnn window only."""
    torch.manual_seed(2)
    wave = 0.1 * torch.randn(1, 3 * SR)
    padded = torch.nn.functional.pad(wave, (0, 6 * SR))
    with torch.no_grad():
        a, b = ensemble.raw_features(wave), ensemble.raw_features(padded)
    assert torch.allclose(a[:, :400], b[:, :400], atol=1e-5)


def test_fcn_pads_short_input_to_its_window():
    torch.manual_seed(0)
    enc = TaggerEnsembleEncoder([{"name": "x-fcn"}]).eval()  # arch from the name suffix
    with torch.no_grad():
        out = enc(0.1 * torch.randn(1, 2 * SR))  # FCN needs >= ~20.5 s: padded to 29 s
    assert out.shape == (1, 128)


def test_standardization_buffers(ensemble):
    enc = TaggerEnsembleEncoder(SPECS[:1]).eval()
    wave = 0.1 * torch.randn(3, SR)
    with torch.no_grad():
        raw = enc.raw_features(wave)
        enc.set_standardization(raw.mean(0), raw.std(0))
        std = enc(wave)
    assert torch.allclose(std.mean(0), torch.zeros(enc.output_dim), atol=1e-4)
    reloaded = TaggerEnsembleEncoder(SPECS[:1])
    reloaded.load_state_dict(enc.state_dict())
    assert torch.equal(reloaded.feature_mean, enc.feature_mean)
    with pytest.raises(ValueError):
        enc.set_standardization(torch.zeros(3), torch.ones(3))


def test_build_encoder_from_config_alone():
    for kind in ("tagger_ensemble", "sota_tagger"):  # sota_tagger + taggers = the same encoder
        cfg = EnoModelConfig.__new__(EnoModelConfig)
        cfg.encoder_type, cfg.encoder_kwargs, cfg.pooling = kind, {"taggers": SPECS}, "mean"
        enc = build_encoder(cfg)
        assert isinstance(enc, TaggerEnsembleEncoder) and enc.output_dim == 464


def test_no_tagger_rejected():
    with pytest.raises(ValueError):
        TaggerEnsembleEncoder([])


def test_constant_dimensions_are_only_centered():
    enc = TaggerEnsembleEncoder(SPECS[:1])
    std = torch.ones(enc.output_dim)
    std[:3] = torch.tensor([0.0, float("nan"), 1e-9])
    enc.set_standardization(torch.zeros(enc.output_dim), std)
    assert torch.equal(enc.feature_std[:3], torch.ones(3))
    assert torch.isfinite(enc.standardize(torch.zeros(1, enc.output_dim))).all()
