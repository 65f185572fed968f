"""SotaTaggerEncoder: strict loading of the published weights and reproduction of the reference scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from eno_hf.models.encoders.base import Encoder
from eno_hf.models.encoders.sota_taggers import (
    SotaTaggerEncoder,
    clip_scores,
    load_sota_tagger,
    tag_names,
)

WEIGHTS = [
    f"{dataset}-{arch}"
    for dataset in ("msd", "mtat", "jamendo")
    for arch in ("fcn", "musicnn", "crnn")
    if f"{dataset}-{arch}" != "msd-musicnn"
]
EXPECTED_DIM = {"fcn": 64, "musicnn": 200, "crnn": 32}
ATOL = 1e-3


@pytest.fixture(scope="module")
def reference(sota_models_dir: Path) -> dict:
    return json.loads((sota_models_dir / "reference_scores.json").read_text())["clips"]


@pytest.fixture(scope="module")
def audio_cache() -> dict[str, np.ndarray]:
    return {}


@pytest.fixture(scope="module")
def model_cache() -> dict[str, SotaTaggerEncoder]:
    return {}


def test_all_weights_load_strictly(sota_models_dir: Path) -> None:
    found = sorted(p.stem for p in sota_models_dir.glob("*.safetensors"))
    assert found == sorted(WEIGHTS)
    for name in WEIGHTS:
        encoder = load_sota_tagger(sota_models_dir / f"{name}.safetensors")  # strict=True inside
        assert isinstance(encoder, Encoder)
        assert not encoder.training
        assert encoder.arch == name.split("-")[1]


def test_load_by_name_and_missing(sota_models_dir: Path, tmp_path: Path) -> None:
    encoder = load_sota_tagger("mtat-musicnn", models_dir=sota_models_dir)
    assert encoder.native_input_samples == 48_000
    with pytest.raises(FileNotFoundError, match="no-such"):
        load_sota_tagger("mtat-no-such-musicnn", models_dir=tmp_path)
    with pytest.raises(FileNotFoundError):
        load_sota_tagger(tmp_path / "absent.safetensors")


@pytest.mark.parametrize(
    ("name", "first"), [("msd", "rock"), ("mtat-fcn", "guitar"), ("jamendo-musicnn", "genre---alternative")]
)
def test_tag_names(sota_models_dir: Path, name: str, first: str) -> None:
    names = tag_names(name, models_dir=sota_models_dir)
    assert len(names) == 50
    assert len(set(names)) == 50
    assert names[0] == first
    with pytest.raises(ValueError, match="unknown dataset"):
        tag_names("fma-fcn", models_dir=sota_models_dir)


@pytest.mark.parametrize("arch", ["fcn", "musicnn", "crnn"])
def test_embedding_and_logits_shapes(arch: str) -> None:
    encoder = SotaTaggerEncoder(arch).eval()
    assert encoder.output_dim == EXPECTED_DIM[arch]
    assert encoder.native_input_samples == {"fcn": 464_000, "musicnn": 48_000, "crnn": 464_000}[arch]
    wave = 0.1 * torch.randn(2, encoder.native_input_samples)
    with torch.no_grad():
        emb = encoder(wave)
        logits = encoder.tag_logits(wave)
    assert emb.shape == (2, EXPECTED_DIM[arch])
    assert logits.shape == (2, 50)
    assert torch.isfinite(emb).all() and torch.isfinite(logits).all()
    names = dict(encoder.named_modules())
    for target in encoder.default_lora_targets:
        assert isinstance(names[target], (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear))


def test_rejects_too_short_and_bad_rank() -> None:
    encoder = SotaTaggerEncoder("fcn").eval()
    with pytest.raises(ValueError, match="at least"):
        encoder(torch.zeros(1, 16_000))
    with pytest.raises(ValueError, match="batch, samples"):
        encoder(torch.zeros(16_000))


def test_clip_scores_pads_short_clip(sota_models_dir: Path) -> None:
    encoder = load_sota_tagger("mtat-musicnn", models_dir=sota_models_dir)
    short = 0.1 * torch.randn(20_000)
    padded = torch.nn.functional.pad(short, (0, 28_000))
    scores = clip_scores(encoder, short)
    assert scores.shape == (50,)
    with torch.no_grad():
        expected = torch.sigmoid(encoder.tag_logits(padded[None]))[0]
    torch.testing.assert_close(scores, expected)
    # an incomplete tail is dropped
    torch.testing.assert_close(clip_scores(encoder, torch.cat([padded, short])), expected)


def _cases() -> list[tuple[str, str]]:
    path = Path(__file__).resolve().parents[2].parent / "shared/models/sota-music-tagging/reference_scores.json"
    if not path.exists():
        return [("absent", "absent")]
    clips = json.loads(path.read_text())["clips"]
    return [(clip, model) for clip, models in clips.items() for model in models]


@pytest.mark.slow
@pytest.mark.parametrize(("clip", "model"), _cases())
def test_reproduces_reference_scores(
    clip: str, model: str, reference: dict, sota_models_dir: Path,
    audio_cache: dict[str, np.ndarray], model_cache: dict[str, SotaTaggerEncoder],
) -> None:
    import librosa

    path = sota_models_dir.parent.parent / "data" / clip
    if not path.exists():
        pytest.skip(f"reference clip absent: {path}")
    if clip not in audio_cache:
        audio_cache[clip] = librosa.load(path, sr=16_000, mono=True)[0]
    if model not in model_cache:
        model_cache[model] = load_sota_tagger(model, models_dir=sota_models_dir)
    scores = clip_scores(model_cache[model], torch.from_numpy(audio_cache[clip])).numpy()
    expected = np.array([reference[clip][model][tag] for tag in tag_names(model, models_dir=sota_models_dir)])
    np.testing.assert_allclose(scores, expected, atol=ATOL, rtol=0)
