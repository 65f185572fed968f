"""A dataset version as an offline ClearML Dataset, in a subprocess with a timeout."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from eno_hf.registry.clearml_dataset import register_dataset_version


def _version_dir(tmp_path: Path) -> Path:
    v = tmp_path / "data" / "datasets" / "toy" / "abc123"
    (v / "train").mkdir(parents=True)
    (v / "dataset_dict.json").write_text('{"splits": ["train"]}')
    (v / "train" / "dataset_info.json").write_text("{}")
    (v / "qc_report.json").write_text('{"accounting": {}}')
    (v / "train" / "data-00000-of-00001.arrow").write_bytes(b"not registered")
    return v


def test_timeout_never_blocks(tmp_path: Path) -> None:
    rec = tmp_path / "rec.json"
    out = register_dataset_version(_version_dir(tmp_path), "toy", "abc123", tmp_path / "data", timeout_s=0.5, record=rec)
    assert out["status"] == "timeout" and json.loads(rec.read_text()) == out


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("ENO_TEST_CLEARML_DATASETS") != "1",
                    reason="one offline ClearML Dataset registration takes 1.5-9 min here; "
                           "set ENO_TEST_CLEARML_DATASETS=1 to run it (the feature is opt-in)")
def test_offline_registration_in_a_fresh_process(tmp_path: Path, monkeypatch) -> None:
    cache = tmp_path / "clearml-cache"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLEARML_CACHE_DIR", str(cache))
    # as after an earlier ClearML Task in this process (e.g. other tests, or `eno run` registering)
    monkeypatch.setenv("CLEARML_PROC_MASTER_ID", f"{os.getpid()}:0123456789abcdef")
    monkeypatch.setenv("CLEARML_TASK_ID", "0123456789abcdef")
    out = register_dataset_version(_version_dir(tmp_path), "toy", "abc123", tmp_path / "data", timeout_s=600)
    assert out["status"] == "ok", out
    assert sorted(out["files"]) == ["dataset_dict.json", "qc_report.json", "train/dataset_info.json"]
    assert out["id"].startswith("offline-")
    assert (cache / "offline" / f"{out['id']}.zip").is_file()  # the session to import on a server
