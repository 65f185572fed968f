"""``eno tag`` with a performance model: which input branch a file takes (``input_branch``), MIDI
statistics of an automatic transcription for recordings, and the batch going on past a bad one.

The frame embedder is a stand-in (per-second RMS features, no pretrained weights); the
transcription is the real one (``eno_hf.audio.transcribe``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("basic_pitch", reason="basic-pitch not installed (pyproject.toml, extra 'transcription')")

SR = 22050
DIM = 4


class _Embedder:
    """Stand-in for ``FrameEmbedder``: 16-kHz input, ``(seconds, 4)`` frames of log-RMS features."""

    sample_rate = 16_000
    dim = DIM

    def embed(self, w: np.ndarray) -> torch.Tensor:
        n = max(1, len(w) // self.sample_rate)
        frames = np.array_split(np.asarray(w, dtype=np.float64), n)
        rows = [[np.log10(np.mean(f ** 2) + 1e-9), np.abs(f).max(), f.std(), 1.0] for f in frames]
        return torch.tensor(rows, dtype=torch.float32)


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from eno_hf.embeddings import frames

    monkeypatch.setenv("ENO_TRANSCRIBE_CACHE", str(tmp_path / "transcriptions"))
    monkeypatch.setenv("ENO_RENDER_CACHE", str(tmp_path / "renders"))
    monkeypatch.setattr(frames, "build_frame_embedder", lambda spec, models_dir=None: _Embedder())


def _model(out: Path, midi: bool) -> Path:
    from eno_hf.embeddings.frames import EmbedderSpec
    from eno_hf.features.midi import MIDI_STATISTICS
    from eno_hf.models.heads import HeadSpec
    from eno_hf.performance.model import EnoForPerformanceEvaluation, EnoPerformanceConfig

    labels = ["timing", "dynamics"]
    cfg = EnoPerformanceConfig(input_dim=DIM, hidden_dim=8, heads=[HeadSpec("ratings", "regression", labels=labels)],
                               embedder=EmbedderSpec(name="stand-in").to_dict(), ratings_fit="ridge",
                               midi_statistics=list(MIDI_STATISTICS) if midi else None)
    model = EnoForPerformanceEvaluation(cfg)
    g = torch.Generator().manual_seed(0)
    k = len(labels)
    w_mean, w_std, bias = torch.randn(k, DIM, generator=g) * 0.1, torch.randn(k, DIM, generator=g) * 0.1, torch.full((k,), 0.5)
    model.set_ridge(w_mean, w_std, bias)
    if midi:
        model.set_ridge(w_mean, w_std, bias, torch.randn(k, len(MIDI_STATISTICS), generator=g) * 1e-2)
    model.save_pretrained(out)
    return out


def _tone(pitch: int, dur_s: float) -> np.ndarray:
    t = np.arange(int(dur_s * SR)) / SR
    f0 = 440.0 * 2 ** ((pitch - 69) / 12)
    return 0.3 * np.exp(-3 * t) * sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6))


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    """A folder: ``melody.wav`` (four piano-like notes), ``silence.wav`` (digital silence) and,
    where FluidSynth is installed, ``melody.mid``."""
    import pretty_midi
    import soundfile as sf

    folder = tmp_path / "inputs"
    folder.mkdir()
    y = np.concatenate([np.zeros(int(0.3 * SR))] + [_tone(p, 0.8) for p in (60, 64, 67, 72)])
    sf.write(folder / "melody.wav", y.astype(np.float32), SR)
    sf.write(folder / "silence.wav", np.zeros(3 * SR, np.float32), SR)
    if shutil.which("fluidsynth"):
        pm = pretty_midi.PrettyMIDI()
        piano = pretty_midi.Instrument(program=0)
        piano.notes = [pretty_midi.Note(80, p, 0.3 + 0.8 * i, 1.0 + 0.8 * i) for i, p in enumerate((60, 64, 67, 72))]
        pm.instruments.append(piano)
        pm.write(str(folder / "melody.mid"))
    return folder


def test_recording_transcribed_for_a_midi_model(tmp_path: Path, inputs: Path) -> None:
    from eno_hf.inference.performance import tag_performance_paths

    model = _model(tmp_path / "model", midi=True)
    by = {Path(r["path"]).name: r for r in tag_performance_paths([inputs], model, transcribe_audio=True)}
    rec = by["melody.wav"]
    assert rec["input_branch"] == "audio+transcription" and rec["inputs"] == "embeddings+midi_statistics"
    assert by["silence.wav"]["error"]["reason"] == "silent"  # no note: the batch goes on
    if (inputs / "melody.mid").exists():
        assert by["melody.mid"]["input_branch"] == "midi"
        assert by["melody.mid"]["inputs"] == "embeddings+midi_statistics"
    # the transcription's statistics reach the model: without them the ratings differ
    plain = {Path(r["path"]).name: r for r in tag_performance_paths([inputs / "melody.wav"], model)}["melody.wav"]
    assert plain["input_branch"] == "audio" and plain["inputs"] == "embeddings"
    assert plain["heads"]["ratings"] != rec["heads"]["ratings"]
    assert len(list((tmp_path / "transcriptions").glob("*.mid"))) == 1  # cached


def test_recording_not_transcribed_for_an_embeddings_model(tmp_path: Path, inputs: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from eno_hf.audio import transcribe
    from eno_hf.inference.performance import tag_performance_paths

    def boom(*a, **k):
        raise AssertionError("transcribed for a model that reads no MIDI statistics")

    monkeypatch.setattr(transcribe, "transcribe_to_file", boom)
    model = _model(tmp_path / "model", midi=False)
    rec = {Path(r["path"]).name: r for r in tag_performance_paths([inputs / "melody.wav"], model)}["melody.wav"]
    assert rec["input_branch"] == "audio" and rec["inputs"] == "embeddings"


def test_eno_tag_json_reports_the_branch(tmp_path: Path, inputs: Path) -> None:
    from typer.testing import CliRunner

    from eno_hf.cli import app

    model = _model(tmp_path / "model", midi=True)
    (inputs / "silence.wav").unlink()
    res = CliRunner().invoke(app, ["tag", str(inputs), "--model", str(model), "--json", "--transcribe"])
    assert res.exit_code == 0, res.output[-2000:]
    objs = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
    records, summary = objs[:-1], objs[-1]
    branches = {Path(r["path"]).suffix: r["input_branch"] for r in records}
    assert branches[".wav"] == "audio+transcription"
    # without --transcribe a recording is read as audio only (the default)
    res = CliRunner().invoke(app, ["tag", str(inputs / "melody.wav"), "--model", str(model), "--json"])
    assert res.exit_code == 0, res.output[-2000:]
    assert json.loads([x for x in res.stdout.splitlines() if x.startswith("{")][0])["input_branch"] == "audio"
    if (inputs / "melody.mid").exists():
        assert branches[".mid"] == "midi"
    assert summary["failed"] == 0 and summary["tagged"] == len(records)


def test_without_basic_pitch_recordings_take_the_audio_branch(tmp_path: Path, inputs: Path,
                                                              monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    from eno_hf.audio import transcribe
    from eno_hf.inference.performance import tag_performance_paths

    def missing():
        raise ImportError("No module named 'basic_pitch'")

    monkeypatch.setattr(transcribe, "model_path", missing)
    model = _model(tmp_path / "model", midi=True)
    with caplog.at_level("WARNING"):
        rec = {Path(r["path"]).name: r for r in tag_performance_paths([inputs / "melody.wav"], model,
                                                                   transcribe_audio=True)}["melody.wav"]
    assert rec["input_branch"] == "audio" and rec["inputs"] == "embeddings"
    assert "not transcribed" in caplog.text
