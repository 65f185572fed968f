"""Generators of hostile inputs: one function per file, each writing it under a given folder and
returning its path and the reason every path (``eno build``, ``eno tag``, ``eno serve``) must give.

Each function is small and fast (bytes written directly, or a few seconds of FFmpeg-encoded
sine), so a test can build the whole corpus in a temporary folder. ``MIDI_AND_LENGTH`` lists the
functions of this module with the limits they are meant to be run under (``LIMITS``: the
``dataset.audio`` / ``serve`` settings that make the expected reasons hold).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

LIMITS = {
    "dataset.audio.max_duration_s": 10.0,
    "dataset.audio.midi.max_duration_s": 900.0,
    "serve.max_duration_s": 10.0,
}
"""Settings under which the expected reasons below hold (short limits keep the corpus small)."""


def _smf(track: bytes, fmt: int = 0, ntracks: int = 1, division: int = 1) -> bytes:
    """A Standard MIDI File: header + one ``MTrk`` with ``track`` (events, end of track added)."""
    body = track + b"\x00\xff\x2f\x00"
    return (b"MThd" + struct.pack(">IHHH", 6, fmt, ntracks, division)
            + b"MTrk" + struct.pack(">I", len(body)) + body)


def midi_bomb_long(folder: Path, name: str = "long.mid") -> tuple[Path, str]:
    """35 bytes lasting 3,500 s: one note_on and its note_off 7,000 ticks later at
    ``ticks_per_beat=1`` (default tempo: 0.5 s per beat). Expected: ``too_long``, nothing
    rendered."""
    path = Path(folder) / name
    # delta 7000 = 0xb6 0x58 as a variable-length number
    path.write_bytes(_smf(b"\x00\x90\x3c\x40" + b"\xb6\x58\x80\x3c\x00", division=1))
    return path, "too_long"


def midi_bomb_notes(folder: Path, name: str = "notes.mid", n_notes: int = 200_001) -> tuple[Path, str]:
    """``n_notes`` one-tick notes (7 bytes a note, 1.4 MB, 7 minutes of music): one more than the
    default ``dataset.audio.midi.max_notes`` (200,000). Expected: ``too_long``, nothing rendered."""
    path = Path(folder) / name
    notes = (b"\x00\x90\x3c\x40" + b"\x01\x3c\x00") * n_notes  # on, then off as velocity 0
    path.write_bytes(_smf(notes, division=480))
    return path, "too_long"


def midi_corrupt_header(folder: Path, name: str = "corrupt_header.mid") -> tuple[Path, str]:
    """A MIDI file whose header declares format 7 and no track, followed by a valid track.
    Expected: ``undecodable`` (not ``silent``)."""
    path = Path(folder) / name
    good = _smf(b"\x00\x90\x3c\x40\x60\x80\x3c\x00", division=96)
    path.write_bytes(good[:8] + struct.pack(">HHH", 7, 0, 96) + good[14:])
    return path, "undecodable"


def midi_no_notes(folder: Path, name: str = "no_notes.mid") -> tuple[Path, str]:
    """A valid MIDI file with a program change and no note. Expected: ``silent``."""
    path = Path(folder) / name
    path.write_bytes(_smf(b"\x00\xc0\x00\x83\x60\xff\x01\x01x", division=96))
    return path, "silent"


def mp3_lying_header(folder: Path, name: str = "lying.mp3", real_s: float = 20.0,
                     claimed_frames: int = 100) -> tuple[Path, str]:
    """An MP3 whose Info (Xing) header claims ``claimed_frames`` frames (3.6 s at 16 kHz) while
    the stream holds ``real_s`` seconds (FFmpeg's libmp3lame, 8 kb/s sine, ~20 KB); libsndfile
    decodes only what the header claims. Expected under ``LIMITS`` (10 s): ``too_long``.

    Raises:
        FileNotFoundError: the ``ffmpeg`` program is not installed.
    """
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise FileNotFoundError("ffmpeg is not installed (apt-get install ffmpeg)")
    path = Path(folder) / name
    subprocess.run([exe, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"sine=f=440:d={real_s}", "-ac", "1", "-ar", "16000", "-b:a", "8k", str(path)],
                   check=True)
    data = bytearray(path.read_bytes())
    at = data.find(b"Info")
    if at < 0:
        at = data.find(b"Xing")
    if at < 0:
        raise RuntimeError(f"{path}: FFmpeg wrote no Xing/Info header")
    flags = struct.unpack(">I", data[at + 4:at + 8])[0]
    if not flags & 0x1:
        raise RuntimeError(f"{path}: Xing/Info header without a frame count")
    data[at + 8:at + 12] = struct.pack(">I", claimed_frames)
    path.write_bytes(bytes(data))
    return path, "too_long"


MIDI_AND_LENGTH: tuple[Callable[[Path], tuple[Path, str]], ...] = (
    midi_bomb_long, midi_bomb_notes, midi_corrupt_header, midi_no_notes, mp3_lying_header)
"""The generators above (each ``f(folder) -> (path, expected_reason)`` under ``LIMITS``)."""
