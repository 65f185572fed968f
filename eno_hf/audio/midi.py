"""MIDI → audio with a real synthesizer: FluidSynth and General MIDI soundfonts.

Rendering is a conditioning step like decoding: a MIDI file is parsed (``mido``, so a corrupt file
is a per-file rejection, never a crash), rendered by the ``fluidsynth`` command-line synthesizer
(FluidSynth 2, https://www.fluidsynth.org) to a WAV in a cache, and that WAV then goes through the
same decode → mono → resample path as any audio file (``eno_hf.audio.io.load_audio``; loudness is
normalized later by ``eno_hf.audio.conditioning`` exactly as for recordings). The cache key is the
MIDI content hash + the soundfont (path, size, mtime) + the render settings, so a re-run renders
nothing and two soundfonts give two cached renderings (augmentation, cross-instrument tests).

A MIDI file is measured before anything is rendered (``inspect_midi``: a byte-level scan of the
Standard MIDI File chunks, no message objects, so a huge file costs neither minutes nor memory):
its playing time (tempo map applied; a ``note_off`` 7,000 ticks after its ``note_on`` at
``ticks_per_beat=1`` lasts 3,500 s), its note count and its size are checked against
``RenderSettings.max_duration_s`` / ``max_notes`` (``dataset.audio.midi``), and a file beyond them
is ``too_long`` without FluidSynth ever running. A corrupt header (wrong format, no track, SMPTE
time division, truncated chunk) is ``undecodable``.

The rendering cache is bounded: after each rendering the least recently used WAVs (a cache hit
refreshes a file's time stamp) are removed until the folder holds at most
``RenderSettings.cache_max_mb``; FluidSynth writes to a temporary file carrying the process id,
removed on every path (errors, timeouts); temporaries of dead processes are removed by the next
rendering; ``discard_render`` removes the rendering of an input rejected after rendering.

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

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from eno_hf.errors import AudioDecodeError
from eno_hf.utils.io import atomic_path, file_digest

if TYPE_CHECKING:
    from eno_hf.config import MidiRenderConfig

__all__ = ["MIDI_SUFFIXES", "SOUNDFONTS", "RenderSettings", "MidiFacts", "is_midi", "inspect_midi",
           "midi_duration_s", "render_midi", "render_midi_to_wav", "render_path", "discard_render",
           "evict_cache", "evict_lru", "resolve_soundfont"]

MIDI_SUFFIXES = frozenset({".mid", ".midi", ".smf"})

SOUNDFONTS: dict[str, str] = {
    "fluidr3": "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "musescore-lite": "/usr/share/sounds/sf3/MuseScore_General_Lite.sf3",
    "timgm6mb": "/usr/share/sounds/sf2/TimGM6mb.sf2",
}
DEFAULT_SOUNDFONT = "fluidr3"

MAX_RENDER_S = 1800.0
"""Default ``RenderSettings.max_duration_s`` (``dataset.audio.midi.max_duration_s``)."""
BYTES_PER_NOTE = 16
"""A MIDI file may hold at most ``max(1 MiB, BYTES_PER_NOTE * max_notes)`` bytes (a note on/off
pair takes 6-8 bytes; the rest leaves room for controllers): a bigger one is ``too_long``
before it is scanned."""
_STALE_TMP_S = 3600.0


@dataclass(frozen=True)
class RenderSettings:
    """How FluidSynth renders a MIDI file, and the limits checked before it does.

    Attributes:
        sample_rate: synthesis rate in Hz (FluidSynth synthesizes at this rate directly).
        soundfont: an alias of ``SOUNDFONTS`` or a path to an ``.sf2``/``.sf3`` file.
        gain: FluidSynth master gain (``-g``; its default 0.2 is quiet; loudness is normalized
            afterwards anyway, this only keeps dense passages from clipping inside the synth).
        reverb: FluidSynth's built-in reverb (off by default: a dry rendering; reverb is an
            augmentation, not a property of the performance).
        chorus: FluidSynth's built-in chorus (off by default).
        max_duration_s: longest playing time rendered (s); longer: ``too_long``, not rendered.
        max_notes: most notes rendered; more: ``too_long``, not rendered.
        cache_max_mb: size cap of the rendering cache in MiB (LRU eviction).

    Only the first five fields choose the rendering (and its cache key); the limits do not.
    """

    sample_rate: int = 44100
    soundfont: str = DEFAULT_SOUNDFONT
    gain: float = 0.5
    reverb: bool = False
    chorus: bool = False
    max_duration_s: float = MAX_RENDER_S
    max_notes: int = 200_000
    cache_max_mb: float = 2048.0

    @classmethod
    def from_config(cls, cfg: MidiRenderConfig, sample_rate: int) -> RenderSettings:
        """The settings of ``cfg`` (``dataset.audio.midi``) for synthesis at ``sample_rate`` Hz."""
        return cls(sample_rate=int(sample_rate), soundfont=cfg.soundfont, gain=cfg.gain, reverb=cfg.reverb,
                   chorus=cfg.chorus, max_duration_s=cfg.max_duration_s, max_notes=cfg.max_notes,
                   cache_max_mb=cfg.cache_max_mb)


@dataclass(frozen=True)
class MidiFacts:
    """What ``inspect_midi`` read from a Standard MIDI File without rendering it.

    Attributes:
        format: SMF format (0 or 1).
        n_tracks: tracks read.
        ticks_per_beat: time division (pulses per quarter note).
        duration_s: playing time in seconds up to the last event of the longest track, tempo
            changes of every track applied (as ``mido.MidiFile.length``).
        n_notes: ``note_on`` events with velocity > 0.
        size_bytes: file size.
    """

    format: int
    n_tracks: int
    ticks_per_beat: int
    duration_s: float
    n_notes: int
    size_bytes: int


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


class _Corrupt(Exception):
    """The byte scan met something that is not a Standard MIDI File."""


def _varlen(data: bytes, i: int, end: int) -> tuple[int, int]:
    value = 0
    for _ in range(4):
        if i >= end:
            raise _Corrupt("truncated variable-length number")
        b = data[i]
        i += 1
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            return value, i
    raise _Corrupt("variable-length number longer than 4 bytes")


# data bytes after a status byte: channel messages by high nibble, system common messages
_CHANNEL_LEN = {0x80: 2, 0x90: 2, 0xA0: 2, 0xB0: 2, 0xC0: 1, 0xD0: 1, 0xE0: 2}
_SYSTEM_LEN = {0xF1: 1, 0xF2: 2, 0xF3: 1, 0xF6: 0, 0xF8: 0, 0xF9: 0, 0xFA: 0, 0xFB: 0, 0xFC: 0,
               0xFD: 0, 0xFE: 0}


def _scan_track(data: bytes, i: int, end: int, tempos: list[tuple[int, int]]) -> tuple[int, int]:
    """Scan one MTrk body ``data[i:end]``; append ``(tick, tempo)`` and return (end tick, notes)."""
    tick = notes = 0
    running = 0
    while i < end:
        delta, i = _varlen(data, i, end)
        tick += delta
        if i >= end:
            raise _Corrupt("event without status byte at the end of a track")
        status = data[i]
        if status == 0xFF:  # meta event
            if i + 2 > end:
                raise _Corrupt("truncated meta event")
            kind = data[i + 1]
            length, i = _varlen(data, i + 2, end)
            if i + length > end:
                raise _Corrupt("meta event runs past its track")
            if kind == 0x51 and length == 3:
                tempo = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2]
                if tempo == 0:
                    raise _Corrupt("tempo 0")
                tempos.append((tick, tempo))
            i += length
            if kind == 0x2F:
                return tick, notes
            continue
        if status in (0xF0, 0xF7):  # sysex
            length, i = _varlen(data, i + 1, end)
            if i + length > end:
                raise _Corrupt("sysex runs past its track")
            i += length
            continue
        if status & 0x80:
            i += 1
            if status < 0xF0:
                running = status
            else:
                i += _SYSTEM_LEN.get(status, 0)
                continue
        elif running == 0:
            raise _Corrupt(f"data byte 0x{status:02x} without a running status")
        else:
            status = running
        n = _CHANNEL_LEN[status & 0xF0]
        if i + n > end:
            raise _Corrupt("truncated channel message")
        if status & 0xF0 == 0x90 and data[i + 1] > 0:
            notes += 1
        i += n
    return tick, notes


def _seconds(end_tick: int, tempos: list[tuple[int, int]], ticks_per_beat: int) -> float:
    """Playing time up to ``end_tick`` over the tempo map (default 500,000 us per beat)."""
    total, last_tick, tempo = 0.0, 0, 500_000
    for tick, new in sorted(tempos, key=lambda tt: tt[0]):
        if tick >= end_tick:
            break
        total += (tick - last_tick) * tempo / ticks_per_beat / 1e6
        last_tick, tempo = tick, new
    return total + (end_tick - last_tick) * tempo / ticks_per_beat / 1e6


def _undecodable(path: Path, detail: str) -> AudioDecodeError:
    return AudioDecodeError(path, f"not a valid MIDI file ({detail})"[:300], reason="undecodable")


def inspect_midi(path: str | Path, max_duration_s: float | None = None,
                 max_notes: int | None = None) -> MidiFacts:
    """Measure a Standard MIDI File without rendering it (one byte scan, no message objects).

    Args:
        path: the file.
        max_duration_s: playing time limit (s); ``None``: no limit.
        max_notes: note count limit (also bounds the size: ``BYTES_PER_NOTE`` bytes per note,
            at least 1 MiB); ``None``: no limit.

    Returns:
        ``MidiFacts`` (duration with the tempo map applied, note count, format, tracks).

    Raises:
        AudioDecodeError: ``missing_file``, ``empty`` (zero bytes), ``undecodable`` (not an SMF,
            format 2, no track, SMPTE time division, truncated or garbled chunk), ``too_long``
            (longer than ``max_duration_s``, more notes than ``max_notes``, or too many bytes),
            ``silent`` (no note at all).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise AudioDecodeError(path, "file not found", reason="missing_file") from None
    if size == 0:
        raise AudioDecodeError(path, "zero-byte file", reason="empty")
    if max_notes is not None and size > max(1 << 20, BYTES_PER_NOTE * max_notes):
        raise AudioDecodeError(
            path, f"{size} bytes: more events than max_notes={max_notes} allows "
                  f"({BYTES_PER_NOTE} bytes per note); not rendered", reason="too_long")
    data = path.read_bytes()
    try:
        if data[:4] != b"MThd" or len(data) < 14:
            raise _Corrupt("no MThd header" if data[:4] != b"MThd" else "truncated header")
        hlen = int.from_bytes(data[4:8], "big")
        if hlen < 6 or 8 + hlen > len(data):
            raise _Corrupt(f"header chunk length {hlen}")
        fmt, ntracks, division = (int.from_bytes(data[k:k + 2], "big") for k in (8, 10, 12))
        if fmt not in (0, 1, 2):
            raise _Corrupt(f"format {fmt} (0, 1 or 2 expected)")
        if fmt == 2:
            raise _Corrupt("format 2 (independent sequences) is not supported")
        if division & 0x8000:
            raise _Corrupt("SMPTE time division is not supported")
        if division == 0:
            raise _Corrupt("0 ticks per beat")
        if ntracks == 0:
            raise _Corrupt("the header declares no track")
        i, tracks, end_tick, notes = 8 + hlen, 0, 0, 0
        tempos: list[tuple[int, int]] = []
        while tracks < ntracks:
            if i + 8 > len(data):
                raise _Corrupt(f"{tracks} of {ntracks} tracks before the end of the file")
            kind, length = data[i:i + 4], int.from_bytes(data[i + 4:i + 8], "big")
            body = i + 8
            if body + length > len(data):
                raise _Corrupt(f"chunk {kind!r} of {length} bytes runs past the end of the file")
            if kind == b"MTrk":
                t_end, t_notes = _scan_track(data, body, body + length, tempos)
                end_tick, notes, tracks = max(end_tick, t_end), notes + t_notes, tracks + 1
            i = body + length
    except _Corrupt as exc:
        raise _undecodable(path, str(exc)) from None
    duration = _seconds(end_tick, tempos, division)
    if max_notes is not None and notes > max_notes:
        raise AudioDecodeError(path, f"{notes} notes > max_notes={max_notes}; not rendered",
                               reason="too_long")
    if max_duration_s is not None and not duration <= max_duration_s:
        raise AudioDecodeError(path, f"MIDI lasts {duration:.1f} s > max_duration_s="
                                     f"{max_duration_s}; not rendered", reason="too_long")
    if notes == 0:
        raise AudioDecodeError(path, "MIDI file has no notes", reason="silent")
    return MidiFacts(format=fmt, n_tracks=tracks, ticks_per_beat=division, duration_s=duration,
                     n_notes=notes, size_bytes=size)


