"""eno_hf.tagging: one ordered stage list, the runner seam, stage markers, the library/Prefect split."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from eno_hf import tagging as P
from eno_hf.config import load_config

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def test_stages_are_the_main_job_in_order() -> None:
    assert [s.name for s in P.STAGES] == ["dataset", "embed", "baselines", "train", "evaluate", "register", "tag"]
    assert {s.name: s.resource for s in P.STAGES} == {
        "dataset": "cpu", "embed": "gpu", "baselines": "cpu", "train": "gpu", "evaluate": "gpu", "register": "io", "tag": "gpu"}
    assert [s.name for s in P.select_stages(["tag", "dataset"])] == ["dataset", "tag"]  # pipeline order
    with pytest.raises(ValueError, match="unknown stage"):
        P.select_stages(["datset"])


def test_runner_seam_sees_every_enabled_stage_in_order() -> None:
    seen = []

    def runner(stage, settings, state):
        seen.append(stage.name)
        return {"cached": {stage.name: True}}

    s = load_config("configs/small.yaml", ["run.baselines=false", "run.tag_files=[]"])
    state = P.run_stages(s, runner=runner)
    assert seen == ["dataset", "train", "evaluate", "register"]  # baselines off, nothing to tag
    assert state.cached == {n: True for n in seen}
    seen.clear()
    P.run_stages(load_config("configs/small.yaml", ["run.tag_files=[a.mp3]"]), runner=runner)
    assert seen[-1] == "tag" and "baselines" in seen


def test_state_rejects_unknown_fields_and_reports_missing_inputs() -> None:
    st = P.PipelineState()
    with pytest.raises(KeyError, match="modle_dir"):
        st.update({"modle_dir": "x"})
    with pytest.raises(RuntimeError, match="model_dir"):
        P.stage_evaluate(load_config("configs/small.yaml"), P.PipelineState(dataset={}, dataset_version="v"))


def _fake_model(d: Path, weights: bytes = b"w1") -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text("{}")
    (d / "model.safetensors").write_bytes(weights)
    return d


def test_register_stage_registers_an_unchanged_model_once(tmp_path: Path) -> None:
    s = load_config("configs/small.yaml", [f"paths.data_root={tmp_path}", "registry.clearml=false"])
    model = _fake_model(tmp_path / "runs" / "r1" / "model")
    state = P.PipelineState(model_dir=model, run_dir=tmp_path / "runs" / "r1", metrics={"score": 0.5})
    first = P.stage_register(s, state)
    assert first["cached"] == {"register": False} and first["registered"].name == "v1"
    again = P.stage_register(s, state)
    assert again["cached"] == {"register": True} and again["registered"] == first["registered"]
    (model / "model.safetensors").write_bytes(b"retrained weights")  # a different model: new version
    assert P.stage_register(s, state)["registered"].name == "v2"
    info = json.loads((first["registered"] / "registry.json").read_text())
    assert info["metadata"]["metrics"] == {"score": 0.5}


def test_stage_marker_key_must_match(tmp_path: Path) -> None:
    from eno_hf.jobs import read_marker, write_marker

    write_marker(tmp_path / "stage.json", "key-a", {"x": 1})
    assert P._done(tmp_path, "key-a")["x"] == 1  # the tagging stages' folder marker is the same file
    assert read_marker(tmp_path / "stage.json", "key-a")["x"] == 1
    assert P._done(tmp_path, "key-b") is None
    assert P._done(tmp_path / "nowhere", "key-a") is None


def test_tagging_is_the_registered_tagging_job() -> None:
    from eno_hf.jobs import JOBS, job_of

    assert JOBS["tagging"] is P.TAGGING and P.TAGGING.stages is P.STAGES
    assert job_of(load_config("configs/small.yaml")) is P.TAGGING


def test_library_and_cli_never_import_prefect() -> None:
    code = ("import sys, eno_hf.cli, eno_hf.jobs, eno_hf.tagging, eno_hf.performance.job, "
            "eno_hf.clarity.job, eno_hf.workspace.steps, eno_hf.registry.register, eno_hf.utils.io; "
            "print(sorted(m for m in sys.modules if m == 'prefect' or m.startswith(('prefect.', 'flows'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_no_argparse_shims_in_flows() -> None:
    for f in (PROJECT_ROOT / "flows").glob("*.py"):
        text = f.read_text()
        assert "argparse" not in text and "__main__" not in text, f
