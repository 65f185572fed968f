"""Per-recording features for the probes, computed once per dataset version and cached.

Feature sets (one ``.npz`` file each under ``{data_root}/cache/cv-features/{dataset}-{version}/``,
rows keyed by ``recording_id``; the segments of a recording are concatenated in time order):

- ``handcrafted``: the ``feature_probe`` baseline's table (``baselines.recording_table``): mean segment
  ``fingerprint`` (64: spectral, MFCC, dynamics/loudness, tempo/onset rate, chroma statistics) + MFCC
  mean and std over all frames (2 x 20).
- ``msd-musicnn``, ``msd-vgg``: the MSD taggers of Pons & Serra (``models.encoders.musicnn_msd``) on the
  recording's waveform column with the reference protocol (log-mel of the whole recording, consecutive
  187-frame windows): penultimate mean and max over windows (2 x 200 resp. 2 x 256) and the 50 MSD tag
  probabilities (mean over windows).
- ``jamendo-fcn``, ``msd-fcn``, ``jamendo-musicnn`` (any ``sota-music-tagging`` name): the tagger's
  native windows over the recording (as ``TaggerEnsembleEncoder``: 29-s / 3-s windows, hop = window,
  zero padded to one window), penultimate mean and max over windows and the 50 tag probabilities.

Every file holds ``ids`` (recording ids, sorted), ``embedding`` (mean+max, float32) and, for taggers,
``tags`` (float32). Files written by earlier versions may hold more arrays (ignored). Nothing is
unpickled (``np.load(allow_pickle=False)``). The default model's frozen prefixes are not here: they
are ``eno_hf.training.cache``'s (``default.load_prefix``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eno_hf.evaluation.baselines import recording_table
from eno_hf.models.encoders.musicnn_msd import MusicnnMSDEncoder, clip_outputs
from eno_hf.utils.io import atomic_path
from eno_hf.utils.progress import track

log = logging.getLogger(__name__)

HANDCRAFTED = "handcrafted"
CACHE_DIRNAME = "cv-features"


def cache_dir(data_root: str | Path, dataset_path: str | Path) -> Path:
    """``{data_root}/cache/cv-features/{dataset name}-{version}`` for a dataset saved at
    ``{data_root}/datasets/{name}/{version}``."""
    p = Path(dataset_path)
    return Path(data_root) / "cache" / CACHE_DIRNAME / f"{p.parent.name}-{p.name}"


def recording_waveforms(split: Any) -> dict[str, np.ndarray]:
    """recording id -> float32 waveform (segments concatenated in ``segment_start_s`` order)."""
    cols = split.select_columns(["recording_id", "segment_start_s", "waveform"]).with_format("numpy")
    parts: dict[str, list[tuple[float, np.ndarray]]] = {}
    for batch in cols.iter(batch_size=16):
        for rid, start, wav in zip(batch["recording_id"], batch["segment_start_s"], batch["waveform"]):
            parts.setdefault(str(rid), []).append((float(start), np.asarray(wav, dtype=np.float32)))
    return {rid: np.concatenate([w for _, w in sorted(p, key=lambda t: t[0])]) for rid, p in parts.items()}


def tagger_features(name: str, waveforms: Mapping[str, np.ndarray], batch_size: int = 16) -> dict[str, np.ndarray]:
    """Per-recording penultimate mean+max and mean tag probabilities of the pretrained tagger ``name``.

    Args:
        name: ``msd-musicnn``, ``msd-vgg`` or a ``sota-music-tagging`` name (``jamendo-fcn``...).
        waveforms: recording id -> ``(samples,)`` float32 at 16 kHz.

    Returns:
        ``{"ids": (n,) str, "embedding": (n, 2 * dim) float32, "tags": (n, 50) float32}`` (ids sorted).

    Raises:
        FileNotFoundError: weights absent.
    """
    import torch

    from eno_hf.models.encoders.sota_taggers import load_sota_tagger

    tagger = load_sota_tagger(name)
    ids = sorted(waveforms)
    items = track(((rid, waveforms[rid]) for rid in ids), total=len(ids), description=f"{name} features",
                  unit="clip", enabled=len(ids) >= 2)
    emb_rows, tag_rows = [], []
    with torch.inference_mode():
        for _, wave in items:
            wav = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
            if isinstance(tagger, MusicnnMSDEncoder):
                probs, emb = clip_outputs(tagger, wav, batch_size)[:2]
            else:
                win = tagger.native_input_samples
                if wav.numel() < win:
                    wav = torch.nn.functional.pad(wav, (0, win - wav.numel()))
                k = wav.numel() // win
                windows = wav[: k * win].reshape(k, win)
                emb = torch.cat([tagger(b) for b in windows.split(batch_size)])
                head = tagger.dense2 if tagger.arch == "musicnn" else tagger.dense
                probs = torch.sigmoid(head(emb))
            emb_rows.append(torch.cat([emb.mean(0), emb.amax(0)]).numpy())
            tag_rows.append(probs.mean(0).numpy())
    return {"ids": np.asarray(ids, dtype=str), "embedding": np.stack(emb_rows).astype(np.float32),
            "tags": np.stack(tag_rows).astype(np.float32)}


def handcrafted_features(dataset: Any, heads: Sequence[Any]) -> dict[str, np.ndarray]:
    """The ``feature_probe`` table of all splits of ``dataset``: ``{"ids", "embedding"}`` (ids sorted)."""
    ids, rows = [], []
    for split in dataset.values():
        table = recording_table(split, heads)
        ids += list(table.ids)
        rows.append(table.X)
    X = np.concatenate(rows)
    order = np.argsort(np.asarray(ids, dtype=str))
    return {"ids": np.asarray(ids, dtype=str)[order], "embedding": X[order].astype(np.float32)}


def load_or_compute(dataset: Any, dataset_path: str | Path, data_root: str | Path, names: Sequence[str],
                    heads: Sequence[Any]) -> dict[str, dict[str, np.ndarray]]:
    """The feature sets ``names`` for every recording of ``dataset`` (all splits), from the cache or
    computed and written there (``cache_dir``). Waveforms are read once, only if some set is missing.

    Returns:
        name -> ``{"ids", "embedding"[, "tags"]}`` arrays.

    Raises:
        FileNotFoundError: tagger weights absent. ValueError: a cached file's ids differ from the dataset's.
    """
    directory = cache_dir(data_root, dataset_path)
    directory.mkdir(parents=True, exist_ok=True)
    all_ids = sorted({str(r) for split in dataset.values() for r in split["recording_id"]})
    out: dict[str, dict[str, np.ndarray]] = {}
    waveforms: dict[str, np.ndarray] | None = None
    for name in names:
        path = directory / f"{name}.npz"
        if path.is_file():
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files if k in ("ids", "embedding", "tags")}
            if list(arrays["ids"]) != all_ids:
                raise ValueError(f"{path}: cached ids differ from the dataset's; delete the file to recompute")
            out[name] = arrays
            continue
        log.info("computing %s features for %d recordings -> %s", name, len(all_ids), path)
        if name == HANDCRAFTED:
            arrays = handcrafted_features(dataset, heads)
        else:
            if waveforms is None:
                waveforms = {}
                for split in dataset.values():
                    waveforms.update(recording_waveforms(split))
            arrays = tagger_features(name, waveforms)
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, **arrays)
        out[name] = arrays
    return out
