"""Turn dataset rows (one per segment) into training/evaluation batches.

Batch layout (``docs/architecture.md``)::

    input_values   (B, samples) float32       # waveform crops (train) / whole segments (eval)
    attention_mask (B, samples) int64         # 1 = real sample, 0 = zero padding
    labels_{head}  multilabel (B, n) float32  # multi-hot, a row of -1 = missing
                   singlelabel (B,) long      # class id, -100 = missing
                   regression (B,) float32    # NaN = missing

Training takes a random crop of ``crop_samples`` from each segment (Won et al. 2020 train
short-chunk taggers on random ~3.7-s crops; see ``../shared/REFERENCES.md``) and zero-pads shorter
segments (so every training batch is ``(B, crop_samples)``); evaluation keeps the whole segment
and zero-pads to the longest one in the batch. ``attention_mask`` lets the model ignore padding.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from eno_hf.models.heads import MULTILABEL, SINGLELABEL, SUPERVISED_KINDS, HeadSpec
from eno_hf.models.losses import IGNORE_INDEX

log = logging.getLogger(__name__)

LABEL_PREFIX = "labels_"
"""Batch key prefix of a head's labels: ``labels_{head}``."""


def label_key(head: str) -> str:
    """Batch key of ``head``'s labels (``labels_{head}``)."""
    return f"{LABEL_PREFIX}{head}"


def default_augmenter(sample_rate: int, seed: int) -> Callable[[np.ndarray], np.ndarray] | None:
    """``eno_hf.audio.augment.Augmenter(sample_rate, seed)``, or None (logged) if it is unavailable."""
    try:
        from eno_hf.audio.augment import Augmenter
    except ImportError as exc:  # optional module / dependency
        log.warning("augmentation disabled: eno_hf.audio.augment unavailable (%s)", exc)
        return None
    return Augmenter(sample_rate=sample_rate, seed=seed)


