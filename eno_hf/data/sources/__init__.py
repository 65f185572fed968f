"""Metadata adapters: turn a music folder + metadata into ``list[Recording]`` plus rejected items.

``load_recordings(cfg)`` dispatches on ``cfg.kind``:

- ``csv``            CSV/TSV, one row per file (``eno_hf.data.sources.csv``)
- ``json_dump``      RYM-style JSON dump of albums with tracks (``...sources.json_dump``)
- ``jsonl_segments`` one JSON object per pre-cut segment (``...sources.jsonl_segments``)
- ``folders``        labels from the directory structure (``...sources.folders``)

Nothing is silently dropped: every metadata row and every audio file under ``audio_root`` (files
whose suffix is in ``cfg.extensions``) ends up either in ``recordings`` or in ``rejected``. Each
rejected item is ``{"path", "recording_id", "reason", "detail"}`` with ``reason`` one of
``eno_hf.errors.RejectedInput.REASONS``:

- ``missing_file``: a metadata row whose audio file does not exist;
- ``no_metadata``: an audio file under ``audio_root`` that no metadata row names;
- ``bad_metadata``: an unparseable row, or a duplicate id (later rows; detail ``"duplicate id"``).

Adapters never decode audio; they only check that files exist.

Example:
    >>> from eno_hf.config import load_config
    >>> res = load_recordings(load_config("configs/datasets/4q.yaml").dataset.source)
    >>> len(res.recordings), len(res.rejected)
    (360, 0)
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eno_hf.config import SourceConfig
from eno_hf.data.recording import Recording
from eno_hf.errors import RejectedInput

__all__ = ["SourceResult", "load_recordings", "reject", "AudioIndex"]

ADAPTERS = {"csv": "csv", "json_dump": "json_dump", "jsonl_segments": "jsonl_segments",
            "folders": "folders"}


@dataclass
class SourceResult:
    """Output of ``load_recordings``: accepted recordings (metadata order) and rejected items."""

    recordings: list[Recording]
    rejected: list[dict[str, Any]] = field(default_factory=list)


def reject(path: str | Path | None, recording_id: str | None, reason: str,
           detail: str = "") -> dict[str, Any]:
    """Build one rejected item ``{"path", "recording_id", "reason", "detail"}``.

    Raises:
        ValueError: ``reason`` is not in ``RejectedInput.REASONS``.
    """
    if reason not in RejectedInput.REASONS:
        raise ValueError(f"unknown reject reason {reason!r}; expected one of {RejectedInput.REASONS}")
    return {"path": str(path) if path is not None else None, "recording_id": recording_id,
            "reason": reason, "detail": detail}


class AudioIndex:
    """The audio files under a root folder (recursive, by suffix), with a stem lookup.

    Args:
        root: folder to scan; None gives an empty index.
        extensions: accepted suffixes (case-insensitive), e.g. ``[".wav", ".mp3"]``.
    """

    def __init__(self, root: Path | None, extensions: list[str]) -> None:
        self.root = Path(root).absolute() if root is not None else None
        exts = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
        self.files: list[Path] = []
        if self.root is not None and self.root.is_dir():
            self.files = sorted(p for p in self.root.rglob("*")
                                if p.suffix.lower() in exts and p.is_file())
        self._by_stem: dict[str, list[Path]] = {}
        for p in self.files:
            self._by_stem.setdefault(p.stem, []).append(p)

    def by_stem(self, stem: str) -> list[Path]:
        """Files whose stem (name without suffix) equals ``stem``."""
        return list(self._by_stem.get(stem, []))

    def resolve(self, raw: str | Path) -> Path:
        """``raw`` as an absolute path: kept if absolute, else joined to the root (or cwd)."""
        p = Path(raw).expanduser()
        if p.is_absolute():
            return p
        return (self.root / p) if self.root is not None else p.absolute()


def candidate_path(row: dict[str, Any], cfg: SourceConfig, index: AudioIndex) -> Path | None:
    """The audio path a metadata row names: its path field (``cfg.path_column``, default ``path``)
    or ``cfg.path_template`` formatted over the row; None if neither is given.

    Raises:
        ValueError: ``path_template`` names a field the row lacks.
    """
    path_field = cfg.path_column or "path"
    if to_label(row.get(path_field)):
        return index.resolve(str(row[path_field]).strip())
    if cfg.path_template:
        try:
            return index.resolve(cfg.path_template.format(**row))
        except KeyError as exc:
            raise ValueError(f"path_template field {exc} missing") from exc
    return None


def locate(index: AudioIndex, recording_id: str, candidate: Path | None,
           stem_lookup: bool) -> tuple[Path | None, str]:
    """Pick the audio file of a row: ``candidate`` if it exists, else a unique stem match.

    Returns:
        (path or None, detail): the existing file, or ``candidate`` (may not exist) / None with a
        detail explaining why nothing was found.
    """
    if candidate is not None and candidate.is_file():
        return candidate, ""
    if stem_lookup:
        matches = index.by_stem(recording_id)
        if len(matches) == 1:
            return matches[0], ""
        if len(matches) > 1:
            return candidate, (f"{len(matches)} files with stem {recording_id!r}: "
                               + ", ".join(str(m) for m in matches[:5]))
    if candidate is not None:
        return candidate, f"file not found: {candidate}"
    return None, f"no path for id {recording_id!r} (no path column/template, no stem match)"


def finalize(recordings: list[Recording], rejected: list[dict[str, Any]],
             index: AudioIndex) -> SourceResult:
    """Shared checks after an adapter: duplicate ids, missing files, orphan audio files.

    ``recordings`` are candidates in metadata order; ``rejected`` are rows the adapter could not
    parse. Returns the accepted recordings and all rejected items (adapter's first).
    """
    out: list[Recording] = []
    rejected = list(rejected)
    seen: dict[str, Recording] = {}
    claimed: set[Path] = set()
    for item in rejected:
        if item.get("path"):
            claimed.add(Path(item["path"]).resolve())
    for rec in recordings:
        if rec.path is not None:
            claimed.add(Path(rec.path).resolve())
        if rec.recording_id in seen:
            first = seen[rec.recording_id]
            rejected.append(reject(rec.path, rec.recording_id, "bad_metadata",
                                   f"duplicate id (first: {first.path})"))
            continue
        if rec.path is None or not Path(rec.path).is_file():
            detail = rec.extra.pop("_missing_detail", "") or f"file not found: {rec.path}"
            rejected.append(reject(rec.path, rec.recording_id, "missing_file", detail))
            seen[rec.recording_id] = rec
            continue
        rec.extra.pop("_missing_detail", None)
        seen[rec.recording_id] = rec
        out.append(rec)
    for p in index.files:
        if p.resolve() not in claimed:
            rejected.append(reject(p, None, "no_metadata",
                                   f"audio file under {index.root} named by no metadata row"))
    return SourceResult(out, rejected)


def load_recordings(cfg: SourceConfig) -> SourceResult:
    """Read recordings and labels with the adapter named by ``cfg.kind``.

    Args:
        cfg: ``SourceConfig`` (metadata file, audio_root, column/field maps).

    Returns:
        ``SourceResult(recordings, rejected)``; see the module docstring for the guarantees.

    Raises:
        RejectedInput: the metadata file as a whole is missing (``missing_file``) or unreadable /
            lacks a configured column (``bad_metadata``); audio_root missing (``missing_file``).
        ValueError: unknown ``cfg.kind``.
    """
    if cfg.kind not in ADAPTERS:
        raise ValueError(f"unknown source kind {cfg.kind!r}; expected one of {sorted(ADAPTERS)}")
    module = importlib.import_module(f"{__name__}.{ADAPTERS[cfg.kind]}")
    recordings, rejected, index = module.read(cfg)
    return finalize(recordings, rejected, index)


def audio_root_of(cfg: SourceConfig) -> Path | None:
    """``cfg.audio_root``, else the metadata file's folder, else None (absolute)."""
    if cfg.audio_root is not None:
        root = Path(cfg.audio_root).expanduser().absolute()
        if not root.is_dir():
            raise RejectedInput(root, "missing_file", "audio_root is not a directory")
        return root
    if cfg.metadata is not None:
        return Path(cfg.metadata).expanduser().absolute().parent
    return None


def metadata_path(cfg: SourceConfig) -> Path:
    """The metadata file (absolute). Raises ``RejectedInput(missing_file)`` if absent/unset."""
    if cfg.metadata is None:
        raise RejectedInput(None, "missing_file", f"source kind {cfg.kind!r} needs 'metadata'")
    p = Path(cfg.metadata).expanduser().absolute()
    if not p.is_file():
        raise RejectedInput(p, "missing_file", "metadata file not found")
    return p


def split_tags(value: Any, separator: str) -> list[str]:
    """Raw tags from a cell: a list (kept) or a string split on ``separator``; trimmed, no empties."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        items = [str(v) for v in value if v is not None]
    else:
        text = str(value)
        items = text.split(separator) if separator else [text]
    return [t.strip() for t in items if t is not None and t.strip()]


def to_float(value: Any) -> float | None:
    """Float from a cell; empty/None -> None. Raises ``ValueError`` when unparseable or NaN-like text."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    if not text:
        return None
    return float(text)


def to_label(value: Any) -> str | None:
    """Single label from a cell: trimmed string, empty/None -> None."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None
