"""MIDI → audio with a real synthesizer: FluidSynth and General MIDI soundfonts.

Rendering is a conditioning step like decoding: a MIDI file is parsed (``mido``, so a corrupt file
is a per-file rejection, never a crash), rendered by the ``fluidsynth`` command-line synthesizer
(FluidSynth 2, https://www.fluidsynth.org) to a WAV in a cache, and that WAV then goes through the
same decode → mono → resample path as any audio file (``eno_hf.audio.io.load_audio``; loudness is
normalized later by ``eno_hf.audio.conditioning`` exactly as for recordings). The cache key is the
MIDI content hash + the soundfont (path, size, mtime) + the render settings, so a re-run renders
nothing and two soundfonts give two cached renderings (augmentation, cross-instrument tests).

Soundfonts (Debian packages, installed by ``scripts/setup.sh``)::

    fluidr3        /usr/share/sounds/sf2/FluidR3_GM.sf2            (fluid-soundfont-gm, default)
    musescore-lite /usr/share/sounds/sf3/MuseScore_General_Lite.sf3 (musescore-general-soundfont-small)
    timgm6mb       /usr/share/sounds/sf2/TimGM6mb.sf2              (timgm6mb-soundfont)

All three have an acoustic grand piano at program 0. Example::

    >>> from eno_hf.audio.midi import render_midi
    >>> y = render_midi("../shared/data/percepiano/midi/some.mid", sample_rate=16000)
    >>> y.dtype, y.ndim
    (dtype('float32'), 1)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from eno_hf.errors import AudioDecodeError

__all__ = ["MIDI_SUFFIXES", "SOUNDFONTS", "RenderSettings", "is_midi", "midi_duration_s",
           "render_midi", "render_midi_to_wav", "resolve_soundfont"]

MIDI_SUFFIXES = frozenset({".mid", ".midi", ".smf"})

SOUNDFONTS: dict[str, str] = {
    "fluidr3": "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "musescore-lite": "/usr/share/sounds/sf3/MuseScore_General_Lite.sf3",
    "timgm6mb": "/usr/share/sounds/sf2/TimGM6mb.sf2",
}
DEFAULT_SOUNDFONT = "fluidr3"

# A MIDI file longer than this is refused (a corrupt tempo map can make a tiny file "last" days).
MAX_RENDER_S = 3600.0


@dataclass(frozen=True)
class RenderSettings:
    """How FluidSynth renders a MIDI file.

    Attributes:
        sample_rate: synthesis rate in Hz (FluidSynth synthesizes at this rate directly).
        soundfont: an alias of ``SOUNDFONTS`` or a path to an ``.sf2``/``.sf3`` file.
        gain: FluidSynth master gain (``-g``; its default 0.2 is quiet; loudness is normalized
            afterwards anyway, this only keeps dense passages from clipping inside the synth).
        reverb: FluidSynth's built-in reverb (off by default: a dry rendering; reverb is an
            augmentation, not a property of the performance).
        chorus: FluidSynth's built-in chorus (off by default).
    """

    sample_rate: int = 44100
    soundfont: str = DEFAULT_SOUNDFONT
    gain: float = 0.5
    reverb: bool = False
    chorus: bool = False


def is_midi(path: str | Path) -> bool:
    """True when ``path`` has a Standard MIDI File suffix (``.mid``, ``.midi``, ``.smf``)."""
    return Path(path).suffix.lower() in MIDI_SUFFIXES


def resolve_soundfont(soundfont: str | Path | None) -> Path:
    """Path of a soundfont given an alias (``fluidr3``, ``musescore-lite``, ``timgm6mb``) or a path.

    Raises:
        FileNotFoundError: the soundfont is not installed (the message names the Debian package).
    """
    name = str(soundfont or DEFAULT_SOUNDFONT)
    path = Path(SOUNDFONTS.get(name, name)).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"soundfont {name!r} not found at {path}: install the Debian packages fluidsynth "
            "fluid-soundfont-gm musescore-general-soundfont-small timgm6mb-soundfont "
            "(scripts/setup.sh does), or give a path to an .sf2/.sf3 file")
    return path


def _parse(path: Path):
    """Parse with mido; a corrupt file raises ``AudioDecodeError(reason='undecodable')``."""
    import mido

    if not path.is_file():
        raise AudioDecodeError(path, "file not found", reason="missing_file")
    if path.stat().st_size == 0:
        raise AudioDecodeError(path, "zero-byte file", reason="empty")
    try:
        midi = mido.MidiFile(str(path))
        length = float(midi.length)  # walks every track: catches truncated/garbage tracks
    except Exception as exc:  # noqa: BLE001 - mido raises OSError/EOFError/ValueError/KeyError...
        raise AudioDecodeError(path, f"not a valid MIDI file ({type(exc).__name__}: {exc})"[:300],
                               reason="undecodable") from exc
    if midi.type == 2:
        raise AudioDecodeError(path, "MIDI type 2 (independent sequences) is not supported",
                               reason="undecodable")
    if not np.isfinite(length) or length > MAX_RENDER_S:
        raise AudioDecodeError(path, f"MIDI lasts {length:.0f} s (> {MAX_RENDER_S:.0f} s)",
                               reason="undecodable")
    n_notes = sum(1 for track in midi.tracks for msg in track
                  if msg.type == "note_on" and msg.velocity > 0)
    if n_notes == 0:
        raise AudioDecodeError(path, "MIDI file has no notes", reason="silent")
    return midi, length


def midi_duration_s(path: str | Path) -> float:
    """Playing time of a MIDI file in seconds (tempo map applied, ``mido.MidiFile.length``).

    Raises:
        AudioDecodeError: missing, empty, corrupt or note-less file.
    """
    return _parse(Path(path))[1]


def _cache_dir() -> Path:
    base = os.environ.get("ENO_RENDER_CACHE")
    return Path(base) if base else Path.home() / ".eno" / "cache" / "midi-render"


def _cache_key(path: Path, sf_path: Path, settings: RenderSettings) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        h.update(fh.read())
    st = sf_path.stat()
    h.update(json.dumps({"soundfont": str(sf_path), "size": st.st_size, "mtime": int(st.st_mtime),
                         **asdict(settings), "v": 1}, sort_keys=True).encode())
    return h.hexdigest()[:32]


def render_midi_to_wav(path: str | Path, settings: RenderSettings | None = None,
                       cache_dir: str | Path | None = None, timeout_s: float = 600.0) -> Path:
    """Render a MIDI file to a (cached) 16-bit stereo WAV with the ``fluidsynth`` CLI.

    Args:
        path: a Standard MIDI File (type 0 or 1).
        settings: ``RenderSettings`` (rate, soundfont, gain, reverb/chorus).
        cache_dir: where renderings are kept (default ``$ENO_RENDER_CACHE`` or
            ``~/.eno/cache/midi-render``); the file name is the cache key.
        timeout_s: give up on a hung synthesizer after this many seconds.

    Returns:
        Path of the rendered WAV (stereo, ``settings.sample_rate`` Hz).

    Raises:
        AudioDecodeError: corrupt/empty MIDI (``undecodable``/``empty``), no notes (``silent``),
            or FluidSynth failed (``undecodable``, its message in the detail).
        FileNotFoundError: the soundfont or the ``fluidsynth`` program is not installed.
    """
    path = Path(path)
    settings = settings or RenderSettings()
    _parse(path)
    sf_path = resolve_soundfont(settings.soundfont)
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise FileNotFoundError("the fluidsynth program is not installed: apt-get install fluidsynth "
                                "(scripts/setup.sh does)")
    cache = Path(cache_dir) if cache_dir is not None else _cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    out = cache / f"{_cache_key(path, sf_path, settings)}.wav"
    if out.is_file() and out.stat().st_size > 44:
        return out
    fd, tmp = tempfile.mkstemp(suffix=".wav", dir=cache, prefix=".render-")
    os.close(fd)
    cmd = [exe, "-ni", "-q", "-T", "wav", "-r", str(int(settings.sample_rate)),
           "-g", str(float(settings.gain)),
           "-o", f"synth.reverb.active={int(settings.reverb)}",
           "-o", f"synth.chorus.active={int(settings.chorus)}",
           "-F", tmp, str(sf_path), str(path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        if proc.returncode != 0 or not Path(tmp).is_file() or Path(tmp).stat().st_size <= 44:
            msg = (proc.stderr or proc.stdout or "no output").strip().splitlines()
            raise AudioDecodeError(path, f"fluidsynth failed (exit {proc.returncode}): "
                                   f"{msg[-1][:200] if msg else ''}", reason="undecodable")
        os.replace(tmp, out)
    except subprocess.TimeoutExpired as exc:
        raise AudioDecodeError(path, f"fluidsynth did not finish in {timeout_s:.0f} s",
                               reason="undecodable") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def render_midi(path: str | Path, sample_rate: int | None = 16000, soundfont: str | Path | None = None,
                mono: bool = True, settings: RenderSettings | None = None,
                cache_dir: str | Path | None = None) -> np.ndarray:
    """Render a MIDI file to audio: FluidSynth → cached WAV → ``load_audio`` (mono, soxr).

    Args:
        path: a Standard MIDI File.
        sample_rate: output rate in Hz (FluidSynth synthesizes at this rate; ``None`` = 44.1 kHz).
        soundfont: alias or path (overrides ``settings.soundfont``; default ``fluidr3``).
        mono: mix the synth's stereo output down to mono (channel mean).
        settings: other render settings (gain, reverb, chorus).
        cache_dir: rendering cache (see ``render_midi_to_wav``).

    Returns:
        float32 ``(samples,)`` when ``mono`` else ``(2, samples)``, in [-1, 1], not
        loudness-normalized (``eno_hf.audio.conditioning`` does that, as for any recording).

    Raises:
        AudioDecodeError: corrupt, empty or note-less MIDI, or a synthesizer failure.
        FileNotFoundError: FluidSynth or the soundfont is not installed.
    """
    from eno_hf.audio.io import load_audio

    base = settings or RenderSettings()
    rate = int(sample_rate) if sample_rate else base.sample_rate
    sf = str(soundfont) if soundfont is not None else base.soundfont
    cfg = RenderSettings(sample_rate=rate, soundfont=sf, gain=base.gain, reverb=base.reverb,
                         chorus=base.chorus)
    wav = render_midi_to_wav(path, cfg, cache_dir=cache_dir)
    samples, _ = load_audio(wav, sample_rate=rate, mono=mono)
    return samples
