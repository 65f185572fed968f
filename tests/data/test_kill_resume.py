"""kill -9 of a real ``eno build`` (its whole process group) during processing and during the
write phase; the next build resumes to the identical dataset and leaves no temporaries.

Tiny generated WAVs (3 s, cut into 0.25-s segments so the write phase has rows to write).
Marked slow: four ``eno build`` processes (each imports torch/datasets).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from eno_hf.config import load_config
from eno_hf.data.build import build_dataset

pytestmark = pytest.mark.slow

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
N_FILES = 24


def _corpus(root: Path) -> None:
    rng = np.random.default_rng(0)
    for i in range(N_FILES):
        t = np.arange(3 * 16_000) / 16_000
        x = 0.3 * np.sin(2 * np.pi * (110 + 7 * i) * t) + 0.05 * rng.standard_normal(t.size)
        path = root / ("a" if i % 2 else "b") / f"clip{i:02d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, x.astype(np.float32), 16_000, subtype="PCM_16")


def _sets(audio: Path, data_root: Path) -> list[str]:
    return [f"paths.data_root={data_root}", "dataset.name=kill", "dataset.source.kind=folders",
            f"dataset.source.audio_root={audio}", "dataset.source.folder_group=none",
            "dataset.num_workers=2", "dataset.segment.segment_s=0.25", "dataset.segment.hop_s=0.25",
            "dataset.split.train=0.6", "dataset.split.validation=0.2", "dataset.split.test=0.2",
            "dataset.audio_column=false", "dataset.features.mfcc=false"]


def _cmd(audio: Path, data_root: Path) -> list[str]:
    args = [sys.executable, "-m", "eno_hf.cli", "build", "--config", "configs/base.yaml", "--json"]
    for s in _sets(audio, data_root):
        args += ["--set", s]
    return args


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PROJECT_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _kill_when(audio: Path, data_root: Path, ready, timeout_s: float = 900.0) -> None:
    """Start ``eno build`` in a new process group; SIGKILL the group as soon as ``ready()``."""
    proc = subprocess.Popen(_cmd(audio, data_root), cwd=PROJECT_ROOT, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + timeout_s
    try:
        while not ready():
            assert proc.poll() is None, "eno build finished before it could be killed"
            assert time.monotonic() < deadline, "timed out waiting for the kill point"
            time.sleep(0.002)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    # every process of the group is dead (workers included; zombies wait for their reaper)
    deadline = time.monotonic() + 10
    while _group_running(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _group_running(proc.pid)


def _group_running(pgid: int) -> bool:
    """Whether a non-zombie process of process group ``pgid`` exists (``/proc/*/stat``)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _run(audio: Path, data_root: Path) -> dict:
    proc = subprocess.run(_cmd(audio, data_root), cwd=PROJECT_ROOT, env=_env(),
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _rows(path: str | Path) -> dict[str, list]:
    from datasets import load_from_disk

    out = {}
    for split, ds in load_from_disk(str(path)).items():
        cols = ds.select_columns(["segment_id", "waveform", "log_mel", "label"]).to_list()
        out[split] = [(r["segment_id"], np.asarray(r["waveform"]).tobytes(),
                       np.asarray(r["log_mel"]).tobytes(), r["label"]) for r in cols]
    return out


def _temporaries(data_root: Path) -> list[Path]:
    ds = data_root / "datasets" / "kill"
    cache = data_root / "cache" / "segments"
    found = list(ds.glob(".*.tmp-*")) if ds.is_dir() else []
    found += [p for p in cache.rglob(".*") if p.is_file()] if cache.is_dir() else []  # sub-folders too
    return found


def test_kill9_during_processing_and_write_then_resume(tmp_path: Path) -> None:
    audio, data_root = tmp_path / "audio", tmp_path / "data"
    _corpus(audio)
    reference = build_dataset(load_config("configs/base.yaml",
                                          _sets(audio, tmp_path / "reference")), progress=False)
    cache = data_root / "cache" / "segments"

    # 1. kill -9 while files are being processed (some per-file results cached, not all)
    _kill_when(audio, data_root, lambda: cache.is_dir() and len(list(cache.rglob("*.arrow"))) >= 6)
    assert not (data_root / "datasets" / "kill" / reference.version).exists()
    n_cached = len(list(cache.rglob("*.arrow")))
    assert 6 <= n_cached < N_FILES
    first = _run(audio, data_root)
    assert first["version"] == reference.version and not first["cache_hit"]
    report = json.loads((Path(first["dataset"]) / "qc_report.json").read_text())
    assert report["build"]["n_from_cache"] >= n_cached  # resumed, not redone
    assert _rows(first["dataset"]) == _rows(reference.path)
    assert _temporaries(data_root) == []

    # 2. kill -9 during the write phase: remove the version, every file is now a cache hit
    import shutil

    shutil.rmtree(first["dataset"])
    (data_root / "datasets" / "kill" / "LATEST").unlink()
    staging = data_root / "datasets" / "kill"

    def writing() -> bool:
        return any(any(t.rglob("*.arrow")) for t in staging.glob(".*.tmp-*"))

    _kill_when(audio, data_root, writing)
    leaked = list(staging.glob(".*.tmp-*"))
    assert leaked, "the kill did not happen during the write phase"
    second = _run(audio, data_root)
    assert second["version"] == reference.version
    assert _rows(second["dataset"]) == _rows(reference.path)
    assert _temporaries(data_root) == [], "stale temporaries left behind"
    assert not any(p.exists() for p in leaked)


def test_kill9_of_main_process_leaves_no_worker(tmp_path: Path, fourq_clips: list[Path]) -> None:
    """SIGKILL of ``eno build``'s main process alone (what the OOM killer does) mid-processing:
    its pool workers die with it (parent-death signal) instead of idling on."""
    import shutil

    import psutil
    from kill_probe import kill_group, kill_main_and_assert_workers_die

    audio, data_root = tmp_path / "audio", tmp_path / "data"
    for i, clip in enumerate(fourq_clips):  # 8 real clips, 2 per quadrant
        dest = audio / clip.parent.name / clip.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(clip, dest)
    cmd = [a.replace("dataset.segment.segment_s=0.25", "dataset.segment.segment_s=1.0")
           .replace("dataset.segment.hop_s=0.25", "dataset.segment.hop_s=1.0")
           for a in _cmd(audio, data_root)]
    env = _env() | {"XDG_RUNTIME_DIR": str(tmp_path / "run")}  # this test's worker pid files
    (tmp_path / "run").mkdir()
    proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    main = psutil.Process(proc.pid)
    workers: list[psutil.Process] = []
    deadline = time.monotonic() + 600
    try:
        while len(workers) < 2:
            assert proc.poll() is None, "eno build finished before its pool started"
            assert time.monotonic() < deadline, "timed out waiting for the pool workers"
            workers = [c for c in main.children() if "python" in c.name().lower()]
            time.sleep(0.05)
        kill_main_and_assert_workers_die(proc, workers)
    finally:
        kill_group(proc)


def test_reap_orphans_kills_recorded_worker_of_dead_parent(tmp_path: Path, monkeypatch) -> None:
    """A worker recorded by a parent that no longer exists is killed by the next run; a worker
    whose parent still runs is left alone."""
    import psutil

    from eno_hf.data import workers

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    d = workers._registry_dir()
    d.mkdir()
    dead_parent = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_parent.wait()
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    kept = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        me = os.getpid()
        for p, parent in ((orphan, dead_parent.pid), (kept, me)):
            (d / f"{p.pid}.json").write_text(json.dumps({
                "pid": p.pid, "created": psutil.Process(p.pid).create_time(), "parent": parent,
                "parent_created": psutil.Process(me).create_time() if parent == me else 1.0}))
        (d / "999999999.json").write_text(json.dumps({"pid": 999999999, "created": 1.0,
                                                      "parent": me, "parent_created": 1.0}))
        assert workers.reap_orphans() == [orphan.pid]
        assert orphan.wait(timeout=10) == -signal.SIGKILL
        assert kept.poll() is None
        assert sorted(f.name for f in d.iterdir()) == [f"{kept.pid}.json"]
    finally:
        for p in (orphan, kept):
            p.kill()
            p.wait()
