"""Generators of the batch-path corpus: what a careless user's folder holds, for ``eno build``
(folders source) and ``eno tag FOLDER``.

``make_batch_corpus(root)`` writes, under ``root`` (labels from the first folder level):

- ``rock/x.mp3``, ``rock/x.wav``, ``rock/x.mid``: one stem, three files, each an input of its own
  (ids keep the extension when stems collide);
- ``rock/good.wav``, ``jazz/y.wav``: plain good files;
- ``rock/pipe.wav``: a FIFO named like audio: ``unsupported`` (not a regular file), never opened;
- ``locked/``: a folder the walk cannot list, holding ``hidden.wav``: one ``io_error`` record for
  the folder (mode 000; root reads it anyway, so a test running as root makes ``os.scandir``
  fail on it, see ``deny_listing``).

``make_link_folder(folder, targets)`` writes a folder of symlinks to real files elsewhere (a
playlist of links into a music library): ``eno tag`` follows them, ``eno build`` with that folder
as ``audio_root`` rejects them as ``outside_root``.

Each entry's expected outcome is returned as ``{relative path: (build reason, tag reason)}``,
``"ok"`` for a file written to the dataset / tagged.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16_000
LOCKED = "locked"


def tone(path: Path, seconds: float = 3.0, seed: int = 0) -> Path:
    """A mono 16-kHz PCM-16 WAV: a sine (220 Hz + 55 Hz x ``seed``) plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = 0.3 * np.sin(2 * np.pi * (220.0 + 55 * seed) * t) + 0.05 * rng.standard_normal(t.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x.astype(np.float32), SR, subtype="PCM_16")
    return path


def mp3(path: Path, seconds: float = 3.0, seed: int = 0) -> Path:
    """An MP3 of ``tone`` encoded by the ``ffmpeg`` command line."""
    wav = tone(path.with_suffix(".tmp.wav"), seconds, seed)
    try:
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), "-c:a", "libmp3lame",
                        "-b:a", "64k", str(path)], check=True, timeout=60)
    finally:
        wav.unlink(missing_ok=True)
    return path


def midi(path: Path, seconds: float = 3.0) -> Path:
    """A valid MIDI file (``mido``): a C-major arpeggio lasting about ``seconds``."""
    import mido

    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.Message("program_change", program=0, time=0))
    n = max(1, int(seconds / 0.5))  # quarter notes at the default 120 bpm
    for i in range(n):
        note = (60, 64, 67, 72)[i % 4]
        track.append(mido.Message("note_on", note=note, velocity=90, time=0))
        track.append(mido.Message("note_off", note=note, velocity=0, time=480))
    path.parent.mkdir(parents=True, exist_ok=True)
    mid.save(str(path))
    return path


def make_batch_corpus(root: Path) -> dict[str, tuple[str, str]]:
    """Write the corpus under ``root`` (see the module docstring); returns the expectations."""
    root = Path(root)
    exp: dict[str, tuple[str, str]] = {}
    mp3(root / "rock" / "x.mp3", seed=1)
    exp["rock/x.mp3"] = ("ok", "ok")
    tone(root / "rock" / "x.wav", seed=2)
    exp["rock/x.wav"] = ("ok", "ok")
    midi(root / "rock" / "x.mid")
    exp["rock/x.mid"] = ("ok", "ok")
    tone(root / "rock" / "good.wav", seed=3)
    exp["rock/good.wav"] = ("ok", "ok")
    tone(root / "jazz" / "y.wav", seed=4)
    exp["jazz/y.wav"] = ("ok", "ok")
    os.mkfifo(root / "rock" / "pipe.wav")
    exp["rock/pipe.wav"] = ("unsupported", "unsupported")
    tone(root / LOCKED / "hidden.wav", seed=5)
    (root / LOCKED).chmod(0)
    exp[LOCKED] = ("io_error", "io_error")
    return exp


def unlock(root: Path) -> None:
    """Make ``make_batch_corpus``'s locked folder removable again."""
    locked = Path(root) / LOCKED
    if locked.exists():
        locked.chmod(0o755)


def deny_listing(root: Path) -> Callable[..., object]:
    """An ``os.scandir`` replacement failing with ``PermissionError`` on ``root/locked`` (what a
    user who is not root meets on a mode-000 folder), for tests running as root:
    ``monkeypatch.setattr(os, "scandir", deny_listing(root))``."""
    real = os.scandir
    locked = os.path.abspath(Path(root) / LOCKED)

    def scandir(path: int | str | os.PathLike = ".") -> object:
        if not isinstance(path, int) and os.path.abspath(path) == locked:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path)

    return scandir


def make_link_folder(folder: Path, targets: list[Path]) -> dict[str, tuple[str, str]]:
    """``folder/{name}`` symlinks to each of ``targets`` (real files elsewhere); expectations as
    in ``make_batch_corpus`` (build: ``outside_root``; tag: the linked files, followed)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    exp: dict[str, tuple[str, str]] = {}
    for t in targets:
        (folder / t.name).symlink_to(t)
        exp[t.name] = ("outside_root", "ok")
    return exp


def rel(path: str | Path, root: Path) -> str:
    """``path`` relative to ``root`` as a POSIX string (the corpus key)."""
    return Path(path).relative_to(root).as_posix()


__all__ = ["make_batch_corpus", "make_link_folder", "deny_listing", "unlock", "rel", "tone", "mp3",
           "midi"]
