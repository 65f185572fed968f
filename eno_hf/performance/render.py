"""Rendering of MIDI *content* (a file or bytes, e.g. a degraded performance) through the project's
renderer ``eno_hf.audio.midi`` (FluidSynth + General MIDI soundfonts, dry, gain 0.5, cached by
content hash + soundfont + settings).

Bytes are first written once to ``{cache_dir}/midi/{sha256[:32]}.mid`` so the renderer's own cache
key (the file content) applies to them too. No loudness normalisation: the level of a performance
is part of what raters judge (``timbre_soft_loud``, dynamics).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from eno_hf.audio.midi import render_midi
from eno_hf.utils.io import atomic_write

__all__ = ["midi_bytes_to_file", "render_midi_cached"]


def midi_bytes_to_file(data: bytes, cache_dir: str | Path) -> Path:
    """Write MIDI bytes to ``{cache_dir}/midi/{sha256[:32]}.mid`` (once) and return the path."""
    path = Path(cache_dir) / "midi" / f"{hashlib.sha256(data).hexdigest()[:32]}.mid"
    if not path.is_file():
        atomic_write(path, lambda fh: fh.write(data))
    return path


def render_midi_cached(path_or_bytes: str | Path | bytes, cache_dir: str | Path, sample_rate: int = 16_000,
                       soundfont: str | None = None) -> np.ndarray:
    """``(samples,)`` float32 mono rendering at ``sample_rate`` of a MIDI file or MIDI bytes.

    Raises:
        eno_hf.errors.AudioDecodeError (a ``RejectedInput``): missing/corrupt/note-less MIDI.
        FileNotFoundError: FluidSynth or the soundfont missing.
    """
    path = midi_bytes_to_file(bytes(path_or_bytes), cache_dir) if isinstance(path_or_bytes, (bytes, bytearray)) \
        else Path(path_or_bytes)
    return render_midi(path, sample_rate=sample_rate, soundfont=soundfont, cache_dir=Path(cache_dir) / "wav")
