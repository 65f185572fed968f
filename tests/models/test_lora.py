"""apply_finetune (lora / frozen / full) and merge_lora on mel_cnn and sota-tagger encoders."""

from __future__ import annotations

import pytest
import torch

from eno_hf.config import ModelConfig
from eno_hf.models import EnoForAudioTagging, EnoModelConfig
from eno_hf.models.lora import apply_finetune, default_targets, has_lora, merge_lora

HEADS = [{"name": "moods", "kind": "multilabel", "labels": ["a", "b", "c"]},
         {"name": "quadrant", "kind": "singlelabel", "labels": ["Q1", "Q2"]}]
ENCODERS = {
    "mel_cnn": {"encoder_type": "mel_cnn", "encoder_kwargs": {"n_mels": 32, "channels": 4, "n_blocks": 2}, "chunk_s": 1.0},
    "musicnn": {"encoder_type": "sota_tagger", "encoder_kwargs": {"arch": "musicnn", "n_tags": 50}},
}


def make(name: str) -> EnoForAudioTagging:
    torch.manual_seed(0)
    return EnoForAudioTagging(EnoModelConfig(hidden_dim=8, heads=HEADS, **ENCODERS[name]))


def one_step(model: EnoForAudioTagging, x: torch.Tensor) -> set[str]:
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model.train()
    model(x).logits.pow(2).sum().backward()
    opt.step()
    return {n for n, p in model.named_parameters() if not torch.equal(before[n], p)}


@pytest.mark.parametrize("name", ["mel_cnn", "musicnn"])
def test_lora_trains_adapters_only_then_merges(name, tmp_path):
    model = apply_finetune(make(name), "lora", rank=2, alpha=4, dropout=0.0)
    targets = default_targets(model)
    assert targets == model.encoder.default_lora_targets
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all("lora_" in n or not n.startswith("encoder.") for n in trainable)
    assert {n for n in trainable if n.startswith("heads.")} and {n for n in trainable if n.startswith("trunk.")}
    x = 0.1 * torch.randn(2, int(model.config.chunk_s * 16_000))
    changed = one_step(model, x)
    assert any("lora_B" in n for n in changed)
    assert not any(n.startswith("encoder.") and "lora_" not in n for n in changed)

    model.eval()
    with torch.no_grad():
        adapted = model(x).logits
        merge_lora(model)
        merged = model(x).logits
    assert not has_lora(model)
    assert not any("lora_" in k or "base_layer" in k for k in model.state_dict())
    torch.testing.assert_close(merged, adapted, atol=1e-4, rtol=1e-4)
    model.save_pretrained(tmp_path)
    loaded = EnoForAudioTagging.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x).logits, merged, atol=0, rtol=0)


def test_frozen_keeps_encoder_fixed_and_in_eval_mode():
    model = apply_finetune(make("mel_cnn"), "frozen")
    assert not any(p.requires_grad for p in model.encoder.parameters())
    model.train()
    assert model.training and model.trunk.training and not model.encoder.training
    changed = one_step(model, 0.1 * torch.randn(2, 16_000))
    assert changed and all(not n.startswith("encoder.") for n in changed)
    # BatchNorm running statistics of the frozen encoder do not move either
    bn = [m for m in model.encoder.modules() if isinstance(m, torch.nn.BatchNorm2d)][0]
    stats = bn.running_mean.clone()
    model(0.1 * torch.randn(2, 16_000))
    assert torch.equal(stats, bn.running_mean)


def test_full_and_model_config_argument():
    model = apply_finetune(make("mel_cnn"), "frozen")
    apply_finetune(model, "full")
    assert all(p.requires_grad for p in model.parameters())
    model.train()
    assert model.encoder.training
    cfg = ModelConfig(finetune="lora", lora_rank=3, lora_alpha=6, lora_dropout=0.0)
    apply_finetune(model, cfg)
    lora_a = [p for n, p in model.named_parameters() if "lora_A" in n]
    assert lora_a and all(p.shape[0] == 3 for p in lora_a)
    with pytest.raises(ValueError, match="finetune mode must be one of .*got 'partial'"):
        apply_finetune(make("mel_cnn"), "partial")
