"""Local hub: register (v1, v2, latest), resolve specs, list_models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lock_probe import LOCK_PROBE, assert_contended

from eno_hf.registry.hub import content_hash, list_models, register, resolve


def _model_dir(tmp_path: Path, name: str, weights: bytes) -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model_type": "eno"}))
    (d / "model.safetensors").write_bytes(weights)
    return d


def test_register_versions_latest_and_resolve(tmp_path):
    hub = tmp_path / "hub"
    m1 = _model_dir(tmp_path, "m1", b"one")
    m2 = _model_dir(tmp_path, "m2", b"two")
    v1 = register(m1, hub, "tagger", {"metrics": {"score": 0.7}, "dataset": "4q@abc"})
    v2 = register(m2, hub, "tagger", {"metrics": {"score": float("nan")}})
    assert v1 == hub / "tagger" / "v1" and v2 == hub / "tagger" / "v2"
    assert (v2 / "model.safetensors").read_bytes() == b"two"
    assert (hub / "tagger" / "latest").read_text().strip() == "v2"
    info = json.loads((v1 / "registry.json").read_text())
    assert info["version"] == "v1" and info["metadata"]["metrics"]["score"] == 0.7
    assert info["metadata"]["dataset"] == "4q@abc" and info["source"] == str(m1.resolve())
    assert info["content_sha256"] == content_hash(m1) != content_hash(m2)
    assert json.loads((v2 / "registry.json").read_text())["metadata"]["metrics"]["score"] is None

    assert resolve("tagger", hub) == v2
    assert resolve("tagger@latest", hub) == v2
    assert resolve("tagger@v1", hub) == v1
    assert resolve(str(m1), hub) == m1
    with pytest.raises(FileNotFoundError, match="registered"):
        resolve("tagger@v9", hub)
    with pytest.raises(FileNotFoundError):
        resolve("other", hub)

    rows = list_models(hub)
    assert [(r["name"], r["version"], r["latest"]) for r in rows] == [("tagger", "v1", False), ("tagger", "v2", True)]
    assert list_models(tmp_path / "absent") == []


def test_register_rejects_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        register(tmp_path, tmp_path / "hub", "x")
    m = _model_dir(tmp_path, "m", b"w")
    with pytest.raises(ValueError, match="invalid model name"):
        register(m, tmp_path / "hub", "../evil")
    # refused before anything is written: no hub folder, nothing outside it
    assert not (tmp_path / "hub").exists() and not (tmp_path / "evil").exists()



# register() holds its lock only to claim the number and move ``latest`` (milliseconds): the probe
# holds it HOLD_S longer, so that the other writer's attempt falls inside a hold.
_WRITER = LOCK_PROBE + r"""
import eno_hf.registry.hub
from eno_hf.registry.hub import register
eno_hf.registry.hub.FileLock = ProbedLock
model, hub, n, writer = ARGS[0], ARGS[1], int(ARGS[2]), ARGS[3]
barrier()
for _ in range(n):
    register(model, hub, "shared", {"writer": writer})
"""


def test_two_processes_registering_the_same_name(tmp_path) -> None:
    """Two writers on one hub (as two workers on an NFS share), proven to contend for the lock:
    distinct versions, every copy complete, ``latest`` = the newest, no temporary folder left."""
    import subprocess
    import sys

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"x" * 200_000)
    probe = tmp_path / "probe"
    probe.mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(probe), "2", "0.3",
                               str(model), str(tmp_path / "hub"), "4", w]) for w in ("a", "b")]
    assert [p.wait(timeout=600) for p in procs] == [0, 0]  # imports alone took ~95 s under load
    root = tmp_path / "hub" / "shared"
    # they overlapped: a writer asked for the lock while the other held it
    assert_contended(probe, root)
    versions = sorted(int(p.name[1:]) for p in root.iterdir() if p.is_dir() and p.name.startswith("v"))
    assert versions == list(range(1, 9))
    infos = [json.loads((root / f"v{v}" / "registry.json").read_text()) for v in versions]
    assert [i["version"] for i in infos] == [f"v{v}" for v in versions]
    assert sorted(i["metadata"]["writer"] for i in infos) == ["a"] * 4 + ["b"] * 4
    assert all((root / f"v{v}" / "model.safetensors").stat().st_size == 200_000 for v in versions)
    assert (root / "latest").read_text().strip() == "v8"
    assert not [p for p in root.iterdir() if p.name.startswith(".tmp-")]
