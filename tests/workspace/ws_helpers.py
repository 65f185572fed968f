"""Helpers for workspace tests: small MIDI/WAV writers (imported as ``ws_helpers``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pretty_midi

PERCEPIANO = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "percepiano"
FOURQ = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "4q-dev"


def write_midi(path: Path, notes, bpm: float = 120.0) -> Path:
    """``notes``: (start_s, end_s, pitch, velocity) tuples; one piano track."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=bpm)
    inst = pretty_midi.Instrument(program=0)
    for s, e, p, v in notes:
        inst.notes.append(pretty_midi.Note(velocity=int(v), pitch=int(p), start=float(s), end=float(e)))
    pm.instruments.append(inst)
    path.parent.mkdir(parents=True, exist_ok=True)
    pm.write(str(path))
    return path


def c_major_piece(path: Path, bpm: float = 120.0, offset: int = 0) -> Path:
    """Two octaves of C major up and down in quarter notes, then a held C major triad."""
    steps = [0, 2, 4, 5, 7, 9, 11]
    pitches = [60 + offset + 12 * o + s for o in range(2) for s in steps] + [84 + offset]
    pitches += pitches[-2::-1]
    beat = 60.0 / bpm
    notes = [(i * beat, (i + 0.9) * beat, p, 80) for i, p in enumerate(pitches)]
    t = len(pitches) * beat
    notes += [(t, t + 4 * beat, 60 + offset + d, 80) for d in (0, 4, 7)]
    return write_midi(path, notes, bpm)


def sine_wav(path: Path, seconds: float = 3.0, freq: float = 440.0, sr: int = 22050, seed: int = 0) -> Path:
    import soundfile as sf

    t = np.arange(int(seconds * sr)) / sr
    y = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * np.random.default_rng(seed).normal(size=t.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), y.astype(np.float32), sr)
    return path
