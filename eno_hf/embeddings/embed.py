"""``eno embed``: embed every segment of a set of inputs and write the embeddings-only layout.

Output (``out_dir``), exactly the layout ``eno_hf.embeddings.store.import_embeddings`` reads::

    out_dir/embeddings/{segment_id}.pt   # torch.save of a (frames, dim) float32 tensor (no pickle of objects)
    out_dir/metadata.jsonl               # one JSON object per segment: segment_id, recording_id,
                                         # segment_start, segment_end (s), frames, + item fields
    out_dir/rejections.jsonl             # inputs that could not be embedded, with reason and detail
    out_dir/manifest.json                # embedder spec, dim, sample rate, counts
    out_dir/shards/{sha1 of ids}.json    # resumability: a finished segment is never recomputed

Items are sorted by duration (longest first) before batching, so a batch holds clips of similar
length; batches run under ``torch.inference_mode``. Resumable per segment: the shard markers of
earlier runs (any item list) are read first and their segments reused, so an interrupted run, or a
run on a subset or superset of the items, only computes what is missing (delete ``shards/`` to
recompute). Note the cache is keyed by ``segment_id`` within ``out_dir``: use one ``out_dir`` per
embedder. MIDI inputs are rendered with FluidSynth (``performance.render``,
cached under ``render_cache``); audio inputs are decoded with ``eno_hf.audio.io.load_audio``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from eno_hf.data.workers import init_worker, reap_orphans, torch_threads
from eno_hf.embeddings.frames import FrameEmbedder, build_frame_embedder
from eno_hf.errors import RejectedInput
from eno_hf.utils.io import atomic_write_json
from eno_hf.utils.progress import Progress

log = logging.getLogger(__name__)

__all__ = ["EmbedItem", "EmbedResult", "MIDI_SUFFIXES", "PtWriter", "ShardWriter", "embed_items", "embed_items_2way", "items_from_dataset", "items_from_folder",
           "load_waveform"]

MIDI_SUFFIXES = (".mid", ".midi")
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aiff", ".aif")


@dataclass
class EmbedItem:
    """One input to embed.

    Attributes:
        segment_id: output file stem (unique).
        path: audio or MIDI file; or ``None`` when ``waveform``/``midi_bytes`` is given.
        recording_id: defaults to ``segment_id``.
        segment_start / segment_end: seconds within the recording (``segment_end`` None: whole file).
        fields: extra metadata written to ``metadata.jsonl`` (performer, piece, ...).
        midi_bytes: MIDI content to render instead of ``path`` (e.g. a degraded performance).
        waveform: an already decoded ``(samples,)`` float32 mono clip at the embedder's rate.
    """

    segment_id: str
    path: str | None = None
    recording_id: str | None = None
    segment_start: float = 0.0
    segment_end: float | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    midi_bytes: bytes | None = None
    waveform: np.ndarray | None = None
    size_hint: float = 0.0


@dataclass
class EmbedResult:
    """Counts of a run: ``embedded`` (this run), ``reused`` (from finished shards), ``rejected``."""

    out_dir: Path
    embedded: int = 0
    reused: int = 0
    rejected: list[dict[str, str]] = field(default_factory=list)


def load_waveform(item: EmbedItem, sample_rate: int, render_cache: str | Path | None = None,
                  soundfont: str | None = None) -> np.ndarray:
    """The ``(samples,)`` float32 mono clip of ``item`` at ``sample_rate`` (rendered if MIDI).

    Raises:
        RejectedInput: missing/undecodable/silent input.
    """
    if item.waveform is not None:
        w = np.asarray(item.waveform, dtype=np.float32)
    elif item.midi_bytes is not None or (item.path and Path(item.path).suffix.lower() in MIDI_SUFFIXES):
        from eno_hf.performance.render import render_midi_cached  # up: MIDI items only; the MIDI-bytes renderer lives there

        src = item.midi_bytes if item.midi_bytes is not None else item.path
        w = render_midi_cached(src, render_cache or Path.home() / ".eno" / "cache", sample_rate, soundfont)
    else:
        from eno_hf.audio.io import load_audio

        w = load_audio(item.path, sample_rate=sample_rate)
        w = w[0] if isinstance(w, tuple) else w
        w = np.asarray(w, dtype=np.float32).reshape(-1)
    if item.segment_end is not None or item.segment_start:
        a = int(round(item.segment_start * sample_rate))
        b = None if item.segment_end is None else int(round(item.segment_end * sample_rate))
        w = w[a:b]
    if w.size == 0:
        raise RejectedInput(item.path or item.segment_id, "empty", "no samples in the segment")
    if not np.isfinite(w).all():
        raise RejectedInput(item.path or item.segment_id, "nan_inf", "non-finite samples")
    return w


def items_from_folder(folder: str | Path, recursive: bool = True) -> list[EmbedItem]:
    """One ``EmbedItem`` per audio/MIDI file under ``folder`` (``segment_id`` = relative path with
    ``/`` replaced by ``__``, without suffix). Raises ``FileNotFoundError`` if ``folder`` is missing."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    files = sorted(p for p in (root.rglob("*") if recursive else root.iterdir())
                   if p.is_file() and p.suffix.lower() in MIDI_SUFFIXES + AUDIO_SUFFIXES)
    return [EmbedItem(segment_id=str(p.relative_to(root).with_suffix("")).replace("/", "__"), path=str(p),
                      size_hint=float(p.stat().st_size) * (30.0 if p.suffix.lower() in MIDI_SUFFIXES else 1.0))
            for p in files]


