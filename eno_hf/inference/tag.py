"""``eno tag``: tag files or folders with a saved eno model, one JSON record per input.

Every input is checked by the shared validator (``eno_hf.audio.validate.validate_audio``) with
the same thresholds as the dataset build (``dataset.audio``: ``min_duration_s``,
``silence_threshold_dbfs``), so tag rejects what the build rejects, with the same reason codes
and messages. Bad inputs never stop a batch: they yield ``{"path", "error": {"reason",
"detail"}}``. A folder is walked like a dataset source (``eno_hf.data.sources.AudioIndex``):
audio/MIDI files are tagged; non-audio files, folders named like audio files and entries that
are not regular files (FIFOs, sockets) yield ``unsupported`` records, sub-folders that cannot be
listed yield ``io_error`` records. Files and folders named on the command line are the user's
choice: they are taken as given, and symlinks inside a named folder are followed wherever they
point (a link loop is walked once); confinement to data roots applies to metadata, templates and
config-given roots (the dataset build), not here.

Long files are tagged in bounded memory (flat in the file's length): a first streamed decoding
pass (``eno_hf.audio.validate.scan_audio``) checks the input and measures its integrated
loudness and sample peak; a second pass (skipped for inputs up to 10 minutes, kept from the first)
applies the feature extractor's loudness gain block by block and runs the model on a minute of
``chunk_s`` windows at a time (``stream_scores``); the per-window probabilities are averaged as
the model's own ``forward`` averages them, so the scores equal those of the whole-file path (to
float rounding when fewer windows than ``chunk_batch_size`` go through the encoder at once). Inputs longer than ``dataset.audio.max_duration_s`` (decoded length, not the
header's) are ``too_long``: decoding stops there.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from eno_hf.audio.validate import scan_audio
from eno_hf.config import AudioConfig, SourceConfig
from eno_hf.data.sources import AudioIndex
from eno_hf.errors import RejectedInput
from eno_hf.inference.pipeline import head_scores, load_model, tags_above_threshold
from eno_hf.models.head_kinds import pool_head
from eno_hf.utils.progress import track

__all__ = ["AUDIO_EXTENSIONS", "expand_paths", "tag_paths", "stream_scores", "windows_per_batch",
           "write_jsonl", "check_model_readable"]

AUDIO_EXTENSIONS = tuple(SourceConfig().extensions)
"""Extensions picked up when a folder is given (the same list as dataset sources, plus MIDI)."""


def expand_paths(paths: Iterable[str | Path], extensions: Sequence[str] = AUDIO_EXTENSIONS,
                 allowed_roots: Sequence[str | Path] = ()) -> Iterator[Path | RejectedInput]:
    """Inputs in order: files as given; folders walked (sorted, symlinks followed: the user named
    the folder) into their audio files, plus a ``RejectedInput`` for every other entry
    (``unsupported``; ``io_error`` for a sub-folder that cannot be listed). ``allowed_roots`` is
    accepted for compatibility; a named folder is not confined."""
    for p in map(Path, paths):
        if not p.is_dir():
            yield p
            continue
        index = AudioIndex(p, list(extensions), allowed_roots=[Path(r) for r in allowed_roots],
                           follow_symlinks=True)
        items: list[tuple[str, Path | RejectedInput]] = [(str(f), f) for f in index.files]
        items += [(str(f), RejectedInput(f, "unsupported",
                                         f"suffix {f.suffix or '(none)'!r} is not a supported "
                                         "audio/MIDI format")) for f in index.unsupported]
        items += [(str(d), RejectedInput(d, "unsupported", "a directory named like an audio file"))
                  for d in index.unsupported_dirs]
        items += [(str(e.path), e) for e in index.outside]
        items += [(str(e.path), e) for e in index.unreadable]
        for _, item in sorted(items, key=lambda kv: kv[0]):
            yield item


def check_model_readable(model_dir: str | Path) -> Path:
    """Raise ``PermissionError`` naming the first file of ``model_dir`` this user cannot read
    (``from_pretrained`` would report it as a missing file), ``FileNotFoundError`` if the folder
    does not exist. Returns the folder."""
    d = Path(model_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"{d}: model directory not found")
    if not os.access(d, os.R_OK | os.X_OK):
        raise PermissionError(f"{d}: model directory not readable by this user")
    for f in sorted(d.iterdir()):
        if f.is_file() and not os.access(f, os.R_OK):
            raise PermissionError(f"{f}: permission denied (model file not readable by this user)")
    return d


def _error(path: str | Path | None, reason: str, detail: str) -> dict[str, Any]:
    return {"path": str(path), "error": {"reason": reason, "detail": detail}}


def tag_paths(paths: Iterable[str | Path], model_dir: str | Path, top_k: int = 5,
              audio_cfg: AudioConfig | None = None,
              allowed_roots: Sequence[str | Path] = ()) -> Iterator[dict[str, Any]]:
    """Tag every input (folders are walked) and yield one record per input.

    Args:
        paths: files and folders.
        model_dir: saved eno model directory.
        top_k: labels per head in ``top``.
        audio_cfg: validation thresholds (``dataset.audio``); default ``AudioConfig()``.
        allowed_roots: kept for compatibility (symlinks in a named folder are followed).

    Record: ``{"path": str, "heads": {head: {label: score}}, "top": {head: [top_k labels by score]},
    "tags": {head: [labels at or above the tuned thresholds / arg-max]}}`` (+ ``"warnings"``:
    decoder notes, when any); a file that cannot be used yields ``{"path": str, "error":
    {"reason": str, "detail": str}}`` with the reason codes of ``eno_hf.errors`` (an unexpected
    exception: ``internal_error``) and the batch goes on. Progress over the inputs (more than one)
    goes through ``eno_hf.utils.progress``.

    Raises:
        PermissionError / FileNotFoundError / OSError: ``model_dir`` is unreadable or not a model
            directory (nothing is tagged).
    """
    check_model_readable(model_dir)
    model, extractor = load_model(model_dir)
    rate = int(extractor.sampling_rate)
    cfg = audio_cfg or AudioConfig()
    items = list(expand_paths(paths, allowed_roots=allowed_roots))
    for item in track(items, description="tagging", unit="file", enabled=len(items) > 1):
        if isinstance(item, RejectedInput):
            yield _error(item.path, item.reason, item.detail)
            continue
        try:
            audio = scan_audio(item, cfg=cfg, sample_rate=rate)
            scores = stream_scores(audio, model, extractor)
        except RejectedInput as exc:
            yield _error(item, exc.reason, exc.detail)
            continue
        except Exception as exc:  # noqa: BLE001 - a bad file must not stop the batch
            yield _error(item, "internal_error", f"{type(exc).__name__}: {exc}")
            continue
        top = {
            head: sorted(values, key=lambda lab: -values[lab])[:top_k]
            for head, values in scores.items()
            if model.config.head(head).is_classification
        }
        rec = {"path": str(item), "heads": scores, "top": top,
               "tags": tags_above_threshold(scores, model.config)}
        if audio.warnings:
            rec["warnings"] = audio.warnings
        yield rec


def _loudness_gain(audio: Any, extractor: Any) -> float | None:
    """The gain ``EnoFeatureExtractor`` (``normalize_loudness``) would apply to the whole signal,
    from the scan's integrated loudness and sample peak; None = left as is."""
    import numpy as np

    from eno_hf.models.feature_extraction import MIN_LOUDNESS_S

    target = getattr(extractor, "target_lufs", None)
    lufs = audio.loudness_lufs
    if target is None or audio.stats.n < int(MIN_LOUDNESS_S * audio.sample_rate) \
            or not np.isfinite(lufs):
        return None
    gain = 10.0 ** ((target - lufs) / 20.0)
    ceiling = getattr(extractor, "peak_ceiling_dbfs", None)
    if ceiling is not None and audio.stats.peak > 0:
        gain = min(gain, 10.0 ** (ceiling / 20.0) / audio.stats.peak)
    return gain


