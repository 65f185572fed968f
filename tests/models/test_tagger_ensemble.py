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
    assert ensemble.default_lora_targets == ["taggers.0.dense1"]  # peft cannot wrap crnn's GRU
    assert ensemble.suffix_modules == ["taggers.0.dense1", "taggers.0.bn", "taggers.1.layer5"]
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
    # dimensions whose spread is tiny next to their mean amplify float32 cancellation: skip those
    spread = raw.std(0) > 1e-2 * raw.mean(0).abs().clamp_min(1.0)
    assert spread.sum() > enc.output_dim // 4
    assert torch.allclose(std.mean(0)[spread], torch.zeros(int(spread.sum())), atol=1e-4)
    reloaded = TaggerEnsembleEncoder(SPECS[:1])
    reloaded.load_state_dict(enc.state_dict())
    assert torch.equal(reloaded.feature_mean, enc.feature_mean)
    with pytest.raises(ValueError, match=r"mean/std of shape \(400,\), got \(3,\), \(3,\)"):
        enc.set_standardization(torch.zeros(3), torch.ones(3))


def test_build_encoder_from_config_alone():
    for kind in ("tagger_ensemble", "sota_tagger"):  # sota_tagger + taggers = the same encoder
        cfg = EnoModelConfig.__new__(EnoModelConfig)
        cfg.encoder_type, cfg.encoder_kwargs, cfg.pooling = kind, {"taggers": SPECS}, "mean"
        enc = build_encoder(cfg)
        assert isinstance(enc, TaggerEnsembleEncoder) and enc.output_dim == 464


def test_no_tagger_rejected():
    with pytest.raises(ValueError, match="needs at least one tagger"):
        TaggerEnsembleEncoder([])


def test_constant_dimensions_are_only_centered():
    enc = TaggerEnsembleEncoder(SPECS[:1])
    std = torch.ones(enc.output_dim)
    std[:3] = torch.tensor([0.0, float("nan"), 1e-9])
    enc.set_standardization(torch.zeros(enc.output_dim), std)
    assert torch.equal(enc.feature_std[:3], torch.ones(3))
    assert torch.isfinite(enc.standardize(torch.zeros(1, enc.output_dim))).all()


@pytest.mark.parametrize("seconds", [2.0, 7.0])
def test_from_prefix_of_frozen_prefix_equals_forward(ensemble, seconds):
    """The cached-prefix training path computes exactly the encoder's output, padding rows included."""
    n = int(seconds * SR)
    wave = 0.1 * torch.randn(2, n)
    wave[1, n // 2:] = 0.0  # second row: trailing zero padding (pure-padding windows skipped)
    with torch.no_grad():
        expected = ensemble(wave)
        prefix = ensemble.frozen_prefix(wave)
        got = ensemble.from_prefix(prefix, n)
    assert prefix.shape == (2, ensemble.prefix_dim(n))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="prefix of shape"):
        ensemble.from_prefix(prefix[:, :-1], n)


def test_gradients_reach_the_suffix_only(ensemble):
    wave = 0.1 * torch.randn(2, 4 * SR)
    prefix = ensemble.frozen_prefix(wave)
    assert not prefix.requires_grad
    ensemble.zero_grad()
    ensemble.raw_from_prefix(prefix, wave.shape[1]).sum().backward()
    grads = {n for n, p in ensemble.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert "taggers.0.dense1.weight" in grads and "taggers.1.layer5.weight_ih_l0" in grads
    assert not any(n.startswith(("taggers.0.layers", "taggers.0.layer1", "taggers.1.layer4")) for n in grads)
    ensemble.zero_grad()
