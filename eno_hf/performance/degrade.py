"""Degraded performances at known severities (T2 ground truth by construction).

A real performance is degraded *in the MIDI* before rendering, at severities ``1..S`` (0 = the
original), with ``pretty_midi``; the expected ordering is original > severity 1 > ... > S:

* ``timing_jitter``: every note's onset (and its offset with it) moves by Gaussian noise of
  ``severity * jitter_ms`` ms (chords are jittered note by note: smeared onsets);
* ``wrong_notes``: ``severity * wrong_note_rate`` of the notes move by +-1 or 2 semitones;
* ``velocity_flatten``: velocities are pulled toward their mean,
  ``v' = mean + (1 - severity / S) * (v - mean)`` (severity S = fully flat dynamics).

Seeded per (segment, kind, severity): the same call gives the same MIDI bytes.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np

from eno_hf.errors import RejectedInput

__all__ = ["DEGRADATIONS", "degrade_midi"]

DEGRADATIONS = ("timing_jitter", "wrong_notes", "velocity_flatten")


def degrade_midi(path: str | Path, kind: str, severity: int, max_severity: int = 3, seed: int = 0,
                 jitter_ms: float = 40.0, wrong_note_rate: float = 0.08) -> bytes:
    """The MIDI bytes of ``path`` degraded by ``kind`` at ``severity`` (0 = unchanged content).

    Raises:
        ValueError: unknown ``kind`` or severity outside ``0..max_severity``.
        RejectedInput: unreadable MIDI (``undecodable``).
    """
    import pretty_midi

    if kind not in DEGRADATIONS:
        raise ValueError(f"unknown degradation {kind!r}; expected one of {DEGRADATIONS}")
    if not 0 <= severity <= max_severity:
        raise ValueError(f"severity {severity} outside 0..{max_severity}")
    try:
        pm = pretty_midi.PrettyMIDI(str(path))
    except Exception as exc:  # noqa: BLE001
        raise RejectedInput(path, "undecodable", f"not a valid MIDI file ({type(exc).__name__})") from exc
    key = hashlib.sha256(f"{Path(path).name}|{kind}|{severity}|{seed}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(key[:8], "little"))
    notes = [n for inst in pm.instruments for n in inst.notes]
    if severity > 0 and notes:
        if kind == "timing_jitter":
            sd = severity * jitter_ms / 1000.0
            for n in notes:
                d = float(rng.normal(0.0, sd))
                dur = n.end - n.start
                n.start = max(0.0, n.start + d)
                n.end = n.start + dur
        elif kind == "wrong_notes":
            k = int(round(min(1.0, severity * wrong_note_rate) * len(notes)))
            for i in rng.choice(len(notes), size=k, replace=False):
                step = int(rng.choice([-2, -1, 1, 2]))
                notes[i].pitch = int(np.clip(notes[i].pitch + step, 21, 108))
        else:
            vel = np.array([n.velocity for n in notes], dtype=float)
            mean, keep = vel.mean(), 1.0 - severity / max_severity
            for n, v in zip(notes, vel):
                n.velocity = int(np.clip(round(mean + keep * (v - mean)), 1, 127))
        for inst in pm.instruments:
            inst.notes.sort(key=lambda n: (n.start, n.pitch))
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()
