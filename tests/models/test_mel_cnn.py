"""MelCNNEncoder (short-chunk residual CNN): shapes, gradients, variable lengths, determinism."""

from __future__ import annotations

import pytest
import torch

from eno_hf.models.encoders.base import Encoder
from eno_hf.models.encoders.mel_cnn import MelCNNEncoder, block_channels


def _tiny() -> MelCNNEncoder:
    torch.manual_seed(0)
    return MelCNNEncoder(channels=8, n_blocks=3)


def test_block_channels_follow_reference() -> None:
    assert block_channels(64, 7) == [64, 64, 128, 128, 128, 128, 256]
    assert block_channels(8, 3) == [8, 8, 16]
    assert block_channels(8, 1) == [8]


def test_default_shapes() -> None:
    encoder = MelCNNEncoder().eval()
    assert isinstance(encoder, Encoder)
    assert encoder.output_dim == 256
    assert encoder.sample_rate == 16_000 and encoder.native_input_s == pytest.approx(3.69)
    with torch.no_grad():
        emb = encoder(torch.randn(2, int(3.69 * 16_000)))
    assert emb.shape == (2, 256)
    modules = dict(encoder.named_modules())
    assert encoder.default_lora_targets == ["blocks.5.conv_1", "blocks.5.conv_2", "blocks.6.conv_1", "blocks.6.conv_2"]
    assert all(isinstance(modules[t], torch.nn.Conv2d) for t in encoder.default_lora_targets)


def test_gradients_flow() -> None:
    encoder = _tiny().train()
    emb = encoder(torch.randn(3, 16_000))
    assert emb.shape == (3, 16)
    emb.pow(2).mean().backward()
    grads = {n: p.grad for n, p in encoder.named_parameters()}
    assert all(g is not None for g in grads.values())
    assert grads["blocks.0.conv_1.weight"].abs().sum() > 0
    assert grads["spec_bn.weight"].abs().sum() > 0


@pytest.mark.parametrize("n_samples", [16_000, 37_123, 5 * 16_000])
def test_variable_lengths(n_samples: int) -> None:
    encoder = _tiny().eval()
    with torch.no_grad():
        emb = encoder(torch.randn(2, n_samples))
    assert emb.shape == (2, encoder.output_dim)
    assert torch.isfinite(emb).all()


def test_deterministic_in_eval_and_batch_independent() -> None:
    encoder = _tiny().eval()
    wave = torch.randn(4, 20_000)
    with torch.no_grad():
        a, b = encoder(wave), encoder(wave)
        single = encoder(wave[1:2])
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(single[0], a[1], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(a[0], a[1])


def test_rejects_bad_rank_and_args() -> None:
    with pytest.raises(ValueError, match="batch, samples"):
        _tiny()(torch.zeros(16_000))
    with pytest.raises(ValueError, match="n_blocks, channels and n_mels must be >= 1, got 0"):
        MelCNNEncoder(n_blocks=0)


def test_default_lora_targets_wrap_with_peft() -> None:
    from peft import LoraConfig, inject_adapter_in_model

    encoder = _tiny()
    model = inject_adapter_in_model(LoraConfig(r=2, target_modules=encoder.default_lora_targets), encoder)
    lora = {n: p for n, p in model.named_parameters() if "lora_" in n}
    assert {n.split(".lora_")[0] for n in lora} == set(encoder.default_lora_targets)
    model(torch.randn(2, 16_000)).sum().backward()
    assert all(p.grad is not None for p in lora.values())