class EnoCollator:
    """Collate dataset rows into ``input_values`` + ``labels_{head}`` tensors.

    Args:
        heads: heads in any form ``HeadSpec.coerce`` reads (``HeadSpec``, ``HeadConfig``, dicts with
            ``name``, ``kind``, ``labels`` and optional ``column``); heads of a kind outside
            ``SUPERVISED_KINDS`` (ranking, projection) get no labels.
        vocab: head name -> class names (gives ``n`` for multi-label multi-hot vectors).
        crop_samples: training crop length in samples (``crop_s * sample_rate``); None = no crop
            (whole segments, padded to the batch maximum).
        sample_rate: waveform rate in Hz (for the augmenter).
        train: random crops (+ augmentation) when True; whole segments when False.
        augmenter: callable ``(samples,) float32 -> (samples,) float32`` applied to each training
            crop (e.g. ``default_augmenter(...)``), or None.
        seed: seed of the crop-position generator (each DataLoader worker re-seeds it, and the
            augmenter if it has ``reseed(seed)``, from its own torch worker seed so workers differ).
        input_columns: dataset columns forming ``input_values``. ``("waveform",)`` for audio
            encoders; several feature columns (e.g. ``fingerprint``) for ``encoder=embeddings``,
            which are flattened and concatenated, never cropped.

    Rows are mappings (``datasets`` rows, numpy or python format). Label values: multi-label a
    list of class ids (None = missing, empty list = no positive class); single-label an int
    (-1/None = missing); numeric a float (None/NaN = missing).

    Raises:
        KeyError: a row lacks an input column.
        ValueError: a multi-label class id is outside the vocabulary; a head ``HeadSpec.coerce``
            refuses (unknown kind, classification head without labels).
    """

    def __init__(
        self,
        heads: Sequence[Any],
        vocab: Mapping[str, Sequence[str]],
        crop_samples: int | None,
        sample_rate: int = 16_000,
        train: bool = True,
        augmenter: Callable[[np.ndarray], np.ndarray] | None = None,
        seed: int = 0,
        input_columns: Sequence[str] = ("waveform",),
    ) -> None:
        self.heads = [h for h in map(HeadSpec.coerce, heads) if h.kind in SUPERVISED_KINDS]
        self.vocab = {k: list(v) for k, v in vocab.items()}
        self.crop_samples = int(crop_samples) if crop_samples else None
        self.sample_rate = sample_rate
        self.train = train
        self.augmenter = augmenter
        self.seed = seed
        self.input_columns = list(input_columns)
        self._rng = np.random.default_rng(seed)
        self._worker_id: int | None = None

    # ------------------------------------------------------------------ inputs
    def _generator(self) -> np.random.Generator:
        info = torch.utils.data.get_worker_info()
        if info is not None and self._worker_id != info.id:
            self._worker_id = info.id
            self._rng = np.random.default_rng([self.seed, info.seed % 2**32])
            if hasattr(self.augmenter, "reseed"):  # eno_hf.audio.augment.Augmenter
                self.augmenter.reseed(int(info.seed % 2**32))
        return self._rng

    def _crop(self, wave: np.ndarray) -> np.ndarray:
        n = self.crop_samples
        assert n is not None
        if wave.shape[0] > n:
            start = int(self._generator().integers(0, wave.shape[0] - n + 1))
            wave = wave[start:start + n]
        return wave

    def _inputs(self, rows: Sequence[Mapping[str, Any]]) -> tuple[Tensor, Tensor | None]:
        if self.input_columns != ["waveform"]:
            feats = [np.concatenate([np.asarray(r[c], dtype=np.float32).reshape(-1) for c in self.input_columns])
                     for r in rows]
            return torch.from_numpy(np.stack(feats)), None
        waves = [np.asarray(r["waveform"], dtype=np.float32).reshape(-1) for r in rows]
        if self.train and self.crop_samples:
            self._generator()  # per-worker re-seeding happens here
            waves = [self._crop(w) for w in waves]
            if self.augmenter is not None:
                waves = [np.asarray(self.augmenter(w), dtype=np.float32) for w in waves]
        width = max(w.shape[0] for w in waves)
        if self.train and self.crop_samples:
            width = self.crop_samples
        out = np.zeros((len(waves), width), dtype=np.float32)
        mask = np.zeros((len(waves), width), dtype=np.int64)
        for i, w in enumerate(waves):
            out[i, : w.shape[0]] = w
            mask[i, : w.shape[0]] = 1
        return torch.from_numpy(out), torch.from_numpy(mask)

    # ------------------------------------------------------------------ labels
    def _multilabel(self, name: str, values: list[Any]) -> Tensor:
        n = len(self.vocab[name])
        out = np.zeros((len(values), n), dtype=np.float32)
        for i, ids in enumerate(values):
            if ids is None:
                out[i] = -1.0
                continue
            idx = np.asarray(ids, dtype=np.int64).reshape(-1)
            if idx.size and (idx.min() < 0 or idx.max() >= n):
                raise ValueError(f"labels for {name!r}: class id out of range 0..{n - 1}: {idx.tolist()}")
            out[i, idx] = 1.0
        return torch.from_numpy(out)

    @staticmethod
    def _singlelabel(values: list[Any]) -> Tensor:
        ids = [IGNORE_INDEX if v is None or int(v) < 0 else int(v) for v in values]
        return torch.tensor(ids, dtype=torch.long)

    @staticmethod
    def _regression(values: list[Any]) -> Tensor:
        out = [math.nan if v is None else float(v) for v in values]
        return torch.tensor(out, dtype=torch.float32)

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, Tensor]:
        """Rows -> ``{"input_values": (B, samples) float32, "attention_mask": (B, samples) int64
        (waveform inputs only; 1 = real sample, 0 = padding), "labels_{head}": ...}``."""
        values, mask = self._inputs(rows)
        batch = {"input_values": values}
        if mask is not None:
            batch["attention_mask"] = mask
        for head in self.heads:
            if head.column not in rows[0]:
                continue
            values = [r[head.column] for r in rows]
            if head.kind == MULTILABEL:
                batch[label_key(head.name)] = self._multilabel(head.name, values)
            elif head.kind == SINGLELABEL:
                batch[label_key(head.name)] = self._singlelabel(values)
            else:
                batch[label_key(head.name)] = self._regression(values)
        return batch
