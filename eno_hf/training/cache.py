"""Training on cached encoder outputs: the frozen-feature and frozen-prefix caches.

``model.finetune=frozen`` with an audio encoder (mode ``"frozen"``): the encoder's output is
computed ONCE for every window of every row of every split (``encode_split``, no grad, progress
bar) and saved under ``{output_dir}/embedding_cache/`` (re-runs reuse it); for an encoder with
``set_standardization`` (``TaggerEnsembleEncoder``) the training-split mean/std are written into
its buffers. Trunk and heads are then trained on the cached vectors through an ``EmbeddingInput``.

``model.finetune=lora`` with an encoder that has ``frozen_prefix``/``from_prefix`` (i.e.
``TaggerEnsembleEncoder``), when every LoRA adapter lies in the encoder's ``suffix_modules`` (mode
``"prefix"``): what is cached is the encoder's frozen bottom (``frozen_prefix``, per window), and a
``PrefixInput`` runs the trainable top (``from_prefix``: the LoRA-adapted suffixes, pooling,
standardization) on it; so the LoRA adapters, trunk and heads are trained end to end at the cost of
the top layers only. BatchNorm statistics stay fixed (eval mode). The standardization buffers are
set from the un-adapted suffixes' training-split outputs.

``cache_inputs`` returns the data (``CachedInputs``: one row per window with an ``embedding``
column, and the stand-in encoder); ``training_view`` gives a model that shares every parameter of
the real one (trunk, heads, and through ``PrefixInput`` the encoder and its adapters) but reads
the cached vectors. The real model is never modified except for the standardization buffers, so
after training it is saved as is and still takes raw audio.

Memory does not grow with the number of rows (collections of millions of tracks): the encoder
outputs go to ``.npy`` files chunk by chunk as they are computed and are read back memory-mapped,
and the per-window training datasets are Arrow files written block by block and memory-mapped
(``datasets.Dataset.from_file``), like the waveform datasets. ``{output_dir}/embedding_cache/``
holds, per split, ``{split}-{key}.features.npy`` + ``{split}-{key}.rows.npy`` (the encoder
outputs) and ``{split}-{key}-{tag}.arrow`` (the training dataset); caches of the earlier
``{split}-{key}.npz`` format are ignored.
"""

from __future__ import annotations

import copy
import logging
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset

from eno_hf.config import Settings
from eno_hf.data.workers import die_with_parent
from eno_hf.models.encoders import EmbeddingInput
from eno_hf.utils.heap import keep_freed_memory_forever, reuse_freed_memory
from eno_hf.utils.io import atomic_path, atomic_write, json_hash, owned_temp_prefix
from eno_hf.utils.progress import Progress

log = logging.getLogger(__name__)

__all__ = ["CACHE_SUBDIR", "EMBEDDING_COLUMN", "FEATURES_FILE", "ROWS_FILE", "CachedInputs", "NpyAppender", "PrefixInput",
           "cache_inputs", "cache_mode", "cached_encode_split", "cached_split", "encode_split", "open_npy",
           "set_prefix_standardization", "training_view", "uses_frozen_cache"]

EMBEDDING_COLUMN = "embedding"
"""Column of cached encoder outputs in the datasets built by ``cached_split``."""
CACHE_SUBDIR = "embedding_cache"
"""``{output_dir}/embedding_cache/``: ``{split}-{key}.features.npy`` / ``.rows.npy`` (raw encoder outputs
per window and their rows) and ``{split}-{key}-{tag}.arrow`` (the per-window training datasets)."""


def cache_mode(settings: Settings, model: torch.nn.Module) -> str | None:
    """How ``train_model`` feeds the encoder: ``"frozen"`` (cached encoder outputs:
    ``model.finetune == "frozen"`` with an audio encoder), ``"prefix"`` (cached ``frozen_prefix``:
    ``finetune == "lora"``, the encoder has ``frozen_prefix`` and every LoRA layer of ``model``
    lies inside ``encoder.suffix_modules``) or ``None`` (raw audio every step).

    Call after ``lora.apply_finetune`` (the adapters must be in place)."""
    if model.config.encoder_type == "embeddings":
        return None
    if settings.model.finetune == "frozen":
        return "frozen"
    encoder = model.encoder
    if settings.model.finetune == "lora" and hasattr(encoder, "frozen_prefix"):
        from peft.tuners.tuners_utils import BaseTunerLayer

        adapted = [n for n, m in encoder.named_modules() if isinstance(m, BaseTunerLayer)]
        suffixes = list(getattr(encoder, "suffix_modules", []))
        outside = [n for n in adapted if not any(n == s or n.startswith(s + ".") for s in suffixes)]
        if adapted and not outside:
            return "prefix"
        log.warning("LoRA layers outside the encoder's trainable top %s: %s; training on raw audio "
                    "(slow: the whole encoder runs every step)", suffixes, outside)
    return None


