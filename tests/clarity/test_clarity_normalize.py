"""Normalization log, clip guard, unmeasurable files and verify, on real drum samples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from eno_hf.audio.conditioning import integrated_loudness
from eno_hf.clarity.config import ClarityConfig
from eno_hf.clarity.gold import collect_drum_samples
from eno_hf.clarity.normalize import normalize_signal, normalize_tree, verify_tree

from clarity_data import DRUMKITS


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    if not DRUMKITS.is_dir():
        pytest.skip(f"real data not available: {DRUMKITS} (Debian hydrogen-drumkits) is absent")
    from eno_hf.audio.io import load_audio

    root = tmp_path_factory.mktemp("norm")
    raw = root / "raw"
    picked = collect_drum_samples(DRUMKITS, 2)
    files = []
    for i, p in enumerate(picked["cymbal"] + picked["tom"], start=1):
        y, _ = load_audio(p, sample_rate=22050)
        rel = f"gold/drums/s{i}_gold_{i:03d}.wav"
        (raw / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(raw / rel), y[: 22050 * 3], 22050, subtype="FLOAT")
        files.append(rel)
    # a real cymbal cut to 0.2 s (unmeasurable), a silent file and a broken one
    y, _ = load_audio(picked["cymbal"][0], sample_rate=22050)
    sf.write(str(raw / "gold/drums/short_gold_001.wav"), y[:4410], 22050, subtype="FLOAT")
    sf.write(str(raw / "gold/drums/silent_gold_001.wav"), np.zeros(44100, np.float32), 22050)
    (raw / "gold/drums/broken_gold_001.wav").write_bytes(b"RIFF0000WAVEjunk")
    files += ["gold/drums/short_gold_001.wav", "gold/drums/silent_gold_001.wav", "gold/drums/broken_gold_001.wav"]
    return root, raw, files


def test_log_records_every_file_and_verify_passes(tree):
    root, raw, files = tree
    cfg = ClarityConfig()
    log = normalize_tree(cfg, raw, root, files)
    by = {r["file"]: r for r in log["files"]}
    assert set(by) == set(files)
    assert by["gold/drums/short_gold_001.wav"]["status"] == "assumed"
    assert by["gold/drums/short_gold_001.wav"]["lufs_before"] == -30.0
    assert by["gold/drums/silent_gold_001.wav"]["status"] == "skipped"
    assert "silent" in by["gold/drums/silent_gold_001.wav"]["reason"]
    assert by["gold/drums/broken_gold_001.wav"]["status"] == "rejected"
    ok = [r for r in log["files"] if r["status"] == "normalized"]
    long_enough = [f for f in files[:4] if sf.info(str(raw / f)).duration >= cfg.normalize.min_measurable_s]
    assert len(ok) == len(long_enough) >= 2
    assert {r["file"] for r in log["files"] if r["status"] == "assumed"} == \
        {"gold/drums/short_gold_001.wav", *(set(files[:4]) - set(long_enough))}
    for r in ok:
        assert r["peak_after_dbfs"] <= -1.0 + 1e-3
        predicted = -18.0 if not r["clip_guard"] else r["lufs_before"] + r["gain_db"]
        assert r["lufs_after_predicted"] == pytest.approx(predicted, abs=1e-3)
        assert r["clip_guard"] == (r["lufs_after_predicted"] < -18.0 - 1e-3)
        if not r["clip_guard"]:
            assert r["lufs_after"] == pytest.approx(-18.0, abs=0.5)
        y, sr = sf.read(str(root / r["processed"]), dtype="float32")
        assert integrated_loudness(y, sr) == pytest.approx(r["lufs_after"], abs=0.05)  # 24-bit file
    json.dumps(log, allow_nan=False)  # strict JSON
    ver = verify_tree(log, root, 0.5)
    assert ver["checked"] == len(ok) and ver["passed"] == len(ok) and not ver["failures"]
    assert "gold/drums/short_gold_001.wav" in [u["file"] for u in ver["unverifiable"]]


def test_verify_lists_a_file_changed_after_normalization(tree):
    root, raw, files = tree
    cfg = ClarityConfig()
    log = normalize_tree(cfg, raw, root, files[:4])
    first = next(r for r in log["files"] if r["status"] == "normalized")
    target = root / first["processed"]
    y, sr = sf.read(str(target), dtype="float32")
    sf.write(str(target), y * np.float32(0.5), sr, subtype="PCM_24")  # -6 dB
    ver = verify_tree(log, root, 0.5)
    assert [f["file"] for f in ver["failures"]] == [first["file"]]
    assert "off by 6.0" in ver["failures"][0]["reason"]


def test_clip_guard_and_skip_option():
    cfg = ClarityConfig()
    sr = cfg.sample_rate
    rng = np.random.default_rng(0)
    spiky = (0.001 * rng.standard_normal(sr * 2)).astype(np.float32)
    spiky[sr] = 0.9  # quiet body, one loud peak: reaching -18 LUFS would clip
    y, rec = normalize_signal(spiky, cfg)
    assert rec["clip_guard"] and rec["peak_after_dbfs"] == pytest.approx(-1.0, abs=1e-3)
    assert rec["lufs_after"] < -18.0
    cfg.normalize.unmeasurable = "skip"
    y, rec = normalize_signal(spiky[:2000], cfg)
    assert y is None and rec["status"] == "skipped" and rec["reason"].startswith("too_short")
