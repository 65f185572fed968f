"""Build internals added for ingest speed: NaN/Inf counted in workers, cache layout, threads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from eno_hf.config import DatasetConfig
from eno_hf.data.build import (
    FileJob, _hash_files, _pool_map, _read_cache, _torch_threads, cache_path_for, count_nonfinite,
    dataset_features, load_cached, process_file, process_recording,
)
from eno_hf.data.qc import NonFiniteCounter
from eno_hf.data.recording import Recording
from eno_hf.features import FEATURE_DEFINITIONS_VERSION


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_count_nonfinite_matches_qc_counter(dtype: type) -> None:
    a = np.random.default_rng(0).standard_normal((7, 1001)).astype(dtype)
    a[0, ::100] = np.nan
    a[1, 5::77] = np.inf
    a[2, 7::99] = -np.inf
    a[3, 3] = -np.nan
    ref = NonFiniteCounter()
    ref.update("x", a)
    got = count_nonfinite(a)
    assert got == ref.to_dict()["x"]
    assert got["nan"] == 12 and got["inf"] == 13 + 11 and got["n_values"] == a.size
    strided = NonFiniteCounter()
    strided.update("x", a[:, ::2])  # non-contiguous view
    assert count_nonfinite(a[:, ::2]) == strided.to_dict()["x"]
    assert count_nonfinite(a[:, ::2])["nan"] == 11


def test_count_nonfinite_other_dtypes() -> None:
    assert count_nonfinite(np.arange(5)) == {"nan": 0, "inf": 0, "n_values": 5}
    ld = np.array([np.nan, np.inf, 1.0], dtype=np.longdouble)
    assert count_nonfinite(ld) == {"nan": 1, "inf": 1, "n_values": 3}


def test_worker_cache_is_arrow_with_counts_and_feature_version(tmp_path: Path,
                                                                fourq_clips: list[Path]) -> None:
    cfg = DatasetConfig()
    rec = Recording("clip", fourq_clips[0])
    path = cache_path_for(tmp_path, rec, "0" * 64, cfg)
    assert path.name.endswith(f"-f{FEATURE_DEFINITIONS_VERSION}.arrow")
    out = process_file(FileJob(rec, cfg, "0" * 64, str(path)))
    assert out["status"] == "ok" and out["n_segments"] >= 2
    # the cached arrays are what process_recording computes, in the dataset's Arrow types
    direct = process_recording(rec, cfg).rows
    bounds, stats, arrays = load_cached(path)
    assert len(bounds) == len(arrays) == len(direct) and stats == out["stats"]
    for i, (row, cached) in enumerate(zip(direct, arrays)):
        assert bounds[i] == (row["segment_start_s"], row["segment_end_s"])
        for col in ("waveform", "log_mel", "mfcc", "fingerprint"):
            assert cached[col].dtype == row[col].dtype and cached[col].shape == row[col].shape
            np.testing.assert_array_equal(cached[col], row[col])
    meta, table = _read_cache(path)
    types = dataset_features(cfg, {}, [], [], []).arrow_schema
    for col in ("waveform", "log_mel", "mfcc", "fingerprint"):
        assert table.schema.field(col).type == types.field(col).type
    counts = meta["nonfinite"]
    assert set(counts) == {"waveform", "log_mel", "mfcc", "fingerprint"}
    assert counts["waveform"]["n_values"] == sum(a["waveform"].size for a in arrays)
    assert counts["fingerprint"] == {"nan": 0, "inf": 0, "n_values": 64 * out["n_segments"]}


def test_rejection_cache_name(tmp_path: Path) -> None:
    from eno_hf.data.build import _rejection_path

    assert _rejection_path(tmp_path / "abc-def-f2.arrow").name == "abc-def-f2.rejected.json"
    assert _rejection_path(tmp_path / "x.npz").name == "x.rejected.json"


def test_hash_files_threads_and_errors(tmp_path: Path) -> None:
    import hashlib

    files = []
    for i in range(5):
        f = tmp_path / f"f{i}.bin"
        f.write_bytes(bytes([i]) * (100_000 + i))
        files.append(str(f))
    missing = str(tmp_path / "missing.wav")
    got = _hash_files([*files, missing], threads=2)
    for f in files:
        assert got[f] == hashlib.sha256(Path(f).read_bytes()).hexdigest()
    assert getattr(got[missing], "reason", None) == "missing_file"
    assert _hash_files(files, threads=1) == {f: got[f] for f in files}


def test_thread_limits_are_applied_and_restored() -> None:
    import torch
    from threadpoolctl import threadpool_info

    before = torch.get_num_threads()
    with _torch_threads(1):
        assert torch.get_num_threads() == 1
        pools = threadpool_info()
        assert pools and all(p["num_threads"] == 1 for p in pools)  # numpy's BLAS at least
    assert torch.get_num_threads() == before


def _threads_in_worker(_: int) -> tuple[int, list[int]]:
    import torch
    from threadpoolctl import threadpool_info

    return torch.get_num_threads(), [p["num_threads"] for p in threadpool_info()]


def test_pool_workers_use_one_thread() -> None:
    outs = list(_pool_map(_threads_in_worker, [0, 1, 2], workers=2))
    assert len(outs) == 3
    for torch_threads, pools in outs:
        assert torch_threads == 1 and pools and all(n == 1 for n in pools)
