"""Rule-based synthesis: the music matches its labels and renders to non-silent audio."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from eno_hf.features.midi import midi_features
from eno_hf.workspace.layout import Workspace
from eno_hf.workspace.synth import chord_pitches, synthesize_workspace, voice_lead

HAVE_FLUIDSYNTH = shutil.which("fluidsynth") is not None


def test_chords_and_voice_leading():
    assert chord_pitches("I", 0, "ionian") == [60, 64, 67]
    assert chord_pitches("V", 9, "aeolian") == [76, 80, 83]        # E major in A minor (raised G#)
    assert chord_pitches("iv", 9, "aeolian") == [74, 77, 81]       # D minor
    prev = [60, 64, 67]
    nxt = voice_lead(prev, chord_pitches("IV", 0, "ionian"))         # F A C
    assert sorted(p % 12 for p in nxt) == [0, 5, 9]
    assert sum(abs(a - b) for a, b in zip(nxt, prev)) <= 3           # C-E-G -> C-F-A: common tone kept


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory):
    from eno_hf.config import load_config

    root = tmp_path_factory.mktemp("syn")
    s = load_config("configs/workspace.yaml", [f"paths.data_root={root}", "workspace.dataset_id=syn",
                                               "workspace.synth.per_category=2"])
    ws = Workspace.create(s.workspace, s.paths.data_root)
    m = ws.load()
    ids = synthesize_workspace(ws, m, s)
    return ws, m, ids, s


def test_synthesize_writes_labelled_midi_per_emotion(synthesized):
    ws, m, ids, s = synthesized
    assert len(ids) == 8
    emotions = [e.annotations.emotion for e in m.samples]
    assert sorted(emotions) == sorted(["happy", "angry", "sad", "calm"] * 2)
    for e in m.samples:
        a = e.annotations
        assert e.origin == "synthetic" and e.file_path.startswith("raw/synthetic/")
        f = midi_features(ws.abs(e.file_path)).scalars
        assert f["mode"] == a.mode, (e.sample_id, f["key"], a.key)
        assert f["tempo_bpm"] == pytest.approx(a.tempo_bpm, abs=0.5)
        assert f["groove_type"] == a.groove_type, (a.groove_type, f["swing_ratio"], f["beat_offset_ms"])
        if a.groove_type in ("swing", "shuffle"):
            assert f["swing_ratio"] == pytest.approx(a.swing_ratio, abs=0.03)
        tempo_rule = {"happy": (112, 144), "angry": (132, 168), "sad": (56, 76), "calm": (60, 84)}[a.emotion]
        assert tempo_rule[0] <= a.tempo_bpm <= tempo_rule[1]
    # arousal shows in dynamics: angry/happy louder than sad/calm
    vel = {e.annotations.emotion: midi_features(ws.abs(e.file_path), chords=False).scalars["velocity_mean"]
           for e in m.samples}
    assert min(vel["angry"], vel["happy"]) > max(vel["sad"], vel["calm"])


def test_synthesis_is_deterministic(synthesized, tmp_path):
    ws, m, ids, s = synthesized
    s2 = s.model_copy(deep=True)
    s2.paths.data_root = tmp_path
    ws2 = Workspace.create(s2.workspace, s2.paths.data_root)
    assert sorted(synthesize_workspace(ws2, ws2.load(), s2)) == sorted(ids)
    assert synthesize_workspace(ws, m, s) == []   # nothing new the second time


@pytest.mark.skipif(not HAVE_FLUIDSYNTH, reason="fluidsynth not installed (apt-get install fluidsynth fluid-soundfont-gm)")
def test_synthesized_samples_render_to_non_silent_audio(synthesized):
    from eno_hf.audio.midi import render_midi

    ws, m, ids, s = synthesized
    for e in m.samples[:4]:
        y = render_midi(ws.abs(e.file_path), sample_rate=16000)
        assert y.dtype == np.float32 and y.ndim == 1
        dur = midi_features(ws.abs(e.file_path), chords=False).scalars["duration_s"]
        assert len(y) / 16000 >= dur * 0.95
        rms_db = 20 * np.log10(np.sqrt(np.mean(y ** 2)) + 1e-12)
        assert rms_db > -40.0, rms_db
