"""Predictions of an ``EnoForPerformanceEvaluation`` on frame embeddings (no training imports)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from eno_hf.embeddings.embed import AUDIO_SUFFIXES, MIDI_SUFFIXES, EmbedItem, load_waveform
from eno_hf.errors import RejectedInput
from eno_hf.features.midi import midi_statistics
from eno_hf.models.heads import RANKING, REGRESSION
from eno_hf.performance.data import collate_frames

__all__ = ["is_performance_model", "load_performance_model", "predict_heads", "tag_performance_paths"]


@torch.inference_mode()
def predict_heads(model: torch.nn.Module, tensors: Sequence[Tensor], batch_size: int = 64,
                  max_frames: int | None = None, midi: np.ndarray | None = None,
                  statistics_source: str = "midi") -> dict[str, np.ndarray]:
    """Every head's outputs for ``(frames_i, dim)`` embeddings, in input order.

    Args:
        max_frames: pool over the first ``max_frames`` frames only (None: all).
        midi: ``(n, len(model.config.midi_statistics))`` MIDI statistics of the inputs, used by the
            ``ridge_midi`` ratings and ``quality_ridge_midi`` quality maps (see
            ``EnoForPerformanceEvaluation``); None: embeddings only.
        statistics_source: ``"midi"`` (statistics of MIDI files) or ``"transcription"`` (of
            automatic transcriptions of recordings: the ``ridge_transcription`` map).

    Returns:
        head name -> ``(n, dim)`` (regression, projection) or ``(n,)`` (ranking) float32, and
        ``"embedding"`` -> the trunk output ``(n, hidden)``.
    """
    model.eval()
    parts: dict[str, list[np.ndarray]] = {}
    for k in range(0, len(tensors), batch_size):
        x, m = collate_frames(list(tensors[k: k + batch_size]), max_frames)
        extra = {} if midi is None else {"midi_statistics": torch.as_tensor(midi[k: k + batch_size], dtype=torch.float32),
                                         "statistics_source": statistics_source}
        out = model(embeddings=x, frame_mask=m, **extra)
        for name, v in {**out.heads, "embedding": out.embedding}.items():
            parts.setdefault(name, []).append(v.float().cpu().numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


def load_performance_model(model_dir: str | Path):
    """``EnoForPerformanceEvaluation.from_pretrained(model_dir)`` in eval mode (safetensors, local)."""
    from eno_hf.performance.model import EnoForPerformanceEvaluation

    return EnoForPerformanceEvaluation.from_pretrained(str(model_dir), local_files_only=True).eval()


def is_performance_model(model_dir: str | Path) -> bool:
    """True when ``model_dir/config.json`` is an ``eno-performance`` model."""
    cfg = Path(model_dir) / "config.json"
    try:
        return json.loads(cfg.read_text(encoding="utf-8")).get("model_type") == "eno-performance"
    except (OSError, ValueError):
        return False


def tag_performance_paths(paths: Iterable[str | Path], model_dir: str | Path, render_cache: str | Path | None = None,
                          soundfont: str | None = None, transcribe_audio: bool | None = None,
                          audio_cfg: Any = None) -> Iterator[dict[str, Any]]:
    """Every head of a performance model for audio or MIDI files (folders expanded recursively).

    Record per file: ``{"path", "heads": {"ratings": {dimension: value}, "quality": float,
    "passage": [projection]}, "frames": int, "inputs": "embeddings" | "embeddings+midi_statistics",
    "input_branch": "midi" | "audio+transcription" | "audio"}``; a file that cannot be used yields
    ``{"path", "error": {"reason", "detail"}}`` and the batch goes on.

    Branches, for a model with a ``ridge_midi`` map (``config.midi_statistics`` set):
    ``"midi"``: a MIDI file; embeddings of its FluidSynth rendering and its MIDI statistics
    (``eno_hf.features.midi.midi_statistics``). ``"audio+transcription"``: a recording; embeddings
    of the recording and the MIDI statistics of its automatic transcription
    (``eno_hf.audio.transcribe.transcribe_to_file``: Basic Pitch, cached; no sustain pedal, so the
    pedal statistics are 0; a recording with no transcribed note is ``silent``), read by the
    model's ``ridge_transcription`` map (fitted on transcriptions of its training renders) or,
    for a model without one and ``transcribe_audio=True``, by ``ridge_midi``. ``"audio"``: a
    recording with embeddings only: the model has no MIDI map, transcription is off, or
    basic-pitch is not installed (a warning says so once). A MIDI file given to a model without
    a MIDI map is still ``"midi"`` (its rendering's embeddings).

    Args:
        transcribe_audio: ``None`` (default): transcribe recordings when the model has a
            ``ridge_transcription`` map. ``True``: also for a model with only ``ridge_midi``, whose
            map was fitted on real MIDI statistics and reads a transcription's badly (velocity,
            pedal and articulation statistics do not transfer: on PercePiano's performer4fold /
            composition4fold mean R² 0.096 / 0.092 against 0.408 / 0.321 read as audio only;
            docs/performance.md). ``False``: recordings are read as audio only.
        audio_cfg: ``AudioConfig`` of the transcription's decoding and limits (``dataset.audio``;
            default ``AudioConfig()``).
    """
    from eno_hf.embeddings.frames import EmbedderSpec, build_frame_embedder  # looked up at call time (tests patch it)

    model = load_performance_model(model_dir)
    spec = EmbedderSpec(**model.config.embedder)
    embedder = build_frame_embedder(spec)
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in MIDI_SUFFIXES + AUDIO_SUFFIXES)
        else:
            files.append(p)
    specs = {s.name: s for s in model.config.head_specs}
    has_map = model.ridge_transcription is not None
    wanted = has_map if transcribe_audio is None else transcribe_audio
    transcriber = _transcriber() if wanted and model.config.midi_statistics else None
    if transcriber is not None and not has_map:
        logging.getLogger(__name__).warning(
            "this model has no ridge_transcription map: transcriptions are read by ridge_midi, fitted on "
            "real MIDI statistics (measured worse than audio only; docs/performance.md)")
    for f in files:
        midi = None
        is_midi = f.suffix.lower() in MIDI_SUFFIXES
        branch = "midi" if is_midi else "audio"
        try:
            w = load_waveform(EmbedItem(segment_id=f.stem, path=str(f)), embedder.sample_rate, render_cache, soundfont)
            emb = embedder.embed(w)
            midi_file = f if is_midi else (transcriber(f, audio_cfg=audio_cfg) if transcriber else None)
            if model.config.midi_statistics and midi_file is not None:
                st = midi_statistics(midi_file)
                midi = np.nan_to_num(np.array([[st[k] for k in model.config.midi_statistics]], dtype=np.float64))
                branch = "midi" if is_midi else "audio+transcription"
        except RejectedInput as exc:
            yield {"path": str(f), "error": {"reason": exc.reason, "detail": exc.detail}}
            continue
        except Exception as exc:  # noqa: BLE001 - a bad file must not stop the batch
            yield {"path": str(f), "error": {"reason": "error", "detail": f"{type(exc).__name__}: {exc}"}}
            continue
        out = predict_heads(model, [emb], midi=midi,
                            statistics_source="transcription" if branch == "audio+transcription" and has_map else "midi")
        heads: dict[str, Any] = {}
        for name, spec_h in specs.items():
            v = out[name][0]
            if spec_h.kind == REGRESSION:
                heads[name] = {lab: round(float(x), 5) for lab, x in zip(spec_h.labels, v)}
            elif spec_h.kind == RANKING:
                heads[name] = round(float(v), 5)
            else:
                heads[name] = [round(float(x), 5) for x in v]
        yield {"path": str(f), "heads": heads, "frames": int(emb.shape[0]),
               "inputs": "embeddings" if midi is None else "embeddings+midi_statistics", "input_branch": branch}


def _transcriber() -> Any:
    """``eno_hf.audio.transcribe.transcribe_to_file`` when basic-pitch is installed, else None
    (with one warning: recordings then go through the ``"audio"`` branch)."""
    from eno_hf.audio.transcribe import (  # looked up at call time (tests patch it)
        transcribe_to_file, unavailable_reason,
    )

    reason = unavailable_reason()
    if reason is not None:
        logging.getLogger(__name__).warning("recordings are not transcribed (embeddings only): %s", reason)
        return None
    return transcribe_to_file
