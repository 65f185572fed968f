"""EnoModelConfig / EnoForAudioTagging / EnoFeatureExtractor / factory / import_tagger."""

from __future__ import annotations

import numpy as np
import pyloudnorm
import pytest
import torch
from transformers import pipeline

from eno_hf.audio.io import load_audio
from eno_hf.config import HeadConfig, Settings
from eno_hf.models import EnoFeatureExtractor, EnoForAudioTagging, EnoModelConfig
from eno_hf.models.factory import create_model

HEADS = [
    {"name": "quadrant", "kind": "singlelabel", "labels": ["Q1", "Q2", "Q3", "Q4"]},
    {"name": "moods", "kind": "multilabel", "labels": ["calm", "dark", "happy"]},
    {"name": "valence", "kind": "regression"},
    {"name": "emb", "kind": "projection", "dim": 8},
]
TINY_MEL_CNN = {"n_mels": 32, "channels": 4, "n_blocks": 2}


def tiny_config(**overrides) -> EnoModelConfig:
    kwargs = dict(encoder_type="mel_cnn", encoder_kwargs=TINY_MEL_CNN, chunk_s=1.0, hidden_dim=16, heads=HEADS)
    kwargs.update(overrides)
    return EnoModelConfig(**kwargs)


@pytest.fixture(scope="module")
def tiny_model() -> EnoForAudioTagging:
    torch.manual_seed(0)
    return EnoForAudioTagging(tiny_config()).eval()


# ----------------------------------------------------------------------------- config
def test_config_label_space_is_classification_heads_concatenated():
    cfg = tiny_config()
    assert cfg.id2label == {0: "quadrant/Q1", 1: "quadrant/Q2", 2: "quadrant/Q3", 3: "quadrant/Q4",
                            4: "moods/calm", 5: "moods/dark", 6: "moods/happy"}
    assert cfg.label2id["moods/dark"] == 5
    assert cfg.problem_type == "multi_label_classification"
    assert cfg.label_slices() == {"quadrant": slice(0, 4), "moods": slice(4, 7)}


def test_config_round_trip(tmp_path):
    cfg = tiny_config(thresholds={"moods": [0.2, 0.3, 0.4]})
    cfg.save_pretrained(tmp_path)
    back = EnoModelConfig.from_pretrained(tmp_path)
    assert back.heads == cfg.heads and back.id2label == cfg.id2label
    assert back.thresholds == {"moods": [0.2, 0.3, 0.4]} and back.encoder_kwargs == TINY_MEL_CNN


@pytest.mark.parametrize(("head", "message"),
                         [({"name": "x", "kind": "multilabel", "labels": []}, "a multilabel head needs labels"),
                          ({"name": "x", "kind": "bogus", "labels": ["a"]}, "unknown head kind 'bogus'"),
                          ({"name": "a/b", "kind": "regression"}, "name must be non-empty without '/'")])
def test_config_rejects_bad_heads(head, message):
    with pytest.raises(ValueError, match=message):
        EnoModelConfig(heads=[head])


# ----------------------------------------------------------------------------- forward
def test_forward_shapes_and_singlelabel_as_logit_softmax(tiny_model):
    x = torch.randn(3, 16_000)
    out = tiny_model(x)
    assert out.logits.shape == (3, 7)
    assert out.head_logits["quadrant"].shape == (3, 4) and out.head_logits["moods"].shape == (3, 3)
    assert out.regression["valence"].shape == (3,) and out.embedding.shape == (3, 8)
    probs = torch.sigmoid(out.logits)
    torch.testing.assert_close(probs[:, :4], torch.softmax(out.head_logits["quadrant"], -1), atol=1e-5, rtol=0)
    torch.testing.assert_close(probs[:, 4:], torch.sigmoid(out.head_logits["moods"]))