def uses_frozen_cache(settings: Settings, model: torch.nn.Module) -> bool:
    """True when ``train_model`` trains on cached encoder outputs (``cache_mode == "frozen"``)."""
    return cache_mode(settings, model) == "frozen"


class PrefixInput(torch.nn.Module):
    """Training-time stand-in for an encoder with ``from_prefix``: ``(batch, prefix_dim)`` cached
    ``frozen_prefix`` rows -> ``(batch, output_dim)`` = ``encoder.from_prefix(rows, n_samples)``.

    Holds the real encoder (same parameters: LoRA adapters trained here are the encoder's).
    ``train(mode)`` keeps every BatchNorm of the encoder in eval mode (fixed statistics); dropout
    (e.g. LoRA dropout) follows ``mode``.
    """

    def __init__(self, encoder: torch.nn.Module, n_samples: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.n_samples = int(n_samples)
        self.output_dim = int(encoder.output_dim)

    def train(self, mode: bool = True) -> PrefixInput:
        super().train(mode)
        for module in self.encoder.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()
        return self

    def forward(self, prefix: torch.Tensor) -> torch.Tensor:
        return self.encoder.from_prefix(prefix.to(torch.float32), self.n_samples)


_FORKED: tuple[Any, Any, Any] | None = None
"""``(model, waves, embed)`` of the ``encode_split`` running in this process, for its forked workers."""

FEATURES_FILE = "features.npy"
"""``encode_split(..., out_dir=D)`` writes ``D/features.npy`` (``(n_windows, dim)`` float32) ..."""
ROWS_FILE = "rows.npy"
"""... and ``D/rows.npy`` (``(n_windows,)`` int64)."""
IN_FLIGHT_PER_WORKER = 4
"""``encode_split`` keeps at most this many row chunks per worker submitted or waiting to be written."""


class NpyAppender:
    """A ``.npy`` file written block by block when its length is known only at the end.

    The header is written first for 0 rows and rewritten in place by ``close`` with the final row
    count (numpy's ``.npy`` writer pads the header so the first axis can grow to 21 digits: the
    header keeps its length, see ``numpy.lib.format``); the data go straight to the file, so memory
    holds one block at a time. The result reads back with ``np.load(path, mmap_mode="r")``.

    Args:
        path: file to (over)write.
        dtype: element type.
        row_shape: shape of one row (``()`` for a 1-D array).

    Raises:
        ValueError: (``append``) a block of another row shape.
        RuntimeError: (``close``) the final header would not fit in the space of the first one.
    """

    def __init__(self, path: str | Path, dtype: Any, row_shape: tuple[int, ...] = ()) -> None:
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        self.row_shape = tuple(int(s) for s in row_shape)
        self.rows = 0
        self._fh = open(self.path, "wb")  # noqa: SIM115  (closed by close/abort)
        self._write_header()
        self._data_start = self._fh.tell()

    def _write_header(self) -> None:
        np.lib.format.write_array_header_1_0(self._fh, {
            "descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
            "shape": (self.rows, *self.row_shape)})

    def append(self, block: np.ndarray) -> None:
        """Append ``(k, *row_shape)`` rows (converted to ``dtype``)."""
        block = np.ascontiguousarray(block, dtype=self.dtype)
        if block.shape[1:] != self.row_shape:
            raise ValueError(f"expected rows of shape {self.row_shape}, got a block of {block.shape}")
        if block.size:
            self._fh.write(memoryview(block).cast("B"))
        self.rows += block.shape[0]

    def close(self) -> None:
        """Write the final header and close the file."""
        if self._fh.closed:
            return
        self._fh.seek(0)
        self._write_header()
        grown = self._fh.tell() != self._data_start
        self._fh.close()
        if grown:
            raise RuntimeError(f"{self.path}: the .npy header for {self.rows} rows outgrew its space")

    def abort(self) -> None:
        """Close without finishing (the file is left incomplete; the caller removes it)."""
        self._fh.close()


def open_npy(path: str | Path) -> np.ndarray:
    """``np.load(path, mmap_mode="r")``: a read-only ``np.memmap`` (an ordinary empty array when
    the file holds no element, which cannot be mapped)."""
    array = np.load(path, mmap_mode="r")
    return array if array.size else np.load(path)


def _as_tensor(array: np.ndarray) -> torch.Tensor:
    """``torch.from_numpy`` without copying, also of a read-only memory map (never written to)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)


def cpu_workers(model: torch.nn.Module) -> int:
    """Worker processes ``encode_split`` uses by default: the usable CPU cores when ``model`` is on
    the CPU and processes can be forked (Linux, and not inside a daemonic process such as a pool
    worker, which may not have children), else 1."""
    import multiprocessing
    import sys

    try:
        on_cpu = next(model.parameters()).device.type == "cpu"
    except StopIteration:
        on_cpu = True
    if (not on_cpu or sys.platform == "darwin" or "fork" not in multiprocessing.get_all_start_methods()
            or multiprocessing.current_process().daemon):
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _encode_rows(model: torch.nn.Module, waves: Any, embed: Any, start: int, stop: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``(features, rows)`` of rows ``start:stop`` (every used window of each row)."""
    chunk, owner = [], []
    for i in range(start, stop):
        wave = torch.from_numpy(np.asarray(waves[i]["waveform"], dtype=np.float32).reshape(1, -1))
        windows, weights = model.split_windows(wave)
        keep = windows[0][weights[0] > 0]
        chunk.append(keep)
        owner.append(np.full(keep.shape[0], i, dtype=np.int64))
    with torch.no_grad():
        feats = embed(torch.cat(chunk)).float().cpu().numpy()
    return feats, np.concatenate(owner)


def _worker_init(parent_pid: int | None = None) -> None:
    """A forked ``encode_split`` worker: one torch/BLAS thread, freed activations kept for reuse,
    the real stdout/stderr (not a progress display's proxies, whose locks stay with the parent);
    it dies with ``parent_pid`` (``eno_hf.data.workers.die_with_parent``), even on ``kill -9``."""
    import sys

    from threadpoolctl import threadpool_limits

    if parent_pid is not None:
        die_with_parent(parent_pid)

    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__

    torch.set_num_threads(1)
    threadpool_limits(limits=1)
    keep_freed_memory_forever()


def _encode_in_worker(bounds: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    assert _FORKED is not None, "encode_split worker started without a job"
    model, waves, embed = _FORKED
    return _encode_rows(model, waves, embed, *bounds)


def _in_order(results: Iterator[tuple[int, tuple[int, int], Any]], write: Any, advance: Any) -> None:
    """Hand ``results`` (``(chunk index, (start, stop), value)``, in any order) to ``write`` in
    chunk order, holding the early ones until their turn."""
    waiting: dict[int, Any] = {}
    turn = 0
    for k, (start, stop), value in results:
        waiting[k] = value
        advance(stop - start)
        while turn in waiting:
            write(waiting.pop(turn))
            turn += 1
    if waiting:
        raise RuntimeError(f"encode_split: chunks {sorted(waiting)} computed but chunk {turn} missing")


def _forked_results(bounds: Iterator[tuple[int, int]], workers: int
                    ) -> Iterator[tuple[int, tuple[int, int], tuple[np.ndarray, np.ndarray]]]:
    """``(k, bounds, _encode_in_worker(bounds))`` of every chunk, computed by ``workers`` forked
    processes, as they complete; at most ``IN_FLIGHT_PER_WORKER * workers`` chunks are submitted
    and not yet handed on, so neither the pool's bookkeeping nor the results held back by
    ``_in_order`` grow with the number of rows (``_in_order`` holds at most that many, since a
    chunk is only submitted once the consumer took the results before)."""
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from multiprocessing import get_context

    import threadpoolctl  # noqa: F401  (imported before the fork: workers import nothing)

    limit = IN_FLIGHT_PER_WORKER * workers
    todo = enumerate(bounds)
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("fork"),
                             initializer=_worker_init, initargs=(os.getpid(),)) as ex:
        running: dict[Any, tuple[int, tuple[int, int]]] = {}
        handed: set[int] = set()  # chunks handed on but not yet written (held back by the consumer)
        written = 0  # chunks 0 .. written - 1 handed on (hence written)

        def fill() -> None:
            nonlocal written
            while written in handed:
                handed.remove(written)
                written += 1
            while len(running) + len(handed) < limit:
                item = next(todo, None)
                if item is None:
                    return
                k, b = item
                running[ex.submit(_encode_in_worker, b)] = (k, b)

        try:
            fill()
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    k, b = running.pop(fut)
                    yield k, b, fut.result()
                    handed.add(k)
                fill()
        except BaseException:
            ex.shutdown(wait=True, cancel_futures=True)
            raise


@torch.no_grad()
def encode_split(model: torch.nn.Module, split: Dataset, batch_rows: int | None = None, desc: str = "embedding",
                 progress: bool = True, prefix: bool = False, workers: int | None = None,
                 out_dir: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Encoder outputs of every inference window of every row (``model.split_windows`` on each
    row's ``waveform``: the windows the model itself would see on that segment).

    Uses ``encoder.raw_features`` when the encoder has it (unstandardized ``TaggerEnsembleEncoder``
    features), else ``encoder(...)``; with ``prefix=True`` ``encoder.frozen_prefix`` (the
    ``"prefix"`` cache mode). The encoder runs in eval mode.

    On the CPU the rows are shared out to ``workers`` forked processes with one torch thread each
    (one thread per process beat two threads in one process on the 2-core dev machine, and is far
    better when the cores are shared), and freed activations are kept for reuse
    (``eno_hf.utils.heap``); each row's output does not depend on the batching, the thread count or
    the process that computed it (bit-identical). Progress goes through ``eno_hf.utils.progress``.

    Memory does not grow with the number of rows: each chunk of ``batch_rows`` rows is appended,
    in row order, to ``.npy`` files on disk as soon as it and the chunks before it are done (at
    most ``IN_FLIGHT_PER_WORKER`` chunks per worker are in flight or held back), and the result is
    returned as read-only memory maps of those files.

    Args:
        model: ``EnoForAudioTagging`` with an audio encoder.
        split: rows with ``waveform`` ``(samples,)`` at ``model.config.sample_rate``.
        batch_rows: rows per encoder call (default 1 on the CPU, where larger batches only cost
            memory, 8 on a GPU).
        desc: progress description.
        progress: False shows no progress.
        workers: processes (default ``cpu_workers(model)``; only for 8 rows or more); 1 computes
            everything in this process.
        out_dir: folder (created) that receives ``FEATURES_FILE`` and ``ROWS_FILE`` (left
            incomplete on an error); default a fresh folder under ``tempfile.gettempdir()``
            (``$TMPDIR``) whose files are unlinked once mapped (their disk space is freed when the
            returned arrays are).

    Returns:
        ``(features (n_windows, output_dim) float32, rows (n_windows,) int64)``: the row index of
        each window (rows with several windows repeat); read-only ``np.memmap`` (ordinary empty
        arrays for an empty split).
    """
    global _FORKED
    import shutil
    import tempfile

    encoder = model.encoder
    was_training = encoder.training
    encoder.eval()
    embed = encoder.frozen_prefix if prefix else getattr(encoder, "raw_features", encoder)
    waves = split.select_columns(["waveform"]).with_format("numpy")
    n = len(split)
    cpu = cpu_workers(model)
    if batch_rows is None:
        batch_rows = 1 if next(iter(model.parameters()), torch.empty(0)).device.type == "cpu" else 8
    if workers is None:
        workers = cpu if n >= 8 else 1
    workers = max(1, min(int(workers), cpu, math.ceil(n / batch_rows) if n else 1))
    bounds = ((s, min(s + batch_rows, n)) for s in range(0, n, batch_rows))
    if prefix and hasattr(encoder, "prefix_layout"):
        encoder.prefix_layout(model.window_samples)  # computed once here, inherited by the workers
    dim = int(encoder.prefix_dim(model.window_samples) if prefix else encoder.output_dim)
    own_dir = out_dir is None
    directory = Path(tempfile.mkdtemp(prefix="eno-encode-")) if own_dir else Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    features = NpyAppender(directory / FEATURES_FILE, np.float32, (dim,))
    rows = NpyAppender(directory / ROWS_FILE, np.int64)

    def write(result: tuple[np.ndarray, np.ndarray]) -> None:
        features.append(result[0])
        rows.append(result[1])

    try:
        with Progress(n, desc, "row", enabled=progress) as bar, reuse_freed_memory():
            if workers <= 1:
                results = ((k, b, _encode_rows(model, waves, embed, *b)) for k, b in enumerate(bounds))
            else:
                _FORKED = (model, waves, embed)
                results = _forked_results(bounds, workers)
            _in_order(results, write, bar.advance)
        features.close()
        rows.close()
        return open_npy(directory / FEATURES_FILE), open_npy(directory / ROWS_FILE)
    finally:
        _FORKED = None
        encoder.train(was_training)
        features.abort()
        rows.abort()
        if own_dir:  # the maps keep the unlinked files alive
            shutil.rmtree(directory, ignore_errors=True)


def _cache_key(model: torch.nn.Module, split: Dataset, prefix: bool = False) -> str:
    cfg = model.config
    key = {"prefix": prefix, "fingerprint": getattr(split, "_fingerprint", None), "rows": len(split), "type": cfg.encoder_type,
           "kwargs": cfg.encoder_kwargs, "chunk_s": cfg.chunk_s, "tail": cfg.chunk_tail_min_ratio}
    return json_hash(key, 16)


def _cache_stem(model: torch.nn.Module, split: Dataset, name: str, prefix: bool) -> str:
    return f"{name}-{_cache_key(model, split, prefix)}"


def cached_encode_split(model: torch.nn.Module, split: Dataset, cache_dir: Path, name: str,
                        progress: bool = True, prefix: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``encode_split`` through an on-disk cache ``{cache_dir}/{name}-{key}.features.npy`` and
    ``.rows.npy`` (key: the split's datasets fingerprint and row count, encoder type/kwargs,
    chunking, ``prefix``), returned memory-mapped (read-only ``np.memmap``).

    The files are written into a temporary folder in ``cache_dir`` and moved into place when
    complete (rows first, features last: an interrupted run leaves no usable-looking pair).
    Caches of the earlier single-``.npz`` format are not read (computed again)."""
    import shutil
    import tempfile

    cache_dir.mkdir(parents=True, exist_ok=True)
    stem = _cache_stem(model, split, name, prefix)
    feats_path, rows_path = cache_dir / f"{stem}.features.npy", cache_dir / f"{stem}.rows.npy"
    if feats_path.is_file() and rows_path.is_file():
        log.info("frozen features of %s from %s", name, feats_path)
        return open_npy(feats_path), open_npy(rows_path)
    tmp = Path(tempfile.mkdtemp(prefix=owned_temp_prefix(feats_path), dir=cache_dir))
    try:
        encode_split(model, split, desc=f"{'prefix' if prefix else 'embedding'} {name}",
                     progress=progress, prefix=prefix, out_dir=tmp)
        os.replace(tmp / ROWS_FILE, rows_path)
        os.replace(tmp / FEATURES_FILE, feats_path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return open_npy(feats_path), open_npy(rows_path)


def _window_chunk(dim: int) -> int:
    """Windows per block when copying ``(n, dim)`` float32 features: about 4 MB (up to four blocks'
    worth stayed allocated at a time in ``cached_split``, measured: +64 MB with 16-MB blocks)."""
    return max(1, (4 << 20) // max(1, 4 * dim))


def cached_split(split: Dataset, features: np.ndarray, rows: np.ndarray, columns: Sequence[str],
                 path: str | Path | None = None, transform: Any = None) -> Dataset:
    """One row per window: ``columns`` of ``split`` (``waveform`` excluded) repeated per window,
    plus ``embedding`` = ``features`` (``(n_windows, dim)`` float32; ``List(Value("float32"),
    length=dim)``, an Arrow fixed-size list), in numpy format.

    Built block by block (about 4 MB of features at a time, read from ``features``, which may be
    a memory map): with ``path`` the table is written there as an Arrow file (atomically: a
    temporary file beside it, then renamed) and returned memory-mapped (``Dataset.from_file``), so
    memory does not grow with the number of windows; without ``path`` the table is built in
    memory.

    Args:
        split: the rows ``rows`` points into.
        features: ``(n_windows, dim)`` float32 (e.g. from ``cached_encode_split``).
        rows: ``(n_windows,)`` int row of ``split`` of each window.
        columns: columns of ``split`` to keep (absent ones and ``waveform`` are skipped).
        path: Arrow file to (over)write, or None.
        transform: ``f(block (k, dim) float32) -> (k, dim)`` applied to each block of features
            before it is stored (e.g. standardization; must act row by row).

    Returns:
        The ``datasets.Dataset`` (``with_format("numpy")``).

    Raises:
        ValueError: ``features`` and ``rows`` of different lengths.
    """
    import pyarrow as pa
    from datasets import DatasetInfo, Features, List, Value

    keep = [c for c in dict.fromkeys(columns) if c in split.column_names and c != "waveform"]
    n, dim = int(features.shape[0]), int(features.shape[1])
    if len(rows) != n:
        raise ValueError(f"{n} feature rows but {len(rows)} row indices")
    base = split.select_columns(keep).with_format("arrow") if keep else None
    schema = Features({**{c: split.features[c] for c in keep}, EMBEDDING_COLUMN: List(Value("float32"), length=dim)})
    step = _window_chunk(dim)

    def blocks() -> Iterator[pa.Table]:
        for s in range(0, n, step):
            block = np.array(features[s:s + step], dtype=np.float32)  # a copy of one block
            if transform is not None:
                block = np.ascontiguousarray(transform(block), dtype=np.float32)
            emb = pa.FixedSizeListArray.from_arrays(pa.array(block.reshape(-1)), dim)
            table = base[np.asarray(rows[s:s + step]).tolist()] if base is not None else pa.table({})
            yield table.append_column(EMBEDDING_COLUMN, emb) if keep else pa.table({EMBEDDING_COLUMN: emb})

    if path is None:
        tables = list(blocks())
        table = pa.concat_tables(tables) if tables else schema.arrow_schema.empty_table()
        return Dataset(table.cast(schema.arrow_schema), info=DatasetInfo(features=schema)).with_format("numpy")
    from datasets.arrow_writer import ArrowWriter

    with atomic_path(path) as tmp:
        writer = ArrowWriter(features=schema, path=str(tmp))
        for table in blocks():
            writer.write_table(table)
        writer.finalize()
    return Dataset.from_file(str(path)).with_format("numpy")


def _raw_statistics_source(encoder: torch.nn.Module, prefixes: np.ndarray, window_samples: int,
                           directory: Path) -> np.ndarray:
    """``encoder.raw_from_prefix`` of every row of ``prefixes``, 64 rows per call (as computed
    before), appended to an unlinked ``.npy`` in ``directory`` and returned memory-mapped."""
    import tempfile

    fd, name = tempfile.mkstemp(prefix=".raw-from-prefix.", suffix=".npy", dir=directory)
    os.close(fd)
    out = NpyAppender(name, np.float32, (int(encoder.output_dim),))
    try:
        with torch.no_grad():
            for s in range(0, len(prefixes), 64):
                part = _as_tensor(np.ascontiguousarray(prefixes[s:s + 64]))
                out.append(encoder.raw_from_prefix(part, window_samples).numpy())
        out.close()
        return open_npy(name)
    finally:
        out.abort()
        os.unlink(name)


def set_prefix_standardization(model: torch.nn.Module, prefixes: np.ndarray, directory: str | Path) -> None:
    """Set ``model.encoder``'s standardization buffers from cached training prefixes: torch's
    ``mean`` / ``std(unbiased=False)`` over the un-adapted suffixes' outputs
    (``encoder.raw_from_prefix``, 64 rows at a time into an unlinked ``.npy`` in ``directory``).

    Args:
        model: ``EnoForAudioTagging`` whose encoder has ``raw_from_prefix`` and ``set_standardization``.
        prefixes: ``(n_windows, prefix_dim)`` float32 training-window prefixes (may be memory-mapped).
        directory: an existing folder for the temporary file.
    """
    encoder = model.encoder
    encoder.eval()
    raw = _raw_statistics_source(encoder, prefixes, model.window_samples, Path(directory))
    source = _as_tensor(raw)
    encoder.set_standardization(source.mean(dim=0), source.std(dim=0, unbiased=False))


@dataclass
class CachedInputs:
    """What ``cache_inputs`` produced.

    Attributes:
        mode: ``"frozen"`` or ``"prefix"`` (see ``cache_mode``).
        datasets: split name -> one row per window: the requested columns of the split (``waveform``
            excluded) + ``embedding`` (``(dim,)`` float32, cached encoder outputs or prefixes).
        encoder: the stand-in encoder reading ``embedding`` rows (``EmbeddingInput`` or
            ``PrefixInput`` holding the real encoder).
        encoder_kwargs: config ``encoder_kwargs`` of the stand-in (``encoder_type="embeddings"``).
        input_columns: ``["embedding"]``.
    """

    mode: str
    datasets: dict[str, Dataset]
    encoder: torch.nn.Module
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    input_columns: list[str] = field(default_factory=lambda: [EMBEDDING_COLUMN])


def cache_inputs(model: torch.nn.Module, dataset: Mapping[str, Dataset], columns: Sequence[str], cache_dir: Path,
                 mode: str, progress: bool = True) -> CachedInputs:
    """Encode (or reuse from ``cache_dir``) every split of ``dataset`` for training in ``mode``.

    Sets the encoder's standardization buffers (``set_standardization``, when it has them) from
    the training split: frozen mode from the cached outputs (which are then standardized), prefix
    mode from the un-adapted suffixes' outputs on the cached prefixes (computed 64 windows at a
    time into a temporary file). The statistics are torch's ``mean``/``std`` over the whole
    (memory-mapped) array, as before the caches were memory-mapped, so they are bit-identical.

    Memory does not grow with the number of windows: the features stay on disk
    (``cached_encode_split``) and every split becomes a memory-mapped Arrow file
    ``{cache_dir}/{name}-{key}-{tag}.arrow`` (``cached_split``; ``tag``: mode, columns and the
    standardization applied, so a re-run with the same inputs reuses it).

    Args:
        model: ``EnoForAudioTagging`` with an audio encoder (LoRA already applied for ``"prefix"``).
        dataset: splits (``train`` required; ``validation``/``test`` when present) with ``waveform``.
        columns: columns to keep beside ``embedding`` (``recording_id``, label columns).
        cache_dir: ``{output_dir}/embedding_cache``.
        mode: ``"frozen"`` or ``"prefix"``.

    Returns:
        ``CachedInputs``.
    """
    import hashlib

    prefix = mode == "prefix"
    names = [name for name in ("train", "validation", "test") if name in dataset]
    encoded = {name: cached_encode_split(model, dataset[name], cache_dir, name, progress=progress, prefix=prefix)
               for name in names}
    encoder = model.encoder
    transform = None
    standardization = ""
    if hasattr(encoder, "set_standardization"):
        train_feats = encoded["train"][0]
        if prefix:  # raw features of the not-yet-adapted suffixes
            set_prefix_standardization(model, train_feats, cache_dir)
        else:
            source = _as_tensor(train_feats)
            encoder.set_standardization(source.mean(dim=0), source.std(dim=0, unbiased=False))
            del source
        del train_feats
        if not prefix:
            def transform(block: np.ndarray) -> np.ndarray:
                with torch.no_grad():
                    return encoder.standardize(torch.from_numpy(block)).numpy()

            stats = torch.cat([encoder.feature_mean, encoder.feature_std]).detach().cpu().numpy()
            standardization = hashlib.sha256(stats.astype(np.float32).tobytes()).hexdigest()
    keep = [c for c in dict.fromkeys(columns) if c != "waveform"]
    tag = json_hash({"mode": mode, "columns": keep, "standardization": standardization}, 12)
    datasets = {}
    for name, (f, r) in encoded.items():
        path = cache_dir / f"{_cache_stem(model, dataset[name], name, prefix)}-{tag}.arrow"
        if path.is_file():
            datasets[name] = Dataset.from_file(str(path)).with_format("numpy")
        else:
            datasets[name] = cached_split(dataset[name], f, r, columns, path=path, transform=transform)
    input_dim = int(encoded["train"][0].shape[1])
    stand_in = (PrefixInput(encoder, model.window_samples) if prefix
                else EmbeddingInput(input_dim, columns=[EMBEDDING_COLUMN]))
    return CachedInputs(mode, datasets, stand_in, {"input_dim": input_dim, "columns": [EMBEDDING_COLUMN]})


def training_view(model: torch.nn.Module, cached: CachedInputs) -> torch.nn.Module:
    """A shallow copy of ``model`` whose encoder is ``cached.encoder`` and whose config (a copy)
    says ``encoder_type="embeddings"``: trunk and heads are the same modules as ``model``'s
    (training the view trains them; ``load_state_dict`` on the view copies into them), and a
    ``PrefixInput`` holds ``model.encoder`` itself. ``model`` is left unchanged."""
    view = copy.copy(model)
    view._modules = dict(model._modules)
    view._modules["encoder"] = cached.encoder
    view.config = copy.deepcopy(model.config)
    view.config.encoder_type, view.config.encoder_kwargs = "embeddings", dict(cached.encoder_kwargs)
    return view