class ShardWriter:
    """Where ``embed_items`` puts a finished shard's embeddings (before its marker is written).

    ``write(out, shard, metas, embs)``: ``shard`` is the marker's stem, ``metas`` the metadata rows
    and ``embs`` the ``(frames, dim)`` float32 tensors, in the same order. ``present(out, shard,
    segment_id)``: whether a segment of a finished shard is still on disk (else it is recomputed).
    """

    def write(self, out: Path, shard: str, metas: list[dict[str, Any]], embs: list[torch.Tensor]) -> None:
        raise NotImplementedError

    def present(self, out: Path, shard: str, segment_id: str) -> bool:
        raise NotImplementedError


class PtWriter(ShardWriter):
    """The embeddings-only layout: ``embeddings/{segment_id}.pt`` (``torch.save`` of the tensor)."""

    def write(self, out: Path, shard: str, metas: list[dict[str, Any]], embs: list[torch.Tensor]) -> None:
        for m, emb in zip(metas, embs):
            torch.save(emb.contiguous(), out / "embeddings" / f"{m['segment_id']}.pt")

    def present(self, out: Path, shard: str, segment_id: str) -> bool:
        return (out / "embeddings" / f"{segment_id}.pt").is_file()


def embed_items(items: Iterable[EmbedItem], embedder: FrameEmbedder, out_dir: str | Path, *,
                shard_size: int = 64, batch_size: int = 8, render_cache: str | Path | None = None,
                soundfont: str | None = None, transform: Callable[[np.ndarray, EmbedItem], np.ndarray] | None = None,
                progress: Callable[[int, int], None] | None = None, reverse_shards: bool = False,
                writer: ShardWriter | None = None) -> EmbedResult:
    """Embed ``items`` with ``embedder`` into ``out_dir`` (layout in the module docstring).

    Args:
        shard_size: items per resumable shard. batch_size: clips per forward batch.
        render_cache: FluidSynth rendering cache folder (MIDI inputs).
        transform: optional ``(waveform, item) -> waveform`` applied after loading (e.g. a seeded
            augmentation chain for robustness tiers).
        progress: called with ``(done_shards, total_shards)`` (besides, progress over the items
            is shown through ``eno_hf.utils.progress``).
        reverse_shards: work through the shards last to first (a second worker on the same
            ``out_dir`` started this way meets the first one in the middle; shards finished by
            the other worker are skipped, a shard both happen to compute is written identically).
        writer: where a shard's embeddings go (default ``PtWriter``: ``embeddings/*.pt``;
            ``eno_hf.embeddings.companion`` writes one Arrow dataset per shard instead).

    Returns:
        ``EmbedResult``. Every item is either in ``metadata.jsonl`` or in ``rejections.jsonl``.

    Raises:
        ValueError: duplicate ``segment_id``.
    """
    out = Path(out_dir)
    writer = writer or PtWriter()
    items = list(items)
    ids = [it.segment_id for it in items]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise ValueError(f"duplicate segment_id(s): {dup}")
    (out / "embeddings").mkdir(parents=True, exist_ok=True)
    (out / "shards").mkdir(exist_ok=True)

    def finished() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, str]]]:
        metas: dict[str, dict[str, Any]] = {}
        rejects: dict[str, dict[str, str]] = {}
        for marker in sorted((out / "shards").glob("*.json")):
            try:
                done = json.loads(marker.read_text(encoding="utf-8"))
            except (OSError, ValueError):  # a marker being replaced by another worker
                continue
            metas.update({m["segment_id"]: m for m in done.get("meta", [])
                          if writer.present(out, marker.stem, m["segment_id"])})
            rejects.update({r["segment_id"]: r for r in done.get("rejected", [])})
        return metas, rejects

    known, known_rejects = finished()
    todo = [it for it in items if it.segment_id not in known and it.segment_id not in known_rejects]
    result = EmbedResult(out, reused=sum(it.segment_id in known for it in items))
    order = sorted(todo, key=lambda it: (-it.size_hint, it.segment_id))
    shards = [order[i: i + shard_size] for i in range(0, len(order), shard_size)]
    with Progress(len(todo), f"embedding ({out.name})", "segment", enabled=bool(todo)) as bar:
        for k in (reversed(range(len(shards))) if reverse_shards else range(len(shards))):
            shard = shards[k]
            shard_ids = [it.segment_id for it in shard]
            marker = out / "shards" / f"{hashlib.sha1('|'.join(sorted(shard_ids)).encode()).hexdigest()[:16]}.json"
            if marker.is_file():
                continue
            if reverse_shards or len(shards) > 1:  # another worker may have done some of these meanwhile
                known, known_rejects = finished()
                shard = [it for it in shard if it.segment_id not in known and it.segment_id not in known_rejects]
            metas: list[dict[str, Any]] = []
            embs: list[torch.Tensor] = []
            rejects: list[dict[str, str]] = []
            for b in range(0, len(shard), batch_size):
                batch = shard[b: b + batch_size]
                waves, ok = [], []
                for it in batch:
                    try:
                        w = load_waveform(it, embedder.sample_rate, render_cache, soundfont)
                        if transform is not None:
                            w = np.asarray(transform(w, it), dtype=np.float32)
                        waves.append(w)
                        ok.append(it)
                    except RejectedInput as exc:
                        rejects.append({"segment_id": it.segment_id, "path": str(it.path or ""), "reason": exc.reason,
                                        "detail": exc.detail})
                if not ok:
                    continue
                for it, w, emb in zip(ok, waves, embedder.embed_batch(waves)):
                    embs.append(emb)
                    start = float(it.segment_start)
                    end = float(it.segment_end) if it.segment_end is not None else start + len(w) / embedder.sample_rate
                    metas.append({"segment_id": it.segment_id, "recording_id": it.recording_id or it.segment_id,
                                  "segment_start": round(start, 4), "segment_end": round(end, 4),
                                  "frames": int(emb.shape[0]), **it.fields})
                bar.advance(len(batch))
            writer.write(out, marker.stem, metas, embs)
            result.embedded += len(metas)
            atomic_write_json(marker, {"ids": shard_ids, "meta": metas, "rejected": rejects})
            if progress is not None:
                progress(k + 1, len(shards))
    known, known_rejects = finished()
    by_id = {i: known[i] for i in ids if i in known}
    rejected = [known_rejects[i] for i in ids if i in known_rejects and i not in known]
    missing = len(ids) - len(by_id) - len(rejected)
    with open(out / "metadata.jsonl", "w", encoding="utf-8") as fh:
        for sid in ids:
            if sid in by_id:
                fh.write(json.dumps(by_id[sid]) + "\n")
    with open(out / "rejections.jsonl", "w", encoding="utf-8") as fh:
        for r in rejected:
            fh.write(json.dumps(r) + "\n")
    result.rejected = rejected
    atomic_write_json(out / "manifest.json", {"embedder": embedder.spec.to_dict(), "key": embedder.spec.key,
                                         "dim": embedder.dim, "sample_rate": embedder.sample_rate,
                                         "window": embedder.window, "hop": embedder.hop,
                                         "n_segments": len(by_id), "n_rejected": len(rejected),
                                         "complete": missing == 0})
    log.info("embedded %d, reused %d, rejected %d -> %s", result.embedded, result.reused, len(rejected), out)
    return result


