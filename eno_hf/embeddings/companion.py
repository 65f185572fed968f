"""Embedding at scale: a companion Arrow dataset of a dataset version, keyed by ``segment_id``.

``embed_dataset(settings)`` embeds every segment of a built dataset version with the configured
encoder (``settings.embed``, default the model's encoder) through the one embedding path,
``eno_hf.embeddings.embed.embed_items`` (items sorted by length, batched, ``torch.inference_mode``,
bf16/fp16 autocast on CUDA only), with an Arrow writer instead of the ``.pt`` writer::

    {data_root}/embeddings/{dataset}/{version}/{encoder key}-{pooling}[-frames]/
        shards/{id}.json          # shard markers (embed_items): a finished shard is never recomputed
        arrow/{id}/               # one small Dataset.save_to_disk per finished shard
        dataset/                  # the companion dataset (all shards, in dataset order)
        metadata.jsonl  rejections.jsonl  manifest.json
        .lock                     # filelock: one writer at a time, a second process waits and reuses

Columns of ``dataset/``: ``segment_id`` (string), ``recording_id`` (string), ``n_frames`` (int32),
``embedding`` (``(dim,)`` float32: the window rows pooled by ``embed.pooling`` — mean, max, or
mean+max concatenated, ``2 * dim``) and, with ``embed.frames``, ``frames`` (``(n_frames, dim)``
float16). A shard's Arrow folder is renamed into place before its marker is written, so a run
killed at any point (SIGKILL) resumes with the finished shards reused and no duplicate or missing
row; segments that cannot be decoded are in ``rejections.jsonl`` with their reason.

``attach_embeddings(dataset, companion)`` joins the ``embedding`` column to every split by
``segment_id`` (``embed.use_for_training``: the tagging trainer then reads it with
``model.encoder=embeddings``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from eno_hf.config import Settings
from eno_hf.data.version import resolve_version
from eno_hf.embeddings.embed import ShardWriter, embed_items, items_from_dataset
from eno_hf.embeddings.frames import EmbedderSpec, build_frame_embedder
from eno_hf.utils.io import atomic_write_json, json_hash

log = logging.getLogger(__name__)

__all__ = ["ArrowShardWriter", "CompanionResult", "attach_embeddings", "companion_dir", "embed_dataset",
           "embedder_spec", "pool_frames"]


def pool_frames(frames: torch.Tensor, pooling: str) -> np.ndarray:
    """``(frames, dim)`` → ``(dim,)`` float32 (``mean``/``max``) or ``(2 * dim,)`` (``mean+max``).

    Raises:
        ValueError: unknown ``pooling``.
    """
    x = frames.float()
    if pooling == "mean":
        out = x.mean(0)
    elif pooling == "max":
        out = x.amax(0)
    elif pooling == "mean+max":
        out = torch.cat([x.mean(0), x.amax(0)])
    else:
        raise ValueError(f"unknown pooling {pooling!r}")
    return out.numpy().astype(np.float32)


class ArrowShardWriter(ShardWriter):
    """``arrow/{shard}/``: one ``Dataset.save_to_disk`` per shard, written to a temporary folder and
    renamed into place (atomic on POSIX), with the columns of the module docstring."""

    def __init__(self, pooling: str = "mean", frames: bool = False) -> None:
        self.pooling, self.frames = pooling, frames

    def features(self):
        from datasets import Features, Sequence, Value

        cols = {"segment_id": Value("string"), "recording_id": Value("string"), "n_frames": Value("int32"),
                "embedding": Sequence(Value("float32"))}
        if self.frames:
            cols["frames"] = Sequence(Sequence(Value("float16")))
        return Features(cols)

    def write(self, out: Path, shard: str, metas: list[dict[str, Any]], embs: list[torch.Tensor]) -> None:
        from datasets import Dataset

        cols: dict[str, list[Any]] = {"segment_id": [str(m["segment_id"]) for m in metas],
                                      "recording_id": [str(m["recording_id"]) for m in metas],
                                      "n_frames": [int(e.shape[0]) for e in embs],
                                      "embedding": [pool_frames(e, self.pooling) for e in embs]}
        if self.frames:
            cols["frames"] = [e.numpy().astype(np.float16) for e in embs]
        final = out / "arrow" / shard
        tmp = out / "arrow" / f".{shard}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        Dataset.from_dict(cols, features=self.features()).save_to_disk(str(tmp))
        try:
            os.replace(tmp, final)
        except OSError:  # written meanwhile by another worker (identical content): keep theirs
            shutil.rmtree(tmp, ignore_errors=True)

    def present(self, out: Path, shard: str, segment_id: str) -> bool:
        return (out / "arrow" / shard / "dataset_info.json").is_file()


@dataclass
class CompanionResult:
    """``path`` of ``dataset/``, the ``dataset`` itself, counts, ``dim`` of ``embedding``, and
    ``cache_hit`` (nothing had to be embedded)."""

    path: Path
    dataset: Any
    embedded: int
    reused: int
    rejected: list[dict[str, str]]
    dim: int
    cache_hit: bool


def embedder_spec(settings: Settings) -> EmbedderSpec:
    """The ``EmbedderSpec`` of ``settings.embed`` (kind/encoder default to the model's encoder).

    Raises:
        ValueError: no encoder configured and the model's encoder cannot embed (e.g. ``mel_cnn``).
    """
    e, m = settings.embed, settings.model
    kind, name, path = e.kind, e.encoder, e.encoder_path
    if kind is None:
        if m.encoder not in ("tagger_ensemble", "sota_tagger", "hf_audio"):
            raise ValueError(f"model.encoder={m.encoder!r} is not a pretrained encoder: set embed.kind and embed.encoder")
        kind = m.encoder
        path = path or m.encoder_path
    if name is None:
        name = {"tagger_ensemble": "+".join(m.taggers), "sota_tagger": m.tagger}.get(kind, "hf_audio")
    return EmbedderSpec(kind=kind, name=name, features=e.features, path=str(path) if path else None, hop_s=e.hop_s)


def companion_dir(settings: Settings, version: str) -> Path:
    """``{data_root}/embeddings/{dataset}/{version}/{encoder key}-{pooling}[-frames]``."""
    e = settings.embed
    key = f"{embedder_spec(settings).key}-{e.pooling}{'-frames' if e.frames else ''}".replace("+", "_")
    return Path(settings.paths.data_root) / "embeddings" / settings.dataset.name / version / key


def _assemble(out: Path, ids: list[str]):
    """Concatenate the shard datasets that hold ``ids`` (first copy of each id), in ``ids`` order."""
    from datasets import concatenate_datasets, load_from_disk

    parts = []
    for marker in sorted((out / "shards").glob("*.json")):
        if (out / "arrow" / marker.stem / "dataset_info.json").is_file():
            parts.append(load_from_disk(str(out / "arrow" / marker.stem)))
    parts = [p for p in parts if len(p)]
    if not parts:
        raise RuntimeError(f"{out}: no segment could be embedded (see rejections.jsonl)")
    allrows = concatenate_datasets(parts)
    first: dict[str, int] = {}
    for i, sid in enumerate(allrows["segment_id"]):
        first.setdefault(sid, i)
    return allrows.select([first[s] for s in ids if s in first])


def embed_dataset(settings: Settings, version: str = "latest", progress: Any = None) -> CompanionResult:
    """Embed every segment of dataset version ``version`` into its companion dataset (module docstring).

    Holds ``{companion}/.lock`` (``filelock``) for the whole run: a second process on the same
    companion waits, then finds every shard finished and only reassembles (or reuses) ``dataset/``.

    Returns:
        ``CompanionResult``.

    Raises:
        FileNotFoundError: no such dataset version. ValueError: see ``embedder_spec``.
        RuntimeError: no segment could be embedded.
    """
    from datasets import load_from_disk
    from filelock import FileLock

    e = settings.embed
    data_root = Path(settings.paths.data_root)
    v = resolve_version(data_root, settings.dataset.name, version)
    out = companion_dir(settings, v)
    out.mkdir(parents=True, exist_ok=True)
    items = items_from_dataset(data_root, settings.dataset.name, v)
    ids = [it.segment_id for it in items]
    with FileLock(str(out / ".lock")):
        done = out / "companion.json"
        if done.is_file() and json.loads(done.read_text(encoding="utf-8")).get("ids_hash") == _ids_hash(ids):
            ds = load_from_disk(str(out / "dataset"))
            info = json.loads(done.read_text(encoding="utf-8"))
            return CompanionResult(out / "dataset", ds, 0, len(ds), info.get("rejected", []), info["dim"], True)
        embedder = build_frame_embedder(embedder_spec(settings)).to(e.device, e.autocast)
        res = embed_items(items, embedder, out, shard_size=e.shard_size, batch_size=e.batch_size,
                          render_cache=data_root / "cache" / "midi-render", progress=progress,
                          writer=ArrowShardWriter(e.pooling, e.frames))
        ds = _assemble(out, ids)
        final, tmp = out / "dataset", out / f".dataset.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        ds.save_to_disk(str(tmp))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        dim = len(ds[0]["embedding"])
        atomic_write_json(done, {"dataset": settings.dataset.name, "version": v, "spec": embedder.spec.to_dict(),
                                 "pooling": e.pooling, "frames": e.frames, "dim": dim, "n_rows": len(ds),
                                 "rejected": res.rejected, "ids_hash": _ids_hash(ids)})
    log.info("companion %s: %d rows (embedded %d, reused %d, rejected %d)", out, len(ds), res.embedded, res.reused,
             len(res.rejected))
    return CompanionResult(final, load_from_disk(str(final)), res.embedded, res.reused, res.rejected, dim,
                           res.embedded == 0)


def _ids_hash(ids: list[str]) -> str:
    return json_hash(ids, 16)


def attach_embeddings(dataset: Any, companion: Any, column: str = "embedding") -> tuple[Any, list[str]]:
    """Join ``companion[column]`` to every split of ``dataset`` (a ``DatasetDict``) by ``segment_id``.

    Returns:
        ``(dataset with the column, segment ids dropped because they have no embedding)``.

    Raises:
        ValueError: ``dataset`` already has ``column``.
    """
    from datasets import DatasetDict, concatenate_datasets

    pos = {sid: i for i, sid in enumerate(companion["segment_id"])}
    out, dropped = {}, []
    for split, ds in dataset.items():
        if column in ds.column_names:
            raise ValueError(f"split {split!r} already has a column {column!r}")
        sids = ds["segment_id"]
        keep = [i for i, s in enumerate(sids) if s in pos]
        dropped += [s for s in sids if s not in pos]
        ds = ds.select(keep) if len(keep) != len(sids) else ds
        emb = companion.select([pos[sids[i]] for i in keep]).select_columns([column])
        out[split] = concatenate_datasets([ds, emb], axis=1)
    return DatasetDict(out), dropped
