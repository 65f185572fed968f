"""Remote training on a ClearML agent queue, as far as offline allows:
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