def _embed_reverse(items: list[EmbedItem], spec: Any, out_dir: str, kwargs: dict[str, Any]) -> int:
    """Child process of ``embed_items_2way``: the same shards, last to first, one torch thread."""
    with torch_threads(1):
        return embed_items(items, build_frame_embedder(spec), out_dir, reverse_shards=True, **kwargs).embedded


def embed_items_2way(items: Iterable[EmbedItem], embedder: FrameEmbedder, out_dir: str | Path, *,
                     workers: int = 1, **kwargs: Any) -> EmbedResult:
    """``embed_items`` on up to two processes: with ``workers >= 2`` a spawned child works through
    the shards last to first (``reverse_shards``) while this process goes first to last, each with
    one torch thread, until they meet; the output is the same as one process's (every segment once,
    same files); the child dies with this process, even on ``kill -9``
    (``eno_hf.data.workers.init_worker``). ``workers == 1``, or a ``transform`` (closures do not pickle), runs
    ``embed_items`` here. ``progress`` is called in this process only (count the shard markers to
    include the child's). Items must pickle (paths or ``midi_bytes``). Renderings of MIDI inputs are
    shared through ``render_cache``.

    Raises:
        Whatever ``embed_items`` raises, from either process.
    """
    items = list(items)
    if workers < 2 or kwargs.get("transform") is not None or len(items) < 2 * kwargs.get("shard_size", 64):
        return embed_items(items, embedder, out_dir, **kwargs)
    import multiprocessing as mp
    import os
    from concurrent.futures import ProcessPoolExecutor

    reap_orphans()  # a child left by a parent killed where the parent-death signal is missing
    # the child dies with this process, even on kill -9 (init_worker); it sets its own threads
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"), initializer=init_worker,
                             initargs=(os.getpid(),)) as pool:
        child_kwargs = {k: v for k, v in kwargs.items() if k != "progress"}  # callbacks stay here
        child = pool.submit(_embed_reverse, items, embedder.spec, str(out_dir), child_kwargs)
        with torch_threads(1):
            here = embed_items(items, embedder, out_dir, **kwargs)
        there = child.result()
    # Both processes wrote metadata.jsonl / rejections.jsonl / manifest.json when they finished, the
    # first one before the other's last shards: write them once more now that every shard is done
    # (nothing is recomputed: every segment is a shard-marker hit).
    result = embed_items(items, embedder, out_dir, **{k: v for k, v in kwargs.items() if k != "progress"})
    result.embedded, result.reused = here.embedded + there, here.reused
    return result


def items_from_dataset(data_root: str | Path, name: str, version: str = "latest") -> list[Any]:
    """One ``EmbedItem`` per segment of a built dataset version (original file + segment times)."""
    from datasets import load_from_disk

    from eno_hf.data.version import resolve_version, version_dir

    v = resolve_version(data_root, name, version)
    d = load_from_disk(str(version_dir(data_root, name, v)))
    items = []
    for split in (d.keys() if hasattr(d, "keys") else [None]):
        ds = d[split] if split is not None else d
        cols = [c for c in ("segment_id", "recording_id", "group", "path", "segment_start_s", "segment_end_s") if c in ds.column_names]
        for row in ds.select_columns(cols):
            items.append(EmbedItem(segment_id=str(row["segment_id"]), path=row["path"], recording_id=row.get("recording_id"),
                                   segment_start=float(row.get("segment_start_s") or 0.0), segment_end=row.get("segment_end_s"),
                                   size_hint=float((row.get("segment_end_s") or 0) - (row.get("segment_start_s") or 0)),
                                   fields={"group": row.get("group"), **({"split": split} if split else {})}))
    return items
