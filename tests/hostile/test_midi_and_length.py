"""MIDI bombs, a corrupt MIDI header and an MP3 whose header understates its length give the same
reason on the tag, build and serve paths; nothing is rendered for a MIDI refused on its length."""

from __future__ import annotations

import shutil

import pytest
from corpus import (LIMITS, midi_bomb_long, midi_bomb_notes, midi_corrupt_header, midi_no_notes,
                    mp3_lying_header)

from eno_hf.audio.conditioning import load_and_condition
from eno_hf.audio.io import audio_info, load_audio
from eno_hf.audio.midi import RenderSettings
from eno_hf.audio.validate import scan_audio, validate_audio
from eno_hf.config import AudioConfig, MidiRenderConfig
from eno_hf.errors import RejectedInput
from eno_hf.serving.config import ServeConfig
from eno_hf.serving.decode import decode_upload

CFG = AudioConfig(max_duration_s=LIMITS["dataset.audio.max_duration_s"],
                  midi=MidiRenderConfig(max_duration_s=LIMITS["dataset.audio.midi.max_duration_s"]))
SERVE = ServeConfig(max_duration_s=LIMITS["serve.max_duration_s"])


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ENO_RENDER_CACHE", str(tmp_path / "render-cache"))


def _reasons(path) -> dict[str, str]:
    """Reason of each path: tag (streamed scan), validate (whole signal), build, serve."""
    out = {}
    for name, fn in (("tag", lambda: scan_audio(path, CFG)),
                     ("validate", lambda: validate_audio(path, cfg=CFG)),
                     ("build", lambda: load_and_condition(path, CFG)),
                     ("serve", lambda: decode_upload(path.read_bytes(), path.name, 16000, SERVE))):
        try:
            fn()
            out[name] = "accepted"
        except RejectedInput as exc:
            out[name] = exc.reason
    return out


@pytest.mark.parametrize("make", [midi_bomb_long, midi_bomb_notes, midi_corrupt_header, midi_no_notes])
def test_midi_measured_before_rendering(make, tmp_path) -> None:
    path, expected = make(tmp_path)
    assert _reasons(path) == dict.fromkeys(("tag", "validate", "build", "serve"), expected)
    cache = tmp_path / "render-cache"
    assert not cache.exists() or not any(cache.iterdir())  # nothing was rendered


def test_long_midi_reports_its_length(tmp_path) -> None:
    path, _ = midi_bomb_long(tmp_path)
    assert path.stat().st_size < 64
    with pytest.raises(RejectedInput, match=r"3500\.0 s > max_duration_s=900"):
        load_audio(path, 16000, midi=RenderSettings.from_config(CFG.midi, 16000))
    assert audio_info(path).duration_s == pytest.approx(3500.0)  # measuring is no rejection


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed (apt-get install ffmpeg)")
def test_mp3_whose_header_understates_its_length(tmp_path) -> None:
    path, expected = mp3_lying_header(tmp_path)
    assert audio_info(path).duration_s < 4.0  # the header's claim
    y, sr = load_audio(path, 16000)
    assert y.shape[0] / sr == pytest.approx(20.0, abs=0.2)  # decoded to its real end
    assert _reasons(path) == dict.fromkeys(("tag", "validate", "build", "serve"), expected)
    ok = scan_audio(path, AudioConfig(max_duration_s=30.0))
    assert ok.info.duration_s == pytest.approx(20.0, abs=0.2)
    assert any("MP3 header says" in w for w in ok.warnings)
