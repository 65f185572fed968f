"""The unit every metadata adapter produces: one recording (or one pre-cut segment) and its labels."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(slots=True)
class Recording:
    """One audio file (or a time range of it) with its labels, as read from metadata.

    Attributes:
        recording_id: unique id within a source (e.g. the 4Q ``Song`` column, ``MT0000011975``).
        path: the audio file (absolute), or None when the metadata names no file.
        multilabel: task -> raw tags, e.g. ``{"descriptors": ["Gloomy", "Somber"]}``; every
            configured task is present, ``[]`` when the metadata has no tags for it.
        singlelabel: task -> one class or None (missing), e.g. ``{"quadrant": "Q3"}``.
        numeric: task -> float or None (missing), e.g. ``{"rating": 3.5}``.
        group: value that must not cross splits (artist, album, source recording); None = own group.
        start_s, end_s: time range in seconds inside ``path`` for pre-segmented sources, else None.
        extra: any other metadata (strings/numbers), kept for dataset cards and debugging.

    Slotted (no per-instance ``__dict__``): a source of millions of recordings holds them all.
    """

    recording_id: str
    path: Path | None
    multilabel: dict[str, list[str]] = field(default_factory=dict)
    singlelabel: dict[str, str | None] = field(default_factory=dict)
    numeric: dict[str, float | None] = field(default_factory=dict)
    group: str | None = None
    start_s: float | None = None
    end_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable dict (``path`` as a string or None, lists/dicts copied)."""
        out = asdict(self)
        out["path"] = str(self.path) if self.path is not None else None
        return out
