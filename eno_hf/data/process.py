"""Per-file processing: one recording → conditioned segments with features (pure; no I/O but the
audio file's decoding).

``process_recording(rec, cfg)``: decode + condition (``eno_hf.audio.conditioning``), crop to
``rec.start_s/end_s``, segment (``eno_hf.audio.segment``), per-segment waveform/log-mel/MFCC/
fingerprint (``eno_hf.features``), ids and labels. Raises ``RejectedInput``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from eno_hf.audio.midi import RenderSettings
from eno_hf.audio.segment import iter_segments, segment_id
from eno_hf.config import DatasetConfig
from eno_hf.data.recording import Recording
from eno_hf.errors import RejectedInput

__all__ = ["ProcessedRecording", "process_recording", "label_fields"]


@dataclass
class ProcessedRecording:
    """Output of ``process_recording``.

    Attributes:
        rows: one dict per segment: ``segment_id, recording_id, group, path`` (str),
            ``segment_start_s, segment_end_s`` (float, seconds in the source file), one key per
            label task (multi-label: list of tags; single-label: class or None; numeric: float or
            None), and the enabled arrays: ``waveform`` ``(samples,)`` float16 at
            ``audio.sample_rate``, ``log_mel`` ``(n_mels, frames)`` float16 dB, ``mfcc``
            ``(n_mfcc, frames)`` float32, ``fingerprint`` ``(64,)`` float32.
        stats: ``ConditioningStats.to_dict()`` plus ``n_segments``.
    """

    rows: list[dict[str, Any]]
    stats: dict[str, Any]


def label_fields(rec: Recording) -> dict[str, Any]:
    out: dict[str, Any] = {}
    out.update({t: list(v or []) for t, v in rec.multilabel.items()})
    out.update(dict(rec.singlelabel))
    out.update({t: (None if v is None else float(v)) for t, v in rec.numeric.items()})
    return out


def _decode(rec: Recording, cfg: DatasetConfig) -> tuple[np.ndarray, Any]:
    """Conditioned mono float32 signal of ``rec`` (cropped when it has a time range) + stats."""
    from eno_hf.audio.conditioning import condition, load_and_condition

    if rec.path is None:
        raise RejectedInput(None, "missing_file", f"recording {rec.recording_id!r} has no path")
    if rec.start_s is None and rec.end_s is None:
        return load_and_condition(rec.path, cfg.audio)
    from eno_hf.audio.io import audio_info, load_audio

    info = audio_info(rec.path)
    samples, sr = load_audio(rec.path, sample_rate=cfg.audio.sample_rate, mono=True,
                             block_s=cfg.audio.block_s,
                             midi=RenderSettings.from_config(cfg.audio.midi, cfg.audio.sample_rate),
                             max_duration_s=cfg.audio.max_duration_s)
    a = int(round((rec.start_s or 0.0) * sr))
    b = samples.shape[0] if rec.end_s is None else int(round(rec.end_s * sr))
    if a >= samples.shape[0]:
        raise RejectedInput(rec.path, "too_short",
                            f"start_s={rec.start_s} beyond the end ({samples.shape[0] / sr:.2f} s)")
    cropped = np.ascontiguousarray(samples[a:b])
    del samples
    return condition(cropped, sr, cfg.audio, path=rec.path, source_sample_rate=info.sample_rate,
                     source_channels=info.channels)


def process_recording(rec: Recording, cfg: DatasetConfig) -> ProcessedRecording:
    """Decode, condition, segment and featurize one recording.

    Args:
        rec: the recording (``path`` must exist; ``start_s``/``end_s`` crop it when given).
        cfg: ``DatasetConfig`` (``audio``, ``segment``, ``features``).

    Returns:
        ``ProcessedRecording(rows, stats)``, see its docstring for shapes and dtypes.
        Segment times are seconds in the source file (crop offset added).

    Raises:
        RejectedInput / AudioDecodeError: undecodable, empty, too short (also: no segment fits),
            silent or non-finite audio, missing file.
    """
    samples, cstats = _decode(rec, cfg)
    sr = cfg.audio.sample_rate
    feats = cfg.features
    offset = float(rec.start_s or 0.0)
    labels = label_fields(rec)
    if feats.log_mel or feats.mfcc:
        from eno_hf.features import spectral
    if feats.fingerprint:
        from eno_hf.features.fingerprint import fingerprint
    rows: list[dict[str, Any]] = []
    for n, start_s, end_s, seg in iter_segments(samples, sr, cfg.segment):
        row: dict[str, Any] = {
            "segment_id": segment_id(rec.recording_id, n),
            "recording_id": rec.recording_id,
            "group": rec.group if rec.group is not None else rec.recording_id,
            "path": str(rec.path),
            "segment_start_s": offset + float(start_s),
            "segment_end_s": offset + float(end_s),
            **labels,
        }
        if feats.waveform:
            row["waveform"] = seg.astype(np.float16)
        if feats.log_mel and feats.mfcc:  # one mel spectrogram for both
            row["log_mel"], row["mfcc"] = spectral.log_mel_and_mfcc(seg, sr, feats)
        elif feats.log_mel:
            row["log_mel"] = spectral.log_mel(seg, sr, feats)
        elif feats.mfcc:
            row["mfcc"] = spectral.mfcc(seg, sr, feats)
        if feats.fingerprint:
            row["fingerprint"] = np.asarray(fingerprint(seg, sr, cstats), dtype=np.float32)
        rows.append(row)
    if not rows:
        raise RejectedInput(rec.path, "too_short",
                            f"{cstats.duration_s:.2f} s gives no segment of {cfg.segment.segment_s} s "
                            f"(min_last_ratio={cfg.segment.min_last_ratio})")
    return ProcessedRecording(rows, {**cstats.to_dict(), "n_segments": len(rows)})


