"""MIDI rendering through FluidSynth on real PercePiano performances; corrupt MIDI is a rejection."""

from __future__ import annotations

import shutil
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


def test_render_is_cached_and_soundfonts_differ(real_midi: Path, tmp_path) -> None:
    a = midi.render_midi_to_wav(real_midi, midi.RenderSettings(sample_rate=16000))
    mtime = a.stat().st_mtime_ns
    again = midi.render_midi_to_wav(real_midi, midi.RenderSettings(sample_rate=16000))
    assert again == a and again.stat().st_mtime_ns == mtime  # served from the cache
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
