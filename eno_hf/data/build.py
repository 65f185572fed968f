"""Recordings → versioned Arrow ``DatasetDict`` with splits, QC report and dataset card.

The build, over one module per concern:

- ``eno_hf.data.process``: ``process_recording(rec, cfg)``, the pure per-file unit;
- ``eno_hf.data.file_cache``: the per-file Arrow cache and ``process_file(job)`` (process + cache);
- ``eno_hf.data.arrow``: the dataset's ``Features`` and numpy ↔ Arrow conversion;
- ``eno_hf.data.workers``: hashing threads and the forked process pool;
- ``eno_hf.data.save``: ``write_split``, ``save_to_disk``-compatible output;
- here, ``build_dataset(settings)``: sources → label cleaning → content hashes → version → (cache hit:
  load) → per-file processing in parallel with a per-file cache → duplicate-content rejection →
  grouped stratified splits → ``DatasetDict`` written to a temp folder and moved into place
  atomically → ``LATEST``, ``README.md``, ``qc_report.json`` (summary), ``qc_rows.jsonl`` (one row
  per input), ``settings.json``.

Per-file results are cached as
``{data_root}/cache/segments/{content_hash[:2]}/{content_hash}-{processing_hash}-f{FEATURE_DEFINITIONS_VERSION}.arrow``
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

import itertools
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from eno_hf.audio.segment import segment_id
from eno_hf.config import DatasetConfig, Settings
from eno_hf.data.arrow import ARRAY_COLUMNS, dataset_features  # noqa: F401
from eno_hf.data.card import write_card
from eno_hf.data.file_cache import (  # noqa: F401  (re-exported: the build's public names)
    CACHEABLE_REASONS, FileJob, _read_cache, _rejection_path, cache_path_for, cached_outcome,
    count_nonfinite, load_cached, process_file,
)
from eno_hf.data.process import ProcessedRecording, label_fields, process_recording  # noqa: F401
from eno_hf.data.qc import QC_ROWS_NAME, NonFiniteCounter, make_qc_report, write_qc_report, write_qc_rows
from eno_hf.data.recording import Recording
from eno_hf.data.save import SHARD_ROWS, WRITER_BATCH_SIZE, write_split  # noqa: F401
from eno_hf.data.sources import load_recordings
from eno_hf.data.staging import make_staging_dir, release_staging_dir, remove_stale
from eno_hf.data.version import (
    compute_version, datasets_dir, read_latest, resolve_version, segment_cache_dir, version_dir, write_latest,
)
from eno_hf.data.workers import hash_files as _hash_files
from eno_hf.data.workers import pool_map as _pool_map
from eno_hf.data.workers import progress as _progress
from eno_hf.data.workers import torch_threads as _torch_threads  # noqa: F401  (flows/runner.py, tests)
from eno_hf.errors import NoUsableInput, RejectedInput
from eno_hf.features import FEATURE_DEFINITIONS_VERSION

log = logging.getLogger(__name__)

__all__ = [
    "ProcessedRecording", "BuildResult", "FileJob", "process_recording", "process_file",
    "build_dataset", "open_dataset", "export_parquet", "dataset_features", "ARRAY_COLUMNS",
    "count_nonfinite",
]

MapFn = Callable[[Callable[[Any], Any], Sequence[Any]], Iterable[Any]]


@dataclass
class BuildResult:
    """Output of ``build_dataset``.

    Attributes:
        path: the version folder ``{data_root}/datasets/{name}/{version}``.
        version: content-addressed version string.
        dataset: the ``DatasetDict`` (memory-mapped from ``path``).
        report: the QC report dict (also in ``path/qc_report.json``; one row per input in
            ``path/qc_rows.jsonl``, ``eno_hf.data.qc.read_qc_rows``).
        cache_hit: True when the version already existed and nothing was processed.
        n_processed: files processed in this run (cache misses).
    """

    path: Path
    version: str
    dataset: Any
    report: dict[str, Any]
    cache_hit: bool
    n_processed: int = 0


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


def _versioned(rejection: dict[str, Any]) -> bool:
    """Whether a source rejection is part of the version: every rejection except a non-audio file
    that no metadata row names (``unsupported`` without a recording id, e.g. a workspace's own
    ``manifest.json`` or ``splits/*.txt`` under ``audio_root``). Such files are still reported in
    the QC report of the build that saw them, but adding or removing one changes no row, so it must
    not make a new version."""
    return not (rejection.get("reason") == "unsupported" and not rejection.get("recording_id"))


def _fingerprint_rows(recs: Iterable[Recording]) -> Iterator[list[Any]]:
    """One JSON-able row per recording, in the order given: id, path, group, time range, labels."""
    for r in recs:
        yield [r.recording_id, str(r.path), r.group, r.start_s, r.end_s,
               sorted((k, list(v)) for k, v in r.multilabel.items()),
               sorted(r.singlelabel.items()), sorted(r.numeric.items())]


def _metadata_fingerprint(recs: Sequence[Recording]) -> list[Any]:
    """The rows of ``_fingerprint_rows`` sorted by recording id, as one list (small datasets)."""
    return list(_fingerprint_rows(sorted(recs, key=lambda r: r.recording_id)))


def dataset_version(cfg: DatasetConfig, hashes: dict[str, str], recs: Sequence[Recording],
                    rejected: Iterable[dict[str, Any]], vocab: dict[str, list[str]]) -> str:
    """The content-addressed version of a build (``eno_hf.data.version.compute_version``).

    Hashed: every ``(recording_id, content hash)``, one row per recording (``_fingerprint_rows``,
    by recording id), the versioned source rejections (``_versioned``; sorted JSON), ``vocab``
    and ``FEATURE_DEFINITIONS_VERSION``. Linear in the number of recordings (``recs`` already
    sorted by id costs one pass); nothing is held as one document.

    Args:
        cfg: the dataset config.
        hashes: recording_id -> sha256 of the file bytes (usable inputs).
        recs: the recordings (after label cleaning and ``limit``), any order.
        rejected: rejected items ``{"path", "recording_id", "reason", "detail"}`` so far.
        vocab: task -> vocabulary.
    """
    in_order = sorted(recs, key=lambda r: r.recording_id)  # one pass when already sorted
    kept = sorted(json.dumps(r, sort_keys=True, default=str) for r in rejected if _versioned(r))
    rows = itertools.chain(_fingerprint_rows(in_order), (["rejected", r] for r in kept))
    return compute_version(hashes.items(), cfg, {"feature_definitions": FEATURE_DEFINITIONS_VERSION,
                                                 "vocab": vocab}, rows=rows)


class _SplitRecords(Sequence[dict[str, Any]]):
    """One split's per-recording QC entries for ``make_qc_report``, made when read:
    ``{"recording_id", "group", "n_segments", "labels": {task: tags | class | None}}`` from the
    jobs and their outcomes (a dataset of millions of recordings never holds them all)."""

    def __init__(self, jobs: list[FileJob], outcomes: dict[str, dict[str, Any]], ml: list[str],
                 sl: list[str]) -> None:
        self.jobs, self.outcomes, self.ml, self.sl = jobs, outcomes, ml, sl

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        rec = self.jobs[i].recording
        return {"recording_id": rec.recording_id, "group": rec.group or rec.recording_id,
                "n_segments": self.outcomes[rec.recording_id]["n_segments"],
                "labels": {**{t: rec.multilabel.get(t, []) for t in self.ml},
                           **{t: rec.singlelabel.get(t) for t in self.sl}}}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (self[i] for i in range(len(self.jobs)))


def _chunk_generator(items: list[dict[str, Any]], cfg: DatasetConfig, fold_of: dict[str, int] | None,
                     nonfinite: Any) -> Iterator[tuple[list[dict[str, Any]], Any]]:
    """Per recording of one split: (scalar rows, memory-mapped cache table with the arrays).

    ``items``: ``{recording, cache_path}``. One cache file is mapped at a time; NaN/Inf counts
    come from the cache metadata (counted by the worker).
    """
    for item in items:
        rec: Recording = item["recording"]
        meta, table = _read_cache(item["cache_path"])
        for col, c in meta.get("nonfinite", {}).items():
            total = nonfinite.counts.setdefault(col, {"nan": 0, "inf": 0, "n_values": 0})
            for k in total:
                total[k] += int(c.get(k, 0))
        labels = label_fields(rec)
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


def build_dataset(settings: Settings, progress: bool = True, map_fn: MapFn | None = None) -> BuildResult:
    """Build (or reuse) the versioned dataset described by ``settings.dataset``.

    Steps: ``load_recordings`` → ``clean_labels`` → ``limit`` → content hashes → version →
    cache hit (load and return) or: duplicate-content rejection, per-file processing of cache
    misses (``num_workers`` processes, or ``map_fn(fn, items)``) → grouped stratified splits
    (``assign_splits``; group defaults to ``recording_id``), optional ``fold`` → Arrow tables
    from a generator into a temp folder → atomic ``os.replace`` into
    ``{data_root}/datasets/{name}/{version}`` → ``LATEST``, ``README.md``, ``qc_report.json``,
    ``qc_rows.jsonl``, ``settings.json``.

    Args:
        settings: root settings (``paths.data_root``, ``dataset``).
        progress: show progress over files (``eno_hf.utils.progress``: a bar on a terminal, log lines elsewhere).
        map_fn: ``map_fn(process_file, jobs) -> iterable of outcomes`` replacing the process pool
            (Prefect tasks). Outcomes must be ``process_file``'s return values, in any order.

    Returns:
        ``BuildResult``.

    Raises:
        RejectedInput: the source as a whole is unusable (metadata file missing/unreadable).
        ValueError: nothing usable to split (fewer groups than non-empty splits).
    """
    from eno_hf.data.labels import clean_labels, label_matrix
    from eno_hf.data.splits import assign_folds, assign_splits

    cfg = settings.dataset
    data_root = Path(settings.paths.data_root)
    t0 = time.perf_counter()

    source = load_recordings(cfg.source)
    rejected: list[dict[str, Any]] = [dict(r) for r in source.rejected]
    # labels are cleaned over the whole source, then ``limit`` applies: a quick run keeps the
    # full run's vocabularies (recordings past the limit are out of scope, not rejected)
    labels = clean_labels(source.recordings, cfg.labels, in_place=True)  # never two copies
    del source
    vocab = labels.vocab
    recs = sorted(labels.recordings, key=lambda r: r.recording_id)
    if cfg.limit is not None:
        recs = recs[: cfg.limit]
    n_inputs = len(recs) + len(rejected)

    # content hashes (hashlib releases the GIL: threads overlap reading and hashing)
    t_hash = time.perf_counter()
    hashes: dict[str, str] = {}
    usable: list[Recording] = []
    by_path = _hash_files(sorted({str(r.path) for r in recs}), max(1, cfg.num_workers),
                          cache_file=data_root / "cache" / "content-hashes.json")  # unchanged files not re-read
    for rec in recs:  # pre-cut segment sources name one file many times: hashed once
        res = by_path[str(rec.path)]
        if isinstance(res, RejectedInput):
            rejected.append(_rec_rejection(rec, res.reason, res.detail))
        elif isinstance(res, OSError):
            rejected.append(_rec_rejection(rec, "io_error", str(res)))
        else:
            hashes[rec.recording_id] = res
            usable.append(rec)
    hash_s = time.perf_counter() - t_hash

    version = dataset_version(cfg, hashes, recs, rejected, vocab)
    final = version_dir(data_root, cfg.name, version)
    # one builder per version (also across machines sharing the data root): a second process waits
    # here and then finds the finished version (cache hit) instead of building it again
    final.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(final.parent / f".{version}.lock")):
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
        t_process = time.perf_counter()
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
        process_wall_s = time.perf_counter() - t_process
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
        split_of = assign_splits(groups, y, cfg.split, dataset=cfg.name)
        fold_of: dict[str, int] | None = None
        if cfg.split.k_folds > 1:
            tv = [i for i, s in enumerate(split_of) if s != "test"]
            folds = assign_folds([groups[i] for i in tv], y[tv], cfg.split.k_folds, cfg.split.seed,
                                 dataset=cfg.name)
            fold_of = {ok_recs[i].recording_id: f for i, f in zip(tv, folds)}

        ml, sl, num = _tasks_of(recs, cfg)
        features = dataset_features(cfg, vocab, ml, sl, num, with_fold=fold_of is not None)
        split_items: dict[str, list[dict[str, Any]]] = {}
        for job, split in zip(ok_jobs, split_of):
            split_items.setdefault(split, []).append(
                {"recording": job.recording, "cache_path": outcomes[job.recording.recording_id]["cache_path"]})

        t_write = time.perf_counter()
        tmp = make_staging_dir(final.parent, version)
        nonfinite = NonFiniteCounter()
        try:
            out_dir = tmp / "dataset"
            splits_iter = _progress(("train", "validation", "test"), 3, progress, f"{cfg.name}: writing", "split")
            for split in splits_iter:
                chunks = _chunk_generator(split_items.get(split, []), cfg, fold_of, nonfinite)
                write_split(out_dir / split, split, chunks, features, fingerprint=f"{version}-{split}")
            (out_dir / "dataset_dict.json").write_text(
                json.dumps({"splits": ["train", "validation", "test"]}), encoding="utf-8")
            write_s = time.perf_counter() - t_write

            jobs_of: dict[str, list[FileJob]] = {s: [] for s in ("train", "validation", "test")}
            for job, split in zip(ok_jobs, split_of):
                jobs_of[split].append(job)
            split_records = {s: _SplitRecords(js, outcomes, ml, sl) for s, js in jobs_of.items()}
            cond = [outcomes[job.recording.recording_id]["stats"] for job in ok_jobs]
            tasks = {**{t: ("multilabel", vocab.get(t, [])) for t in ml},
                     **{t: ("singlelabel", vocab.get(t, [])) for t in sl}}
            write_qc_rows(out_dir / QC_ROWS_NAME, (
                {"recording_id": job.recording.recording_id, "split": split,
                 "n_segments": outcomes[job.recording.recording_id]["n_segments"]}
                for job, split in zip(ok_jobs, split_of)), rejected)
            report = make_qc_report(dataset=cfg.name, version=version, n_inputs=n_inputs,
                                    n_written=len(ok_jobs), rejected=rejected,
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
                               "load_s": round(t_hash - t0, 2), "hash_s": round(hash_s, 2),
                               "process_wall_s": round(process_wall_s, 2),
                               "write_s": round(write_s, 2),
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
