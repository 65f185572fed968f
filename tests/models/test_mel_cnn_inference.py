"""MelCNNEncoder inference path (BatchNorm folded, 1-channel conv as unfold+mm, NHWC) gives the
same outputs as the plain eval graph on real audio, keeps state dicts / save-reload / LoRA intact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from eno_hf.audio.io import load_audio
from eno_hf.models import EnoForAudioTagging, EnoModelConfig
from eno_hf.models.encoders.mel_cnn import MelCNNEncoder, ResBlock2d

SR = 16_000
HEADS = [
    {"name": "quadrant", "kind": "singlelabel", "labels": ["Q1", "Q2", "Q3", "Q4"]},
    {"name": "moods", "kind": "multilabel", "labels": ["calm", "dark", "happy"]},
]


@pytest.fixture(scope="module")
def real_audio(fourq_clips: list[Path]) -> torch.Tensor:
    """Two real 4Q clips, 7 s each at 16 kHz: ``(2, 112_000)`` float32."""
    clips = [load_audio(p, sample_rate=SR)[0][SR : 8 * SR] for p in (fourq_clips[0], fourq_clips[-1])]
    assert all(len(c) == 7 * SR for c in clips)
    return torch.from_numpy(np.stack(clips).astype(np.float32))


def _with_batchnorm_statistics(encoder: MelCNNEncoder, audio: torch.Tensor) -> MelCNNEncoder:
    """Running statistics and affine parameters that are far from identity, as after training."""
    torch.manual_seed(1)
    for module in encoder.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)
    encoder.train()
    with torch.no_grad():  # real-audio running statistics (training-mode BatchNorm updates them)
        for _ in range(3):
            encoder(audio[:, : 3 * SR])
    return encoder.eval()


def _plain(module: nn.Module, x: torch.Tensor):
    """The plain eval graph (``ResBlock2d.fold_batchnorm`` off), without autograd."""
    blocks = [m for m in module.modules() if isinstance(m, ResBlock2d)]
    assert blocks
    for block in blocks:
        block.fold_batchnorm = False
    try:
        with torch.no_grad():
            out = module(x)
    finally:
        for block in blocks:
            block.fold_batchnorm = True
    return out


def test_folded_path_matches_plain_on_real_audio(real_audio: torch.Tensor) -> None:
    torch.manual_seed(0)
    encoder = _with_batchnorm_statistics(MelCNNEncoder(channels=32), real_audio)
    x = real_audio[:, : 3 * SR]
    plain = _plain(encoder, x).detach()
    with torch.inference_mode():
        fast = encoder(x)
    with torch.no_grad():
        fast_no_grad = encoder(x)
    with torch.enable_grad():  # autograd on: the plain graph, whatever fold_batchnorm says
        with_grad = encoder(x).detach()
    assert plain.shape == fast.shape == (2, encoder.output_dim)
    assert plain.abs().max() > 0.1  # a non-degenerate embedding
    torch.testing.assert_close(fast, plain, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast_no_grad, plain, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(with_grad, plain, rtol=1e-6, atol=1e-6)


def test_folded_path_is_taken_and_leaves_parameters_alone(real_audio: torch.Tensor) -> None:
    torch.manual_seed(0)
    encoder = _with_batchnorm_statistics(MelCNNEncoder(channels=8, n_blocks=3), real_audio)
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    spec = encoder.spec_bn(encoder.to_db(encoder.spec(real_audio[:, : 3 * SR])).unsqueeze(1))
    with torch.inference_mode():
        out = encoder.blocks[0](spec)
    plain = _plain(encoder.blocks[0], spec)
    assert out.is_contiguous(memory_format=torch.channels_last)  # NHWC: the inference path ran
    assert not plain.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, plain.detach(), rtol=1e-5, atol=1e-5)
    after = encoder.state_dict()
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], before[k]) for k in before)


def test_training_mode_without_grad_uses_batch_statistics(real_audio: torch.Tensor) -> None:
    torch.manual_seed(0)
    encoder = MelCNNEncoder(channels=8, n_blocks=3).train()
    x = real_audio[:, : 2 * SR]
    with torch.no_grad():
        batch_stats = encoder(x)
    encoder.eval()
    with torch.no_grad():
        running_stats = encoder(x)
    assert not torch.allclose(batch_stats, running_stats, atol=1e-3)


def test_lora_wrapped_convs_are_not_folded_away(real_audio: torch.Tensor) -> None:
    from peft import LoraConfig, inject_adapter_in_model

    torch.manual_seed(0)
    encoder = _with_batchnorm_statistics(MelCNNEncoder(channels=8, n_blocks=3), real_audio)
    x = real_audio[:, : 2 * SR]
    with torch.inference_mode():
        without_lora = encoder(x).clone()
    targets = ["blocks.0.conv_1", *encoder.default_lora_targets]
    model = inject_adapter_in_model(LoraConfig(r=2, target_modules=targets), encoder).eval()
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.5)  # peft starts B at zero: make the adapters matter
    with torch.inference_mode():
        fast = model(x)
    plain = _plain(model, x).detach()
    torch.testing.assert_close(fast, plain, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(fast, without_lora, atol=1e-3)


def test_tagging_model_same_outputs_after_save_and_reload(real_audio: torch.Tensor, tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = EnoModelConfig(encoder_type="mel_cnn", encoder_kwargs={"channels": 16}, chunk_s=3.0,
                            hidden_dim=32, heads=HEADS)
    model = EnoForAudioTagging(config)
    _with_batchnorm_statistics(model.encoder, real_audio)
    model.eval()
    plain = _plain(model, real_audio)
    with torch.inference_mode():
        fast = model(real_audio)
    torch.testing.assert_close(fast.logits, plain.logits.detach(), rtol=1e-5, atol=1e-5)
    model.save_pretrained(tmp_path)
    reloaded = EnoForAudioTagging.from_pretrained(tmp_path).eval()
    with torch.inference_mode():
        again = reloaded(real_audio)
    torch.testing.assert_close(again.logits, fast.logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(again.embedding, fast.embedding, rtol=1e-5, atol=1e-5)
