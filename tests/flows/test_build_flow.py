"""Prefect build/ingest flows: task logic via ``.fn()``, cache keys, and one real flow run.

The real run happens in a subprocess with its own ``PREFECT_HOME`` (ephemeral server + SQLite
in tmp_path, ~20 s of start-up), so it never touches ``~/.eno/prefect``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from eno_hf.config import load_config
from eno_hf.data.build import FileJob, cache_path_for
from eno_hf.data.recording import Recording

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _job(tmp_path: Path, rec: Recording, *overrides: str) -> FileJob:
    cfg = load_config("configs/base.yaml", ["dataset.features.fingerprint=false", *overrides]).dataset
    from eno_hf.audio.io import content_hash

    h = content_hash(rec.path)
    return FileJob(rec, cfg, h, str(cache_path_for(tmp_path / "data", rec, h, cfg)))


def test_process_file_task_returns_rejections_as_values(tmp_path: Path) -> None:
    from flows.build import process_file_task

    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16_000 * 3, dtype=np.float32), 16_000)
    out = process_file_task.fn(_job(tmp_path, Recording("s", silent)))
    assert out["status"] == "rejected" and out["reason"] == "silent" and out["path"] == str(silent)

    t = np.arange(16_000 * 11) / 16_000
    tone = tmp_path / "tone.wav"
    sf.write(tone, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16_000)
    job = _job(tmp_path, Recording("t", tone))
    out = process_file_task.fn(job)
    assert out["status"] == "ok" and out["n_segments"] == 1
    assert Path(out["cache_path"]).is_file() and out["cache_path"] == job.cache_path
    assert "waveform" not in out  # small outcome: arrays stay in the cache file


def test_file_cache_key_is_content_and_config(tmp_path: Path) -> None:
    from flows.build import file_cache_key

    a = tmp_path / "a.wav"
    sf.write(a, np.full(16_000 * 2, 0.1, dtype=np.float32), 16_000)
    b = tmp_path / "b.wav"
    sf.write(b, np.full(16_000 * 2, 0.2, dtype=np.float32), 16_000)
    key = file_cache_key(None, {"job": _job(tmp_path, Recording("a", a))})
    relabelled = Recording("other-id", a, multilabel={"mood": ["sad"]})
    assert file_cache_key(None, {"job": _job(tmp_path, relabelled)}) == key
    assert file_cache_key(None, {"job": _job(tmp_path, Recording("a", b))}) != key
    assert file_cache_key(None, {"job": _job(tmp_path, Recording("a", a),
                                             "dataset.audio.target_lufs=-23")}) != key
    cropped = Recording("a", a, start_s=0.5, end_s=1.5)
    assert file_cache_key(None, {"job": _job(tmp_path, cropped)}) != key


SCRIPT = r"""
import json, sys
from flows.ingest import ingest
from flows.build import build_dataset_flow
cfg, data_root = sys.argv[1], sys.argv[2]
ov = [f"paths.data_root={data_root}", "dataset.limit=6", "dataset.num_workers=2", "dataset.segment.segment_s=10", "dataset.segment.hop_s=10",
      "dataset.split.train=0.5", "dataset.split.validation=0.25", "dataset.split.test=0.25"]
manifest = ingest(cfg, ov)
first = build_dataset_flow(cfg, ov)
second = build_dataset_flow(cfg, ov)
print(json.dumps({"manifest": manifest, "path": str(first.path), "version": first.version,
                  "cache_hit": [first.cache_hit, second.cache_hit],
                  "n_processed": first.n_processed, "second_version": second.version,
                  "accounting": first.report["accounting"],
                  "rows": {k: len(v) for k, v in first.dataset.items()}}))
"""


def test_real_flow_run(tmp_path: Path, fourq_dir: Path) -> None:
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"),
           "PREFECT_LOGGING_LEVEL": "WARNING"}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.run([sys.executable, "-c", SCRIPT, "configs/small.yaml", str(tmp_path / "data")],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    manifest = json.loads(Path(out["manifest"]).read_text())
    assert manifest["dataset"] == "4q" and manifest["n_recordings"] == 360
    assert "quadrant" in manifest["vocab"] and manifest["rejected"] == []
    assert out["cache_hit"] == [False, True] and out["second_version"] == out["version"]
    assert out["n_processed"] == 6
    assert out["accounting"]["invariant_holds"] and out["accounting"]["n_written"] == 6
    assert sum(out["rows"].values()) == 18 and all(n > 0 for n in out["rows"].values())
    assert (Path(out["path"]) / "qc_report.json").is_file()
    assert (tmp_path / "prefect-home").is_dir()  # Prefect state went to the tmp home
