"""A loaded model that tags a batch of decoded waveforms: PyTorch (``TorchPredictor``) or ONNX
Runtime (``OnnxPredictor``).

Both reuse the tagging code of ``eno tag`` (``eno_hf.inference.pipeline``): the saved
``EnoFeatureExtractor`` (resampling, BS.1770 loudness normalization), the model's own chunking of
long inputs, ``head_scores`` (sigmoid / softmax / regression value per head) and
``tags_above_threshold`` (the thresholds tuned on validation data and saved in ``config.json``).
A batch of clips of different lengths is padded with an ``attention_mask``; the model pools each
clip over its own windows only, so a clip gets the same scores alone or in a batch.
"""

from __future__ import annotations

import json
import math
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from eno_hf.inference.onnx_export import OnnxTagger
from eno_hf.inference.pipeline import Scores, head_scores, load_model, tags_above_threshold
from eno_hf.models.configuration import EnoModelConfig
from eno_hf.models.head_kinds import head_kind


class Predictor(Protocol):
    """What the service needs from a loaded model."""

    config: EnoModelConfig
    sample_rate: int
    backend: str

    def predict(self, waveforms: list[np.ndarray]) -> list[Scores]:
        """Per-head scores for each ``(samples,)`` float32 mono waveform at ``sample_rate``."""
        ...

    def tags(self, scores: Scores) -> dict[str, list[str]]:
        """Labels at or above the tuned thresholds (``tags_above_threshold``)."""
        ...

    def info(self) -> dict[str, Any]:
        """Name, version, labels, thresholds, lineage (``GET /model``)."""
        ...


def registry_info(model_dir: str | Path) -> dict[str, Any]:
    """``registry.json`` of a hub version directory (``eno_hf.registry.hub``), or ``{}``."""
    path = Path(model_dir) / "registry.json"
    if path.is_file():
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
    return {}


def model_info(model_dir: str | Path, config: EnoModelConfig, backend: str) -> dict[str, Any]:
    """``{name, version, backend, content_sha256, dataset, sample_rate, chunk_s, encoder_type,
    heads: [{name, kind, labels, thresholds}]}``; an unregistered directory has ``version=None``."""
    reg = registry_info(model_dir)
    meta = reg.get("metadata") or {}
    heads = []
    for spec in config.head_specs:
        head: dict[str, Any] = {"name": spec.name, "kind": spec.kind}
        if spec.is_classification:
            head["labels"] = list(spec.labels)
        if head_kind(spec.kind).uses_thresholds:
            head["thresholds"] = list((config.thresholds or {}).get(spec.name) or [0.5] * len(spec.labels))
        heads.append(head)
    return {
        "name": reg.get("name") or Path(model_dir).resolve().name,
        "version": reg.get("version"),
        "backend": backend,
        "content_sha256": reg.get("content_sha256"),
        "dataset": meta.get("dataset"),
        "metrics": meta.get("metrics"),
        "sample_rate": int(config.sample_rate),
        "chunk_s": config.chunk_s,
        "encoder_type": config.encoder_type,
        "heads": heads,
    }


def window_groups(lengths: list[int], window_samples: int) -> list[list[int]]:
    """Indices grouped by window count ``ceil(n / window_samples)``, so a short clip is never
    padded to the length of a long one in the same forward pass (results do not depend on it)."""
    groups: dict[int, list[int]] = defaultdict(list)
    for i, n in enumerate(lengths):
        groups[max(1, math.ceil(n / max(1, window_samples)))].append(i)
    return [groups[k] for k in sorted(groups)]


class TorchPredictor:
    """An eno model directory loaded once with ``eno_hf.inference.pipeline.load_model`` (eval, CPU).

    ``predict`` is not re-entrant: the service calls it from one inference thread (a lock guards it).
    """

    backend = "pytorch"

    def __init__(self, model_dir: str | Path) -> None:
        self.model_dir = Path(model_dir)
        self.model, self.extractor = load_model(model_dir)
        self.config: EnoModelConfig = self.model.config
        self.sample_rate = int(self.extractor.sampling_rate)
        self._lock = threading.Lock()

    def predict(self, waveforms: list[np.ndarray]) -> list[Scores]:
        """Per-head scores for ``(samples,)`` float32 mono waveforms at ``sample_rate`` Hz.

        Clips with the same number of model windows share one forward pass (padded, with an
        ``attention_mask``); ``predict([w])[0]`` equals ``eno_hf.inference.pipeline.predict_waveform``.

        Raises:
            ValueError: NaN/Inf samples or a wrong shape (from the feature extractor).
        """
        import torch

        out: list[Scores | None] = [None] * len(waveforms)
        window = self.model.window_samples if self.config.encoder_type != "embeddings" else 1
        with self._lock, torch.no_grad():
            for group in window_groups([len(w) for w in waveforms], window):
                inputs = self.extractor([waveforms[i] for i in group], sampling_rate=self.sample_rate,
                                        return_tensors="pt")
                result = self.model(**inputs)
                for j, i in enumerate(group):
                    out[i] = head_scores(result.head_logits, self.config, index=j)
        return out  # type: ignore[return-value]

    def tags(self, scores: Scores) -> dict[str, list[str]]:
        """Labels at or above the tuned thresholds (``tags_above_threshold``)."""
        return tags_above_threshold(scores, self.config)

    def info(self) -> dict[str, Any]:
        return model_info(self.model_dir, self.config, self.backend)


class OnnxPredictor:
    """A directory written by ``eno export-onnx`` run with ONNX Runtime (``OnnxTagger``)."""

    backend = "onnxruntime"

    def __init__(self, onnx_dir: str | Path) -> None:
        self.model_dir = Path(onnx_dir)
        self.tagger = OnnxTagger(onnx_dir)
        self.config: EnoModelConfig = self.tagger.config
        self.sample_rate = int(self.tagger.extractor.sampling_rate)
        self._lock = threading.Lock()

    def predict(self, waveforms: list[np.ndarray]) -> list[Scores]:
        """As ``TorchPredictor.predict`` with the exported graph."""
        with self._lock:
            return self.tagger.predict(waveforms, self.sample_rate)

    def tags(self, scores: Scores) -> dict[str, list[str]]:
        return tags_above_threshold(scores, self.config)

    def info(self) -> dict[str, Any]:
        info = model_info(self.model_dir, self.config, self.backend)
        info.update({k: v for k, v in self.tagger.manifest.items() if k in ("source", "opset", "window_samples")})
        return info


def load_predictor(model_dir: str | Path | None = None, onnx_dir: str | Path | None = None) -> Predictor:
    """``OnnxPredictor(onnx_dir)`` if given, else ``TorchPredictor(model_dir)``.

    Raises:
        ValueError: neither given. OSError: not a model / export directory.
    """
    if onnx_dir is not None:
        return OnnxPredictor(onnx_dir)
    if model_dir is None:
        raise ValueError("give a model directory or an ONNX export directory")
    return TorchPredictor(model_dir)
