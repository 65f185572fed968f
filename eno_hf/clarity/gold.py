"""Real gold audio for the clarity workflow: recorded drum samples and MIDI rendered with FluidSynth.

- ``drums``: one-shot samples from the Debian ``hydrogen-drumkits`` kits (recorded kicks, snares,
  toms, hi-hats, cymbals), classified by keywords in their file names, ``drums_per_sound`` per sound,
  taken round-robin over the kits so each sound spans several kits and microphones.
- ``bass``, ``guitar``, ``keys``, ``vocals``: real piano performances (PercePiano MIDI) re-voiced
  with a General MIDI program per instrument (program changes on every channel, notes transposed and
  folded into the instrument's range with ``mido``) and rendered by FluidSynth with a GM soundfont
  (choir "aahs" is the vocal stand-in). Each instrument gets different MIDI files.

Files are decoded to mono at the analysis rate, trimmed of leading silence (-60 dB re peak), cut to
``max_duration_s`` and written as 24-bit WAV ``gold/{instrument}/{sound}_gold_{NNN}.wav``.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from eno_hf.audio.io import load_audio
from eno_hf.clarity.config import ClarityConfig
from eno_hf.clarity.names import gold_name
from eno_hf.utils.io import atomic_path

__all__ = ["DRUM_SOUNDS", "drum_sound", "collect_drum_samples", "render_midi", "revoice_midi",
           "write_gold"]

log = logging.getLogger(__name__)

DRUM_SOUNDS: dict[str, tuple[str, ...]] = {
    "kick": ("kick", "bassdrum", "bass-drum", "bass_drum", "bd"),
    "snare": ("snare", "sd"),
    "tom": ("tom",),
    "hihat": ("hihat", "hi-hat", "hat", "hh"),
    "cymbal": ("crash", "ride", "cymbal", "china", "splash"),
}
"""Drum sound -> keywords matched (as whole words) in a sample's file name, in priority order."""

_RANGES = {"bass": (28, 60), "guitar": (40, 84), "keys": (21, 108), "vocals": (48, 81)}
_AUDIO = (".wav", ".flac", ".aif", ".aiff")


def drum_sound(path: str | Path) -> str | None:
    """The drum sound of a sample from its file name (``DRUM_SOUNDS`` keywords), or None."""
    words = re.split(r"[^a-z]+", Path(path).stem.lower().replace("hi-hat", "hihat")
                     .replace("bass-drum", "bassdrum"))
    joined = Path(path).stem.lower()
    for sound, keys in DRUM_SOUNDS.items():
        for k in keys:
            if k in words or (len(k) > 3 and k in joined):
                return sound
    return None


def collect_drum_samples(drumkits_dir: str | Path, per_sound: int) -> dict[str, list[Path]]:
    """Up to ``per_sound`` samples per drum sound, round-robin over the kits (sorted, deterministic).

    Returns:
        ``{sound: [paths]}``; empty lists when the folder is absent.
    """
    root = Path(drumkits_dir)
    by_kit: dict[str, dict[str, list[Path]]] = {}
    if root.is_dir():
        for p in sorted(root.rglob("*")):
            if p.suffix.lower() in _AUDIO and p.is_file():
                sound = drum_sound(p)
                if sound:
                    by_kit.setdefault(sound, {}).setdefault(p.parent.name, []).append(p)
    out: dict[str, list[Path]] = {}
    for sound in DRUM_SOUNDS:
        kits = [by_kit.get(sound, {}).get(k, []) for k in sorted(by_kit.get(sound, {}))]
        picked: list[Path] = []
        i = 0
        while len(picked) < per_sound and any(i < len(k) for k in kits):
            picked += [k[i] for k in kits if i < len(k)]
            i += 1
        out[sound] = picked[:per_sound]
    return out


def revoice_midi(src: str | Path, dst: str | Path, program: int, transpose: int = 0,
                 note_range: tuple[int, int] = (0, 127)) -> Path:
    """Copy a MIDI file with every channel set to GM ``program`` (0-based) and notes moved.

    Existing program changes are dropped, one program change per used channel is put at time 0,
    channel 10 (drums) is moved to channel 1, notes are transposed by ``transpose`` semitones and
    folded by octaves into ``note_range``.

    Raises:
        OSError / ValueError (mido): unreadable MIDI file.
    """
    import mido

    mid = mido.MidiFile(str(src))
    used: set[int] = set()
    for track in mid.tracks:
        kept = []
        carry = 0
        for msg in track:
            if msg.type == "program_change":
                carry += msg.time
                continue
            if carry:
                msg = msg.copy(time=msg.time + carry)
                carry = 0
            if hasattr(msg, "channel"):
                ch = 0 if msg.channel == 9 else msg.channel
                msg = msg.copy(channel=ch)
                used.add(ch)
                if msg.type in ("note_on", "note_off"):
                    n = msg.note + transpose
                    while n < note_range[0]:
                        n += 12
                    while n > note_range[1]:
                        n -= 12
                    msg = msg.copy(note=n)
            kept.append(msg)
        track[:] = kept
    if mid.tracks:
        for ch in sorted(used or {0}):
            mid.tracks[0].insert(0, mido.Message("program_change", channel=ch, program=program, time=0))
    mid.save(str(dst))
    return Path(dst)


