"""cv_features on real clips: the MSD Musicnn's clip features and their window-level rows agree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from eno_hf.evaluation.cv_features import tagger_features

MUSICNN_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "models" / "musicnn"


def test_msd_musicnn_windows_pool_to_the_clip_features(fourq_dir: Path) -> None:
    if not (MUSICNN_DIR / "msd-musicnn.safetensors").is_file():
        pytest.skip(f"MSD musicnn weights not available: {MUSICNN_DIR} (see ../shared/models/musicnn/README.md)")
    from eno_hf.audio.io import load_audio

    clips = sorted((fourq_dir / "Q1").glob("*.mp3"))[:2]
    waves = {p.stem: np.asarray(load_audio(p, sample_rate=16_000)[0], dtype=np.float32) for p in clips}
    waves[clips[1].stem] = waves[clips[1].stem][: 16_000 * 10]  # a shorter clip: fewer windows
    f = tagger_features("msd-musicnn", waves)
    counts = np.bincount(f["window_owner"], minlength=2)
    assert f["windows"].shape == (counts.sum(), 200) and f["windows"].dtype == np.float32
    assert counts[0] > counts[1] >= 3  # ~30 s vs 10 s of 3-s windows
    for i in range(2):
        rows = f["windows"][f["window_owner"] == i]
        np.testing.assert_allclose(f["embedding"][i], np.concatenate([rows.mean(0), rows.max(0)]), rtol=1e-5, atol=1e-6)