def midi_duration_s(path: str | Path, max_duration_s: float | None = None) -> float:
    """Playing time of a MIDI file in seconds (tempo map applied, as ``mido.MidiFile.length``).

    Raises:
        AudioDecodeError: missing, empty, corrupt, note-less or (beyond ``max_duration_s``)
            ``too_long`` file (see ``inspect_midi``).
    """
    return inspect_midi(path, max_duration_s=max_duration_s).duration_s


def _cache_dir() -> Path:
    base = os.environ.get("ENO_RENDER_CACHE")
    return Path(base) if base else Path.home() / ".eno" / "cache" / "midi-render"


def _cache_key(path: Path, sf_path: Path, settings: RenderSettings) -> str:
    h = file_digest(path)
    st = sf_path.stat()
    synth = {"sample_rate": settings.sample_rate, "soundfont": settings.soundfont,
             "gain": settings.gain, "reverb": settings.reverb, "chorus": settings.chorus}
    h.update(json.dumps({"soundfont": str(sf_path), "size": st.st_size, "mtime": int(st.st_mtime),
                         **synth, "v": 1}, sort_keys=True).encode())
    return h.hexdigest()[:32]


def render_path(path: str | Path, settings: RenderSettings | None = None,
                cache_dir: str | Path | None = None) -> Path:
    """Where the rendering of ``path`` with ``settings`` is (or would be) cached.

    Raises:
        FileNotFoundError: the soundfont is not installed; OSError: ``path`` cannot be read.
    """
    settings = settings or RenderSettings()
    cache = Path(cache_dir) if cache_dir is not None else _cache_dir()
    sf_path = resolve_soundfont(settings.soundfont)
    return cache / f"{_cache_key(Path(path), sf_path, settings)}.wav"


