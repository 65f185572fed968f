"""`accelerate launch` with 2 CPU processes (DDP over gloo) runs `eno train` (the Trainer path) on
a tiny model for a few steps; only the main process publishes the model."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ACCELERATE = Path(sys.executable).with_name("accelerate")

pytestmark = pytest.mark.slow


def test_accelerate_launch_two_cpu_processes(tmp_path: Path, fourq_dir: Path) -> None:
    if not ACCELERATE.is_file():
        pytest.skip(f"{ACCELERATE} not installed")
    sets = [f"paths.data_root={tmp_path / 'data'}", "dataset.limit=8", "dataset.num_workers=1",
            "dataset.split.train=0.5", "dataset.split.validation=0.25", "dataset.split.test=0.25",
            "train.epochs=2", "train.batch_size=2", "model.mel_cnn_channels=8", "model.mel_cnn_blocks=3",
            "registry.clearml=false", "train.num_workers=0"]
    cmd = [str(ACCELERATE), "launch", "--config_file", "configs/accelerate/cpu_2proc.yaml",
           "--main_process_port", "0", "-m", "eno_hf.cli", "train", "-c", "configs/mel-cnn.yaml", "--json"]
    for s in sets:
        cmd += ["--set", s]
    env = dict(os.environ, ACCELERATE_USE_CPU="true", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=str(PROJECT_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               PREFECT_HOME=str(tmp_path / "prefect"))
    proc = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-4000:]
    outs = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(outs) == 2  # one per process
    model_dir = Path(outs[0]["model"])
    assert all(Path(o["model"]) == model_dir for o in outs)
    assert (model_dir / "stage.json").is_file() and list(model_dir.glob("*.safetensors"))
    state = json.loads(next((model_dir.parent / "checkpoints").rglob("trainer_state.json")).read_text())
    qc = json.loads(next((tmp_path / "data" / "datasets").rglob("qc_report.json")).read_text())
    n_train = qc["splits"]["train"]["n_segments"]
    # data parallel over 2 processes: each step sees 2 x batch_size rows (one process would take twice the steps)
    assert state["global_step"] == 2 * math.ceil(n_train / (2 * 2))
