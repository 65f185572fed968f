"""Known answers for eno_hf.features.midi on MIDI files written with pretty_midi, plus real PercePiano files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pretty_midi
import pytest

from eno_hf.errors import RejectedInput
from eno_hf.features.midi import midi_features, midi_statistics, swing_ratio

PERCEPIANO = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "percepiano" / "midi"


def _write(path: Path, notes: list[tuple[float, float, int, int]], bpm: float = 120.0,
           pedal: list[tuple[float, int]] = ()) -> Path:
    pm = pretty_midi.PrettyMIDI(initial_tempo=bpm)
    inst = pretty_midi.Instrument(program=0)
    for start, end, pitch, vel in notes:
        inst.notes.append(pretty_midi.Note(velocity=vel, pitch=pitch, start=start, end=end))
    for t, v in pedal:
        inst.control_changes.append(pretty_midi.ControlChange(64, v, t))
    pm.instruments.append(inst)
    pm.write(str(path))
    return path


def _scale(path: Path, tonic: int = 60, minor: bool = False, bpm: float = 120.0, octaves: int = 2) -> Path:
    steps = [0, 2, 3, 5, 7, 8, 10] if minor else [0, 2, 4, 5, 7, 9, 11]
    pitches = [tonic + 12 * o + s for o in range(octaves) for s in steps] + [tonic + 12 * octaves]
    pitches += pitches[-2::-1]
    beat = 60.0 / bpm
    notes = [(i * beat, (i + 0.9) * beat, p, 80) for i, p in enumerate(pitches)]
    # end on a held tonic triad
    t = len(pitches) * beat
    notes += [(t, t + 4 * beat, tonic + d, 80) for d in ((0, 3, 7) if minor else (0, 4, 7))]
    return _write(path, notes, bpm)


def test_c_major_scale_is_c_major(tmp_path):
    f = midi_features(_scale(tmp_path / "c.mid"))
    assert f.scalars["key"] == "C major"
    assert f.scalars["mode"] == "major"
    assert f.scalars["chord_progression"].split("-")[-1] == "I"


def test_a_minor_scale_is_a_minor(tmp_path):
    f = midi_features(_scale(tmp_path / "a.mid", tonic=57, minor=True))
    assert f.scalars["key"] == "A minor"


def test_known_tempo_from_tempo_map(tmp_path):
    f = midi_features(_scale(tmp_path / "t.mid", bpm=100.0))
    assert f.scalars["tempo_source"] == "tempo_map"
    assert f.scalars["tempo_bpm"] == pytest.approx(100.0, abs=0.5)


def test_known_tempo_from_onsets_when_the_tempo_map_does_not_fit(tmp_path):
    # a "performance" at 100 bpm stored in a 120-bpm file (the tempo map is meaningless)
    beat = 60.0 / 100.0
    rng = np.random.default_rng(0)
    notes = []
    for i in range(48):
        t = i * beat + rng.normal(0, 0.004)
        notes.append((t, t + 0.4 * beat, 60 + (i % 8), 100 if i % 4 == 0 else 70))
    f = midi_features(_write(tmp_path / "p.mid", notes, bpm=120.0), chords=False)
    assert f.scalars["tempo_source"] == "onsets"
    assert f.scalars["tempo_bpm"] == pytest.approx(100.0, rel=0.04)


def _eighths(path: Path, long_fraction: float, bpm: float = 120.0, n_beats: int = 32, delay_s: float = 0.0,
             jitter_s: float = 0.0, file_bpm: float | None = None) -> Path:
    beat = 60.0 / bpm
    rng = np.random.default_rng(1)
    notes = []
    for b in range(n_beats):
        for frac, vel in ((0.0, 100), (long_fraction, 70)):
            t = (b + frac) * beat + delay_s + rng.normal(0, jitter_s)
            notes.append((max(0.0, t), max(0.0, t) + 0.2 * beat, 67 if frac else 60, vel))
    return _write(path, notes, file_bpm or bpm)


def test_swung_midi_has_swing_ratio_two_thirds(tmp_path):
    f = midi_features(_eighths(tmp_path / "swing.mid", 2 / 3, jitter_s=0.003), chords=False)
    assert f.scalars["swing_ratio"] == pytest.approx(0.667, abs=0.03)
    assert f.scalars["groove_type"] == "swing"


def test_straight_and_shuffle_grooves(tmp_path):
    straight = midi_features(_eighths(tmp_path / "s.mid", 0.5), chords=False).scalars
    shuffle = midi_features(_eighths(tmp_path / "sh.mid", 0.75), chords=False).scalars
    assert straight["swing_ratio"] == pytest.approx(0.5, abs=0.02) and straight["groove_type"] == "straight"
    assert shuffle["swing_ratio"] == pytest.approx(0.75, abs=0.02) and shuffle["groove_type"] == "shuffle"


def test_swing_ratio_of_a_performance_without_tempo_map(tmp_path):
    # swung eighths at 100 bpm inside a 120-bpm file: beats come from librosa's tracker
    f = midi_features(_eighths(tmp_path / "ps.mid", 2 / 3, bpm=100.0, file_bpm=120.0), chords=False)
    # the file's grid is 120 bpm but notes follow 100 bpm, so the tracker must be used
    assert f.scalars["tempo_source"] == "onsets"
    assert f.scalars["swing_ratio"] == pytest.approx(0.667, abs=0.05)


def test_laid_back_groove(tmp_path):
    beat = 0.5
    notes = [(b * beat + 0.025, b * beat + 0.3, 60, 90) for b in range(32)]
    # a quantized hi-hat-like reference is absent on purpose: every onset is 25 ms late
    f = midi_features(_write(tmp_path / "lb.mid", notes), chords=False)
    assert f.scalars["beat_offset_ms"] == pytest.approx(25.0, abs=3)
    assert f.scalars["groove_type"] == "laid-back"


def test_statistics_known_values(tmp_path):
    notes = [(i * 0.5, i * 0.5 + 0.25, 60 + i, 40 + 10 * i) for i in range(5)]
    path = _write(tmp_path / "n.mid", notes, pedal=[(0.0, 127), (1.0, 0)])
    s = midi_statistics(path)
    assert s["n_notes"] == 5
    assert s["duration_s"] == pytest.approx(2.25, abs=0.01)
    assert s["note_density_per_s"] == pytest.approx(5 / 2.25, rel=0.01)
    assert s["velocity_mean"] == pytest.approx(60.0)
    assert s["note_duration_s_mean"] == pytest.approx(0.25, abs=0.01)
    assert s["ioi_s_mean"] == pytest.approx(0.5, abs=0.01)
    assert s["pedal_fraction"] == pytest.approx(1.0 / 2.25, rel=0.02)
    assert all(isinstance(v, float) for v in s.values())


def test_articulation_classes(tmp_path):
    stacc = [(i * 0.5, i * 0.5 + 0.1, 60, 80) for i in range(16)]
    leg = [(i * 0.5, i * 0.5 + 0.5, 60 + i % 3, 80) for i in range(16)]
    assert midi_features(_write(tmp_path / "st.mid", stacc), chords=False).scalars["articulation"] == "staccato"
    assert midi_features(_write(tmp_path / "lg.mid", leg), chords=False).scalars["articulation"] == "legato"


def test_swing_ratio_needs_enough_beats():
    assert np.isnan(swing_ratio(np.array([0.0, 0.33]), np.array([0.0, 0.5, 1.0])))


@pytest.mark.parametrize("content,reason", [(b"", "undecodable"), (b"MThd garbage bytes", "undecodable")])
def test_bad_midi_rejected_with_reason(tmp_path, content, reason):
    p = tmp_path / "bad.mid"
    p.write_bytes(content)
    with pytest.raises(RejectedInput) as e:
        midi_statistics(p)
    assert e.value.reason == reason and e.value.path == str(p)


def test_midi_without_notes_rejected(tmp_path):
    pm = pretty_midi.PrettyMIDI()
    pm.instruments.append(pretty_midi.Instrument(0))
    pm.write(str(tmp_path / "e.mid"))
    with pytest.raises(RejectedInput) as e:
        midi_features(tmp_path / "e.mid")
    assert e.value.reason == "empty"


@pytest.mark.skipif(not PERCEPIANO.is_dir(), reason="../shared/data/percepiano not present")
def test_real_percepiano_schubert_d960_mv3_is_b_flat_major():
    # Schubert D960 (B-flat major); mv3 (Scherzo) is in B-flat major too
    f = midi_features(PERCEPIANO / "Schubert_D960_mv3_16bars_12_18.mid")
    assert f.scalars["key"] == "B- major"
    assert f.scalars["tempo_source"] == "onsets"
    assert 0 < f.scalars["pedal_fraction"] <= 1
    assert f.arrays["velocity_curve"].shape == (32,)
