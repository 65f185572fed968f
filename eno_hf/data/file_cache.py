"""The per-file cache: one recording's processed segments as an Arrow IPC file, keyed by content.

``{data_root}/cache/segments/{content_hash[:2]}/{content_hash}-{processing_hash}-f{FEATURE_DEFINITIONS_VERSION}.arrow``
holds the arrays in the dataset's Arrow types + segment bounds + conditioning stats + NaN/Inf
counts (no labels), so relabelling, re-splitting or adding files reprocesses only what changed.
Deterministic rejections are cached as ``.rejected.json`` beside it. The 256 sub-folders (first
two hex digits of the content hash) keep folders small: 3M files are ~12k a folder. A result
found at the older flat place (``{data_root}/cache/segments/{name}``) is moved into its
sub-folder when first looked up (``cached_outcome``), so it is not processed again. ``process_file(job)`` is the unit a
worker (process pool, Prefect task, Dask worker) runs: process + write the cache, return a small
outcome dict.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eno_hf.config import DatasetConfig
from eno_hf.data.arrow import ARRAY_COLUMNS, array_column, array_types, row_to_numpy
from eno_hf.data.process import ProcessedRecording, process_recording
from eno_hf.data.recording import Recording
from eno_hf.data.version import processing_hash, segment_cache_dir
from eno_hf.errors import RejectedInput
from eno_hf.features import FEATURE_DEFINITIONS_VERSION
from eno_hf.utils.io import atomic_write as _atomic_write

__all__ = ["FileJob", "cache_path_for", "count_nonfinite", "load_cached", "cached_outcome", "process_file",
           "CACHEABLE_REASONS"]

CACHEABLE_REASONS = {"undecodable", "empty", "too_short", "silent", "nan_inf"}
"""Rejections that depend only on file bytes + config, so they are cached like results."""


@dataclass
class FileJob:
    """One unit of per-file work for ``process_file`` (picklable; small).

    Attributes:
        recording: the recording to process.
        cfg: the dataset config.
        content_hash: sha256 of the file bytes.
        cache_path: ``.arrow`` path the result is written to (``cache_path_for``).
    """

    recording: Recording
    cfg: DatasetConfig
    content_hash: str
    cache_path: str

    def cache_key(self) -> str:
        """Content hash + processing config hash + crop: what decides the result (not arrays)."""
        return Path(self.cache_path).stem


def cache_path_for(data_root: str | Path, rec: Recording, content: str, cfg: DatasetConfig) -> Path:
    """``{data_root}/cache/segments/{content[:2]}/{content}-{processing_hash}-f{N}[-{crop}].arrow``.

    ``content`` is the file's sha256 (hex); ``N`` is ``eno_hf.features.FEATURE_DEFINITIONS_VERSION``
    (results of older feature code are not reused); ``crop`` hashes a pre-cut time range.
    """
    name = f"{content}-{processing_hash(cfg)}-f{FEATURE_DEFINITIONS_VERSION}"
    if rec.start_s is not None or rec.end_s is not None:
        crop = hashlib.sha256(f"{rec.start_s}:{rec.end_s}".encode()).hexdigest()[:8]
        name += f"-{crop}"
    return segment_cache_dir(data_root) / content[:2] / f"{name}.arrow"


def _rejection_path(cache_path: str | Path) -> Path:
    p = Path(cache_path)
    return p.with_name(p.name.split(".", 1)[0] + ".rejected.json")


def count_nonfinite(array: np.ndarray) -> dict[str, int]:
    """``{"nan", "inf", "n_values"}`` of an array (any shape; non-float arrays have none), as
    ``NonFiniteCounter.update`` (``np.isnan`` / ``np.isinf``)."""
    a = np.asarray(array)
    if a.size and np.issubdtype(a.dtype, np.floating):
        return {"nan": int(np.isnan(a).sum()), "inf": int(np.isinf(a).sum()), "n_values": int(a.size)}
    return {"nan": 0, "inf": 0, "n_values": int(a.size)}


def _save_cache(path: Path, processed: ProcessedRecording, cfg: DatasetConfig) -> None:
    """Write the per-file cache: an Arrow IPC file, one row per segment.

    Columns: ``segment_start_s``, ``segment_end_s`` and the enabled array columns, already in
    the dataset's Arrow types (converted here, in the worker, so the parent's serial Arrow
    writing only copies buffers); schema metadata ``eno``: JSON with ``bounds``, ``stats`` and
    per-column NaN/Inf counts (also counted here, so the parent never rescans arrays).
    """
    import pyarrow as pa

    rows = processed.rows
    nonfinite: dict[str, dict[str, int]] = {}
    columns: dict[str, Any] = {
        "segment_start_s": pa.array([float(r["segment_start_s"]) for r in rows], pa.float64()),
        "segment_end_s": pa.array([float(r["segment_end_s"]) for r in rows], pa.float64()),
    }
    for col, typ in array_types(cfg).items():
        if not rows or col not in rows[0]:
            continue
        arrays = [r[col] for r in rows]
        total = nonfinite.setdefault(col, {"nan": 0, "inf": 0, "n_values": 0})
        for arr in arrays:
            for k, v in count_nonfinite(arr).items():
                total[k] += v
        columns[col] = array_column(arrays, typ)
    meta = {"bounds": [[r["segment_start_s"], r["segment_end_s"]] for r in rows],
            "stats": processed.stats, "nonfinite": nonfinite}
    table = pa.table(columns).replace_schema_metadata({"eno": json.dumps(meta)})

    def write(fh: Any) -> None:
        with pa.ipc.new_file(fh, table.schema) as writer:
            writer.write_table(table)

    _atomic_write(path, write)


def _read_cache(path: str | Path) -> tuple[dict[str, Any], Any]:
    """(meta, memory-mapped ``pyarrow.Table``) of a per-file cache."""
    import pyarrow as pa

    table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()  # buffers keep the map alive
    return json.loads(table.schema.metadata[b"eno"]), table


def _read_cache_meta(path: str | Path) -> dict[str, Any]:
    import pyarrow as pa

    with pa.memory_map(str(path)) as source:
        return json.loads(pa.ipc.open_file(source).schema.metadata[b"eno"])


def load_cached(path: str | Path) -> tuple[list[tuple[float, float]], dict[str, Any], list[dict[str, np.ndarray]]]:
    """Read a per-file cache: (segment bounds in s, stats, per-segment ``{column: array}``).

    Arrays come back with the shapes/dtypes ``process_recording`` produced (2-D columns as
    ``(rows, frames)`` arrays).
    """
    meta, table = _read_cache(path)
    arrays: list[dict[str, np.ndarray]] = [{} for _ in meta["bounds"]]
    for col in ARRAY_COLUMNS:
        if col in table.column_names:
            for i, value in enumerate(table[col]):
                arrays[i][col] = row_to_numpy(value)
    return [tuple(b) for b in meta["bounds"]], meta["stats"], arrays


def _adopt_flat(p: Path) -> None:
    """Move ``p``'s result (or cached rejection) from the flat layout (``p.parent.parent / p.name``,
    before the sub-folders) into ``p``'s folder, if it is there and ``p`` is not."""
    for new in (p, _rejection_path(p)):
        old = new.parent.parent / new.name
        if old.is_file():
            try:
                new.parent.mkdir(parents=True, exist_ok=True)
                os.replace(old, new)
            except OSError:  # another build moved it first, or a read-only cache: look it up as is
                pass
            return


