"""Inference with saved eno models: ``pipeline("audio-classification")`` and ``eno tag``."""

from __future__ import annotations

from eno_hf.inference.pipeline import (
    load_model,
    load_pipeline,
    predict_file,
    predict_waveform,
    tags_above_threshold,
)
from eno_hf.inference.tag import tag_paths, write_jsonl

__all__ = [
    "load_model",
    "load_pipeline",
    "predict_file",
    "predict_waveform",
    "tag_paths",
    "tags_above_threshold",
    "write_jsonl",
]
