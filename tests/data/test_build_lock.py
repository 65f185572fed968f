"""Two processes building the same dataset version at once: one builds, the other waits on the
version's file lock and reuses the finished version (no file processed twice, nothing corrupt).
That the two really overlapped is checked, not assumed (``LOCK_PROBE``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytestmark = pytest.mark.slow

PROJECT_ROOT = Path(__file__).resolve().parents[2]
N_FILES = 8

# Prepended to each child's script, so that the test proves the two builds overlapped instead of
# trusting it. argv: probe folder, number of processes, seconds to hold a lock once taken, then the
# call's own arguments. (1) A barrier: each child, its imports done, leaves a file in the probe
# folder and waits until every child has left one, so the two calls start together (not one after
# the other, e.g. when one child's imports are slower). (2) Every ``filelock.FileLock`` the call
# takes through ``FileLock`` in the patched module records when it was asked for, acquired and
# about to be released (CLOCK_MONOTONIC: one clock for every process on Linux) in holds.jsonl.
LOCK_PROBE = r"""
import json, os, sys, time
import filelock
PROBE, N_PROCS, HOLD_S, ARGS = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
_FileLock = filelock.FileLock


class ProbedLock:
    def __init__(self, lock_file, *args, **kwargs):
        self._lock, self._path = _FileLock(lock_file, *args, **kwargs), str(lock_file)

    def __enter__(self):
        asked = time.monotonic()
        self._lock.acquire()
        self._times = {"asked": asked, "acquired": time.monotonic()}
        time.sleep(HOLD_S)
        return self

    def __exit__(self, *exc):
        rec = dict(self._times, released=time.monotonic(), pid=os.getpid(), path=self._path)
        self._lock.release()
        with open(os.path.join(PROBE, "holds.jsonl"), "a") as f:
            f.write(json.dumps(rec) + "\n")


def barrier():
    open(os.path.join(PROBE, f"ready-{os.getpid()}"), "w").close()
    deadline = time.monotonic() + 600
    while sum(n.startswith("ready-") for n in os.listdir(PROBE)) < N_PROCS:
        if time.monotonic() > deadline:
            sys.exit("barrier: the other process never got there")
        time.sleep(0.005)
"""

SCRIPT = LOCK_PROBE + r"""
import eno_hf.data.build
from eno_hf.config import load_config
from eno_hf.data.build import build_dataset
eno_hf.data.build.FileLock = ProbedLock
cfg = load_config("configs/base.yaml", ARGS)
barrier()
r = build_dataset(cfg, progress=False)
print(json.dumps({"version": r.version, "cache_hit": bool(r.cache_hit), "n_processed": r.n_processed,
                  "rows": {k: len(v) for k, v in r.dataset.items()}}))
"""


def assert_contended(probe: Path, lock_dir: Path) -> None:
    """The holds of the lock files in ``lock_dir`` by the two processes never overlapped (the lock
    excluded), and one process asked for a lock while the other held it (the attempts overlapped:
    without the lock both would have gone on at once)."""
    holds = [r for r in map(json.loads, (probe / "holds.jsonl").read_text().splitlines())
             if Path(r["path"]).resolve().parent == lock_dir.resolve()]
    assert len({h["pid"] for h in holds}) == 2, holds
    pairs = [(a, b) for a in holds for b in holds if a["pid"] != b["pid"]]
    assert all(a["released"] <= b["acquired"] or b["released"] <= a["acquired"] for a, b in pairs), holds
    assert any(a["acquired"] < b["asked"] < a["released"] for a, b in pairs), holds


def test_concurrent_builds_of_one_version(tmp_path: Path, run_concurrently) -> None:
    rng = np.random.default_rng(1)
    for i in range(N_FILES):
        x = 0.3 * np.sin(2 * np.pi * (200 + 31 * i) * np.arange(16_000) / 16_000) + 0.05 * rng.standard_normal(16_000)
        p = tmp_path / "audio" / ("a" if i % 2 else "b") / f"c{i}.wav"
        p.parent.mkdir(parents=True, exist_ok=True)
        sf.write(p, x.astype(np.float32), 16_000, subtype="PCM_16")
    sets = [f"paths.data_root={tmp_path / 'data'}", "dataset.name=lock", "dataset.source.kind=folders",
            f"dataset.source.audio_root={tmp_path / 'audio'}", "dataset.source.folder_group=none",
            "dataset.num_workers=1", "dataset.segment.segment_s=0.5", "dataset.segment.hop_s=0.5",
            "dataset.split.train=0.5", "dataset.split.validation=0.25", "dataset.split.test=0.25",
            "dataset.audio_column=false", "dataset.features.mfcc=false"]
    probe = tmp_path / "probe"
    probe.mkdir()
    # each holds the lock 2 s longer than it needs: on a loaded machine the waiter's scan and hash
    # can take longer than the whole build of 8 short files, and then nothing would overlap
    outs = run_concurrently(SCRIPT, [str(probe), "2", "2", *sets])
    # they overlapped: one asked for the version's lock while the other held it
    assert_contended(probe, tmp_path / "data" / "datasets" / "lock")
    assert outs[0]["version"] == outs[1]["version"]
    assert sorted(o["cache_hit"] for o in outs) == [False, True]
    assert sum(o["n_processed"] for o in outs) == N_FILES  # every file processed exactly once
    assert outs[0]["rows"] == outs[1]["rows"] and sum(outs[0]["rows"].values()) == 2 * N_FILES
    versions = [p.name for p in (tmp_path / "data" / "datasets" / "lock").iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert versions == [outs[0]["version"]]
    assert not list((tmp_path / "data" / "datasets" / "lock").glob(".*.tmp-*"))
