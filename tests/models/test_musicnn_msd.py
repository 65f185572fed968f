"""MusicnnMSDEncoder: TF-checkpoint loading, reference scores, and use through eno's encoder types."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from eno_hf.models.encoders.musicnn_msd import (
    WINDOW_FRAMES, WINDOW_SAMPLES, MusicnnMSDEncoder, _slaney_mel_fb, clip_outputs, load_musicnn_msd, tag_names,
)

MUSICNN_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "models" / "musicnn"
DATA = MUSICNN_DIR.parent.parent / "data"
ATOL = 1e-3


@pytest.fixture(scope="module")
def musicnn_dir() -> Path:
    if not (MUSICNN_DIR / "msd-musicnn.safetensors").is_file():
        pytest.skip(f"MSD musicnn weights not available: {MUSICNN_DIR} (see ../shared/models/musicnn/README.md)")
    return MUSICNN_DIR


@pytest.fixture(scope="module")
def reference(musicnn_dir: Path) -> dict:
    return json.loads((musicnn_dir / "reference_scores.json").read_text())["clips"]


@pytest.fixture(scope="module")
def models(musicnn_dir: Path) -> dict[str, MusicnnMSDEncoder]:
    return {n: load_musicnn_msd(n, musicnn_dir) for n in ("msd-musicnn", "msd-vgg")}


def test_mel_filterbank_matches_librosa() -> None:
    import librosa

    fb = librosa.filters.mel(sr=16_000, n_fft=512, n_mels=96).T
    np.testing.assert_allclose(_slaney_mel_fb().numpy(), fb, atol=1e-6, rtol=0)


def test_log_mel_matches_librosa_frontend() -> None:
    import librosa

    rng = np.random.default_rng(0)
    y = (0.1 * rng.standard_normal(20_000)).astype(np.float32)
    ref = np.log10(10000 * librosa.feature.melspectrogram(y=y, sr=16_000, n_fft=512, hop_length=256, n_mels=96).T + 1)
    ours = MusicnnMSDEncoder("pons_musicnn").log_mel(torch.from_numpy(y)[None])[0].numpy()
    assert ours.shape == ref.shape == (1 + 20_000 // 256, 96)
    np.testing.assert_allclose(ours, ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(("arch", "dim"), [("pons_musicnn", 200), ("pons_vgg", 256)])
def test_shapes_prefix_suffix_and_lora_targets(arch: str, dim: int) -> None:
    enc = MusicnnMSDEncoder(arch).eval()
    wave = 0.1 * torch.randn(2, WINDOW_SAMPLES)
    with torch.no_grad():
        emb = enc(wave)
        torch.testing.assert_close(enc.suffix(enc.prefix(wave)), emb)
        assert enc.tag_logits(wave).shape == (2, 50)
        # two windows: the mean of the window embeddings; a short input is zero padded to one window
        two = enc(torch.cat([wave, wave.flip(1)], dim=1))
        assert two.shape == (2, dim)
        assert enc(wave[:, :1000]).shape == (2, dim)
    assert emb.shape == (2, dim) and enc.output_dim == dim
    modules = dict(enc.named_modules())
    for target in enc.default_lora_targets + enc.suffix_lora_targets:
        assert isinstance(modules[target], (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear))
    with pytest.raises(ValueError, match="batch, samples"):
        enc(torch.zeros(WINDOW_SAMPLES))
    with pytest.raises(ValueError, match="unknown arch"):
        MusicnnMSDEncoder("musicnn")  # type: ignore[arg-type]


def test_loads_strictly_and_names(models: dict, musicnn_dir: Path, tmp_path: Path) -> None:
    tags = tag_names(musicnn_dir)
    assert len(tags) == 50 and tags[0] == "rock"
    assert models["msd-musicnn"].arch == "pons_musicnn" and models["msd-vgg"].arch == "pons_vgg"
    assert not models["msd-vgg"].training
    with pytest.raises(FileNotFoundError, match="msd-musicnn"):
        load_musicnn_msd("msd-musicnn", tmp_path)


@pytest.mark.parametrize("clip", ["4q-dev/Q3/MT0000661250.mp3", "4q-dev/Q2/MT0001891229.mp3",
                                  pytest.param("jamendo-lyrics-10/Fantasma_-_Los_Rombos.mp3", marks=pytest.mark.slow)])
def test_reproduces_reference_scores_and_penultimate(clip: str, models: dict, reference: dict,
                                                      musicnn_dir: Path) -> None:
    import librosa

    path = DATA / clip
    if not path.is_file() or clip not in reference:
        pytest.skip(f"reference clip absent: {path}")
    y = torch.from_numpy(librosa.load(path, sr=16_000, mono=True)[0])
    tags = tag_names(musicnn_dir)
    for name, model in models.items():
        probs, pen = clip_outputs(model, y)
        assert probs.shape[0] == (1 + y.numel() // 256) // WINDOW_FRAMES
        expected = np.array([reference[clip][name][t] for t in tags])
        np.testing.assert_allclose(probs.mean(0).numpy(), expected, atol=ATOL, rtol=0)
        if name == "msd-musicnn":
            np.testing.assert_allclose(pen.mean(0).numpy(), reference[clip]["msd-musicnn-penultimate-mean"],
                                       atol=ATOL, rtol=0)
    # the tolerance discriminates: another clip's reference scores are far from these
    other = next(c for c in reference if c != clip)
    far = np.array([reference[other]["msd-musicnn"][t] for t in tags])
    assert np.abs(far - np.array([reference[clip]["msd-musicnn"][t] for t in tags])).max() > 10 * ATOL


def test_usable_as_sota_tagger_and_in_ensemble(models: dict, musicnn_dir: Path) -> None:
    from eno_hf.models.configuration import EnoModelConfig
    from eno_hf.models.encoders import build_encoder
    from eno_hf.models.encoders.sota_taggers import load_sota_tagger
    from eno_hf.models.encoders.tagger_ensemble import TaggerEnsembleEncoder

    loaded = load_sota_tagger("msd-musicnn")
    assert isinstance(loaded, MusicnnMSDEncoder)
    cfg = EnoModelConfig(encoder_type="sota_tagger", encoder_kwargs={"arch": "pons_vgg", "n_tags": 50},
                         heads=[{"name": "tags", "kind": "multilabel", "labels": ["a", "b"]}])
    assert isinstance(build_encoder(cfg), MusicnnMSDEncoder)

    ens = TaggerEnsembleEncoder([{"name": "msd-musicnn"}, {"name": "msd-vgg"}], native_input_s=9.0).eval()
    for sub, name in zip(ens.taggers, ("msd-musicnn", "msd-vgg")):
        sub.load_state_dict(models[name].state_dict(), strict=True)
    assert ens.output_dim == 2 * 200 + 2 * 256
    assert ens.default_lora_targets == ["taggers.0.dense", "taggers.1.block5.conv"]
    wave = 0.1 * torch.randn(2, 9 * 16_000)
    with torch.no_grad():
        feats = ens(wave)
        again = ens.from_prefix(ens.frozen_prefix(wave), wave.shape[1])
        win = ens._windows(ens.taggers[0], wave)[0][0]  # (3, WINDOW_SAMPLES) windows of clip 0
        per_window = models["msd-musicnn"](win)
    torch.testing.assert_close(feats, again)
    torch.testing.assert_close(feats[0, :200], per_window.mean(0), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(feats[0, 200:400], per_window.amax(0), atol=1e-4, rtol=1e-4)


def test_import_weights_pipeline_close_to_reference(tmp_path: Path, reference: dict, musicnn_dir: Path) -> None:
    import librosa

    from eno_hf.models.import_weights import import_tagger
    from eno_hf.models.modeling import EnoForAudioTagging

    clip = "4q-dev/Q3/MT0000661250.mp3"
    if not (DATA / clip).is_file():
        pytest.skip(f"reference clip absent: {DATA / clip}")
    out = import_tagger("msd-musicnn", tmp_path / "m")
    model = EnoForAudioTagging.from_pretrained(out).eval()
    assert model.config.chunk_s == pytest.approx(WINDOW_SAMPLES / 16_000)
    y = torch.from_numpy(librosa.load(DATA / clip, sr=16_000, mono=True)[0])
    with torch.no_grad():
        logits = model(input_values=y[None]).head_logits["tags"][0]
    tags = tag_names(musicnn_dir)
    expected = np.array([reference[clip]["msd-musicnn"][t] for t in tags])
    # per-chunk log-mel: the two edge frames of each window differ from the whole-clip reference
    np.testing.assert_allclose(torch.sigmoid(logits).numpy(), expected, atol=2e-2, rtol=0)
    assert np.corrcoef(torch.sigmoid(logits).numpy(), expected)[0, 1] > 0.99
