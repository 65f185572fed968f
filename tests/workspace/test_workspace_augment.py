"""Each augmentation's effect and label transform, provenance, determinism."""

from __future__ import annotations

import numpy as np
import pretty_midi
import pytest

from eno_hf.features.midi import midi_features
from eno_hf.workspace.augment import apply_audio_ops, apply_midi_ops, augment_workspace, transform_labels
from eno_hf.workspace.keys import canonical_key, transpose_key
from eno_hf.workspace.layout import Workspace
from eno_hf.workspace.schema import Annotations, ManifestEntry

from ws_helpers import c_major_piece, sine_wav, write_midi

C_MAJOR = Annotations(emotion="happy", valence=0.8, arousal=0.6, key="C major", mode="major", tempo_bpm=120.0,
                      groove_type="straight", articulation="legato", chord_progression="I-V-I", is_verified=True)


def _notes(pm):
    return sorted((n.start, n.end, n.pitch, n.velocity) for i in pm.instruments for n in i.notes)


@pytest.mark.parametrize("semitones,expected", [(2, "D major"), (-3, "A major"), (6, "F# major"), (-6, "F# major"),
                                                (1, "D- major")])
def test_transpose_moves_notes_and_key_label(tmp_path, semitones, expected):
    src = c_major_piece(tmp_path / "c.mid")
    ops = [{"op": "transpose", "semitones": semitones}]
    pm = apply_midi_ops(pretty_midi.PrettyMIDI(str(src)), ops)
    before = _notes(pretty_midi.PrettyMIDI(str(src)))
    assert [n[2] for n in _notes(pm)] == [n[2] + semitones for n in before]
    ann = transform_labels(C_MAJOR, ops)
    assert ann.key == expected and ann.mode == "major" and ann.chord_progression == "I-V-I"
    assert ann.emotion == "happy" and ann.is_verified is False   # a copy is not human-verified
    out = tmp_path / "t.mid"
    pm.write(str(out))
    assert canonical_key(midi_features(out).scalars["key"]) == expected   # the label agrees with the music


def test_transpose_key_wraps_and_respells():
    assert transpose_key("A minor", 3) == "C minor"
    assert transpose_key("B- major", 2) == "C major"
    assert transpose_key("C major", -1) == "B major"
    assert transpose_key(None, 4) is None
    assert canonical_key("A# major") == "B- major" and canonical_key("D# minor") == "E- minor"


def test_time_stretch_scales_times_and_tempo_label(tmp_path):
    src = c_major_piece(tmp_path / "c.mid", bpm=120.0)
    ops = [{"op": "time_stretch", "factor": 1.1}]
    pm = apply_midi_ops(pretty_midi.PrettyMIDI(str(src)), ops)
    before = _notes(pretty_midi.PrettyMIDI(str(src)))
    assert np.allclose([n[0] for n in _notes(pm)], [n[0] * 1.1 for n in before], atol=2e-3)
    ann = transform_labels(C_MAJOR, ops)
    assert ann.tempo_bpm == pytest.approx(120 / 1.1)
    out = tmp_path / "s.mid"
    pm.write(str(out))
    f = midi_features(out, chords=False).scalars
    assert f["tempo_bpm"] == pytest.approx(120 / 1.1, rel=0.01) and f["tempo_source"] == "tempo_map"


def test_velocity_scale_clips_and_carries_labels(tmp_path):
    src = write_midi(tmp_path / "v.mid", [(0, 0.5, 60, 50), (0.5, 1, 62, 120), (1, 1.5, 64, 1)])
    ops = [{"op": "velocity_scale", "factor": 1.2}]
    pm = apply_midi_ops(pretty_midi.PrettyMIDI(str(src)), ops)
    assert [n[3] for n in _notes(pm)] == [60, 127, 1]
    ann = transform_labels(C_MAJOR, ops)
    assert (ann.key, ann.tempo_bpm, ann.emotion) == ("C major", 120.0, "happy")


def test_timing_jitter_stays_within_5_ms(tmp_path):
    src = write_midi(tmp_path / "j.mid", [(0.5 * i + 0.1, 0.5 * i + 0.4, 60, 80) for i in range(200)])
    ops = [{"op": "timing_jitter", "max_ms": 5.0, "seed": 3}]
    pm = apply_midi_ops(pretty_midi.PrettyMIDI(str(src)), ops)
    d = np.array([a[0] - b[0] for a, b in zip(_notes(pm), _notes(pretty_midi.PrettyMIDI(str(src))))])
    assert np.abs(d).max() <= 0.0051 and np.abs(d).max() > 0.003 and np.std(d) > 0.001
    assert transform_labels(C_MAJOR, ops).tempo_bpm == 120.0


