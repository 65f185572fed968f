"""evaluation.cv.features on real clips: the MSD Musicnn's clip features are the reference protocol's
window outputs pooled; the cache is written once and read back (skips without ../shared)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from eno_hf.evaluation.cv.features import tagger_features

MUSICNN_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "models" / "musicnn"


def test_msd_musicnn_clip_features_pool_the_window_outputs(fourq_dir: Path) -> None:
    if not (MUSICNN_DIR / "msd-musicnn.safetensors").is_file():
        pytest.skip(f"MSD musicnn weights not available: {MUSICNN_DIR} (see ../shared/models/musicnn/README.md)")
    import torch

    from eno_hf.audio.io import load_audio
    from eno_hf.models.encoders.musicnn_msd import clip_outputs
    from eno_hf.models.encoders.sota_taggers import load_sota_tagger

    clips = sorted((fourq_dir / "Q1").glob("*.mp3"))[:2]
    waves = {p.stem: np.asarray(load_audio(p, sample_rate=16_000)[0], dtype=np.float32) for p in clips}
    waves[clips[1].stem] = waves[clips[1].stem][: 16_000 * 10]  # a shorter clip: fewer windows
    f = tagger_features("msd-musicnn", waves)
    assert list(f["ids"]) == sorted(waves) and f["embedding"].shape == (2, 400) and f["tags"].shape == (2, 50)
    tagger = load_sota_tagger("msd-musicnn")
    for i, rid in enumerate(f["ids"]):
        with torch.inference_mode():
            probs, emb = clip_outputs(tagger, torch.from_numpy(waves[rid]), 16)[:2]
        assert emb.shape[0] >= 3  # 3-s windows
        np.testing.assert_allclose(f["embedding"][i], torch.cat([emb.mean(0), emb.amax(0)]).numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(f["tags"][i], probs.mean(0).numpy(), rtol=1e-5, atol=1e-6)


def test_handcrafted_features_are_cached_once(tmp_path: Path, synthetic_dd, heads) -> None:
    """``load_or_compute`` writes ``{name}.npz`` under the dataset version's cache folder and reads it
    back; a cache whose ids differ from the dataset's is refused."""
    from eno_hf.evaluation.cv.features import cache_dir, load_or_compute

    path = tmp_path / "datasets" / "syn" / "v1"
    first = load_or_compute(synthetic_dd, path, tmp_path, ["handcrafted"], heads)["handcrafted"]
    n = sum(len(set(s["recording_id"])) for s in synthetic_dd.values())
    assert first["embedding"].shape[0] == n and list(first["ids"]) == sorted(first["ids"])
    file = cache_dir(tmp_path, path) / "handcrafted.npz"
    assert file == tmp_path / "cache" / "cv-features" / "syn-v1" / "handcrafted.npz" and file.is_file()
    again = load_or_compute(synthetic_dd, path, tmp_path, ["handcrafted"], heads)["handcrafted"]
    np.testing.assert_array_equal(first["embedding"], again["embedding"])
    np.savez(file, ids=first["ids"][:-1], embedding=first["embedding"][:-1])
    with pytest.raises(ValueError, match="ids differ"):
        load_or_compute(synthetic_dd, path, tmp_path, ["handcrafted"], heads)
