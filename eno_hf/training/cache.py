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
"""

from __future__ import annotations

import copy
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset

from eno_hf.config import Settings
from eno_hf.models.encoders import EmbeddingInput
from eno_hf.utils.io import atomic_write, json_hash

log = logging.getLogger(__name__)

__all__ = ["CACHE_SUBDIR", "EMBEDDING_COLUMN", "CachedInputs", "PrefixInput", "cache_inputs", "cache_mode",
           "cached_encode_split", "cached_split", "encode_split", "training_view", "uses_frozen_cache"]

EMBEDDING_COLUMN = "embedding"
"""Column of cached encoder outputs in the datasets built by ``cached_split``."""
CACHE_SUBDIR = "embedding_cache"
"""``{output_dir}/embedding_cache/{split}-{key}.npz``: raw encoder outputs per window."""


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
        from eno_hf.data.workers import die_with_parent

        die_with_parent(parent_pid)

    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__

    from eno_hf.utils.heap import keep_freed_memory_forever

    torch.set_num_threads(1)
    threadpool_limits(limits=1)
    keep_freed_memory_forever()


def _encode_in_worker(bounds: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    assert _FORKED is not None, "encode_split worker started without a job"
    model, waves, embed = _FORKED
    return _encode_rows(model, waves, embed, *bounds)


@torch.no_grad()
def encode_split(model: torch.nn.Module, split: Dataset, batch_rows: int | None = None, desc: str = "embedding",
                 progress: bool = True, prefix: bool = False, workers: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
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

    Args:
        model: ``EnoForAudioTagging`` with an audio encoder.
        split: rows with ``waveform`` ``(samples,)`` at ``model.config.sample_rate``.
        batch_rows: rows per encoder call (default 1 on the CPU, where larger batches only cost
            memory, 8 on a GPU).
        desc: progress description.
        progress: False shows no progress.
        workers: processes (default ``cpu_workers(model)``; only for 8 rows or more); 1 computes
            everything in this process.

    Returns:
        ``(features (n_windows, output_dim) float32, rows (n_windows,) int64)``: the row index of
        each window (rows with several windows repeat).
    """
    global _FORKED
    from eno_hf.utils.heap import reuse_freed_memory
    from eno_hf.utils.progress import Progress

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
    bounds = [(s, min(s + batch_rows, n)) for s in range(0, n, batch_rows)]
    if prefix and hasattr(encoder, "prefix_layout"):
        encoder.prefix_layout(model.window_samples)  # computed once here, inherited by the workers
    results: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(bounds)
    try:
        with Progress(n, desc, "row", enabled=progress) as bar, reuse_freed_memory():
            if workers <= 1:
                for k, (start, stop) in enumerate(bounds):
                    results[k] = _encode_rows(model, waves, embed, start, stop)
                    bar.advance(stop - start)
            else:
                from concurrent.futures import ProcessPoolExecutor, as_completed
                from multiprocessing import get_context

                import threadpoolctl  # noqa: F401  (imported before the fork: workers import nothing)

                _FORKED = (model, waves, embed)
                with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("fork"),
                                         initializer=_worker_init, initargs=(os.getpid(),)) as ex:
                    futures = {ex.submit(_encode_in_worker, b): k for k, b in enumerate(bounds)}
                    for fut in as_completed(futures):
                        k = futures[fut]
                        results[k] = fut.result()
                        bar.advance(bounds[k][1] - bounds[k][0])
    finally:
        _FORKED = None
        encoder.train(was_training)
    dim = int(encoder.prefix_dim(model.window_samples) if prefix else encoder.output_dim)
    done = [r for r in results if r is not None]
    if not done:
        return np.zeros((0, dim), dtype=np.float32), np.zeros(0, dtype=np.int64)
    return (np.concatenate([f for f, _ in done]).astype(np.float32, copy=False),
            np.concatenate([r for _, r in done]))


def _cache_key(model: torch.nn.Module, split: Dataset, prefix: bool = False) -> str:
    cfg = model.config
    key = {"prefix": prefix, "fingerprint": getattr(split, "_fingerprint", None), "rows": len(split), "type": cfg.encoder_type,
           "kwargs": cfg.encoder_kwargs, "chunk_s": cfg.chunk_s, "tail": cfg.chunk_tail_min_ratio}
    return json_hash(key, 16)


def cached_encode_split(model: torch.nn.Module, split: Dataset, cache_dir: Path, name: str,
                        progress: bool = True, prefix: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``encode_split`` through an on-disk cache ``{cache_dir}/{name}-{key}.npz`` (key: the split's
    datasets fingerprint and row count, encoder type/kwargs, chunking, ``prefix``)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"{name}-{_cache_key(model, split, prefix)}.npz"
    if path.is_file():
        with np.load(path) as data:
            log.info("frozen features of %s from %s", name, path)
            return data["features"], data["rows"]
    feats, rows = encode_split(model, split, desc=f"{'prefix' if prefix else 'embedding'} {name}",
                               progress=progress, prefix=prefix)
    atomic_write(path, lambda fh: np.savez(fh, features=feats, rows=rows))
    return feats, rows


def cached_split(split: Dataset, features: np.ndarray, rows: np.ndarray, columns: Sequence[str]) -> Dataset:
    """One row per window: ``columns`` of ``split`` (``waveform`` excluded) repeated per window,
    plus ``embedding`` = ``features`` (``(n_windows, dim)`` float32)."""
    keep = [c for c in dict.fromkeys(columns) if c in split.column_names and c != "waveform"]
    base = split.select_columns(keep).select(rows.tolist()).flatten_indices()
    return base.add_column(EMBEDDING_COLUMN, [np.asarray(f, dtype=np.float32) for f in features]
                           ).with_format("numpy")


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
    mode from the un-adapted suffixes' outputs on the cached prefixes.

    Args:
        model: ``EnoForAudioTagging`` with an audio encoder (LoRA already applied for ``"prefix"``).
        dataset: splits (``train`` required; ``validation``/``test`` when present) with ``waveform``.
        columns: columns to keep beside ``embedding`` (``recording_id``, label columns).
        cache_dir: ``{output_dir}/embedding_cache``.
        mode: ``"frozen"`` or ``"prefix"``.

    Returns:
        ``CachedInputs``.
    """
    prefix = mode == "prefix"
    encoded = {name: cached_encode_split(model, dataset[name], cache_dir, name, progress=progress, prefix=prefix)
               for name in ("train", "validation", "test") if name in dataset}
    encoder = model.encoder
    if hasattr(encoder, "set_standardization"):
        train_feats = torch.from_numpy(encoded["train"][0])
        if prefix:  # raw features of the not-yet-adapted suffixes
            with torch.no_grad():
                encoder.eval()
                train_feats = torch.cat([encoder.raw_from_prefix(part, model.window_samples)
                                         for part in train_feats.split(64)])
        encoder.set_standardization(train_feats.mean(dim=0), train_feats.std(dim=0, unbiased=False))
        if not prefix:
            with torch.no_grad():
                encoded = {name: (encoder.standardize(torch.from_numpy(f)).numpy(), r)
                           for name, (f, r) in encoded.items()}
    datasets = {name: cached_split(dataset[name], f, r, columns) for name, (f, r) in encoded.items()}
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
