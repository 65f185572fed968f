"""``eno tag FOLDER_OF_MIDI --model M --json``: every head of a performance model, one JSON line per file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from eno_hf.models.heads import HeadSpec
from eno_hf.performance.percepiano import DIMENSIONS


def _ridge_model(transcription_map: bool = False):
    """A ``ratings_fit="ridge"`` performance model reading ``msd-fcn`` embeddings and the MIDI
    statistics (maps still random), and the embedding width; skips without the weights."""
    from eno_hf.embeddings.frames import EmbedderSpec, build_frame_embedder
    from eno_hf.features.midi import MIDI_STATISTICS
    from eno_hf.performance.model import EnoForPerformanceEvaluation, EnoPerformanceConfig

    spec = EmbedderSpec(name="msd-fcn", features="embedding")
    try:
        dim = build_frame_embedder(spec).dim
    except FileNotFoundError as exc:
        pytest.skip(f"pretrained weights not available: {exc}")
    cfg = EnoPerformanceConfig(input_dim=dim, hidden_dim=16, heads=[HeadSpec("ratings", "regression", labels=DIMENSIONS)],
                               embedder=spec.to_dict(), ratings_fit="ridge", midi_statistics=list(MIDI_STATISTICS),
                               transcription_map=transcription_map)
    return EnoForPerformanceEvaluation(cfg), dim


def _tag_midi_and_mp3(percepiano_rows, fourq_dir: Path, tmp_path: Path, *flags: str) -> dict[str, dict]:
    """``eno tag {tmp_path}/inputs --model {tmp_path}/model --json *flags`` on the shortest PercePiano
    MIDI file and a real 4Q mp3 (copied there once): the records by file suffix."""
    from typer.testing import CliRunner

    from eno_hf.cli import app

    folder = tmp_path / "inputs"
    if not folder.is_dir():
        folder.mkdir()
        midi = sorted(percepiano_rows, key=lambda r: r.midi.stat().st_size)[0].midi
        shutil.copy(midi, folder / midi.name)
        clip = sorted((fourq_dir / "Q1").glob("*.mp3"))[0]
        shutil.copy(clip, folder / clip.name)
    res = CliRunner().invoke(app, ["tag", str(folder), "--model", str(tmp_path / "model"), "--json", *flags])
    assert res.exit_code == 0, res.output[-2000:]
    return {Path(x["path"]).suffix: x for x in (json.loads(x) for x in res.stdout.splitlines() if x.startswith("{"))
            if "path" in x}  # the last object is the summary


@pytest.mark.slow
def test_tag_folder_of_midi_prints_every_head_one_line_per_file(percepiano_rows, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from eno_hf.cli import app
    from eno_hf.embeddings.frames import EmbedderSpec, build_frame_embedder
    from eno_hf.performance.model import EnoForPerformanceEvaluation, EnoPerformanceConfig

    spec = EmbedderSpec(name="msd-fcn", features="embedding")
    try:
        dim = build_frame_embedder(spec).dim
    except FileNotFoundError as exc:
        pytest.skip(f"pretrained weights not available: {exc}")
    heads = [HeadSpec("ratings", "regression", labels=DIMENSIONS), HeadSpec("quality", "ranking"),
             HeadSpec("passage", "projection", dim=8)]
    model = EnoForPerformanceEvaluation(EnoPerformanceConfig(input_dim=dim, hidden_dim=16, heads=heads,
                                                             embedder=spec.to_dict()))
    model.save_pretrained(tmp_path / "model")
    folder = tmp_path / "midi"
    folder.mkdir()
    short = sorted(percepiano_rows, key=lambda r: r.midi.stat().st_size)[:2]
    for r in short:
        shutil.copy(r.midi, folder / r.midi.name)
    (folder / "broken.mid").write_bytes(b"MThd not a midi file")
    res = CliRunner().invoke(app, ["tag", str(folder), "--model", str(tmp_path / "model"), "--json"])
    objs = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
    lines, summary = objs[:-1], objs[-1]  # --json streams one record per input, then the summary object
    assert len(lines) == 3, res.stdout
    assert summary == {"inputs": 3, "tagged": 2, "failed": 1, "reasons": {"undecodable": 1}, "out": None}
    assert res.exit_code == 1  # one input failed; the others were tagged
    by = {Path(x["path"]).name: x for x in lines}
    assert by["broken.mid"]["error"]["reason"] == "undecodable"
    for r in short:
        rec = by[r.midi.name]
        assert list(rec["heads"]["ratings"]) == list(DIMENSIONS)
        assert isinstance(rec["heads"]["quality"], float) and len(rec["heads"]["passage"]) == 8


@pytest.mark.slow
def test_ridge_model_uses_midi_statistics_for_midi_and_for_transcribed_audio(percepiano_rows, fourq_dir: Path,
                                                                             tmp_path: Path) -> None:
    import torch

    from eno_hf.features.midi import MIDI_STATISTICS

    model, dim = _ridge_model()
    g = torch.Generator().manual_seed(0)
    k, m = len(DIMENSIONS), len(MIDI_STATISTICS)
    w_mean, w_std, bias = torch.randn(k, dim, generator=g) * 0.01, torch.randn(k, dim, generator=g) * 0.01, torch.full((k,), 0.5)
    model.set_ridge(w_mean, w_std, bias)
    model.set_ridge(w_mean, w_std, bias, torch.randn(k, m, generator=g) * 1e-3)
    model.save_pretrained(tmp_path / "model")
    by = _tag_midi_and_mp3(percepiano_rows, fourq_dir, tmp_path, "--transcribe")
    assert by[".mid"]["input_branch"] == "midi" and by[".mid"]["inputs"] == "embeddings+midi_statistics"
    # with --transcribe a recording is transcribed (eno_hf.audio.transcribe): its notes feed the MIDI branch
    assert by[".mp3"]["input_branch"] == "audio+transcription"
    assert by[".mp3"]["inputs"] == "embeddings+midi_statistics"
    assert list(by[".mp3"]["heads"]["ratings"]) == list(DIMENSIONS)


@pytest.mark.slow
def test_model_with_a_transcription_map_transcribes_recordings_by_default(percepiano_rows, fourq_dir: Path,
                                                                          tmp_path: Path) -> None:
    """A model with ``ridge_transcription`` (the job fits it on transcriptions of its renders):
    ``eno tag`` transcribes a recording and reads it with that map unless --no-transcribe; a MIDI
    file goes through ``ridge_midi``. Each map gets its own constant output here (zero weights,
    biases 0.1 / 0.5 / 0.9), so the output names the map that made it."""
    import torch

    from eno_hf.audio.transcribe import unavailable_reason
    from eno_hf.features.midi import MIDI_STATISTICS

    if unavailable_reason():
        pytest.skip(f"transcription not installed: {unavailable_reason()}")
    model, dim = _ridge_model(transcription_map=True)
    k, m = len(DIMENSIONS), len(MIDI_STATISTICS)
    zero = torch.zeros(k, dim)
    model.set_ridge(zero, zero, torch.full((k,), 0.1))
    model.set_ridge(zero, zero, torch.full((k,), 0.5), torch.zeros(k, m))
    model.set_ridge(zero, zero, torch.full((k,), 0.9), torch.zeros(k, m), transcription=True)
    model.save_pretrained(tmp_path / "model")
    by = _tag_midi_and_mp3(percepiano_rows, fourq_dir, tmp_path)
    assert by[".mp3"]["input_branch"] == "audio+transcription"
    assert set(by[".mp3"]["heads"]["ratings"].values()) == {0.9}  # ridge_transcription
    assert by[".mid"]["input_branch"] == "midi" and set(by[".mid"]["heads"]["ratings"].values()) == {0.5}
    by = _tag_midi_and_mp3(percepiano_rows, fourq_dir, tmp_path, "--no-transcribe")
    assert by[".mp3"]["input_branch"] == "audio" and set(by[".mp3"]["heads"]["ratings"].values()) == {0.1}
