"""Scale-out on an existing engine: the dataset build's per-file tasks on a 2-worker Dask
LocalCluster (prefect-dask) give the same dataset version and identical rows as the default
thread-pool runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.flow, pytest.mark.slow]

SCRIPT = r"""
import hashlib, json, sys
import numpy as np
from datasets import load_from_disk
from eno_hf.flows.build import eno_build
cfg, root = sys.argv[1], sys.argv[2]
out = {}
for runner in ("threads", "dask"):  # one process: one ephemeral Prefect server for both builds
    ov = [f"paths.data_root={root}/{runner}", "dataset.limit=8", "dataset.num_workers=2",
          "dataset.split.train=0.5", "dataset.split.validation=0.25", "dataset.split.test=0.25",
          f"run.task_runner={runner}", "run.dask_workers=2", "run.files_per_task=3"]
    res = eno_build(cfg, ov)
    digest = {}
    for split, ds in sorted(load_from_disk(res["path"]).items()):
        h = hashlib.sha256()
        for row in ds.remove_columns([c for c in ("audio", "path") if c in ds.column_names]):
            h.update(json.dumps({k: (np.asarray(v).round(6).tolist() if isinstance(v, list) else v)
                                 for k, v in sorted(row.items())}, sort_keys=True, default=str).encode())
        digest[split] = [len(ds), h.hexdigest()]
    out[runner] = {"version": res["version"], "cache_hit": res["cache_hit"],
                   "n_written": res["accounting"]["n_written"], "digest": digest}
print(json.dumps(out))
"""


def _builds(tmp_path: Path) -> dict:
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_LOGGING_LEVEL": "WARNING",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.run([sys.executable, "-c", SCRIPT, "configs/small.yaml", str(tmp_path / "data")],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=2400)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_dask_local_cluster_matches_threads(tmp_path: Path, fourq_dir: Path) -> None:
    built = _builds(tmp_path)  # 8 files in chunks of 3: uneven chunks on both runners
    threads, dask = built["threads"], built["dask"]
    assert not dask["cache_hit"] and not threads["cache_hit"]  # each built from scratch
    assert dask["n_written"] == threads["n_written"] == 8
    assert dask["version"] == threads["version"]
    assert dask["digest"] == threads["digest"]
