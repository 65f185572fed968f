"""Per-recording features for cross-validation, computed once per dataset version and cached.

Feature sets (one ``.npz`` file each under ``{data_root}/cache/cv-features/{dataset}-{version}/``,
rows keyed by ``recording_id``; the segments of a recording are concatenated in time order):

- ``handcrafted``: the ``feature_probe`` baseline's table (``baselines.recording_table``): mean segment
  ``fingerprint`` (64: spectral, MFCC, dynamics/loudness, tempo/onset rate, chroma statistics) + MFCC
  mean and std over all frames (2 x 20).
- ``msd-musicnn``, ``msd-vgg``: the MSD taggers of Pons & Serra (``models.encoders.musicnn_msd``) on the
  recording's waveform column with the reference protocol (log-mel of the whole recording, consecutive
  187-frame windows): penultimate mean and max over windows (2 x 200 resp. 2 x 256) and the 50 MSD tag
  probabilities (mean over windows); MSD Musicnn also ``pool`` ``(n, 1506)``: the mean over windows of
  its pooled mid-level features (max and mean over time of the 753 front-end + mid-end maps, batch
  normalised: the input of its ``dense`` layer; musicnn's ``max_pool``/``mean_pool`` features).
- ``{tagger}-aug{k}`` (e.g. ``msd-musicnn-aug4``): the same arrays for ``k`` augmented copies of every
  recording (``augmented_waveforms``), rows ``copy_owner`` ``(n k,)`` (the row of ``ids`` each copy
  belongs to) instead of one per id. Training-only rows for the ``augment`` candidates of ``cv``.
- ``jamendo-fcn``, ``msd-fcn``, ``jamendo-musicnn`` (any ``sota-music-tagging`` name): the tagger's
  native windows over the recording (as ``TaggerEnsembleEncoder``: 29-s / 3-s windows, hop = window,
  zero padded to one window), penultimate mean and max over windows and the 50 tag probabilities
  (mean over windows). The three together are the frozen features of the default ``tagger_ensemble``.

Every file holds ``ids`` (recording ids, sorted), ``embedding`` (mean+max, float32) and, for taggers,
``tags`` (float32) and the window level: ``windows`` ``(m, dim)`` float32 (every window's penultimate,
recordings in ``ids`` order, windows in time order) with ``window_owner`` ``(m,)`` int32 (the row of
``ids`` each window belongs to). Nothing is unpickled (``np.load(allow_pickle=False)``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

HANDCRAFTED = "handcrafted"
CACHE_DIRNAME = "cv-features"
AUGMENTED = re.compile(r"^(?P<base>.+)-aug(?P<copies>[0-9]+)$")
"""Name of an augmented feature set: ``{tagger}-aug{copies}``."""
AUGMENT_SEED = 0
AUGMENT_P = 0.8
AUGMENT_P_PITCH = 0.5
"""Probabilities per augmented copy of each of gain / noise / filter (``AUGMENT_P``) and of a pitch
shift. ``Augmenter``'s defaults (0.5, 0.1) are for training batches, drawn anew every epoch; a
feature-level copy is made once, so it should rarely be left unchanged (here 0.2^3 x 0.5 = 0.4 %)."""


def cache_dir(data_root: str | Path, dataset_path: str | Path) -> Path:
    """``{data_root}/cache/cv-features/{dataset name}-{version}`` for a dataset saved at
    ``{data_root}/datasets/{name}/{version}``."""
    p = Path(dataset_path)
    return Path(data_root) / "cache" / CACHE_DIRNAME / f"{p.parent.name}-{p.name}"


def _recording_waveforms(split: Any) -> dict[str, np.ndarray]:
    """recording id -> float32 waveform (segments concatenated in ``segment_start_s`` order)."""
    cols = split.select_columns(["recording_id", "segment_start_s", "waveform"]).with_format("numpy")
    parts: dict[str, list[tuple[float, np.ndarray]]] = {}
    for batch in cols.iter(batch_size=16):
        for rid, start, wav in zip(batch["recording_id"], batch["segment_start_s"], batch["waveform"]):
            parts.setdefault(str(rid), []).append((float(start), np.asarray(wav, dtype=np.float32)))
    return {rid: np.concatenate([w for _, w in sorted(p, key=lambda t: t[0])]) for rid, p in parts.items()}


def augmented_waveforms(waveforms: Mapping[str, np.ndarray], copies: int, seed: int = AUGMENT_SEED,
                        sample_rate: int = 16_000) -> Iterator[tuple[str, np.ndarray]]:
    """``copies`` augmented versions of every waveform, recordings in sorted id order, from one
    ``eno_hf.audio.augment.Augmenter(sample_rate, seed, p=AUGMENT_P, p_pitch=AUGMENT_P_PITCH)`` stream
    (so the same inputs and seed give the same copies): each of random gain (±6 dB), coloured noise
    (15-40 dB SNR) and a low/high-pass or peaking EQ with probability ``AUGMENT_P``, a Rubber Band
    pitch shift (±2 semitones) with probability ``AUGMENT_P_PITCH``.

    Yields:
        ``(recording id, (samples,) float32)``, ``copies`` times per id, lengths unchanged.
    """
    from eno_hf.audio.augment import Augmenter

    aug = Augmenter(sample_rate, seed=seed, p=AUGMENT_P, p_pitch=AUGMENT_P_PITCH)
    for rid in sorted(waveforms):
        for _ in range(copies):
            yield rid, aug(waveforms[rid])


def tagger_features(name: str, waveforms: Mapping[str, np.ndarray], batch_size: int = 16,
                    copies: int = 0) -> dict[str, np.ndarray]:
    """Per-recording penultimate mean+max and mean tag probabilities of the pretrained tagger ``name``.

    Args:
        name: ``msd-musicnn``, ``msd-vgg`` or a ``sota-music-tagging`` name (``jamendo-fcn``...).
        waveforms: recording id -> ``(samples,)`` float32 at 16 kHz.
        copies: 0 for the recordings themselves; ``k > 0`` for ``k`` augmented copies of each
            (``augmented_waveforms``), whose rows are then ``copy_owner``-indexed.

    Returns:
        ``{"ids": (n,) str, "embedding": (r, 2 * dim) float32, "tags": (r, 50) float32,
        "windows": (m, dim) float32, "window_owner": (m,) int32}`` (ids sorted; ``r = n``, or ``n k``
        with ``"copy_owner": (r,) int32``); MSD Musicnn adds ``"pool": (r, 1506)`` float32 (see the
        module docstring).

    Raises:
        FileNotFoundError: weights absent.
    """
    import torch

    from eno_hf.models.encoders.musicnn_msd import MusicnnMSDEncoder, clip_outputs
    from eno_hf.models.encoders.sota_taggers import load_sota_tagger

    tagger = load_sota_tagger(name)
    ids = sorted(waveforms)
    row_of = {rid: i for i, rid in enumerate(ids)}
    from eno_hf.utils.progress import track

    items = track(augmented_waveforms(waveforms, copies) if copies else ((rid, waveforms[rid]) for rid in ids),
                  total=len(ids) * max(copies, 1), description=f"{name} features" + (f" ({copies} augmented copies)" if copies else ""),
                  unit="clip", enabled=len(ids) >= 2)
    emb_rows, tag_rows, pool_rows, win_rows, owners, copy_owner = [], [], [], [], [], []
    with torch.inference_mode():
        for rid, wave in items:
            wav = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
            if isinstance(tagger, MusicnnMSDEncoder):
                probs, emb, pooled = clip_outputs(tagger, wav, batch_size, return_prefix=True)
                if pooled.ndim == 2:  # musicnn (vgg's prefix is a feature map: not kept)
                    pool_rows.append(pooled.mean(0).numpy())
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
            win_rows.append(emb.numpy().astype(np.float32))
            owners.append(np.full(emb.shape[0], row_of[rid], dtype=np.int32))
            copy_owner.append(row_of[rid])
    out = {"ids": np.asarray(ids, dtype=str), "embedding": np.stack(emb_rows).astype(np.float32),
           "tags": np.stack(tag_rows).astype(np.float32), "windows": np.concatenate(win_rows),
           "window_owner": np.concatenate(owners)}
    if pool_rows:
        out["pool"] = np.stack(pool_rows).astype(np.float32)
    if copies:
        out["copy_owner"] = np.asarray(copy_owner, dtype=np.int32)
    return out


def handcrafted_features(dataset: Any, heads: Sequence[Any]) -> dict[str, np.ndarray]:
    """The ``feature_probe`` table of all splits of ``dataset``: ``{"ids", "embedding"}`` (ids sorted)."""
    from eno_hf.evaluation.baselines import recording_table

    ids, rows = [], []
    for split in dataset.values():
        table = recording_table(split, heads)
        ids += list(table.ids)
        rows.append(table.X)
    X = np.concatenate(rows)
    order = np.argsort(np.asarray(ids, dtype=str))
    return {"ids": np.asarray(ids, dtype=str)[order], "embedding": X[order].astype(np.float32)}


def load_or_compute(dataset: Any, dataset_path: str | Path, data_root: str | Path, names: Sequence[str],
                    heads: Sequence[Any], require: Mapping[str, Sequence[str]] | None = None
                    ) -> dict[str, dict[str, np.ndarray]]:
    """The feature sets ``names`` for every recording of ``dataset`` (all splits), from the cache or
    computed and written there (``cache_dir``). Waveforms are read once, only if some set is missing.
    ``require``: set name -> arrays it must hold (e.g. ``{"msd-musicnn": ["windows", "pool"]}``); a
    cached file without them (written before they existed) is recomputed. ``{tagger}-aug{k}`` names
    are computed on ``k`` augmented copies of every recording (``tagger_features(copies=k)``).

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
                arrays = {k: z[k] for k in z.files}
            missing = [k for k in (require or {}).get(name, ()) if k not in arrays]
            if missing:
                log.info("%s: no %s arrays (an older cache): recomputing", path, missing)
                path.unlink()
        if path.is_file():
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
                    waveforms.update(_recording_waveforms(split))
            aug = AUGMENTED.match(name)
            arrays = (tagger_features(aug["base"], waveforms, copies=int(aug["copies"])) if aug
                      else tagger_features(name, waveforms))
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(path)
        out[name] = arrays
    return out
