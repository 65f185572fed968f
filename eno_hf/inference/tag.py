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
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from eno_hf.config import AudioConfig, SourceConfig
from eno_hf.errors import RejectedInput

__all__ = ["AUDIO_EXTENSIONS", "expand_paths", "tag_paths", "write_jsonl", "check_model_readable"]

AUDIO_EXTENSIONS = tuple(SourceConfig().extensions)
"""Extensions picked up when a folder is given (the same list as dataset sources, plus MIDI)."""


def expand_paths(paths: Iterable[str | Path], extensions: Sequence[str] = AUDIO_EXTENSIONS,
                 allowed_roots: Sequence[str | Path] = ()) -> Iterator[Path | RejectedInput]:
    """Inputs in order: files as given; folders walked (sorted, symlinks followed: the user named
    the folder) into their audio files, plus a ``RejectedInput`` for every other entry
    (``unsupported``; ``io_error`` for a sub-folder that cannot be listed). ``allowed_roots`` is
    accepted for compatibility; a named folder is not confined."""
    from eno_hf.data.sources import AudioIndex

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
    from eno_hf.audio.validate import validate_audio
    from eno_hf.inference.pipeline import load_model, predict_waveform, tags_above_threshold

    check_model_readable(model_dir)
    model, extractor = load_model(model_dir)
    rate = int(extractor.sampling_rate)
    cfg = audio_cfg or AudioConfig()
    from eno_hf.utils.progress import track

    items = list(expand_paths(paths, allowed_roots=allowed_roots))
    for item in track(items, description="tagging", unit="file", enabled=len(items) > 1):
        if isinstance(item, RejectedInput):
            yield _error(item.path, item.reason, item.detail)
            continue
        try:
            audio = validate_audio(item, cfg=cfg, sample_rate=rate)
            scores = predict_waveform(audio.samples, rate, model, extractor)
        except RejectedInput as exc:
            yield _error(item, exc.reason, exc.detail)
            continue
        except Exception as exc:  # noqa: BLE001 - a bad file must not stop the batch
            yield _error(item, "internal_error", f"{type(exc).__name__}: {exc}")
            continue
        top = {
            head: sorted(values, key=lambda lab: -values[lab])[:top_k]
            for head, values in scores.items()
            if model.config.head(head)["kind"] != "regression"
        }
        rec = {"path": str(item), "heads": scores, "top": top,
               "tags": tags_above_threshold(scores, model.config)}
        if audio.warnings:
            rec["warnings"] = audio.warnings
        yield rec


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
