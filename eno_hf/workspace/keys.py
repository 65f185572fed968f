"""Key names: one canonical spelling per (pitch class, mode), transposition, and the
Krumhansl–Schmuckler key of a chroma vector (audio).

Canonical spellings (music21 names, ``-`` = flat): major ``C D- D E- E F F# G A- A B- B``,
minor ``C C# D E- E F F# G G# A B- B``, written ``"{tonic} {mode}"`` (e.g. ``"B- major"``).
"""

from __future__ import annotations

import numpy as np

MAJOR_TONICS = ("C", "D-", "D", "E-", "E", "F", "F#", "G", "A-", "A", "B-", "B")
MINOR_TONICS = ("C", "C#", "D", "E-", "E", "F", "F#", "G", "G#", "A", "B-", "B")


def pitch_class(tonic: str) -> int:
    """Pitch class 0–11 of a music21 tonic name (``"B-"``, ``"C#"``, ``"E--"``)."""
    from music21 import pitch

    return int(pitch.Pitch(tonic).pitchClass)


def key_name(pc: int, mode: str) -> str:
    """Canonical ``"{tonic} {mode}"`` for pitch class ``pc`` and ``mode`` (major/minor)."""
    tonics = MAJOR_TONICS if mode == "major" else MINOR_TONICS
    return f"{tonics[int(pc) % 12]} {mode}"


def canonical_key(key: str | None) -> str | None:
    """Respell ``"D# minor"`` → ``"E- minor"``, ``"A# major"`` → ``"B- major"``; None/"" → None."""
    if not key:
        return None
    tonic, mode = key.split()
    return key_name(pitch_class(tonic), mode)


def transpose_key(key: str | None, semitones: int) -> str | None:
    """The key ``semitones`` up (negative: down), canonical; None stays None."""
    if not key:
        return None
    tonic, mode = key.split()
    return key_name(pitch_class(tonic) + int(semitones), mode)


def chroma_key(chroma: np.ndarray) -> tuple[str, str, float]:
    """Krumhansl–Schmuckler key of a 12-bin chroma (C..B): the major/minor Krumhansl–Kessler
    profile (weights from ``music21.analysis.discrete.KrumhanslSchmuckler``) rotated to each
    tonic with the highest Pearson correlation.

    Returns:
        ``(canonical key name, mode, correlation)``; ``("", "", nan)`` for a flat chroma.
    """
    from music21 import analysis

    c = np.asarray(chroma, dtype=np.float64).reshape(12)
    if not np.all(np.isfinite(c)) or c.std() == 0:
        return "", "", float("nan")
    ks = analysis.discrete.KrumhanslSchmuckler()
    best = ("", "", -2.0)
    for mode in ("major", "minor"):
        prof = np.asarray(ks.getWeights(mode), dtype=np.float64)
        for pc in range(12):
            r = float(np.corrcoef(c, np.roll(prof, pc))[0, 1])
            if r > best[2]:
                best = (key_name(pc, mode), mode, r)
    return best
