"""ClearML Tracker in offline mode writes a session with params, scalars and artifacts."""

from __future__ import annotations

import json
import os
import zipfile
from types import SimpleNamespace

import pytest

pytest.importorskip("clearml")

from eno_hf.registry.clearml import ClearMLCallback, NullTracker, make_tracker  # noqa: E402


def test_null_tracker_does_nothing(tmp_path):
    with make_tracker(False, "p", "t") as tr:
        assert isinstance(tr, NullTracker)
        tr.log_params({"a": 1})
        tr.log_scalars(1, {"x": 1.0})
        tr.register_model(tmp_path)
        assert tr.offline_session_path is None


def test_offline_tracker_writes_session(tmp_path, monkeypatch):
    monkeypatch.setenv("CLEARML_OFFLINE_MODE", "1")
    monkeypatch.setenv("CLEARML_CACHE_DIR", str(tmp_path / "cache"))
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"weights")
    with make_tracker(True, "eno-test", "offline-run", offline=True) as tr:
        session = tr.offline_session_path
        assert session is not None and str(session).startswith(str(tmp_path / "cache"))
        tr.log_params({"train": {"epochs": 3, "lr": 0.001}, "model": {"encoder": "mel_cnn"}})
        cb = ClearMLCallback(tr)
        state = SimpleNamespace(epoch=1.0)
        cb.on_evaluate(None, state, None, metrics={"eval_score": 0.75, "eval_loss": 0.5, "eval_runtime": 1.0})
        cb.on_log(None, state, None, logs={"loss": 0.9, "loss_tags": 0.4, "epoch": 1.0})
        tr.log_scalars(2, {"eval/score": 0.8, "bad": float("nan")})
        tr.register_model(model)
    assert session.is_dir() and session.with_suffix(".zip").is_file()
    metrics = (session / "metrics.jsonl").read_text()
    assert "0.75" in metrics and "0.8" in metrics and "loss_tags" in metrics
    task = json.loads((session / "task.json").read_text())
    assert task["name"] == "offline-run"
    assert "epochs" in json.dumps(task)
    assert any(p.name == "model.zip" or p.suffix == ".zip" for p in (session / "data").rglob("*"))
    with zipfile.ZipFile(session.with_suffix(".zip")) as z:
        assert any(n.endswith("task.json") for n in z.namelist())
    assert os.environ["CLEARML_OFFLINE_MODE"] == "1"


def test_inherited_master_id_is_forgotten(monkeypatch) -> None:
    """Regression: an eno process started from a process with a ClearML task (pytest, a notebook)
    inherited CLEARML_PROC_MASTER_ID and Task.init returned a stub that recorded nothing."""
    import os
    import subprocess
    import sys

    code = ("import os; from eno_hf.registry.clearml import _forget_foreign_master; "
            "_forget_foreign_master(); print(os.environ.get('CLEARML_PROC_MASTER_ID'))")
    env = {**os.environ, "CLEARML_PROC_MASTER_ID": f"{os.getpid()}:abc"}  # we are its direct parent
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "None"


def test_online_register_model_publishes_output_model(tmp_path, monkeypatch):
    """With a server (offline=False) the model directory becomes an artifact AND a ClearML
    OutputModel with the weights file and the labels of config.json (no server needed: fakes)."""
    import clearml

    from eno_hf.registry.clearml import Tracker

    calls = {}

    class FakeOutputModel:
        def __init__(self, task, name, framework):
            calls["init"] = (task, name, framework)

        def update_labels(self, labels):
            calls["labels"] = labels

        def update_weights(self, weights_filename):
            calls["weights"] = weights_filename

    class FakeTask:
        def upload_artifact(self, name, artifact_object, wait_on_upload):
            calls["artifact"] = (name, artifact_object)

    monkeypatch.setattr(clearml, "OutputModel", FakeOutputModel)
    model_dir = tmp_path / "eno-tagger"
    model_dir.mkdir()
    (model_dir / "model.safetensors").write_bytes(b"weights")
    (model_dir / "config.json").write_text(json.dumps({"label2id": {"quadrant/q1": 0, "genres/jazz": 1}}))
    tracker = Tracker.__new__(Tracker)  # skip Task.init: no server here
    tracker.task, tracker.offline, tracker._closed = FakeTask(), False, True
    tracker.register_model(model_dir)
    assert calls["artifact"] == ("model", str(model_dir))
    assert calls["init"][1:] == ("eno-tagger", "PyTorch")
    assert calls["labels"] == {"quadrant/q1": 0, "genres/jazz": 1}
    assert calls["weights"] == str(model_dir / "model.safetensors")

    calls.clear()
    tracker.offline = True  # offline: artifact only (OutputModel fails offline)
    tracker.register_model(model_dir)
    assert "artifact" in calls and "init" not in calls