TAG_BATCH_AUDIO_S = 60.0
"""Seconds of audio per forward pass of ``eno tag`` (windows per pass: ``TAG_BATCH_AUDIO_S //
chunk_s``, at least 1, at most ``chunk_batch_size``): encoder activations grow with the windows of
a pass (``msd-fcn``, 29-s windows: ~90 MB a window), so a long file must not send 16 at once."""


def windows_per_batch(config: Any) -> int:
    """Windows per forward pass in ``stream_scores`` (see ``TAG_BATCH_AUDIO_S``)."""
    by_audio = int(TAG_BATCH_AUDIO_S // max(float(config.chunk_s), 1e-3))
    return max(1, min(int(config.chunk_batch_size), by_audio))


def stream_scores(audio: Any, model: Any, extractor: Any, windows_per_pass: int | None = None
                  ) -> dict[str, dict[str, float]]:
    """Per-head scores of a scanned input, computed window by window in bounded memory.

    Args:
        audio: ``eno_hf.audio.validate.ScannedAudio`` at ``extractor.sampling_rate`` (its
            ``blocks()`` give the signal again, its stats the loudness and peak).
        model: ``EnoForAudioTagging`` (eval mode); ``config.chunk_s`` windows (hop = window), a
            last partial window kept when it holds ``chunk_tail_min_ratio`` of one (zero-padded),
            at least one window.
        extractor: ``EnoFeatureExtractor`` (``target_lufs``, ``peak_ceiling_dbfs``).
        windows_per_pass: windows per forward pass (default ``windows_per_batch(model.config)``);
            with ``chunk_batch_size`` the encoder sees the batches of the model's own forward
            and the scores are equal bit for bit, with fewer they agree to float rounding.

    Returns:
        ``{head: {label: score}}`` as ``eno_hf.inference.pipeline.predict_waveform`` on the whole
        signal: window probabilities averaged per head (sigmoid / softmax; regression: mean).

    Memory: one decoded block plus the activations of ``windows_per_pass`` windows, whatever
    the input's length.
    """
    import numpy as np
    import torch

    cfg = model.config
    gain = _loudness_gain(audio, extractor)
    win = int(model.window_samples)
    group = max(1, int(windows_per_pass or windows_per_batch(cfg)))
    ratio = float(cfg.chunk_tail_min_ratio)
    device = next(model.parameters()).device
    raw: dict[str, list[torch.Tensor]] = {}

    def run(windows: np.ndarray) -> None:
        with torch.no_grad():
            out = model(input_values=torch.from_numpy(windows).to(device))
        for spec in cfg.head_specs:  # one window per example: head_logits are the raw outputs
            value = out.head_logits[spec.name]
            raw.setdefault(spec.name, []).append(value.reshape(value.shape[0], -1).cpu())

    buf = np.zeros(0, dtype=np.float32)
    n_windows = 0
    for block in audio.blocks():
        x = np.asarray(block, dtype=np.float32)
        if gain is not None:
            x = (x * gain).astype(np.float32)
        buf = np.concatenate([buf, x]) if buf.size else x
        while buf.shape[0] >= group * win:
            run(np.ascontiguousarray(buf[: group * win].reshape(group, win)))
            n_windows += group
            buf = buf[group * win:]
    n_full, rem = divmod(buf.shape[0], win)
    k_tail = n_full + int(rem > 0 and rem >= ratio * win)
    if n_windows + k_tail == 0:
        k_tail = 1  # every input keeps one window
    if k_tail:
        tail = np.zeros(k_tail * win, dtype=np.float32)
        used = min(buf.shape[0], tail.shape[0])
        tail[:used] = buf[:used]
        run(tail.reshape(k_tail, win))
        n_windows += k_tail
    k = n_windows
    weights = torch.ones(1, k)
    w = (weights / weights.sum(dim=1, keepdim=True))[..., None]

    def mean(t: torch.Tensor) -> torch.Tensor:
        return (t.reshape(1, k, -1) * w).sum(dim=1)

    pool_mean = mean if k > 1 else None
    head_logits = {spec.name: pool_head(spec.kind, torch.cat(raw[spec.name], dim=0), pool_mean).logits
                   for spec in cfg.head_specs}
    return head_scores(head_logits, cfg)


def write_jsonl(records: Iterable[dict[str, Any]], out_path: str | Path) -> int:
    """Write records as JSON lines (UTF-8, one per line) while iterating; returns the count."""
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with out.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            fh.flush()
            n += 1
    return n
