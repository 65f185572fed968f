"""The main job's tag stage is reused while the model (weights + config.json with the tuned
thresholds) and the tagged files are unchanged."""

from __future__ import annotations

import os

from eno_hf import tagging as P
from eno_hf.config import Settings


def test_tag_stage_reuses_its_output_until_model_or_files_change(tmp_path, monkeypatch):
    import eno_hf.inference.tag as tag_mod

    model_dir, run_dir = tmp_path / "run" / "model", tmp_path / "run"
    model_dir.mkdir(parents=True)
    (model_dir / "model.safetensors").write_bytes(b"weights")
    (model_dir / "config.json").write_text('{"thresholds": [0.5]}')
    clip = tmp_path / "song.mp3"
    clip.write_bytes(b"audio")
    calls: list[list[str]] = []

    def fake_tag_paths(paths, model):
        calls.append([str(p) for p in paths])
        return iter([{"path": str(p), "tags": {}} for p in paths])

    monkeypatch.setattr(tag_mod, "tag_paths", fake_tag_paths)
    s = Settings()
    s.run.tag_files = [str(clip)]
    state = P.PipelineState(model_dir=model_dir, run_dir=run_dir)

    assert P.stage_tag(s, state)["cached"] == {"tag": False} and len(calls) == 1
    out = P.stage_tag(s, state)
    assert out["cached"] == {"tag": True} and len(calls) == 1 and out["tags"].read_text().count("\n") == 1

    (model_dir / "config.json").write_text('{"thresholds": [0.6]}')  # evaluate tuned other thresholds
    assert P.stage_tag(s, state)["cached"] == {"tag": False} and len(calls) == 2
    clip.write_bytes(b"other audio")
    os.utime(clip, ns=(1, 1))
    assert P.stage_tag(s, state)["cached"] == {"tag": False} and len(calls) == 3
    (run_dir / "tags.jsonl").unlink()  # output gone: tagged again
    assert P.stage_tag(s, state)["cached"] == {"tag": False} and len(calls) == 4
