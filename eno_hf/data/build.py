"""Recordings → versioned Arrow ``DatasetDict`` with splits, QC report and dataset card.

Two levels of work:

- ``process_recording(rec, cfg)``: the pure per-file unit — decode + condition
  (``eno_hf.audio.conditioning``), crop to ``rec.start_s/end_s``, segment
  (``eno_hf.audio.segment``), per-segment waveform/log-mel/MFCC/fingerprint
  (``eno_hf.features``), ids and labels. Raises ``RejectedInput``.
- ``build_dataset(settings)``: sources → label cleaning → content hashes → version → (cache hit:
  load) → per-file processing in parallel with a per-file cache → duplicate-content rejection →
  grouped stratified splits → ``DatasetDict`` written to a temp folder and moved into place
  atomically → ``LATEST``, ``README.md``, ``qc_report.json``, ``settings.json``.

Per-file results are cached as
``{data_root}/cache/segments/{content_hash}-{processing_hash}-f{FEATURE_DEFINITIONS_VERSION}.arrow``
(an Arrow IPC file: arrays in the dataset's Arrow types + segment bounds + conditioning stats +
NaN/Inf counts, no labels), so relabelling, re-splitting or adding files reprocesses only what
changed. Deterministic rejections are cached as ``.rejected.json``.

Speed: all per-file work, including the numpy -> Arrow conversion and NaN/Inf counting, runs in
the worker processes (one torch/BLAS thread each); the parent's serial part per file is encoding
the label columns and copying the memory-mapped cache buffers into the split's Arrow shard.

Memory: workers write their results to the cache and hand back small summaries; the Arrow tables
are written by ``write_split`` from a generator mapping one cache file at a time, so the
build holds about one recording's arrays at a time regardless of dataset size.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
import multiprocessing
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from eno_hf.config import DatasetConfig, Settings
from eno_hf.data.recording import Recording
from eno_hf.data.staging import cache_temp_prefix, make_staging_dir, release_staging_dir, remove_stale
from eno_hf.data.version import (
    compute_version, processing_hash, read_latest, resolve_version, segment_cache_dir,
    version_dir, write_latest,
)
from eno_hf.errors import NoUsableInput, RejectedInput
from eno_hf.utils.io import atomic_write as _atomic_write

log = logging.getLogger(__name__)

__all__ = [
    "ProcessedRecording", "BuildResult", "FileJob", "process_recording", "process_file",
    "build_dataset", "open_dataset", "export_parquet", "dataset_features", "ARRAY_COLUMNS",
    "count_nonfinite",
]

ARRAY_COLUMNS = ("waveform", "log_mel", "mfcc", "fingerprint")
"""Per-segment array columns (each present only when enabled in ``FeaturesConfig``)."""

WRITER_BATCH_SIZE = 32
"""Rows buffered before an Arrow record batch is written (~0.5 MB per 10-s row at 16 kHz)."""

CACHEABLE_REASONS = {"undecodable", "empty", "too_short", "silent", "nan_inf"}
"""Rejections that depend only on file bytes + config, so they are cached like results."""

MapFn = Callable[[Callable[[Any], Any], Sequence[Any]], Iterable[Any]]


# ----------------------------------------------------------------------------- per file
@dataclass
class ProcessedRecording:
    """Output of ``process_recording``.

    Attributes:
        rows: one dict per segment: ``segment_id, recording_id, group, path`` (str),
            ``segment_start_s, segment_end_s`` (float, seconds in the source file), one key per
            label task (multi-label: list of tags; single-label: class or None; numeric: float or
            None), and the enabled arrays: ``waveform`` ``(samples,)`` float16 at
            ``audio.sample_rate``, ``log_mel`` ``(n_mels, frames)`` float16 dB, ``mfcc``
            ``(n_mfcc, frames)`` float32, ``fingerprint`` ``(64,)`` float32.
        stats: ``ConditioningStats.to_dict()`` plus ``n_segments``.
    """

    rows: list[dict[str, Any]]
    stats: dict[str, Any]


def _label_fields(rec: Recording) -> dict[str, Any]:
    out: dict[str, Any] = {}
    out.update({t: list(v or []) for t, v in rec.multilabel.items()})
    out.update(dict(rec.singlelabel))
    out.update({t: (None if v is None else float(v)) for t, v in rec.numeric.items()})
    return out


def _decode(rec: Recording, cfg: DatasetConfig) -> tuple[np.ndarray, Any]:
    """Conditioned mono float32 signal of ``rec`` (cropped when it has a time range) + stats."""
    from eno_hf.audio.conditioning import condition, load_and_condition

    if rec.path is None:
        raise RejectedInput(None, "missing_file", f"recording {rec.recording_id!r} has no path")
    if rec.start_s is None and rec.end_s is None:
        return load_and_condition(rec.path, cfg.audio)
    from eno_hf.audio.io import audio_info, load_audio

    info = audio_info(rec.path)
    samples, sr = load_audio(rec.path, sample_rate=cfg.audio.sample_rate, mono=True,
                             block_s=cfg.audio.block_s,
                             midi=cfg.audio.midi.render_settings(cfg.audio.sample_rate))
    a = int(round((rec.start_s or 0.0) * sr))
    b = samples.shape[0] if rec.end_s is None else int(round(rec.end_s * sr))
    if a >= samples.shape[0]:
        raise RejectedInput(rec.path, "too_short",
                            f"start_s={rec.start_s} beyond the end ({samples.shape[0] / sr:.2f} s)")
    cropped = np.ascontiguousarray(samples[a:b])
    del samples
    return condition(cropped, sr, cfg.audio, path=rec.path, source_sample_rate=info.sample_rate,
                     source_channels=info.channels)


def process_recording(rec: Recording, cfg: DatasetConfig) -> ProcessedRecording:
    """Decode, condition, segment and featurize one recording.

    Args:
        rec: the recording (``path`` must exist; ``start_s``/``end_s`` crop it when given).
        cfg: ``DatasetConfig`` (``audio``, ``segment``, ``features``).

    Returns:
        ``ProcessedRecording(rows, stats)``, see its docstring for shapes and dtypes.
        Segment times are seconds in the source file (crop offset added).

    Raises:
        RejectedInput / AudioDecodeError: undecodable, empty, too short (also: no segment fits),
            silent or non-finite audio, missing file.
    """
    from eno_hf.audio.segment import iter_segments, segment_id

    samples, cstats = _decode(rec, cfg)
    sr = cfg.audio.sample_rate
    feats = cfg.features
    offset = float(rec.start_s or 0.0)
    labels = _label_fields(rec)
    if feats.log_mel or feats.mfcc:
        from eno_hf.features import spectral
    if feats.fingerprint:
        from eno_hf.features.fingerprint import fingerprint
    rows: list[dict[str, Any]] = []
    for n, start_s, end_s, seg in iter_segments(samples, sr, cfg.segment):
        row: dict[str, Any] = {
            "segment_id": segment_id(rec.recording_id, n),
            "recording_id": rec.recording_id,
            "group": rec.group if rec.group is not None else rec.recording_id,
            "path": str(rec.path),
            "segment_start_s": offset + float(start_s),
            "segment_end_s": offset + float(end_s),
            **labels,
        }
        if feats.waveform:
            row["waveform"] = seg.astype(np.float16)
        if feats.log_mel and feats.mfcc:  # one mel spectrogram for both
            row["log_mel"], row["mfcc"] = spectral.log_mel_and_mfcc(seg, sr, feats)
        elif feats.log_mel:
            row["log_mel"] = spectral.log_mel(seg, sr, feats)
        elif feats.mfcc:
            row["mfcc"] = spectral.mfcc(seg, sr, feats)
        if feats.fingerprint:
            row["fingerprint"] = np.asarray(fingerprint(seg, sr, cstats), dtype=np.float32)
        rows.append(row)
    if not rows:
        raise RejectedInput(rec.path, "too_short",
                            f"{cstats.duration_s:.2f} s gives no segment of {cfg.segment.segment_s} s "
                            f"(min_last_ratio={cfg.segment.min_last_ratio})")
    return ProcessedRecording(rows, {**cstats.to_dict(), "n_segments": len(rows)})


# ----------------------------------------------------------------------------- per-file cache
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
    """``{data_root}/cache/segments/{content_hash}-{processing_hash}-f{N}[-{crop}].arrow``.

    ``N`` is ``eno_hf.features.FEATURE_DEFINITIONS_VERSION`` (results of older feature code are
    not reused).
    """
    from eno_hf.features import FEATURE_DEFINITIONS_VERSION

    name = f"{content}-{processing_hash(cfg)}-f{FEATURE_DEFINITIONS_VERSION}"
    if rec.start_s is not None or rec.end_s is not None:
        crop = hashlib.sha256(f"{rec.start_s}:{rec.end_s}".encode()).hexdigest()[:8]
        name += f"-{crop}"
    return segment_cache_dir(data_root) / f"{name}.arrow"


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


def _array_column(arrays: list[np.ndarray], arrow_type: Any) -> Any:
    """Per-row numpy arrays -> one Arrow array of ``arrow_type`` (list, list of lists, or
    fixed-size list of a float), built from one concatenated buffer and offsets (no per-row
    Python objects; ``datasets`` would flatten and convert every row separately)."""
    import pyarrow as pa

    def build(parts: list[np.ndarray], typ: Any) -> Any:
        if pa.types.is_fixed_size_list(typ):
            flat = np.concatenate([np.ravel(p) for p in parts]) if parts else np.zeros(0)
            return pa.FixedSizeListArray.from_arrays(build_values(flat, typ.value_type),
                                                     typ.list_size)
        lengths = np.fromiter((len(p) for p in parts), dtype=np.int64, count=len(parts))
        offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
        inner = [row for p in parts for row in p] if pa.types.is_list(typ.value_type) else None
        if inner is not None:
            values = build(inner, typ.value_type)
        else:
            flat = np.concatenate([np.ravel(p) for p in parts]) if parts else np.zeros(0)
            values = build_values(flat, typ.value_type)
        return pa.ListArray.from_arrays(offsets, values, type=typ)

    def build_values(flat: np.ndarray, typ: Any) -> Any:
        return pa.array(np.ascontiguousarray(flat, dtype=typ.to_pandas_dtype()), type=typ)

    return build(arrays, arrow_type)


def _array_types(cfg: DatasetConfig) -> dict[str, Any]:
    """Arrow types of the enabled array columns, as ``dataset_features`` declares them."""
    schema = dataset_features(cfg, {}, [], [], []).arrow_schema
    return {c: schema.field(c).type for c in ARRAY_COLUMNS if c in schema.names}


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
    for col, typ in _array_types(cfg).items():
        if not rows or col not in rows[0]:
            continue
        arrays = [r[col] for r in rows]
        total = nonfinite.setdefault(col, {"nan": 0, "inf": 0, "n_values": 0})
        for arr in arrays:
            for k, v in count_nonfinite(arr).items():
                total[k] += v
        columns[col] = _array_column(arrays, typ)
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


def _row_to_numpy(value: Any) -> np.ndarray:
    """One Arrow list value (``list``/``list<list>``/fixed-size list of floats) as numpy."""
    import pyarrow as pa

    arr = value.values
    if pa.types.is_list(arr.type):
        flat = arr.flatten().to_numpy(zero_copy_only=False)
        return flat.reshape(len(arr), -1) if len(arr) else flat.reshape(0, 0)
    return arr.to_numpy(zero_copy_only=False)


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
                arrays[i][col] = _row_to_numpy(value)
    return [tuple(b) for b in meta["bounds"]], meta["stats"], arrays


def cached_outcome(job: FileJob) -> dict[str, Any] | None:
    """The outcome recorded in the cache for ``job`` (as ``process_file`` returns it), or None."""
    p = Path(job.cache_path)
    rec = job.recording
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


# ----------------------------------------------------------------------------- features
def dataset_features(cfg: DatasetConfig, vocab: dict[str, list[str]], multilabel: Sequence[str],
                     singlelabel: Sequence[str], numeric: Sequence[str], with_fold: bool = False):
    """The ``datasets.Features`` of a built dataset (see docs/architecture.md, "Columns")."""
    from datasets import Audio, ClassLabel, Features, List, Value

    f: dict[str, Any] = {
        "segment_id": Value("string"), "recording_id": Value("string"),
        "group": Value("string"), "path": Value("string"),
        "segment_start_s": Value("float32"), "segment_end_s": Value("float32"),
    }
    for t in multilabel:
        f[t] = List(ClassLabel(names=list(vocab.get(t, []))))
    for t in singlelabel:
        f[t] = ClassLabel(names=list(vocab.get(t, [])))
    for t in numeric:
        f[t] = Value("float32")
    feats = cfg.features
    if feats.waveform:
        f["waveform"] = List(Value("float16"))
    if feats.log_mel:
        f["log_mel"] = List(List(Value("float16")))
    if feats.mfcc:
        f["mfcc"] = List(List(Value("float32")))
    if feats.fingerprint:
        f["fingerprint"] = List(Value("float32"), length=64)
    if cfg.audio_column:
        f["audio"] = Audio(decode=True)
    if with_fold:
        f["fold"] = Value("int32")
    return Features(f)


# ----------------------------------------------------------------------------- build
@dataclass
class BuildResult:
    """Output of ``build_dataset``.

    Attributes:
        path: the version folder ``{data_root}/datasets/{name}/{version}``.
        version: content-addressed version string.
        dataset: the ``DatasetDict`` (memory-mapped from ``path``).
        report: the QC report dict (also in ``path/qc_report.json``).
        cache_hit: True when the version already existed and nothing was processed.
        n_processed: files processed in this run (cache misses).
    """

    path: Path
    version: str
    dataset: Any
    report: dict[str, Any]
    cache_hit: bool
    n_processed: int = 0


def _content_hash(path: Path) -> str:
    from eno_hf.audio.io import content_hash

    return content_hash(path)


def _hash_files(paths: Sequence[str], threads: int) -> dict[str, str | RejectedInput | OSError]:
    """``{path: sha256 hex}`` (or the ``RejectedInput``/``OSError`` raised for it), threaded."""
    from concurrent.futures import ThreadPoolExecutor

    def one(p: str) -> str | RejectedInput | OSError:
        try:
            return _content_hash(Path(p))
        except (RejectedInput, OSError) as exc:
            return exc

    if threads <= 1 or len(paths) <= 1:
        return {p: one(p) for p in paths}
    with ThreadPoolExecutor(max_workers=threads) as ex:
        return dict(zip(paths, ex.map(one, paths)))


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Temporarily limit torch intra-op threads and BLAS/OpenMP pools (restored afterwards).

    Per-segment STFTs and matrix products are small: on the 2-core dev machine one thread
    processed a 4Q clip in 0.38 s vs 1.06 s with torch's default two, and the fingerprint took
    28 ms with one OpenBLAS thread vs ~80 ms with two (thread start-up/spinning dominates).
    BLAS pools are limited with ``threadpoolctl``.
    """
    from threadpoolctl import threadpool_limits

    try:
        import torch
    except ImportError:  # pragma: no cover
        with threadpool_limits(limits=n):
            yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(before)


