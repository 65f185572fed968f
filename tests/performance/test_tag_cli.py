"""``eno tag FOLDER_OF_MIDI --model M --json``: every head of a performance model, one JSON line per file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from eno_hf.models.heads import HeadSpec
from eno_hf.performance.percepiano import DIMENSIONS


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
    lines = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
    assert len(lines) == 3, res.stdout
    assert res.exit_code == 1  # one input failed; the others were tagged
    by = {Path(x["path"]).name: x for x in lines}
    assert by["broken.mid"]["error"]["reason"] == "undecodable"
    for r in short:
        rec = by[r.midi.name]
        assert list(rec["heads"]["ratings"]) == list(DIMENSIONS)
        assert isinstance(rec["heads"]["quality"], float) and len(rec["heads"]["passage"]) == 8