def test_split_windows_tail_rule(tiny_model):
    win = tiny_model.window_samples
    assert win == 16_000
    for n, expected in [(win // 3, 1), (int(2.4 * win), 2), (int(2.6 * win), 3), (3 * win, 3)]:
        windows, weights = tiny_model.split_windows(torch.randn(1, n))
        assert windows.shape == (1, expected, win) and weights.sum() == expected
    # per-example lengths from the attention mask
    mask = torch.zeros(2, 3 * win, dtype=torch.long)
    mask[0, :] = 1
    mask[1, : int(1.2 * win)] = 1
    _, weights = tiny_model.split_windows(torch.randn(2, 3 * win), mask)
    assert weights.tolist() == [[1, 1, 1], [1, 0, 0]]


def test_long_input_averages_window_probabilities(tiny_model):
    torch.manual_seed(1)
    x = torch.randn(2, int(2.7 * 16_000))
    out = tiny_model(x)
    windows, _ = tiny_model.split_windows(x)
    per = tiny_model(windows.reshape(-1, windows.shape[-1]))
    q = torch.softmax(per.head_logits["quadrant"], -1).reshape(2, 3, 4).mean(1)
    m = torch.sigmoid(per.head_logits["moods"]).reshape(2, 3, 3).mean(1)
    torch.testing.assert_close(torch.sigmoid(out.logits), torch.cat([q, m], 1), atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.softmax(out.head_logits["quadrant"], -1), q, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.regression["valence"], per.regression["valence"].reshape(2, 3).mean(1))


def test_labels_kwargs_are_ignored(tiny_model):
    x = torch.randn(2, 16_000)
    a = tiny_model(x).logits
    b = tiny_model(x, labels_moods=torch.ones(2, 3), labels_quadrant=torch.tensor([0, 1])).logits
    torch.testing.assert_close(a, b)


def test_forward_with_labels_computes_the_weighted_multitask_loss(tiny_model):
    """``forward(..., labels=...)`` returns the loss as transformers models do; heads without labels
    and missing samples contribute nothing; the loss has a gradient."""
    from eno_hf.models.losses import multilabel_loss, regression_loss, singlelabel_loss

    torch.manual_seed(1)
    x = torch.randn(3, 16_000)
    labels = {"moods": torch.tensor([[1.0, 0, 1], [-1, -1, -1], [0, 1, 0]]),
              "quadrant": torch.tensor([0, -100, 3]), "valence": torch.tensor([0.5, float("nan"), -0.2])}
    model = EnoForAudioTagging(tiny_config(heads=[{**h, "weight": 0.5} if h["name"] == "moods" else h
                                                  for h in HEADS])).train()
    out = model(x, labels=labels)
    assert tiny_model(x).loss is None
    logits = out.head_logits
    want = {"moods": multilabel_loss(logits["moods"], labels["moods"]),
            "quadrant": singlelabel_loss(logits["quadrant"], labels["quadrant"]),
            "valence": regression_loss(logits["valence"], labels["valence"])}
    assert set(out.head_losses) == set(want)
    for name, value in want.items():
        torch.testing.assert_close(out.head_losses[name], value)
    torch.testing.assert_close(out.loss, 0.5 * want["moods"] + want["quadrant"] + want["valence"])
    out.loss.backward()
    assert model.heads["moods"].weight.grad is not None and model.heads["emb"].weight.grad is None
    only = model(x, labels={"valence": labels["valence"]})
    assert set(only.head_losses) == {"valence"}


def test_embeddings_encoder_takes_feature_vectors():
    cfg = EnoModelConfig(encoder_type="embeddings", encoder_kwargs={"input_dim": 64, "columns": ["fingerprint"]},
                         hidden_dim=8, heads=HEADS[:2])
    model = EnoForAudioTagging(cfg).eval()
    assert model(torch.randn(5, 64)).logits.shape == (5, 7)
    with pytest.raises(ValueError, match=r"expected features of shape \(batch, 64\), got \(5, 63\)"):
        model(torch.randn(5, 63))


def test_save_and_load_give_identical_outputs(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    loaded = EnoForAudioTagging.from_pretrained(tmp_path).eval()
    x = torch.randn(2, 40_000)
    a, b = tiny_model(x), loaded(x)
    torch.testing.assert_close(a.logits, b.logits, atol=0, rtol=0)
    torch.testing.assert_close(a.embedding, b.embedding, atol=0, rtol=0)


# ----------------------------------------------------------------------------- feature extractor
def test_feature_extractor_mono_resample_loudness():
    fe = EnoFeatureExtractor(sampling_rate=16_000, target_lufs=-18.0)
    rng = np.random.default_rng(0)
    stereo = (0.01 * rng.standard_normal((2, 44_100 * 2))).astype(np.float32)
    out = fe([stereo], sampling_rate=44_100, return_tensors="np")
    x = out["input_values"][0]
    assert x.dtype == np.float32 and abs(x.shape[0] - 32_000) <= 1
    assert pyloudnorm.Meter(16_000).integrated_loudness(x.astype(np.float64)) == pytest.approx(-18.0, abs=0.3)
    short = np.full(1_000, 0.01, dtype=np.float32)  # < 0.4 s: left at its level
    np.testing.assert_array_equal(fe(short, sampling_rate=16_000)["input_values"][0], short)


def test_feature_extractor_pads_batches_with_mask(tmp_path):
    fe = EnoFeatureExtractor(target_lufs=None)
    out = fe([np.ones(100, np.float32), np.ones(60, np.float32)], sampling_rate=16_000, return_tensors="pt")
    assert out["input_values"].shape == (2, 100)
    assert out["attention_mask"].sum(1).tolist() == [100, 60]
    fe.save_pretrained(tmp_path)
    back = EnoFeatureExtractor.from_pretrained(tmp_path)
    assert back.target_lufs is None and back.sampling_rate == 16_000


# ----------------------------------------------------------------------------- pipeline
def test_pipeline_gives_sigmoid_multilabel_scores(tiny_model, tmp_path, fourq_clips):
    tiny_model.save_pretrained(tmp_path)
    EnoFeatureExtractor().save_pretrained(tmp_path)
    pipe = pipeline("audio-classification", model=str(tmp_path))
    for item in (str(fourq_clips[0]),
                 {"raw": load_audio(fourq_clips[1], sample_rate=44_100)[0][: 8 * 44_100], "sampling_rate": 44_100}):
        result = pipe(item, top_k=None)
        scores = {r["label"]: r["score"] for r in result}
        assert set(scores) == set(tiny_model.config.id2label.values())
        assert all(0.0 < s < 1.0 for s in scores.values())
        assert abs(sum(scores.values()) - 1.0) > 0.05  # sigmoid, not a softmax over all labels
        assert sum(scores[f"quadrant/Q{i}"] for i in range(1, 5)) == pytest.approx(1.0, abs=1e-4)


# ----------------------------------------------------------------------------- factory / import
def _settings(**model) -> Settings:
    s = Settings()
    s.model = s.model.model_copy(update=model)
    return s


def test_create_model_mel_cnn_and_embeddings():
    heads = [HeadConfig(name="moods", kind="multilabel", pos_weight=True), HeadConfig(name="quadrant", kind="singlelabel")]
    vocab = {"moods": ["a", "b"], "quadrant": ["Q1", "Q2"]}
    model = create_model(_settings(encoder="mel_cnn", mel_cnn_channels=4, mel_cnn_blocks=2, heads=heads, hidden_dim=8), vocab)
    assert model.config.encoder_type == "mel_cnn" and model.config.chunk_s == pytest.approx(3.69)
    assert model.config.head("moods").pos_weight is True and model.config.num_labels == 4
    emb = create_model(_settings(encoder="embeddings", embedding_columns=["fingerprint"], heads=heads), vocab)
    assert emb.encoder.output_dim == 64
    with pytest.raises(ValueError, match="vocabulary"):
        create_model(_settings(encoder="mel_cnn", heads=heads), {"moods": ["a"]})
    with pytest.raises(ValueError, match="encoder_path"):
        create_model(_settings(encoder="hf_audio", heads=heads), vocab)


def test_create_model_loads_sota_tagger_weights(sota_models_dir):
    from eno_hf.models.encoders.sota_taggers import load_sota_tagger

    heads = [HeadConfig(name="moods", kind="multilabel")]
    model = create_model(_settings(encoder="sota_tagger", tagger="mtat-musicnn", heads=heads), {"moods": ["a", "b"]})
    ref = load_sota_tagger("mtat-musicnn").state_dict()
    got = model.encoder.state_dict()
    assert all(torch.equal(got[k], v) for k, v in ref.items())
    s = _settings(encoder="sota_tagger", tagger="mtat-musicnn", heads=heads)
    s.dataset.audio.sample_rate = 22_050
    with pytest.raises(ValueError, match="sample_rate"):
        create_model(s, {"moods": ["a", "b"]})


def test_import_tagger_reproduces_clip_scores(sota_models_dir, fourq_clips, tmp_path):
    from eno_hf.models.encoders.sota_taggers import clip_scores, load_sota_tagger, tag_names
    from eno_hf.models.import_weights import import_tagger

    out = import_tagger("mtat-musicnn", tmp_path / "musicnn")
    wav = load_audio(fourq_clips[0], sample_rate=16_000)[0][: 12 * 16_000]
    expected = clip_scores(load_sota_tagger("mtat-musicnn"), wav).numpy()
    pipe = pipeline("audio-classification", model=str(out))
    scores = {r["label"]: r["score"] for r in pipe({"raw": wav, "sampling_rate": 16_000}, top_k=None)}
    got = np.array([scores[f"tags/{t}"] for t in tag_names("mtat-musicnn")])
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_auto_classes_load_eno_models(tiny_model, tmp_path):
    from transformers import AutoConfig, AutoFeatureExtractor, AutoModelForAudioClassification

    from eno_hf.models import register_auto_classes

    register_auto_classes()  # idempotent: import eno_hf already registered
    tiny_model.save_pretrained(tmp_path)
    EnoFeatureExtractor(target_lufs=-14.0).save_pretrained(tmp_path)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), EnoModelConfig)
    assert isinstance(AutoModelForAudioClassification.from_pretrained(tmp_path), EnoForAudioTagging)
    fe = AutoFeatureExtractor.from_pretrained(tmp_path)
    assert isinstance(fe, EnoFeatureExtractor) and fe.target_lufs == -14.0


def test_config_heads_written_before_headspec_still_load(tmp_path):
    """``config.json`` heads as written by the pre-``HeadSpec`` code (no ``column``/``pos_weight``;
    older callers passed ``dim=128`` for classification heads) load into the same model shape."""
    old = [{"dim": 2, "kind": "singlelabel", "labels": ["a", "b"], "name": "q", "weight": 1.0},
           {"dim": 128, "kind": "multilabel", "labels": ["x", "y", "z"], "name": "m", "weight": 0.5},
           {"dim": 1, "kind": "regression", "labels": [], "name": "v", "weight": 1.0},
           {"dim": 5, "kind": "projection", "labels": [], "name": "e", "weight": 1.0}]
    cfg = tiny_config(heads=old)
    assert [(s.name, s.dim, s.column, s.weight) for s in cfg.head_specs] == [
        ("q", 2, "q", 1.0), ("m", 3, "m", 0.5), ("v", 1, "v", 1.0), ("e", 5, "e", 1.0)]
    model = EnoForAudioTagging(cfg)
    model.save_pretrained(tmp_path)
    again = EnoForAudioTagging.from_pretrained(str(tmp_path))
    assert again.config.heads == model.config.heads and list(again.config.id2label.values()) == [
        "q/a", "q/b", "m/x", "m/y", "m/z"]
