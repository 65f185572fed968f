"""``eno export-onnx``: the exported graph run by ONNX Runtime gives the PyTorch model's scores on
real clips (max abs difference), for a tiny model and for the default 3-tagger LoRA ensemble."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from eno_hf.inference.onnx_export import OnnxTagger, export_onnx
from eno_hf.inference.pipeline import decode, load_model, predict_waveform
from eno_hf.models import EnoFeatureExtractor, EnoForAudioTagging, EnoModelConfig

HEADS = [
    {"name": "quadrant", "kind": "singlelabel", "labels": ["Q1", "Q2", "Q3", "Q4"]},
    {"name": "moods", "kind": "multilabel", "labels": ["calm", "dark", "happy"]},
    {"name": "valence", "kind": "regression"},
]


def _save(cfg: EnoModelConfig, out: Path, model: EnoForAudioTagging | None = None) -> Path:
    (model or EnoForAudioTagging(cfg)).eval().save_pretrained(out)
    EnoFeatureExtractor(sampling_rate=16_000, target_lufs=-18.0).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory, fourq_clips):
    torch.manual_seed(0)
    cfg = EnoModelConfig(encoder_type="mel_cnn", encoder_kwargs={"n_mels": 32, "channels": 4, "n_blocks": 2},
                         chunk_s=2.0, hidden_dim=8, heads=HEADS, thresholds={"moods": [0.2, 0.5, 0.8]})
    src = _save(cfg, tmp_path_factory.mktemp("tiny-src"))
    out = tmp_path_factory.mktemp("tiny-onnx")
    report = export_onnx(src, out, verify_clips=fourq_clips[:2])
    return src, out, report


def test_tiny_export_matches_pytorch_on_real_clips(tiny_export, fourq_clips):
    src, out, report = tiny_export
    assert {p.name for p in out.iterdir()} >= {"model.onnx", "config.json", "preprocessor_config.json", "onnx.json"}
    assert report["max_abs_diff"] < 1e-4 and len(report["clips"]) == 2
    assert json.loads((out / "onnx.json").read_text())["verification"]["max_abs_diff"] == report["max_abs_diff"]
    # independent check: a 70-s real signal (35 windows + a dropped 0.06-s tail), several clips per call
    model, extractor = load_model(src)
    long = np.concatenate([decode(c, 16_000) for c in fourq_clips[2:5]])[: 70 * 16_000 + 1000]
    short = decode(fourq_clips[6], 16_000)[: 16_000 * 3 // 2]  # shorter than one window: zero-padded
    tagger = OnnxTagger(out)
    got = tagger.predict([long, short], 16_000)
    for wave, scores in zip([long, short], got):
        ref = predict_waveform(wave, 16_000, model, extractor)
        diff = max(abs(ref[h][k] - scores[h][k]) for h in ref for k in ref[h])
        assert diff < 1e-4, diff
    assert tagger.windows(long).shape == (35, 32_000)


def test_serve_onnx_gives_pytorch_scores(tiny_export, fourq_clips):
    from fastapi.testclient import TestClient

    from eno_hf.serving.app import create_app
    from eno_hf.serving.predictor import OnnxPredictor, TorchPredictor

    src, out, _ = tiny_export
    clip = fourq_clips[5]
    answers = {}
    for predictor in (TorchPredictor(src), OnnxPredictor(out)):
        with TestClient(create_app(predictor)) as client:
            r = client.post("/predict", files={"file": (clip.name, clip.read_bytes(), "audio/mpeg")})
            assert r.status_code == 200, r.text
            answers[predictor.backend] = r.json()
            assert client.get("/model").json()["backend"] == predictor.backend
    a, b = answers["pytorch"], answers["onnxruntime"]
    for head in a["heads"]:
        for label in a["heads"][head]:
            assert b["heads"][head][label] == pytest.approx(a["heads"][head][label], abs=1e-4)
    assert a["tags"] == b["tags"]


def test_missing_export_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError):
        OnnxTagger(tmp_path)


@pytest.mark.slow
def test_default_tagger_ensemble_with_merged_lora(tmp_path, fourq_clips):
    """The model configs/small.yaml trains: jamendo-fcn + msd-fcn + jamendo-musicnn, LoRA on the top
    layers (random adapters, merged), hidden 256; exported as one 30-s window, checked on real clips."""
    from eno_hf.models.lora import apply_finetune, merge_lora

    torch.manual_seed(0)
    specs = [{"name": "jamendo-fcn", "arch": "fcn"}, {"name": "msd-fcn", "arch": "fcn"},
             {"name": "jamendo-musicnn", "arch": "musicnn"}]
    cfg = EnoModelConfig(encoder_type="tagger_ensemble", encoder_kwargs={"taggers": specs, "native_input_s": 30.0},
                         hidden_dim=256, heads=HEADS, chunk_batch_size=4, thresholds={"moods": [0.3, 0.5, 0.7]})
    model = apply_finetune(EnoForAudioTagging(cfg), "lora", rank=8, alpha=16)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)  # non-zero adapters, so merging changes the weights
        model.encoder.set_standardization(torch.randn(model.encoder.output_dim), 1 + torch.rand(model.encoder.output_dim))
    src = _save(cfg, tmp_path / "src", merge_lora(model))
    report = export_onnx(src, tmp_path / "onnx", verify_clips=fourq_clips[:1])
    assert report["max_abs_diff"] < 1e-4, report
    assert report["window_samples"] == 480_000
    # a clip of 1.5 windows: the last 15-s window is zero-padded (musicnn's pure-padding windows masked)
    loaded, extractor = load_model(src)
    wave = np.concatenate([decode(c, 16_000) for c in fourq_clips[1:3]])[: 45 * 16_000]
    ref = predict_waveform(wave, 16_000, loaded, extractor)
    got = OnnxTagger(tmp_path / "onnx").predict([wave], 16_000)[0]
    assert max(abs(ref[h][k] - got[h][k]) for h in ref for k in ref[h]) < 1e-4
