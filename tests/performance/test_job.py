"""The performance job's ``transcribe`` stage (``eno_hf.performance.job``): when it runs, and the
statistics of real transcriptions of real PercePiano renders, cached."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from eno_hf.config import Settings
from eno_hf.features.midi import MIDI_STATISTICS, midi_statistics
from eno_hf.performance import job as J
from eno_hf.performance.config import PerformanceConfig


def _settings(tmp_path: Path, **performance) -> Settings:
    return Settings.model_validate({"paths": {"data_root": str(tmp_path / "data")},
                                    "performance": PerformanceConfig(source=tmp_path, **performance).model_dump()})


def test_transcribe_stage_follows_the_setting(tmp_path: Path, monkeypatch) -> None:
    state = J.PerformanceState(rows=[])
    called = []
    monkeypatch.setattr(J, "transcription_stats", lambda *a, **k: called.append(a) or (np.zeros((0, 20)), []))
    for off in ({"transcribe_audio": "never"}, {"ratings_fit": "gradient"}, {"use_midi_statistics": False}):
        assert J.stage_transcribe(_settings(tmp_path, **off), state) == {"transcription": None,
                                                                          "transcription_info": None}, off
    monkeypatch.setattr(J, "unavailable_reason", lambda: "basic-pitch is not installed")
    got = J.stage_transcribe(_settings(tmp_path), state)  # auto: goes on without the map, says why
    assert got["transcription"] is None and got["transcription_info"] == {"skipped": "basic-pitch is not installed"}
    with pytest.raises(ImportError, match="'always': basic-pitch is not installed"):
        J.stage_transcribe(_settings(tmp_path, transcribe_audio="always"), state)
    assert not called
    with pytest.raises(RuntimeError, match="no 'rows'"):
        J.stage_transcribe(_settings(tmp_path), J.PerformanceState())


@pytest.mark.slow
def test_transcription_statistics_of_real_renders_are_cached(percepiano_rows, tmp_path: Path, monkeypatch) -> None:
    from eno_hf.audio.transcribe import unavailable_reason

    if unavailable_reason():
        pytest.skip(f"transcription not installed: {unavailable_reason()}")
    rows = sorted([r for r in percepiano_rows if r.rated and "_Score_" not in r.segment_id],  # (score renderings
                  key=lambda r: r.midi.stat().st_size)[:2]                                # of a passage are one file)
    x, failed = J.transcription_stats(rows, tmp_path, "fluidr3")
    assert x.shape == (2, len(MIDI_STATISTICS)) and failed == []
    n = MIDI_STATISTICS.index("n_notes")
    for r, got in zip(rows, x):  # note counts of a transcription follow the source (r 0.95 over 40 renders)
        want = midi_statistics(r.midi)["n_notes"]
        assert 0.6 * want <= got[n] <= 1.4 * want, (r.segment_id, got[n], want)
    assert (tmp_path / "transcription_statistics.json").is_file() and len(list((tmp_path / "transcription").glob("*.mid"))) == 2

    def boom(job):
        raise AssertionError(f"transcribed again: {job[0]}")

    monkeypatch.setattr(J, "_transcribed_statistics", boom)
    again, _ = J.transcription_stats(rows, tmp_path, "fluidr3")  # from transcription_statistics.json
    np.testing.assert_array_equal(again, x)
    with pytest.raises(AssertionError, match="transcribed again"):  # another soundfont is another input
        J.transcription_stats(rows, tmp_path, "musescore-lite")


def test_registered_midi_map_follows_the_hardest_protocol_of_the_run() -> None:
    """The registered model's MIDI map is the MIDI-statistics ridge when that baseline beat the
    model on the hardest protocol cross-validated (piece, then composition4fold, performer4fold,
    performer), and the model card says which."""
    def prot(model: float, base: float) -> dict:
        return {"model": {"mean_r2": model}, "baseline_ridge_midi": {"mean_r2": base}}

    report = {"protocols": {"performer": prot(0.41, 0.37), "composition4fold": prot(0.378, 0.390)}}
    got = J.registered_midi_map(report)
    assert got == {"protocol": "composition4fold", "model_mean_r2": 0.378, "baseline_ridge_midi_mean_r2": 0.390,
                   "midi_statistics_only": True}
    report["protocols"]["piece"] = prot(-0.047, -0.086)  # the hardest decides, whatever the others say
    assert J.registered_midi_map(report)["protocol"] == "piece"
    assert not J.registered_midi_map(report)["midi_statistics_only"]
    assert J.registered_midi_map({"protocols": {}}) == {"midi_statistics_only": False}
    lines = J._registered_map_lines({"registered_midi_map": got})
    assert "composition4fold" in lines[0] and "**is that ridge**" in lines[0]
    assert J._registered_map_lines({}) == []