def discard_render(path: str | Path, settings: RenderSettings | None = None,
                   cache_dir: str | Path | None = None) -> bool:
    """Remove the cached rendering of ``path`` (an input rejected after rendering: silent, too
    short...). Returns True when a file was removed; never raises."""
    try:
        out = render_path(path, settings, cache_dir)
        out.unlink()
        return True
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lru_hit(path: Path, min_bytes: int = 0) -> bool:
    """A cache lookup for ``evict_lru``'s caches: True when ``path`` is a file of more than
    ``min_bytes`` bytes (a complete entry), whose ``mtime`` is then set to now (the hit is a use:
    least recently used = oldest ``mtime``; a failure to set it is ignored). False otherwise."""
    try:
        if not path.is_file() or path.stat().st_size <= min_bytes:
            return False
    except OSError:
        return False
    try:
        os.utime(path)
    except OSError:
        pass
    return True


def evict_lru(folder: str | Path, suffix: str, max_bytes: int | None = None, keep: Path | None = None,
              tmp_prefix: str = ".") -> int:
    """Bound a file cache: remove temporaries (names starting with ``tmp_prefix``) of dead processes
    (``{tmp_prefix}{pid}-...``) or older than an hour, then the least recently used ``suffix`` files
    (oldest ``mtime``; cache hits refresh it) until at most ``max_bytes`` remain (None: no size
    bound). ``keep`` is never removed. Returns the bytes freed; never raises on I/O errors.
    Used by the rendering cache here and the transcription cache (``eno_hf.audio.transcribe``)."""
    freed = 0
    now = time.time()
    entries: list[tuple[float, int, Path]] = []
    try:
        listing = list(os.scandir(folder))
    except OSError:
        return 0
    for e in listing:
        try:
            st = e.stat(follow_symlinks=False)
        except OSError:
            continue
        if not e.is_file(follow_symlinks=False):
            continue
        if e.name.startswith(tmp_prefix):
            head = e.name[len(tmp_prefix):].split("-")[0]
            pid = int(head) if head.isdigit() else -1
            if (pid > 0 and pid != os.getpid() and not _pid_alive(pid)) or \
                    now - st.st_mtime > _STALE_TMP_S:
                try:
                    os.unlink(e.path)
                    freed += st.st_size
                except OSError:
                    pass
            continue
        if e.name.endswith(suffix):
            entries.append((st.st_mtime, st.st_size, Path(e.path)))
    if max_bytes is None:
        return freed
    total = sum(size for _, size, _ in entries)
    for _, size, p in sorted(entries, key=lambda x: x[0]):
        if total <= max_bytes:
            break
        if keep is not None and p == keep:
            continue
        try:
            p.unlink()
            freed += size
            total -= size
        except OSError:
            pass
    return freed


