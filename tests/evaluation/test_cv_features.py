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


def test_msd_musicnn_augmented_copies_are_seeded_labelled_rows_of_their_recording(fourq_dir: Path) -> None:
    if not (MUSICNN_DIR / "msd-musicnn.safetensors").is_file():
        pytest.skip(f"MSD musicnn weights not available: {MUSICNN_DIR} (see ../shared/models/musicnn/README.md)")
    from eno_hf.audio.io import load_audio
    from eno_hf.evaluation.cv_features import AUGMENTED

    clips = sorted((fourq_dir / "Q2").glob("*.mp3"))[:2]
    waves = {p.stem: np.asarray(load_audio(p, sample_rate=16_000)[0][: 16_000 * 12], dtype=np.float32) for p in clips}
    orig = tagger_features("msd-musicnn", waves)
    assert orig["pool"].shape == (2, 1506) and np.isfinite(orig["pool"]).all()
    aug = tagger_features("msd-musicnn", waves, copies=2)
    assert list(aug["copy_owner"]) == [0, 0, 1, 1] and list(aug["ids"]) == list(orig["ids"])
    assert aug["embedding"].shape == (4, 400) and aug["pool"].shape == (4, 1506)
    assert np.bincount(aug["window_owner"]).tolist() == [8, 8]  # 2 copies x 4 windows of 12 s, lengths kept
    again = tagger_features("msd-musicnn", waves, copies=2)
    np.testing.assert_array_equal(aug["embedding"], again["embedding"])  # one seeded stream
    for row, owner in enumerate(aug["copy_owner"]):
        other = 1 - owner
        assert not np.allclose(aug["embedding"][row], orig["embedding"][owner], atol=1e-3)  # really changed
        # a copy stays closer to its own recording than to the other one
        assert (np.linalg.norm(aug["embedding"][row] - orig["embedding"][owner])
                < np.linalg.norm(aug["embedding"][row] - orig["embedding"][other]))
    assert AUGMENTED.match("msd-musicnn-aug4")["base"] == "msd-musicnn" and not AUGMENTED.match("msd-musicnn")