def test_note_dropout_removes_about_two_percent(tmp_path):
    src = write_midi(tmp_path / "d.mid", [(0.05 * i, 0.05 * i + 0.04, 60 + i % 12, 80) for i in range(2000)])
    pm = apply_midi_ops(pretty_midi.PrettyMIDI(str(src)), [{"op": "note_dropout", "p": 0.02, "seed": 1}])
    dropped = 2000 - len(_notes(pm))
    assert 15 <= dropped <= 65   # Binomial(2000, 0.02): mean 40, sd 6.3


def test_audio_ops_change_the_signal_and_labels():
    sr = 16000
    t = np.arange(sr * 2) / sr
    y = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    shifted = apply_audio_ops(y, sr, [{"op": "pitch_shift", "semitones": 2}])
    spec = np.abs(np.fft.rfft(shifted[4000:-4000]))
    peak_hz = np.argmax(spec) * sr / len(shifted[4000:-4000])
    assert peak_hz == pytest.approx(440 * 2 ** (2 / 12), rel=0.01)
    assert transform_labels(C_MAJOR, [{"op": "pitch_shift", "semitones": 2}]).key == "D major"
    stretched = apply_audio_ops(y, sr, [{"op": "time_stretch", "rate": 1.1}])
    assert len(stretched) == pytest.approx(len(y) / 1.1, rel=0.01)
    assert transform_labels(C_MAJOR, [{"op": "time_stretch", "rate": 1.1}]).tempo_bpm == pytest.approx(132.0)
    noisy = apply_audio_ops(np.zeros(sr, np.float32), sr, [{"op": "noise", "std": 0.005, "seed": 0}])
    assert np.std(noisy) == pytest.approx(0.005, rel=0.05)
    louder = apply_audio_ops(y, sr, [{"op": "gain", "factor": 1.2}])
    assert np.max(np.abs(louder)) == pytest.approx(0.36, rel=1e-3)
    assert transform_labels(C_MAJOR, [{"op": "gain", "factor": 1.2}, {"op": "noise", "std": 0.01, "seed": 0}]).key == "C major"


def _peak_hz(y, sr):
    y = y[2000:-2000]
    return float(np.argmax(np.abs(np.fft.rfft(y * np.hanning(len(y))))) * sr / len(y))


def test_audio_pitch_shift_and_time_stretch_together_in_one_rubber_band_pass():
    sr = 16000
    y = (0.3 * np.sin(2 * np.pi * 440 * np.arange(sr * 3) / sr)).astype(np.float32)
    ops = [{"op": "pitch_shift", "semitones": -2}, {"op": "time_stretch", "rate": 0.9},
           {"op": "gain", "factor": 0.8}]
    out = apply_audio_ops(y, sr, ops)
    assert len(out) == pytest.approx(len(y) / 0.9, rel=0.01)          # slower: longer
    assert _peak_hz(out, sr) == pytest.approx(440 * 2 ** (-2 / 12), rel=0.005)  # pitch independent of rate
    assert out.dtype == np.float32 and np.all(np.abs(out) <= 1.0)
    lab = transform_labels(C_MAJOR, ops)
    assert lab.key == "A# major" or lab.key == "B- major"
    assert lab.tempo_bpm == pytest.approx(108.0) and lab.is_verified is False
    np.testing.assert_array_equal(out, apply_audio_ops(y, sr, ops))  # deterministic