def evict_cache(cache_dir: str | Path | None = None, max_bytes: int | None = None,
                keep: Path | None = None) -> int:
    """Bound the rendering cache (``evict_lru`` over ``.wav`` renderings, temporaries
    ``.render-{pid}-...``). Returns bytes freed."""
    return evict_lru(Path(cache_dir) if cache_dir is not None else _cache_dir(), ".wav", max_bytes, keep,
                     tmp_prefix=".render-")


def render_midi_to_wav(path: str | Path, settings: RenderSettings | None = None,
                       cache_dir: str | Path | None = None, timeout_s: float = 600.0,
                       max_duration_s: float | None = None) -> Path:
    """Render a MIDI file to a (cached) 16-bit stereo WAV with the ``fluidsynth`` CLI, after
    measuring it (``inspect_midi``: nothing is rendered beyond the limits).

    Args:
        path: a Standard MIDI File (type 0 or 1).
        settings: ``RenderSettings`` (rate, soundfont, gain, reverb/chorus, limits).
        cache_dir: where renderings are kept (default ``$ENO_RENDER_CACHE`` or
            ``~/.eno/cache/midi-render``); the file name is the cache key; at most
            ``settings.cache_max_mb`` are kept (least recently used removed first).
        timeout_s: give up on a hung synthesizer after this many seconds.
        max_duration_s: a further playing-time limit (e.g. a service's); the smaller of it and
            ``settings.max_duration_s`` applies.

    Returns:
        Path of the rendered WAV (stereo, ``settings.sample_rate`` Hz).

    Raises:
        AudioDecodeError: corrupt/empty MIDI (``undecodable``/``empty``), beyond the limits
            (``too_long``), no notes (``silent``), or FluidSynth failed (``undecodable``, its
            message in the detail).
        FileNotFoundError: the soundfont or the ``fluidsynth`` program is not installed.
    """
    path = Path(path)
    settings = settings or RenderSettings()
    limit = settings.max_duration_s
    if max_duration_s is not None:
        limit = min(limit, max_duration_s)
    inspect_midi(path, max_duration_s=limit, max_notes=settings.max_notes)
    sf_path = resolve_soundfont(settings.soundfont)
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise FileNotFoundError("the fluidsynth program is not installed: apt-get install fluidsynth "
                                "(scripts/setup.sh does)")
    cache = Path(cache_dir) if cache_dir is not None else _cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    out = cache / f"{_cache_key(path, sf_path, settings)}.wav"
    if lru_hit(out, min_bytes=44):  # more than a WAV header
        return out
    try:
        with atomic_path(out, prefix=f".render-{os.getpid()}-", suffix=".wav") as tmp:
            cmd = [exe, "-ni", "-q", "-T", "wav", "-r", str(int(settings.sample_rate)),
                   "-g", str(float(settings.gain)),
                   "-o", f"synth.reverb.active={int(settings.reverb)}",
                   "-o", f"synth.chorus.active={int(settings.chorus)}",
                   "-F", str(tmp), str(sf_path), str(path)]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
            if proc.returncode != 0 or not tmp.is_file() or tmp.stat().st_size <= 44:
                msg = (proc.stderr or proc.stdout or "no output").strip().splitlines()
                raise AudioDecodeError(path, f"fluidsynth failed (exit {proc.returncode}): "
                                       f"{msg[-1][:200] if msg else ''}", reason="undecodable")
    except subprocess.TimeoutExpired as exc:
        raise AudioDecodeError(path, f"fluidsynth did not finish in {timeout_s:.0f} s",
                               reason="undecodable") from exc
    evict_cache(cache, int(settings.cache_max_mb * 2**20), keep=out)
    return out


