"""Recording-level predictions of an ``EnoForAudioTagging`` on a dataset split (no training imports).

``predict_dataset`` runs every segment whole (the model chunks it into ``chunk_s`` windows and
averages), then averages segment probabilities per ``recording_id`` (Won et al. 2020 chunk
averaging). Used by ``eno_hf.training.train`` (validation/test predictions of a run) and
``eno_hf.evaluation.run`` (threshold tuning and test metrics).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from datasets import Dataset

from eno_hf.data.collate import EnoCollator, label_key
from eno_hf.metrics import aggregate_by_recording, first_by_recording
from eno_hf.models.head_kinds import head_kind, head_probabilities
from eno_hf.models.heads import SINGLELABEL, HeadSpec
from eno_hf.utils.heap import reuse_freed_memory
from eno_hf.utils.progress import Progress

__all__ = ["RecordingPredictions", "predict_dataset", "recording_predictions"]


@dataclass
class RecordingPredictions:
    """Recording-level predictions of one split (segment probabilities averaged per recording).

    Attributes:
        recording_ids: ``n_rec`` ids, sorted (``numpy.unique`` order).
        probs: head -> ``(n_rec, n_labels)`` float64 probabilities (regression ``(n_rec,)``).
        labels: head -> multi-label ``(n_rec, n_labels)`` float (row of -1 = missing),
            single-label ``(n_rec,)`` int (-1 = missing), regression ``(n_rec,)`` float (NaN =
            missing). Heads whose column is absent from the split have no entry.
    """

    recording_ids: list[str]
    probs: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]


def recording_predictions(heads: Sequence[HeadSpec], recording_ids: Sequence[str], probs: Mapping[str, np.ndarray],
                          labels: Mapping[str, np.ndarray]) -> RecordingPredictions:
    """Segment-level arrays -> ``RecordingPredictions``: probabilities averaged per recording
    (``eno_hf.metrics.aggregate_by_recording``), labels = each recording's first segment's.

    Args:
        heads: ``HeadSpec`` s (``name``). recording_ids: ``(n_segments,)``.
        probs, labels: head -> segment-level arrays aligned with ``recording_ids``.
    """
    ids = None
    rec_probs: dict[str, np.ndarray] = {}
    rec_labels: dict[str, np.ndarray] = {}
    for h in heads:
        if h.name in probs:
            ids, rec_probs[h.name] = aggregate_by_recording(recording_ids, probs[h.name])
        if h.name in labels:
            ids, rec_labels[h.name] = first_by_recording(recording_ids, labels[h.name])
    if ids is None:
        ids = np.unique(np.asarray(recording_ids))
    return RecordingPredictions([str(x) for x in ids], rec_probs, rec_labels)


def predict_dataset(
    model: torch.nn.Module,
    dataset_split: Dataset,
    batch_size: int = 32,
    input_columns: Sequence[str] | None = None,
    progress: str | None = None,
) -> RecordingPredictions:
    """Recording-level predictions of ``model`` on a dataset split.

    Each segment is run whole (the model chunks it into ``chunk_s`` windows and averages), then
    segment probabilities are averaged per ``recording_id`` (Won et al. 2020 chunk averaging).

    Args:
        model: ``EnoForAudioTagging`` (its ``config.heads`` give names, kinds, labels and, when
            present, ``column``).
        dataset_split: rows with ``recording_id``, the input column(s) and optionally label columns.
        batch_size: segments per forward pass.
        input_columns: default ``config.encoder_kwargs["columns"]`` for ``embeddings`` models,
            else ``["waveform"]``.
        progress: a description to show progress under (``eno_hf.utils.progress``, in segments);
            None shows nothing (for fast passes, e.g. on cached encoder outputs).

    Returns:
        ``RecordingPredictions`` (labels only for heads whose column exists in the split).
    """
    cfg = model.config
    heads = [h for h in cfg.head_specs if head_kind(h.kind).supervised]
    if input_columns is None:
        input_columns = (list(cfg.encoder_kwargs.get("columns") or []) if cfg.encoder_type == "embeddings"
                         else None) or ["waveform"]
    cols = [c for c in dict.fromkeys([*input_columns, "recording_id", *(h.column for h in heads)])
            if c in dataset_split.column_names]
    split = dataset_split.select_columns(cols).with_format("numpy")
    vocab = {h.name: list(h.labels) for h in heads if h.is_classification}
    collate = EnoCollator(heads, vocab, crop_samples=None, sample_rate=int(cfg.sample_rate), train=False,
                          input_columns=input_columns)
    loader = torch.utils.data.DataLoader(split, batch_size=batch_size, shuffle=False, collate_fn=collate)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    probs: dict[str, list[np.ndarray]] = {h.name: [] for h in heads}
    labels: dict[str, list[np.ndarray]] = {}
    with torch.no_grad(), reuse_freed_memory(), Progress(len(split), progress or "", "segment",
                                                         enabled=progress is not None) as bar:
        for batch in loader:
            inputs = {k: batch[k].to(device) for k in ("input_values", "attention_mask") if k in batch}
            out = model(**inputs)
            for h, p in zip(heads, head_probabilities(out.head_logits, heads)):
                probs[h.name].append(p.cpu().numpy())
                if label_key(h.name) in batch:
                    labels.setdefault(h.name, []).append(batch[label_key(h.name)].numpy())
            bar.advance(int(next(iter(inputs.values())).shape[0]) if inputs else batch_size)
    model.train(was_training)
    seg_probs = {k: np.concatenate(v) for k, v in probs.items() if v}
    seg_labels = {k: np.concatenate(v) for k, v in labels.items()}
    for h in heads:  # single-label "missing" is -100 in batches; -1 at recording level
        if h.kind == SINGLELABEL and h.name in seg_labels:
            seg_labels[h.name] = np.where(seg_labels[h.name] < 0, -1, seg_labels[h.name])
    return recording_predictions(heads, list(split["recording_id"]), seg_probs, seg_labels)
