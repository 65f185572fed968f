"""Seeded pedalboard flaws: exact correction labels, reproducible, and the effect really applied."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from eno_hf.clarity.config import ClarityConfig
from eno_hf.clarity.generate import apply_flaw, correction_names, generate_flawed
from eno_hf.clarity.source import scan, validate

from clarity_data import DRUMKITS


def _band_db(y, sr, lo, hi):
    spec = np.abs(np.fft.rfft(y)) ** 2
    f = np.fft.rfftfreq(y.size, 1 / sr)
    return 10 * np.log10(spec[(f >= lo) & (f < hi)].sum() + 1e-20)


def test_eq_flaw_changes_its_band_by_the_labelled_gain():
    cfg = ClarityConfig()
    sr = cfg.sample_rate
    noise = np.random.default_rng(0).standard_normal(sr * 2).astype(np.float32) * 0.05
    recipe = cfg.generate.flaws["muddy"]
    y = apply_flaw(noise, sr, recipe, {"cutoff_hz": 300.0, "q": 1.0, "gain_db": 9.0})
    assert _band_db(y, sr, 280, 320) - _band_db(noise, sr, 280, 320) == pytest.approx(9.0, abs=1.0)
    assert abs(_band_db(y, sr, 4000, 8000) - _band_db(noise, sr, 4000, 8000)) < 0.5
    comp = apply_flaw(noise, sr, cfg.generate.flaws["over-compressed"],
                      {"threshold_db": -40.0, "ratio": 10.0, "attack_ms": 2.0, "release_ms": 80.0})
    rms = lambda v: np.sqrt(np.mean(v.astype(np.float64) ** 2))  # noqa: E731
    assert rms(comp) == pytest.approx(rms(noise), rel=1e-3)  # gain-matched


def test_pass_filter_flaws_cut_below_or_above_the_labelled_corner():
    from eno_hf.clarity.config import FlawRecipe
    from eno_hf.clarity.generate import _correction, draw_params

    cfg = ClarityConfig()
    sr = cfg.sample_rate
    noise = np.random.default_rng(1).standard_normal(sr * 2).astype(np.float32) * 0.05
    hp = FlawRecipe(effect="highpass", cutoff_range_hz=(300.0, 300.0))
    lp = FlawRecipe(effect="lowpass", cutoff_range_hz=(2000.0, 5000.0))
    p_hp = draw_params(hp, np.random.default_rng(0))
    p_lp = draw_params(lp, np.random.default_rng(0))
    assert p_hp == {"cutoff_hz": 300.0} and 2000.0 <= p_lp["cutoff_hz"] <= 5000.0
    y = apply_flaw(noise, sr, hp, p_hp)
    # 1st order: about -3 dB at the corner, >= ~12 dB down two octaves below, flat far above
    assert _band_db(y, sr, 60, 80) - _band_db(noise, sr, 60, 80) < -10.0
    assert abs(_band_db(y, sr, 4000, 8000) - _band_db(noise, sr, 4000, 8000)) < 0.5
    z = apply_flaw(noise, sr, lp, p_lp)
    assert _band_db(z, sr, 9000, 11000) - _band_db(noise, sr, 9000, 11000) < -5.0
    assert abs(_band_db(z, sr, 100, 300) - _band_db(noise, sr, 100, 300)) < 0.5
    names = [hp.output_name(), lp.output_name()]
    assert names == ["highpass_cutoff_hz", "lowpass_cutoff_hz"]
    assert _correction(hp, p_hp, names) == {"highpass_cutoff_hz": 300.0, "lowpass_cutoff_hz": 0.0}


@pytest.fixture(scope="module")
def gold_tree(tmp_path_factory):
    if not DRUMKITS.is_dir():
        pytest.skip(f"real data not available: {DRUMKITS} (Debian hydrogen-drumkits) is absent")
    from eno_hf.audio.io import load_audio
    from eno_hf.clarity.gold import collect_drum_samples

    raw = tmp_path_factory.mktemp("gen") / "raw"
    (raw / "gold" / "drums").mkdir(parents=True)
    files = []
    for i, p in enumerate(collect_drum_samples(DRUMKITS, 1)["snare"] + collect_drum_samples(DRUMKITS, 1)["tom"], 1):
        y, _ = load_audio(p, sample_rate=22050)
        rel = f"gold/drums/d{i}_gold_{i:03d}.wav"
        sf.write(str(raw / rel), y[:22050], 22050)
        files.append(rel)
    return raw, files


def test_low_frequency_flaws_exclude_hihat_and_cymbal_by_default():
    flaws = ClarityConfig().generate.flaws
    assert all({"hihat", "cymbal"} <= set(flaws[f].exclude_sounds) for f in ("muddy", "boomy", "thin"))


def test_generation_is_seeded_labelled_and_idempotent(gold_tree):
    raw, files = gold_tree
    cfg = ClarityConfig()
    cfg.generate.flaws_per_file = 3
    first = generate_flawed(cfg, raw, files)
    assert first["written"] == 6 and not first["failed"]
    labels = json.loads((raw / "labels.json").read_text())
    names = correction_names(cfg)
    for rec in labels:
        recipe = cfg.generate.flaws[rec["flaw"]]
        assert set(rec["correction"]) == set(names)
        nonzero = {k: v for k, v in rec["correction"].items() if v != 0}
        assert list(nonzero) == [recipe.output_name()]
        if recipe.effect in ("peak", "low_shelf", "high_shelf"):
            lo, hi = recipe.gain_db
            assert lo <= rec["params"]["gain_db"] <= hi
            assert nonzero[recipe.output_name()] == -rec["params"]["gain_db"]
        assert (raw / rec["file"]).is_file() and rec["source"] in files
    again = generate_flawed(cfg, raw, files)
    assert again["written"] == 0 and again["kept"] == 6 and again["removed"] == 0
    assert json.loads((raw / "labels.json").read_text()) == labels
    res = scan(raw, names)
    flawed = [e for e in res.entries if e.subset == "flawed"]
    assert len(flawed) == 6 and all(e.correction is not None for e in flawed)
    gold = [e for e in res.entries if e.subset == "gold"]
    assert all(set(e.correction.values()) == {0.0} for e in gold)
    cfg.generate.flaws_per_file = 1  # a changed recipe deletes the variants it no longer makes
    fewer = generate_flawed(cfg, raw, files)
    assert fewer["removed"] == 4 and len(list((raw / "flawed").rglob("*.wav"))) == 2
    val = validate(res, list(cfg.generate.flaws), 3)
    assert "gold/bass" in val["missing"] and val["ok"] is False
    assert all(u["count"] < 3 for u in val["unbalanced"])
