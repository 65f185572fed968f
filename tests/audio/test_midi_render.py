"""MIDI rendering through FluidSynth on real PercePiano performances; corrupt MIDI is a rejection."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from eno_hf.audio import midi
from eno_hf.audio.conditioning import load_and_condition
from eno_hf.audio.io import audio_info, load_audio
from eno_hf.config import AudioConfig
from eno_hf.errors import AudioDecodeError, RejectedInput

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

PERCEPIANO = DATA / "percepiano" / "midi"

pytestmark = pytest.mark.skipif(shutil.which("fluidsynth") is None
                                or not Path(midi.SOUNDFONTS["fluidr3"]).is_file(),
                                reason="fluidsynth / fluid-soundfont-gm not installed (scripts/setup.sh)")


@pytest.fixture(scope="module")
def real_midi() -> Path:
    if not PERCEPIANO.is_dir():
        pytest.skip(f"real data not available: {PERCEPIANO} is absent")
    return sorted(PERCEPIANO.glob("*.mid"))[0]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ENO_RENDER_CACHE", str(tmp_path / "render-cache"))


def test_render_real_performance(real_midi: Path) -> None:
    dur = midi.midi_duration_s(real_midi)
    y = midi.render_midi(real_midi, sample_rate=16000)
    assert y.dtype == np.float32 and y.ndim == 1
    # the synth renders the whole performance (plus at most a few seconds of release tails)
    assert dur - 0.5 <= y.shape[0] / 16000 <= dur + 5.0
    assert np.all(np.isfinite(y)) and 0.01 < np.abs(y).max() <= 1.0
    assert float(np.sqrt(np.mean(y ** 2))) > 1e-3  # not silence


def test_render_midi_equals_decoding_the_rendering(real_midi: Path) -> None:
    """``render_midi`` reads FluidSynth's WAV itself: the same samples, bit for bit, as
    ``load_audio`` of that WAV (mono mix-down and stereo)."""
    from eno_hf.audio.io import load_audio

    settings = midi.RenderSettings(sample_rate=16000)
    wav = midi.render_midi_to_wav(real_midi, settings)
    mono = midi.render_midi(real_midi, sample_rate=16000)
    np.testing.assert_array_equal(mono, load_audio(wav, sample_rate=16000, mono=True)[0])
    stereo = midi.render_midi(real_midi, sample_rate=16000, mono=False)
    np.testing.assert_array_equal(stereo, load_audio(wav, sample_rate=16000, mono=False)[0])


def test_render_is_cached_and_soundfonts_differ(real_midi: Path, tmp_path) -> None:
    a = midi.render_midi_to_wav(real_midi, midi.RenderSettings(sample_rate=16000))
    inode = a.stat().st_ino
    again = midi.render_midi_to_wav(real_midi, midi.RenderSettings(sample_rate=16000))
    assert again == a and again.stat().st_ino == inode  # served from the cache (not re-rendered)
    if Path(midi.SOUNDFONTS["timgm6mb"]).is_file():
        b = midi.render_midi_to_wav(real_midi, midi.RenderSettings(sample_rate=16000, soundfont="timgm6mb"))
        assert b != a
        ya, _ = load_audio(a, mono=True)
        yb, _ = load_audio(b, mono=True)
        n = min(len(ya), len(yb))
        assert not np.allclose(ya[:n], yb[:n], atol=1e-3)  # another instrument


def test_midi_goes_through_the_audio_path(real_midi: Path) -> None:
    info = audio_info(real_midi)
    assert info.format == "midi" and info.duration_s > 1.0
    samples, sr = load_audio(real_midi, sample_rate=22050)
    assert sr == 22050 and samples.ndim == 1
    y, stats = load_and_condition(real_midi, AudioConfig())
    assert abs(stats.lufs_after - (-18.0)) < 1.0 or stats.clipping_prevented


def test_corrupt_midi_is_rejected(tmp_path: Path, real_midi: Path) -> None:
    bad = tmp_path / "garbage.mid"
    bad.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0MTrk\xff\xff\xff\xffjunk")
    with pytest.raises(AudioDecodeError) as exc:
        load_audio(bad, sample_rate=16000)
    assert exc.value.reason == "undecodable" and "garbage.mid" in str(exc.value)
    text = tmp_path / "text.mid"
    text.write_text("this is not a MIDI file")
    with pytest.raises(RejectedInput) as exc2:
        midi.render_midi(text)
    assert exc2.value.reason == "undecodable"
    truncated = tmp_path / "truncated.mid"
    truncated.write_bytes(real_midi.read_bytes()[:40])
    with pytest.raises(RejectedInput) as exc3:
        midi.render_midi(truncated)
    assert exc3.value.reason == "undecodable"
    empty = tmp_path / "empty.mid"
    empty.write_bytes(b"")
    with pytest.raises(RejectedInput) as exc4:
        midi.render_midi(empty)
    assert exc4.value.reason == "empty"


def test_midi_without_notes_is_silent(tmp_path: Path) -> None:
    import mido

    f = mido.MidiFile()
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=500000, time=0))
    track.append(mido.Message("program_change", program=0, time=0))
    track.append(mido.MetaMessage("end_of_track", time=960))
    f.tracks.append(track)
    path = tmp_path / "no_notes.mid"
    f.save(str(path))
    with pytest.raises(RejectedInput) as exc:
        midi.render_midi(path)
    assert exc.value.reason == "silent"


def test_missing_soundfont_names_the_package(real_midi: Path) -> None:
    with pytest.raises(FileNotFoundError, match="fluid-soundfont-gm"):
        midi.render_midi(real_midi, soundfont="/nonexistent/font.sf2")


def test_inspect_matches_mido_on_real_performances() -> None:
    import mido

    if not PERCEPIANO.is_dir():
        pytest.skip(f"real data not available: {PERCEPIANO} is absent")
    for path in sorted(PERCEPIANO.glob("*.mid"))[:25]:
        ref = mido.MidiFile(str(path))
        facts = midi.inspect_midi(path)
        assert facts.duration_s == pytest.approx(ref.length, abs=1e-9)
        assert facts.n_notes == sum(1 for t in ref.tracks for m in t
                                    if m.type == "note_on" and m.velocity > 0)


def test_limits_and_corrupt_headers_before_rendering(tmp_path: Path, monkeypatch) -> None:
    import mido

    monkeypatch.setattr(subprocess, "run", _no_synth)  # nothing below may reach FluidSynth
    f = mido.MidiFile(ticks_per_beat=1)
    track = mido.MidiTrack([mido.Message("note_on", note=60, velocity=64, time=0),
                            mido.Message("note_off", note=60, velocity=0, time=7000)])
    f.tracks.append(track)
    long = tmp_path / "long.mid"
    f.save(str(long))
    assert long.stat().st_size < 64 and midi.inspect_midi(long).duration_s == 3500.0
    with pytest.raises(AudioDecodeError) as exc:
        midi.render_midi_to_wav(long, midi.RenderSettings(sample_rate=16000))
    assert exc.value.reason == "too_long" and "3500.0 s > max_duration_s=1800" in exc.value.detail
    with pytest.raises(AudioDecodeError, match="notes > max_notes=1"):
        midi.inspect_midi(long.parent / _two_notes(tmp_path), max_notes=1)
    good = long.read_bytes()
    for name, data in {"format7": good[:8] + b"\x00\x07" + good[10:],
                       "no_tracks": good[:10] + b"\x00\x00" + good[12:],
                       "smpte": good[:12] + b"\xe7\x28" + good[14:],
                       "tpb0": good[:12] + b"\x00\x00" + good[14:],
                       "track_cut": good[:-3],
                       "not_midi": b"RIFF" + good[4:]}.items():
        bad = tmp_path / f"{name}.mid"
        bad.write_bytes(data)
        with pytest.raises(AudioDecodeError) as err:
            load_audio(bad, sample_rate=16000)
        assert err.value.reason == "undecodable", name
    assert not (tmp_path / "render-cache").exists() or not any((tmp_path / "render-cache").iterdir())


def _no_synth(*args, **kwargs):
    raise AssertionError("FluidSynth was run")


def _two_notes(folder: Path) -> str:
    import mido

    f = mido.MidiFile()
    f.tracks.append(mido.MidiTrack([mido.Message("note_on", note=n, velocity=64, time=0)
                                    for n in (60, 64)]))
    f.save(str(folder / "two.mid"))
    return "two.mid"


def test_cache_is_bounded_lru_and_cleaned(real_midi: Path, tmp_path: Path, monkeypatch) -> None:
    cache = tmp_path / "render-cache"
    srcs = []
    for n in range(4):  # the same music under four cache keys (a trailing byte differs)
        srcs.append(tmp_path / f"m{n}.mid")
        srcs[-1].write_bytes(real_midi.read_bytes() + b"\x00" * n)
    a = midi.render_midi_to_wav(srcs[0], midi.RenderSettings(sample_rate=8000))
    size = a.stat().st_size
    capped = midi.RenderSettings(sample_rate=8000, cache_max_mb=2.5 * size / 2**20)
    dead = cache / ".render-999999999-abc.wav"  # a temporary of a process that is gone
    dead.write_bytes(b"x" * 100)
    b = midi.render_midi_to_wav(srcs[1], capped)
    assert a.exists() and b.exists() and not dead.exists()
    os.utime(a, (1, 1))
    os.utime(b, (2, 2))
    assert midi.render_midi_to_wav(srcs[0], capped) == a  # a cache hit: a is now the newest
    c = midi.render_midi_to_wav(srcs[2], capped)  # three do not fit: the least recently used goes
    assert a.exists() and c.exists() and not b.exists()
    assert sum(p.stat().st_size for p in cache.iterdir()) <= 2.5 * size
    # a failed synthesis leaves no temporary behind
    monkeypatch.setattr(midi.shutil, "which", lambda name: "/bin/false")
    with pytest.raises(AudioDecodeError, match="fluidsynth failed"):
        midi.render_midi_to_wav(srcs[3], capped)
    assert sorted(p.name for p in cache.iterdir()) == sorted([a.name, c.name])


def test_rendering_rejected_after_rendering_is_removed(real_midi: Path, tmp_path: Path) -> None:
    from eno_hf.audio.validate import validate_audio

    cfg = AudioConfig(silence_threshold_dbfs=-0.1)  # every real rendering is "silent" here
    with pytest.raises(RejectedInput) as exc:
        validate_audio(real_midi, cfg=cfg)
    assert exc.value.reason == "silent"
    assert not list((tmp_path / "render-cache").glob("*.wav"))


def test_lru_hit_refreshes_a_complete_entry_only(tmp_path: Path) -> None:
    entry, partial = tmp_path / "k.wav", tmp_path / "p.wav"
    entry.write_bytes(b"x" * 100)
    partial.write_bytes(b"x" * 44)  # a header and nothing else
    os.utime(entry, (1, 1))
    assert midi.lru_hit(entry, min_bytes=44)
    assert entry.stat().st_mtime > 1  # the hit counts as a use for evict_lru
    assert not midi.lru_hit(partial, min_bytes=44)
    assert not midi.lru_hit(tmp_path / "missing.wav") and not midi.lru_hit(tmp_path)