def render_midi(path: str | Path, sample_rate: int | None = 16000, soundfont: str | Path | None = None,
                mono: bool = True, settings: RenderSettings | None = None,
                cache_dir: str | Path | None = None) -> np.ndarray:
    """Render a MIDI file to audio: FluidSynth → cached WAV at ``sample_rate`` → float32 (mono: channel mean).

    Args:
        path: a Standard MIDI File.
        sample_rate: output rate in Hz (FluidSynth synthesizes at this rate; ``None`` = 44.1 kHz).
        soundfont: alias or path (overrides ``settings.soundfont``; default ``fluidr3``).
        mono: mix the synth's stereo output down to mono (channel mean).
        settings: other render settings (gain, reverb, chorus, limits).
        cache_dir: rendering cache (see ``render_midi_to_wav``).

    Returns:
        float32 ``(samples,)`` when ``mono`` else ``(2, samples)``, in [-1, 1], not
        loudness-normalized (``eno_hf.audio.conditioning`` does that, as for any recording).

    Raises:
        AudioDecodeError: corrupt, empty, too long or note-less MIDI, or a synthesizer failure.
        FileNotFoundError: FluidSynth or the soundfont is not installed.
    """
    from dataclasses import replace

    import soundfile

    base = settings or RenderSettings()
    rate = int(sample_rate) if sample_rate else base.sample_rate
    sf = str(soundfont) if soundfont is not None else base.soundfont
    cfg = replace(base, sample_rate=rate, soundfont=sf)
    wav = render_midi_to_wav(path, cfg, cache_dir=cache_dir)
    data, _ = soundfile.read(str(wav), dtype="float32", always_2d=True)  # synthesized at ``rate``
    if mono:  # channel mean, as eno_hf.audio.io.load_audio mixes down
        return data.mean(axis=1, dtype=np.float32)
    return np.ascontiguousarray(data.T)
