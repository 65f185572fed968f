"""HFAudioEncoder (wav2vec2 / AST / CLAP audio tower, tiny random configs) inside EnoForAudioTagging:
pooling shapes, LoRA step, merge + save/load round trip, audio-classification pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import ASTConfig, ClapAudioConfig, Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model, pipeline

from eno_hf.audio.io import load_audio
from eno_hf.config import HeadConfig, Settings
from eno_hf.models import EnoFeatureExtractor, EnoForAudioTagging, EnoModelConfig
from eno_hf.models.encoders.hf_audio import HFAudioEncoder
from eno_hf.models.factory import create_model
from eno_hf.models.lora import apply_finetune, has_lora, merge_lora


def tiny_hf(family: str) -> tuple[str, dict, int]:
    """(model_type, hf config dict, sample rate) of a tiny random encoder."""
    if family == "wav2vec2":
        cfg = Wav2Vec2Config(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                             conv_dim=(8, 8, 8), conv_stride=(5, 4, 4), conv_kernel=(10, 8, 8),
                             num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2, vocab_size=4)
        return "wav2vec2", cfg.to_dict(), 16_000
    if family == "ast":
        cfg = ASTConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                        max_length=100, num_mel_bins=32, patch_size=16, frequency_stride=16, time_stride=16)
        return "audio-spectrogram-transformer", cfg.to_dict(), 16_000
    cfg = ClapAudioConfig(spec_size=64, window_size=4, num_mel_bins=16, patch_size=4, patch_stride=(4, 4),
                          depths=[1, 1], num_attention_heads=[2, 2], patch_embeds_hidden_size=8, hidden_size=16,
                          projection_dim=8, num_hidden_layers=2)
    return "clap_audio_model", cfg.to_dict(), 48_000


def tiny_model(family: str, pooling: str = "mean") -> EnoForAudioTagging:
    model_type, hf, sr = tiny_hf(family)
    native = 1.0 if family == "wav2vec2" else None
    enc = HFAudioEncoder(model_type, hf, pooling=pooling, native_input_s=native)
    cfg = EnoModelConfig(encoder_type="hf_audio", encoder_kwargs=enc.init_kwargs(), sample_rate=sr, hidden_dim=8,
                         heads=[{"name": "moods", "kind": "multilabel", "labels": ["calm", "dark", "happy", "sad"]},
                                {"name": "quadrant", "kind": "singlelabel", "labels": ["Q1", "Q2", "Q3", "Q4"]}])
    torch.manual_seed(0)
    return EnoForAudioTagging(cfg)


@pytest.mark.parametrize(("family", "pooling"), [
    ("wav2vec2", "mean"), ("wav2vec2", "attention"), ("wav2vec2", "weighted_layers"),
    ("ast", "mean"), ("ast", "weighted_layers"), ("clap", "mean"),
])
def test_forward_shapes(family, pooling):
    model = tiny_model(family, pooling).eval()
    enc = model.encoder
    x = torch.randn(2, int(enc.native_input_s * enc.sample_rate))
    emb = enc(x)
    assert emb.shape == (2, enc.output_dim) and torch.isfinite(emb).all()
    out = model(x)
    assert out.logits.shape == (2, 8) and out.head_logits["moods"].shape == (2, 4)


def test_clap_rejects_unsupported_pooling():
    model_type, hf, _ = tiny_hf("clap")
    with pytest.raises(ValueError, match="pooling"):
        HFAudioEncoder(model_type, hf, pooling="attention")


@pytest.mark.parametrize("family", ["wav2vec2", "ast", "clap"])
def test_lora_step_merge_save_and_pipeline(family, tmp_path, fourq_clips):
    model = apply_finetune(tiny_model(family), "lora", rank=2, alpha=4, dropout=0.0)
    assert has_lora(model)
    sr = model.config.sample_rate
    x = 0.1 * torch.randn(2, int(model.config.chunk_s * sr))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any("lora_B" in n for n in trainable) and not any("base_layer" in n for n in trainable)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model.train()
    loss = model(x).logits.sum() + model(x).logits.pow(2).sum()
    loss.backward()
    opt.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p)}
    assert any("lora_B" in n for n in changed)
    assert any(n.startswith("heads.") for n in changed)
    frozen_changed = [n for n in changed - trainable]
    assert frozen_changed == []
    if family == "clap":  # its input BatchNorm stays trainable under LoRA
        assert any("batch_norm" in n for n in trainable)

    model.eval()
    with torch.no_grad():
        adapted = model(x).logits
        merge_lora(model)
        merged = model(x).logits
    assert not has_lora(model)
    torch.testing.assert_close(merged, adapted, atol=1e-4, rtol=1e-4)
    model.save_pretrained(tmp_path)
    EnoFeatureExtractor(sampling_rate=sr).save_pretrained(tmp_path)
    loaded = EnoForAudioTagging.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x).logits, merged, atol=0, rtol=0)

    pipe = pipeline("audio-classification", model=str(tmp_path))
    raw = load_audio(fourq_clips[0], sample_rate=44_100)[0][: 6 * 44_100]
    for item in (str(fourq_clips[0]), {"raw": raw, "sampling_rate": 44_100}):
        scores = [r["score"] for r in pipe(item, top_k=None)]
        assert len(scores) == 8 and all(0.0 < s < 1.0 for s in scores)
        assert abs(sum(scores) - 1.0) > 0.05


def test_from_pretrained_dir_and_factory_load_real_weights(tmp_path):
    _, hf, _ = tiny_hf("wav2vec2")
    torch.manual_seed(3)
    src = Wav2Vec2Model(Wav2Vec2Config(**hf))
    src.save_pretrained(tmp_path)
    Wav2Vec2FeatureExtractor(sampling_rate=16_000, do_normalize=True).save_pretrained(tmp_path)
    enc = HFAudioEncoder.from_pretrained_dir(tmp_path, pooling="weighted_layers")
    assert enc.frontend["do_normalize"] is True and enc.sample_rate == 16_000
    ref = src.state_dict()
    assert all(torch.equal(enc.model.state_dict()[k], v) for k, v in ref.items())

    s = Settings()
    s.model = s.model.model_copy(update={"encoder": "hf_audio", "encoder_path": tmp_path, "pooling": "mean",
                                         "heads": [HeadConfig(name="moods", kind="multilabel")]})
    model = create_model(s, {"moods": ["a", "b"]})
    assert all(torch.equal(model.encoder.model.state_dict()[k], v) for k, v in ref.items())
    assert model.config.encoder_kwargs["model_type"] == "wav2vec2" and model.config.chunk_s == 5.0
    with pytest.raises(FileNotFoundError):
        HFAudioEncoder.from_pretrained_dir(tmp_path / "nope")


def test_ast_frontend_matches_ast_feature_extractor():
    from transformers import ASTFeatureExtractor

    model = tiny_model("ast")
    enc = model.encoder
    wav = (0.1 * np.random.default_rng(0).standard_normal(16_000)).astype(np.float32)
    ref = ASTFeatureExtractor(num_mel_bins=32, max_length=100)(wav, sampling_rate=16_000, return_tensors="pt")
    got = enc._inputs(torch.from_numpy(wav)[None])["input_values"]
    torch.testing.assert_close(got, ref["input_values"], atol=1e-4, rtol=1e-4)


def test_clap_frontend_matches_clap_feature_extractor():
    from transformers import ClapFeatureExtractor

    enc = tiny_model("clap").encoder
    wav = (0.1 * np.random.default_rng(0).standard_normal(48_000)).astype(np.float32)
    fe = ClapFeatureExtractor(feature_size=16, max_length_s=1, truncation="rand_trunc")
    ref = fe(wav, sampling_rate=48_000, return_tensors="pt")["input_features"]
    got = enc._inputs(torch.from_numpy(wav)[None])["input_features"]
    assert got.shape == ref.shape == (1, 1, 101, 16)
    torch.testing.assert_close(got, ref.float(), atol=1e-3, rtol=1e-4)


def test_muq_without_package_says_how_to_get_it():
    try:
        import muq  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("the optional muq package is installed here")
    cfg = EnoModelConfig(encoder_type="muq", encoder_kwargs={"encoder_path": "/nonexistent"}, sample_rate=24_000,
                         heads=[{"name": "moods", "kind": "multilabel", "labels": ["a"]}])
    with pytest.raises(ImportError, match="pip install muq"):
        EnoForAudioTagging(cfg)
