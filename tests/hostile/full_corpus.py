"""The whole hostile corpus in one folder, for one run through ``eno build``, ``eno tag`` and
``eno serve``.

``make_full_corpus(base, real_clips)`` writes under ``base/audio`` (the folder the three commands
are given; labels from the first folder level, as the ``folders`` source reads them):

- ``old/``: the build corpus of ``tests/test_bad_inputs.py`` (``make_corpus``: good WAV/FLAC files
  of odd rates and channel counts, empty, truncated, text and image files named like audio,
  silence, NaN/Inf, too short, a cut real MP3, a corrupt MIDI, a file without a metadata row --
  a plain file here --, ``notes.txt``, a directory ``album.mp3``, symlinks to a file outside the
  root and to ``/etc/passwd``; ``locked.wav`` only when not running as root); its metadata rows
  are a ``csv``-source matter and are not part of this corpus;
- ``midi/``, ``mp3/``: the MIDI bombs, corrupt MIDI header, note-less MIDI and lying MP3 of
  ``corpus.py`` (``lying.mp3`` lasts 60 s; its header claims 3.6 s);
- ``rock/``, ``jazz/``, ``locked/``: ``batch_corpus.make_batch_corpus`` (a stem shared by an MP3,
  a WAV and a MIDI file, a FIFO, a folder the walk cannot list);
- ``links/``: symlinks to real clips elsewhere (``batch_corpus.make_link_folder``);
- ``real/``: copies of real clips (they must be accepted everywhere).

Each entry's expected outcome is ``{relative path: (build, tag, serve)}`` under ``LIMITS`` (``"ok"``
written / tagged / answered; serve ``None``: not uploadable -- a FIFO, a folder). Where the paths
legitimately differ:

- symlinks: ``eno build`` confines its walk to the audio root (``outside_root``), ``eno tag``
  follows links in a folder the user named, and an upload is its bytes (serve == tag);
- ``notes.txt``: build and tag refuse it by its suffix (``unsupported``); an upload has no suffix
  filter, the client's content type (``text/plain``) is refused first (``unsupported_media_type``).
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from batch_corpus import make_batch_corpus, make_link_folder
from corpus import midi_bomb_long, midi_bomb_notes, midi_corrupt_header, midi_no_notes, mp3_lying_header

LIMITS = {
    "dataset.audio.max_duration_s": 35.0,
    "dataset.audio.midi.max_duration_s": 900.0,
    "dataset.audio.midi.cache_max_mb": 1.0,
    "serve.max_duration_s": 35.0,
    "serve.min_duration_s": 1.0,
    "serve.max_sample_rate_hz": 192_000,
}
"""Settings under which the expected reasons hold: 35 s admits the real 30-s clips and refuses the
60-s lying MP3; the service's minimum duration and sample-rate cap are set to build's (1 s, no
rate cap below the corpus's 192-kHz FLAC) so that the three paths share one set of limits."""

SERVE_ONLY = {"unsupported": "unsupported_media_type"}
"""Build/tag reason -> serve reason of ``notes.txt`` (see the module docstring)."""


def _bad_inputs_module():
    """``tests/test_bad_inputs.py`` loaded by path (test folders are not packages)."""
    path = Path(__file__).resolve().parents[1] / "test_bad_inputs.py"
    spec = importlib.util.spec_from_file_location("eno_tests_bad_inputs_corpus", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def make_full_corpus(base: Path, real_clips: list[Path]) -> dict[str, tuple[str, str, str | None]]:
    """Write the corpus under ``base/audio`` (+ ``base/outside``, a link target outside it).

    Args:
        base: an empty folder.
        real_clips: at least two real audio files (MP3) of at most 30 s, outside ``base``: the
            first two are copied into ``real/``, all are linked from ``links/``; the first is
            cut for ``old/cut.mp3``.

    Returns:
        ``{path relative to base/audio: (build reason, tag reason, serve reason or None)}``.
    """
    base = Path(base)
    audio = base / "audio"
    exp: dict[str, tuple[str, str, str | None]] = {}

    bad = _bad_inputs_module()
    old = bad.make_corpus(base / "old-corpus", real_clips[0] if real_clips else None)
    audio.mkdir(parents=True)
    (base / "old-corpus" / "audio").rename(audio / "old")  # absolute links: still valid
    for key, (build, tag) in old.items():
        if key.startswith("row:"):
            continue  # metadata rows: the csv source's corpus
        if key == "orphan.wav":
            build = "ok"  # the folders source needs no metadata row
        serve: str | None = tag
        if key == "album.mp3":
            serve = None  # a directory
        elif key == "notes.txt":
            serve = SERVE_ONLY[tag]
        exp[f"old/{key}"] = (build, tag, serve)

    for make, sub in ((midi_bomb_long, "midi"), (midi_bomb_notes, "midi"), (midi_corrupt_header, "midi"),
                      (midi_no_notes, "midi"), (lambda f: mp3_lying_header(f, real_s=60.0), "mp3")):
        (audio / sub).mkdir(exist_ok=True)
        path, reason = make(audio / sub)
        exp[path.relative_to(audio).as_posix()] = (reason, reason, reason)

    for key, (build, tag) in make_batch_corpus(audio).items():
        exp[key] = (build, tag, None if key in ("rock/pipe.wav", "locked") else tag)
    for key, (build, tag) in make_link_folder(audio / "links", list(real_clips)).items():
        exp[f"links/{key}"] = (build, tag, tag)

    (audio / "real").mkdir()
    for clip in real_clips[:2]:
        shutil.copyfile(clip, audio / "real" / clip.name)
        exp[f"real/{clip.name}"] = ("ok", "ok", "ok")
    return exp


__all__ = ["LIMITS", "SERVE_ONLY", "make_full_corpus"]
