"""Serving an eno model: the transformers ``audio-classification`` pipeline and per-head predictions.

``load_pipeline(dir)`` gives the standard pipeline (sigmoid scores over ``"{head}/{label}"``
labels). ``predict_file`` decodes a file with ``eno_hf.audio.io.load_audio`` (streamed, resampled
with soxr), prepares it with the model's feature extractor and returns scores grouped by head
(multi-label: sigmoid, single-label: softmax, regression: ``{"value": x}``); long files are
chunked and averaged by the model itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from eno_hf.models import EnoFeatureExtractor, EnoForAudioTagging, EnoModelConfig, register_auto_classes
from eno_hf.models.head_kinds import head_kind
from eno_hf.models.weights import require_safetensors

Scores = dict[str, dict[str, float]]
"""head name -> label -> score (regression heads: ``{"value": prediction}``)."""


def load_model(model_dir: str | Path, device: str | int = "cpu") -> tuple[EnoForAudioTagging, EnoFeatureExtractor]:
    """Load ``(model in eval mode, feature extractor)`` from a saved eno model directory.

    Raises:
        OSError: not a model directory (no ``config.json`` / weights);
            ``eno_hf.models.weights.PickleWeightsError``: weights only as a pickle
            (``pytorch_model.bin``; never unpickled, safetensors only).
    """
    require_safetensors(model_dir)
    register_auto_classes()
    model = EnoForAudioTagging.from_pretrained(str(model_dir), use_safetensors=True).eval()
    if device not in ("cpu", -1):
        model = model.to(f"cuda:{device}" if isinstance(device, int) else device)
    extractor = EnoFeatureExtractor.from_pretrained(str(model_dir))
    return model, extractor


def load_pipeline(model_dir: str | Path, device: int | str = -1) -> Any:
    """``transformers.pipeline("audio-classification")`` for an eno model directory.

    Args:
        model_dir: directory written by ``save_pretrained`` (+ ``preprocessor_config.json``).
        device: -1 / ``"cpu"`` for CPU, a CUDA index or device string otherwise.

    Returns:
        The pipeline; ``pipe(path_or_array_or_{"raw", "sampling_rate"}, top_k=None)`` returns
        ``[{"label": "{head}/{label}", "score": sigmoid}]`` (single-label heads: softmax).
    """
    from transformers import pipeline

    model, extractor = load_model(model_dir)
    return pipeline("audio-classification", model=model, feature_extractor=extractor,
                    device=None if device in (-1, "cpu") else device)


def decode(path: str | Path, sample_rate: int) -> np.ndarray:
    """Mono float32 ``(samples,)`` at ``sample_rate`` (``eno_hf.audio.io.load_audio``).

    Raises:
        AudioDecodeError: missing, empty or undecodable file.
    """
    from eno_hf.audio.io import load_audio

    samples, _ = load_audio(path, sample_rate=sample_rate, mono=True)
    return samples


@torch.no_grad()
def predict_waveform(
    samples: np.ndarray, sample_rate: int, model: EnoForAudioTagging, feature_extractor: EnoFeatureExtractor
) -> Scores:
    """Per-head scores for one mono waveform ``(samples,)`` float32 at ``sample_rate`` Hz."""
    inputs = feature_extractor(samples, sampling_rate=sample_rate, return_tensors="pt")
    device = next(model.parameters()).device
    out = model(**{k: v.to(device) for k, v in inputs.items()})
    return head_scores(out.head_logits, model.config)


def head_scores(head_logits: dict[str, torch.Tensor], config: EnoModelConfig, index: int = 0) -> Scores:
    """Turn ``EnoOutput.head_logits`` (example ``index``) into ``{head: {label: score}}``
    (``HeadKind.scores``: classification heads their probabilities, regression heads
    ``{"value": x}``; ranking and projection heads are left out)."""
    scores: Scores = {}
    for spec in config.head_specs:
        head = head_kind(spec.kind).scores(head_logits[spec.name][index], spec.labels)
        if head is not None:
            scores[spec.name] = head
    return scores


def predict_file(path: str | Path, model: EnoForAudioTagging, feature_extractor: EnoFeatureExtractor) -> Scores:
    """Decode ``path`` and return ``{head: {label: score}}`` for all heads.

    Raises:
        AudioDecodeError: the file cannot be decoded.
    """
    rate = int(feature_extractor.sampling_rate)
    return predict_waveform(decode(path, rate), rate, model, feature_extractor)


def tags_above_threshold(scores: Scores, config: EnoModelConfig) -> dict[str, list[str]]:
    """Decisions per classification head: multi-label heads keep labels whose score reaches the
    head's tuned threshold (``config.thresholds[head][i]``, default 0.5), sorted by score;
    single-label heads give their arg-max label."""
    out: dict[str, list[str]] = {}
    for spec in config.classification_heads:
        if spec.name in scores:
            out[spec.name] = head_kind(spec.kind).decide(scores[spec.name], spec.labels,
                                                         (config.thresholds or {}).get(spec.name))
    return out