def cached_outcome(job: FileJob) -> dict[str, Any] | None:
    """The outcome recorded in the cache for ``job`` (as ``process_file`` returns it), or None.

    A result at the flat place of older builds is moved into its sub-folder first.
    """
    p = Path(job.cache_path)
    rec = job.recording
    if not p.is_file() and not _rejection_path(p).is_file():
        _adopt_flat(p)
    if p.is_file():
        try:
            meta = _read_cache_meta(p)
        except Exception:  # corrupt cache file: reprocess
            return None
        return {"status": "ok", "recording_id": rec.recording_id, "cache_path": str(p),
                "n_segments": len(meta["bounds"]), "stats": meta["stats"]}
    rp = _rejection_path(p)
    if rp.is_file():
        try:
            item = json.loads(rp.read_text(encoding="utf-8"))
        except Exception:
            return None
        return {"status": "rejected", "recording_id": rec.recording_id,
                "path": str(rec.path), "reason": item["reason"], "detail": item.get("detail", "")}
    return None


def process_file(job: FileJob) -> dict[str, Any]:
    """Process one file and write its result to ``job.cache_path``; rejections are values.

    Returns:
        ``{"status": "ok", "recording_id", "cache_path", "n_segments", "stats"}`` or
        ``{"status": "rejected", "recording_id", "path", "reason", "detail"}``. Small (no arrays),
        so it is cheap to pass between processes or persist as a Prefect task result.
    """
    rec = job.recording
    try:
        processed = process_recording(rec, job.cfg)
    except RejectedInput as exc:
        out = {"status": "rejected", "recording_id": rec.recording_id, "path": str(rec.path),
               "reason": exc.reason, "detail": exc.detail}
        if exc.reason in CACHEABLE_REASONS:
            body = json.dumps({"reason": exc.reason, "detail": exc.detail})
            _atomic_write(_rejection_path(job.cache_path), lambda fh: fh.write(body), binary=False)
        return out
    _save_cache(Path(job.cache_path), processed, job.cfg)
    return {"status": "ok", "recording_id": rec.recording_id, "cache_path": job.cache_path,
            "n_segments": len(processed.rows), "stats": processed.stats}