def test_augment_workspace_audio_copies_are_seeded_with_provenance(make_settings):
    """Two fresh workspaces, same seed → the same audio copies (content-hash ids); labels moved."""
    made = []
    for ds_id in ("a1", "a2"):
        s = make_settings("workspace.augment.audio_copies=2", "workspace.augment.midi_copies=0",
                          f"workspace.dataset_id={ds_id}")
        ws = Workspace.create(s.workspace, s.paths.data_root)
        m = ws.load()
        sine_wav(ws.abs("raw/audio/src.wav"), seconds=3.0, freq=440.0)
        m.samples.append(ManifestEntry(sample_id="src", file_path="raw/audio/src.wav", kind="audio", group="g",
                                       annotations=C_MAJOR))
        ws.save(m)
        assert len(augment_workspace(ws, m, s).created) == 2
        made.append(sorted(e.sample_id for e in m.samples if e.origin == "augmented"))
        for e in (e for e in m.samples if e.origin == "augmented"):
            ops = {o["op"]: o for o in e.provenance.operations}
            assert set(ops) == {"pitch_shift", "time_stretch", "noise", "gain"}
            assert ops["pitch_shift"]["semitones"] in (-2, -1, 1, 2)
            assert 0.9 <= ops["time_stretch"]["rate"] <= 1.1 and 0.8 <= ops["gain"]["factor"] <= 1.2
            assert 0.0 <= ops["noise"]["std"] <= 0.005 and e.group == "g"
            assert e.annotations.key == transpose_key("C major", ops["pitch_shift"]["semitones"])
            assert e.annotations.tempo_bpm == pytest.approx(120.0 * ops["time_stretch"]["rate"])
            import soundfile as sf
            y, sr = sf.read(ws.abs(e.file_path), dtype="float32")
            assert len(y) == pytest.approx(3.0 * sr / ops["time_stretch"]["rate"], rel=0.02)
            assert _peak_hz(y, sr) == pytest.approx(440 * 2 ** (ops["pitch_shift"]["semitones"] / 12), rel=0.01)
    assert made[0] == made[1]


def test_augment_workspace_provenance_groups_and_determinism(make_settings, tmp_path):
    s = make_settings("workspace.augment.midi_copies=2")
    ws = Workspace.create(s.workspace, s.paths.data_root)
    m = ws.load()
    src = c_major_piece(ws.abs("raw/midi/src.mid"))
    m.samples.append(ManifestEntry(sample_id="src", file_path="raw/midi/src.mid", kind="midi", group="g1",
                                   annotations=C_MAJOR))
    ws.save(m)
    rep = augment_workspace(ws, m, s)
    copies = [e for e in m.samples if e.origin == "augmented"]
    assert len(rep.created) == 2 and len(copies) == 2
    for e in copies:
        assert e.group == "g1" and e.provenance.source_sample_id == "src"
        ops = {o["op"]: o for o in e.provenance.operations}
        assert set(ops) == {"transpose", "time_stretch", "velocity_scale", "timing_jitter", "note_dropout"}
        assert -6 <= ops["transpose"]["semitones"] <= 6 and ops["transpose"]["semitones"] != 0
        assert 0.9 <= ops["time_stretch"]["factor"] <= 1.1 and 0.8 <= ops["velocity_scale"]["factor"] <= 1.2
        assert e.annotations.key == transpose_key("C major", ops["transpose"]["semitones"])
        assert e.annotations.tempo_bpm == pytest.approx(120.0 / ops["time_stretch"]["factor"])
        assert ws.abs(e.file_path).is_file() and e.file_path.startswith("processed/augmented/")
    # same seed, fresh workspace → same copies (ids are content hashes); re-running adds nothing
    assert augment_workspace(ws, m, s).created == []
    s2 = make_settings("workspace.augment.midi_copies=2", "workspace.dataset_id=t2")
    ws2 = Workspace.create(s2.workspace, s2.paths.data_root)
    m2 = ws2.load()
    c_major_piece(ws2.abs("raw/midi/src.mid"))
    m2.samples.append(ManifestEntry(sample_id="src", file_path="raw/midi/src.mid", kind="midi", group="g1",
                                    annotations=C_MAJOR))
    augment_workspace(ws2, m2, s2)
    assert sorted(e.sample_id for e in m2.samples) == sorted(e.sample_id for e in m.samples)
    assert src.is_file()


def test_synthetic_pieces_are_not_augmented(make_settings):
    """`eno dataset all` synthesizes after augmenting: a re-run must not copy the synthetic pieces."""
    s = make_settings("workspace.augment.midi_copies=1")
    ws = Workspace.create(s.workspace, s.paths.data_root)
    m = ws.load()
    c_major_piece(ws.abs("raw/synthetic/syn.mid"))
    m.samples.append(ManifestEntry(sample_id="syn", file_path="raw/synthetic/syn.mid", kind="midi", group="s",
                                   origin="synthetic", annotations=C_MAJOR))
    ws.save(m)
    assert augment_workspace(ws, m, s).created == [] and len(m.samples) == 1