def _worker_init() -> None:
    """One thread per worker process (torch intra-op, BLAS, OpenMP): the pool uses the cores."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


def _pool_map(fn: Callable[[Any], Any], items: Sequence[Any], workers: int) -> Iterator[Any]:
    """``fn`` over ``items`` in ``workers`` processes (in order; inline when ``workers <= 1``).

    Workers are forked where the platform allows it (they start instantly with the parent's
    imports, as torch's DataLoader workers do), else spawned.
    """
    if workers <= 1 or len(items) <= 1:
        with _torch_threads(1):
            for it in items:
                yield fn(it)
        return
    # the first item runs here: lazy imports and numba JIT compilation (librosa) happen once in
    # the parent and are inherited by the forked workers instead of being repeated in each
    with _torch_threads(1):
        yield fn(items[0])
    items = items[1:]
    methods = multiprocessing.get_all_start_methods()
    ctx = get_context("fork" if "fork" in methods else None)
    with ProcessPoolExecutor(max_workers=min(workers, len(items)), mp_context=ctx,
                             initializer=_worker_init) as ex:
        yield from ex.map(fn, items, chunksize=1)


def _progress(iterable: Iterable[Any], total: int, enabled: bool, desc: str) -> Iterable[Any]:
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="file")


def _rec_rejection(rec: Recording, reason: str, detail: str) -> dict[str, Any]:
    return {"path": str(rec.path) if rec.path is not None else None,
            "recording_id": rec.recording_id, "reason": reason, "detail": detail}


def _tasks_of(recs: Sequence[Recording], cfg: DatasetConfig) -> tuple[list[str], list[str], list[str]]:
    src = cfg.source
    ml = sorted(set(src.multilabel) | {t for r in recs for t in r.multilabel})
    sl = sorted(set(src.singlelabel) | {t for r in recs for t in r.singlelabel})
    if src.kind == "folders" and src.folder_task not in ml:
        sl = sorted(set(sl) | {src.folder_task})
    num = sorted(set(src.numeric) | {t for r in recs for t in r.numeric})
    return ml, sl, num


def _metadata_fingerprint(recs: Sequence[Recording]) -> list[Any]:
    return sorted([r.recording_id, str(r.path), r.group, r.start_s, r.end_s,
                   sorted((k, list(v)) for k, v in r.multilabel.items()),
                   sorted(r.singlelabel.items()),
                   sorted(r.numeric.items())] for r in recs)


def _chunk_generator(items: list[dict[str, Any]], cfg: DatasetConfig, fold_of: dict[str, int] | None,
                     nonfinite: Any) -> Iterator[tuple[list[dict[str, Any]], Any]]:
    """Per recording of one split: (scalar rows, memory-mapped cache table with the arrays).

    ``items``: ``{recording, cache_path}``. One cache file is mapped at a time; NaN/Inf counts
    come from the cache metadata (counted by the worker).
    """
    from eno_hf.audio.segment import segment_id

    for item in items:
        rec: Recording = item["recording"]
        meta, table = _read_cache(item["cache_path"])
        for col, c in meta.get("nonfinite", {}).items():
            total = nonfinite.counts.setdefault(col, {"nan": 0, "inf": 0, "n_values": 0})
            for k in total:
                total[k] += int(c.get(k, 0))
        labels = _label_fields(rec)
        for t, v in list(labels.items()):
            if t in rec.singlelabel and v is None:
                labels[t] = -1
        rows = []
        for n, (start_s, end_s) in enumerate(meta["bounds"]):
            row: dict[str, Any] = {
                "segment_id": segment_id(rec.recording_id, n),
                "recording_id": rec.recording_id,
                "group": rec.group if rec.group is not None else rec.recording_id,
                "path": str(rec.path),
                "segment_start_s": float(start_s), "segment_end_s": float(end_s),
                **labels,
            }
            if cfg.audio_column:
                row["audio"] = str(rec.path)
            if fold_of is not None:
                row["fold"] = fold_of.get(rec.recording_id, -1)
            rows.append(row)
        yield rows, table


SHARD_ROWS = 1000
"""Rows per Arrow shard (~0.5 GB with 10-s waveforms + features at 16 kHz)."""


def write_split(out_dir: Path, split: str, chunks: Iterable[tuple[list[dict[str, Any]], Any]],
                features: Any, fingerprint: str, shard_rows: int = SHARD_ROWS) -> int:
    """Write rows as a ``Dataset.save_to_disk``-compatible folder, streaming (bounded memory).

    ``chunks`` yields, per recording, its scalar rows (ids, times, labels, audio path, fold:
    encoded here with ``features``, e.g. ClassLabel names -> ids) and a ``pyarrow.Table`` with
    its array columns already in the dataset's Arrow types (the per-file cache, memory-mapped).
    Tables of up to ``WRITER_BATCH_SIZE`` rows are written by
    ``datasets.arrow_writer.ArrowWriter.write_table`` into ``data-XXXXX-of-NNNNN.arrow`` shards
    of at most ``shard_rows`` rows (a recording is never split across shards unless it alone
    exceeds them), followed by ``state.json`` and ``dataset_info.json`` as ``save_to_disk``
    writes them. ``save_to_disk`` itself is not used: it embeds the bytes of every file an
    ``Audio`` column points to (here: the whole source file once per segment), whereas this
    dataset's ``audio`` column is path-based by design. Returns the number of rows.
    """
    import pyarrow as pa
    from datasets import Dataset, Features, concatenate_datasets
    from datasets.arrow_writer import ArrowWriter
    from datasets.utils.py_utils import asdict  # the serializer save_to_disk uses

    out_dir.mkdir(parents=True, exist_ok=True)
    schema = features.arrow_schema
    scalar_names = [k for k in features if k not in ARRAY_COLUMNS]
    scalar_features = Features({k: features[k] for k in scalar_names})
    scalar_schema = pa.schema([schema.field(k) for k in scalar_names])
    files: list[Path] = []
    writer: ArrowWriter | None = None
    buffer: list[Any] = []
    in_shard = n = 0

    def open_writer() -> ArrowWriter:
        files.append(out_dir / f".shard-{len(files):05d}.arrow")
        return ArrowWriter(features=features, path=str(files[-1]),
                           writer_batch_size=WRITER_BATCH_SIZE, embed_local_files=False)

    def flush() -> None:
        if buffer and writer is not None:
            writer.write_table(pa.concat_tables(buffer))
            buffer.clear()

    for rows, arrays in chunks:
        if not rows:
            continue
        if writer is None or (in_shard and in_shard + len(rows) > shard_rows):
            flush()
            if writer is not None:
                writer.finalize()
                writer.close()
            writer, in_shard = open_writer(), 0
        table = pa.Table.from_pylist([scalar_features.encode_example(r) for r in rows],
                                     schema=scalar_schema)
        for col in features:
            if col in ARRAY_COLUMNS:
                table = table.append_column(schema.field(col), arrays[col])
        buffer.append(table.select(list(features)))
        in_shard += len(rows)
        n += len(rows)
        if sum(t.num_rows for t in buffer) >= WRITER_BATCH_SIZE:
            flush()
    if writer is None:  # empty split: one empty shard, as load_from_disk expects
        writer = open_writer()
    flush()
    writer.finalize()
    writer.close()
    names = [f"data-{i:05d}-of-{len(files):05d}.arrow" for i in range(len(files))]
    for f, name in zip(files, names):
        os.replace(f, out_dir / name)
    parts = [Dataset.from_file(str(out_dir / name), split=split) for name in names]
    ds = parts[0] if len(parts) == 1 else concatenate_datasets(parts)
    state = {"_data_files": [{"filename": name} for name in names], "_fingerprint": fingerprint,
             "_format_columns": None, "_format_kwargs": {}, "_format_type": None,
             "_output_all_columns": False, "_split": split}
    info = asdict(ds.info)
    del ds, parts
    (out_dir / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True), encoding="utf-8")
    (out_dir / "dataset_info.json").write_text(
        json.dumps({k: info[k] for k in sorted(info)}, indent=2), encoding="utf-8")
    return n


def build_dataset(settings: Settings, progress: bool = True, map_fn: MapFn | None = None) -> BuildResult:
    """Build (or reuse) the versioned dataset described by ``settings.dataset``.

    Steps: ``load_recordings`` → ``clean_labels`` → ``limit`` → content hashes → version →
    cache hit (load and return) or: duplicate-content rejection, per-file processing of cache
    misses (``num_workers`` processes, or ``map_fn(fn, items)``) → grouped stratified splits
    (``assign_splits``; group defaults to ``recording_id``), optional ``fold`` → Arrow tables
    from a generator into a temp folder → atomic ``os.replace`` into
    ``{data_root}/datasets/{name}/{version}`` → ``LATEST``, ``README.md``, ``qc_report.json``,
    ``settings.json``.

    Args:
        settings: root settings (``paths.data_root``, ``dataset``).
        progress: show a tqdm progress bar over files.
        map_fn: ``map_fn(process_file, jobs) -> iterable of outcomes`` replacing the process pool
            (Prefect tasks). Outcomes must be ``process_file``'s return values, in any order.

    Returns:
        ``BuildResult``.

    Raises:
        RejectedInput: the source as a whole is unusable (metadata file missing/unreadable).
        ValueError: nothing usable to split (fewer groups than non-empty splits).
    """
    from eno_hf.data.card import write_card
    from eno_hf.data.labels import clean_labels, label_matrix
    from eno_hf.data.qc import NonFiniteCounter, make_qc_report, write_qc_report
    from eno_hf.data.sources import load_recordings
    from eno_hf.data.splits import assign_folds, assign_splits

    cfg = settings.dataset
    data_root = Path(settings.paths.data_root)
    t0 = time.perf_counter()

    source = load_recordings(cfg.source)
    rejected: list[dict[str, Any]] = [dict(r) for r in source.rejected]
    # labels are cleaned over the whole source, then ``limit`` applies: a quick run keeps the
    # full run's vocabularies (recordings past the limit are out of scope, not rejected)
    labels = clean_labels(source.recordings, cfg.labels)
    vocab = labels.vocab
    recs = sorted(labels.recordings, key=lambda r: r.recording_id)
    if cfg.limit is not None:
        recs = recs[: cfg.limit]
    n_inputs = len(recs) + len(rejected)

    # content hashes (hashlib releases the GIL: threads overlap reading and hashing)
    hashes: dict[str, str] = {}
    usable: list[Recording] = []
    by_path = _hash_files(sorted({str(r.path) for r in recs}), max(1, cfg.num_workers))
    for rec in recs:  # pre-cut segment sources name one file many times: hashed once
        res = by_path[str(rec.path)]
        if isinstance(res, RejectedInput):
            rejected.append(_rec_rejection(rec, res.reason, res.detail))
        elif isinstance(res, OSError):
            rejected.append(_rec_rejection(rec, "io_error", str(res)))
        else:
            hashes[rec.recording_id] = res
            usable.append(rec)

    from eno_hf.features import FEATURE_DEFINITIONS_VERSION

    version = compute_version(hashes.items(), cfg, {"recordings": _metadata_fingerprint(recs),
                                                     "feature_definitions": FEATURE_DEFINITIONS_VERSION,
                                                     "vocab": vocab,
                                                     "source_rejected": sorted(
                                                         json.dumps(r, sort_keys=True, default=str)
                                                         for r in rejected)})
    final = version_dir(data_root, cfg.name, version)
    remove_stale(final.parent, segment_cache_dir(data_root))  # temporaries of killed builds
    if final.is_dir():
        return _cache_hit(data_root, cfg.name, version)

    # duplicate content: same bytes (and same crop) under a different id -> later ids rejected
    first_of: dict[tuple[str, Any, Any], str] = {}
    jobs: list[FileJob] = []
    for rec in usable:
        key = (hashes[rec.recording_id], rec.start_s, rec.end_s)
        if key in first_of:
            rejected.append(_rec_rejection(rec, "duplicate_content",
                                           f"same audio content as {first_of[key]!r} "
                                           f"(sha256 {key[0][:12]}…)"))
            continue
        first_of[key] = rec.recording_id
        jobs.append(FileJob(rec, cfg, hashes[rec.recording_id],
                            str(cache_path_for(data_root, rec, hashes[rec.recording_id], cfg))))

    outcomes: dict[str, dict[str, Any]] = {}
    todo: list[FileJob] = []
    for job in jobs:
        hit = cached_outcome(job)
        if hit is not None:
            outcomes[job.recording.recording_id] = hit
        else:
            todo.append(job)
    if todo:
        results = (map_fn(process_file, todo) if map_fn is not None
                   else _pool_map(process_file, todo, cfg.num_workers))
        for out in _progress(results, len(todo), progress, f"{cfg.name}: processing"):
            outcomes[out["recording_id"]] = out
    log.info("%s: %d files processed, %d from cache", cfg.name, len(todo), len(jobs) - len(todo))

    ok_jobs: list[FileJob] = []
    for job in jobs:
        out = outcomes.get(job.recording.recording_id)
        if out is None:
            rejected.append(_rec_rejection(job.recording, "io_error", "no result from worker"))
        elif out["status"] == "rejected":
            rejected.append({k: out[k] for k in ("path", "recording_id", "reason", "detail")})
        else:
            ok_jobs.append(job)
    if not ok_jobs:
        raise NoUsableInput(f"dataset {cfg.name!r}: no usable recordings "
                            f"({len(rejected)} rejected; first: {rejected[:3]})")

    # splits over groups (group fallback: recording_id)
    ok_recs = [j.recording for j in ok_jobs]
    groups = [r.group if r.group is not None else r.recording_id for r in ok_recs]
    strat_tasks = cfg.split.stratify_on or sorted(vocab)
    y = label_matrix(ok_recs, vocab, [t for t in strat_tasks if t in vocab])
    split_of = assign_splits(groups, y, cfg.split)
    fold_of: dict[str, int] | None = None
    if cfg.split.k_folds > 1:
        tv = [i for i, s in enumerate(split_of) if s != "test"]
        folds = assign_folds([groups[i] for i in tv], y[tv], cfg.split.k_folds, cfg.split.seed)
        fold_of = {ok_recs[i].recording_id: f for i, f in zip(tv, folds)}

    ml, sl, num = _tasks_of(recs, cfg)
    features = dataset_features(cfg, vocab, ml, sl, num, with_fold=fold_of is not None)
    split_items: dict[str, list[dict[str, Any]]] = {}
    for job, split in zip(ok_jobs, split_of):
        split_items.setdefault(split, []).append(
            {"recording": job.recording, "cache_path": outcomes[job.recording.recording_id]["cache_path"]})

    tmp = make_staging_dir(final.parent, version)
    nonfinite = NonFiniteCounter()
    try:
        out_dir = tmp / "dataset"
        splits_iter = _progress(("train", "validation", "test"), 3, progress, f"{cfg.name}: writing")
        for split in splits_iter:
            chunks = _chunk_generator(split_items.get(split, []), cfg, fold_of, nonfinite)
            write_split(out_dir / split, split, chunks, features, fingerprint=f"{version}-{split}")
        (out_dir / "dataset_dict.json").write_text(
            json.dumps({"splits": ["train", "validation", "test"]}), encoding="utf-8")

        written = []
        split_records: dict[str, list[dict[str, Any]]] = {s: [] for s in ("train", "validation", "test")}
        cond = []
        for job, split in zip(ok_jobs, split_of):
            rec = job.recording
            out = outcomes[rec.recording_id]
            written.append({"recording_id": rec.recording_id, "n_segments": out["n_segments"],
                            "split": split})
            split_records[split].append({
                "recording_id": rec.recording_id, "group": rec.group or rec.recording_id,
                "n_segments": out["n_segments"],
                "labels": {**{t: rec.multilabel.get(t, []) for t in ml},
                           **{t: rec.singlelabel.get(t) for t in sl}}})
            cond.append(out["stats"])
        tasks = {**{t: ("multilabel", vocab.get(t, [])) for t in ml},
                 **{t: ("singlelabel", vocab.get(t, [])) for t in sl}}
        report = make_qc_report(dataset=cfg.name, version=version, n_inputs=n_inputs,
                                written=written, rejected=rejected,
                                split_recordings=split_records, tasks=tasks,
                                non_finite=nonfinite.to_dict(), conditioning=cond)
        report["labels_dropped"] = labels.dropped
        fractions = {"train": cfg.split.train, "validation": cfg.split.validation,
                     "test": cfg.split.test}
        report["warnings"] = [
            f"split {s!r} is empty although its fraction is {f} (too few groups: "
            f"{len(set(groups))})" for s, f in fractions.items() if f > 0 and not split_items.get(s)]
        if cfg.limit is not None:
            report["warnings"].append(f"dataset.limit={cfg.limit}: only the first {cfg.limit} "
                                      "recordings (by id) were used")
        report["build"] = {"n_processed": len(todo), "n_from_cache": len(jobs) - len(todo),
                           "wall_s": round(time.perf_counter() - t0, 2),
                           "audio_s": round(sum(float(c.get("duration_s", 0.0)) for c in cond), 2)}
        write_qc_report(report, out_dir / "qc_report.json")
        (out_dir / "settings.json").write_text(
            json.dumps(settings.model_dump(mode="json"), indent=2), encoding="utf-8")
        write_card(out_dir / "README.md", settings=settings, version=version, report=report,
                   features=features)
        try:
            os.replace(out_dir, final)
        except OSError:
            if not final.is_dir():  # lost a race only if someone else finished the same version
                raise
    finally:
        release_staging_dir(tmp)
    write_latest(data_root, cfg.name, version)
    return BuildResult(final, version, open_dataset(data_root, cfg.name, version), report,
                       cache_hit=False, n_processed=len(todo))


def _cache_hit(data_root: Path, name: str, version: str) -> BuildResult:
    from eno_hf.data.version import datasets_dir

    final = version_dir(data_root, name, version)
    report = json.loads((final / "qc_report.json").read_text(encoding="utf-8"))
    if read_latest(data_root, name) != version:
        write_latest(data_root, name, version)
    log.info("dataset %s version %s exists under %s: cache hit", name, version, datasets_dir(data_root, name))
    return BuildResult(final, version, open_dataset(data_root, name, version), report,
                       cache_hit=True, n_processed=0)


def open_dataset(data_root: str | Path, name: str, version: str = "latest"):
    """Open a built dataset version (memory-mapped ``DatasetDict``).

    Raises:
        FileNotFoundError: no such version (or no ``LATEST``).
    """
    from datasets import load_from_disk

    v = resolve_version(data_root, name, version)
    return load_from_disk(str(version_dir(data_root, name, v)))


def export_parquet(path: str | Path, out_dir: str | Path) -> list[Path]:
    """Write each split of the dataset saved at ``path`` to ``{out_dir}/{split}.parquet``.

    The ``audio`` column stays path-based (no audio bytes are embedded). Returns the files.
    """
    from datasets import load_from_disk

    dsd = load_from_disk(str(path))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for split, ds in dsd.items():
        f = out / f"{split}.parquet"
        ds.to_parquet(str(f))
        files.append(f)
    return files
