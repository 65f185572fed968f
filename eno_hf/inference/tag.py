"""``eno tag``: tag files or folders with a saved eno model, one JSON record per file.

Bad files never stop a batch: they yield ``{"path", "error": {"reason", "detail"}}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from eno_hf.config import SourceConfig
from eno_hf.errors import RejectedInput
from eno_hf.inference.pipeline import load_model, predict_file, tags_above_threshold

AUDIO_EXTENSIONS = tuple(SourceConfig().extensions)
"""Extensions picked up when a folder is given (the same list as dataset sources)."""


def expand_paths(paths: Iterable[str | Path], extensions: tuple[str, ...] = AUDIO_EXTENSIONS) -> Iterator[Path]:
    """Files as given, folders expanded recursively to their audio files (sorted)."""
    for p in map(Path, paths):
        if p.is_dir():
            yield from sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in extensions)
        else:
            yield p


def tag_paths(paths: Iterable[str | Path], model_dir: str | Path, top_k: int = 5) -> Iterator[dict[str, Any]]:
    """Tag every file (folders are expanded) and yield one record per file.

    Record: ``{"path": str, "heads": {head: {label: score}}, "top": {head: [top_k labels by score]},
    "tags": {head: [labels at or above the tuned thresholds / arg-max]}}``; a file that cannot be
    used yields ``{"path": str, "error": {"reason": str, "detail": str}}`` (reasons of
    ``eno_hf.errors.RejectedInput``, or ``"error"`` for anything else) and the batch goes on.

    Raises:
        OSError: ``model_dir`` is not a model directory (nothing is tagged).
    """
    model, extractor = load_model(model_dir)
    for path in expand_paths(paths):
        try:
            scores = predict_file(path, model, extractor)
        except RejectedInput as exc:
            yield {"path": str(path), "error": {"reason": exc.reason, "detail": exc.detail}}
            continue
        except Exception as exc:  # noqa: BLE001 - a bad file must not stop the batch
            yield {"path": str(path), "error": {"reason": "error", "detail": f"{type(exc).__name__}: {exc}"}}
            continue
        top = {
            head: sorted(values, key=lambda lab: -values[lab])[:top_k]
            for head, values in scores.items()
            if model.config.head(head)["kind"] != "regression"
        }
        yield {"path": str(path), "heads": scores, "top": top, "tags": tags_above_threshold(scores, model.config)}


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