def render_midi(path: str | Path, sample_rate: int, soundfont: str | Path | None = None) -> np.ndarray:
    """Render a MIDI file to mono float32 at ``sample_rate`` with FluidSynth.

    Uses the lead's ``eno_hf.audio.midi.render_midi`` when it exists (same signature), otherwise the
    ``fluidsynth`` CLI (``-ni -r SR -F out.wav SOUNDFONT in.mid``), mixing its stereo output down.

    Returns:
        ``(n,)`` float32.

    Raises:
        RuntimeError: ``fluidsynth`` missing or failed (its stderr in the message).
    """
    try:
        from eno_hf.audio.midi import render_midi as _lead_render  # type: ignore[import-not-found]
    except ImportError:
        _lead_render = None
    sf2 = Path(soundfont) if soundfont else Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
    if _lead_render is not None:
        return np.asarray(_lead_render(path, sample_rate, soundfont=sf2), dtype=np.float32)
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise RuntimeError("fluidsynth not found (apt-get install fluidsynth fluid-soundfont-gm)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.wav"
        proc = subprocess.run([exe, "-ni", "-q", "-g", "0.5", "-r", str(sample_rate), "-F", str(out),
                               str(sf2), str(path)], capture_output=True, text=True, timeout=300)
        if proc.returncode != 0 or not out.is_file():
            raise RuntimeError(f"{path}: fluidsynth failed ({proc.returncode}): {proc.stderr[-500:]}")
        y, _ = sf.read(str(out), dtype="float32", always_2d=True)
    return y.mean(axis=1).astype(np.float32)


def _trim(y: np.ndarray, sr: int, max_s: float) -> np.ndarray:
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak > 0:
        above = np.nonzero(np.abs(y) > peak * 1e-3)[0]
        y = y[max(int(above[0]) - int(0.005 * sr), 0):]
    return y[: int(max_s * sr)]


def write_gold(cfg: ClarityConfig, raw_dir: Path) -> dict[str, object]:
    """Fill ``raw_dir/gold/`` from the real sources of ``cfg.gold``; existing files are kept.

    Returns:
        ``{"written": n, "kept": n, "failed": [{"source", "reason"}], "sources": {file: source}}``.
        A source that cannot be decoded/rendered is listed in ``failed`` and skipped.
    """
    g, sr = cfg.gold, cfg.sample_rate
    written, kept, failed, sources = 0, 0, [], {}

    def _emit(target: Path, make, source: str) -> None:
        nonlocal written, kept
        sources[str(target.relative_to(raw_dir))] = source
        if target.is_file():
            kept += 1
            return
        try:
            y = _trim(make(), sr, g.max_duration_s)
            if y.size == 0 or not np.any(y):
                raise ValueError("silent after rendering")
        except Exception as exc:  # noqa: BLE001  (recorded, the run goes on)
            failed.append({"source": source, "reason": f"{type(exc).__name__}: {exc}"})
            sources.pop(str(target.relative_to(raw_dir)))
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target, suffix=".wav") as tmp:
            sf.write(str(tmp), y, sr, subtype="PCM_24")
        written += 1

    for sound, paths in collect_drum_samples(g.drumkits_dir, g.drums_per_sound).items():
        for i, p in enumerate(paths, start=1):
            _emit(raw_dir / "gold" / "drums" / gold_name(sound, i),
                  lambda p=p: load_audio(p, sample_rate=sr, mono=True)[0], str(p))

    midi_dir = g.midi_dir.resolve()
    midis = sorted(midi_dir.glob("*.mid")) if midi_dir.is_dir() else []
    instruments = [i for i in ("bass", "guitar", "keys", "vocals") if i in g.programs]
    n = g.stems_per_instrument
    if midis and instruments:
        step = max(len(midis) // (n * len(instruments)), 1)
        with tempfile.TemporaryDirectory() as tmp:
            for k, inst in enumerate(instruments):
                for i in range(n):
                    src = midis[((i * len(instruments) + k) * step) % len(midis)]

                    def make(src=src, inst=inst):
                        mid = revoice_midi(src, Path(tmp) / f"{inst}.mid", g.programs[inst],
                                           g.transpose.get(inst, 0), _RANGES.get(inst, (0, 127)))
                        return render_midi(mid, sr, g.soundfont)

                    _emit(raw_dir / "gold" / inst / gold_name(inst, i + 1), make, str(src))
    elif not midis:
        failed.append({"source": str(midi_dir), "reason": "no MIDI files found"})
    return {"written": written, "kept": kept, "failed": failed, "sources": sources}
