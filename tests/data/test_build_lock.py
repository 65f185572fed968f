"""Two processes building the same dataset version at once: one builds, the other waits on the
version's file lock and reuses the finished version (no file processed twice, nothing corrupt).
That the two really overlapped is checked, not assumed (``LOCK_PROBE``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from lock_probe import LOCK_PROBE, assert_contended

pytestmark = pytest.mark.slow

PROJECT_ROOT = Path(__file__).resolve().parents[2]
N_FILES = 8


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
