"""ClearML Datasets (offline session by default) and remote training, as far as offline allows:
enqueueing needs a server, so it is tested for its clear refusal offline and, with a fake Task,
for the call it makes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest


@pytest.fixture()
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("CLEARML_OFFLINE_MODE", "1")
    monkeypatch.setenv("CLEARML_CACHE_DIR", str(tmp_path / "cache"))


def test_dataset_version_registered_offline_with_linked_files(offline, tmp_path: Path) -> None:
    from eno_hf.registry.clearml import DATASET_RECORD, register_dataset

    version_dir = tmp_path / "datasets" / "4q" / "abc123"
    (version_dir / "train").mkdir(parents=True)
    (version_dir / "train" / "data-00000-of-00001.arrow").write_bytes(b"\x00" * 1000)
    (version_dir / "qc_report.json").write_text("{}")
    rec = register_dataset(version_dir, "4q", "abc123", summary={"n_written": 1})
    assert rec["id"].startswith("offline-") and rec["version"] == "abc123"
    session = Path(rec["offline_session"])
    assert session.is_dir() and str(session).startswith(str(tmp_path / "cache"))
    # the files are linked by file:// URL, not copied into the session
    state = next(session.rglob("state*.json"), None) or next(session.rglob("*.json"))
    blob = "".join(p.read_text(errors="ignore") for p in session.rglob("*.json"))
    assert "data-00000-of-00001.arrow" in blob and version_dir.as_uri() in blob, state
    assert not any(p.stat().st_size >= 1000 and p.suffix == ".arrow" for p in session.rglob("*"))
    # idempotent per version folder
    assert json.loads((version_dir / DATASET_RECORD).read_text()) == rec
    assert register_dataset(version_dir, "4q", "abc123") == rec


def test_remote_training_refused_offline(offline) -> None:
    from eno_hf.registry.clearml import enqueue_training

    with pytest.raises(RuntimeError, match="needs a ClearML server"):
        enqueue_training({"train": {"epochs": 1}}, "gpu-queue")


def test_remote_training_enqueues_with_a_server(monkeypatch) -> None:
    """With a server (faked: ClearML's Task class), the task is created with the settings and
    ``execute_remotely(queue_name=...)`` is called."""
    import clearml

    calls: dict = {}

    class FakeTask:
        @staticmethod
        def is_offline():
            return False

        @classmethod
        def init(cls, **kw):
            calls["init"] = kw
            return cls()

        def connect(self, params, name=None):
            calls["connect"] = (params, name)

        def execute_remotely(self, **kw):
            calls["execute_remotely"] = kw

    monkeypatch.setenv("CLEARML_OFFLINE_MODE", "0")
    monkeypatch.setattr(clearml, "Task", FakeTask)
    from eno_hf.registry.clearml import enqueue_training

    enqueue_training({"train": {"epochs": 3}}, "gpu-queue", project="eno", task_name="train-eno-tagger")
    assert calls["init"]["project_name"] == "eno" and calls["init"]["task_name"] == "train-eno-tagger"
    assert calls["connect"] == ({"train/epochs": 3}, "settings")
    assert calls["execute_remotely"] == {"queue_name": "gpu-queue", "clone": False, "exit_process": True}
