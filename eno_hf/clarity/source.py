"""The gold/flawed tree as an eno source: scan, manifest (counts) and validation report.

``scan(raw_dir)`` lists every file under ``raw_dir``: audio files whose path parses
(``eno_hf.clarity.names``) and whose header reads become ``entries``; everything else is in
``rejected`` with a reason (``bad_name``, ``undecodable``/``empty``, ``not_audio``). Generated files
carry their parameters and correction vector from ``raw_dir/labels.json`` (written by
``eno_hf.clarity.generate``); hand-made flawed files without labels get ``None`` corrections and only
train the flaw classifier.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eno_hf.audio.io import audio_info
from eno_hf.clarity.config import INSTRUMENTS
from eno_hf.clarity.names import AUDIO_SUFFIXES, parse_name
from eno_hf.errors import RejectedInput

__all__ = ["Entry", "ScanResult", "LABELS_FILE", "scan", "manifest", "validate"]

LABELS_FILE = "labels.json"


@dataclass
class Entry:
    """One usable file. ``file`` is the posix path relative to the raw root."""

    file: str
    subset: str
    instrument: str
    sound: str
    flaw: str
    group: str
    duration_s: float
    source: str | None = None
    """Gold file this variant was generated from (relative path), if generated."""
    params: dict[str, float] = field(default_factory=dict)
    correction: dict[str, float] | None = None
    """Exact correction vector (generated files and gold files: all zeros), else None."""


@dataclass
class ScanResult:
    root: Path
    entries: list[Entry]
    rejected: list[dict[str, Any]]


def _read_labels(root: Path) -> dict[str, dict[str, Any]]:
    p = root / LABELS_FILE
    if not p.is_file():
        return {}
    return {r["file"]: r for r in json.loads(p.read_text(encoding="utf-8"))}


def scan(raw_dir: str | Path, correction_names: list[str] | None = None) -> ScanResult:
    """List and label every file under ``raw_dir`` (see the module docstring).

    Args:
        raw_dir: root of ``gold/`` and ``flawed/``.
        correction_names: outputs of the correction vector; gold files get zeros for them.

    Returns:
        ``ScanResult`` with entries sorted by path; each rejected item is
        ``{"file", "reason", "detail"}``.
    """
    root = Path(raw_dir)
    labels = _read_labels(root)
    entries, rejected = [], []
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
    for p in files:
        rel = p.relative_to(root).as_posix()
        if rel == LABELS_FILE or p.name.startswith("."):
            continue
        if p.suffix.lower() not in AUDIO_SUFFIXES:
            rejected.append({"file": rel, "reason": "not_audio", "detail": f"suffix {p.suffix!r}"})
            continue
        try:
            parsed = parse_name(p.relative_to(root))
        except ValueError as exc:
            rejected.append({"file": rel, "reason": "bad_name", "detail": str(exc)})
            continue
        try:
            info = audio_info(p)
            if info.duration_s <= 0:
                raise RejectedInput(p, "empty", "no audio frames")
        except RejectedInput as exc:
            rejected.append({"file": rel, "reason": exc.reason, "detail": exc.detail})
            continue
        lab = labels.get(rel, {})
        corr = lab.get("correction")
        if corr is None and parsed.subset == "gold" and correction_names is not None:
            corr = {k: 0.0 for k in correction_names}
        entries.append(Entry(rel, parsed.subset, parsed.instrument, parsed.sound, parsed.flaw,
                             parsed.group, round(float(info.duration_s), 4), lab.get("source"),
                             lab.get("params", {}), corr))
    return ScanResult(root, entries, rejected)


def manifest(result: ScanResult) -> dict[str, Any]:
    """Counts per subset x instrument x flaw (``{"counts": {subset: {instrument: {flaw: n}}}, ...}``)."""
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for e in result.entries:
        cell = counts.setdefault(e.subset, {}).setdefault(e.instrument, {})
        cell[e.flaw] = cell.get(e.flaw, 0) + 1
    return {"root": str(result.root), "files": len(result.entries), "rejected": len(result.rejected),
            "counts": counts, "groups": len({e.group for e in result.entries}),
            "entries": [asdict(e) for e in result.entries]}


def validate(result: ScanResult, flaws: list[str], min_per_category: int = 3) -> dict[str, Any]:
    """Validation report of the tree.

    Lists ``missing`` categories (an instrument without gold files, an instrument x configured flaw
    without flawed files), ``unbalanced`` cells (fewer than ``min_per_category`` files, or under a
    third of the largest cell of the same subset), ``unreadable`` files and other rejects, and
    ``orphans`` (flawed files whose group has no gold file). ``ok`` is True when nothing is missing
    and nothing was unreadable.
    """
    cells = Counter((e.subset, e.instrument, e.flaw) for e in result.entries)
    missing = [f"gold/{i}" for i in INSTRUMENTS if cells[("gold", i, "none")] == 0]
    missing += [f"flawed/{i}/{f}" for i in INSTRUMENTS for f in flaws if cells[("flawed", i, f)] == 0]
    largest = {s: max([n for (ss, _, _), n in cells.items() if ss == s] or [0]) for s in ("gold", "flawed")}
    unbalanced = [{"cell": f"{s}/{i}/{f}", "count": n}
                  for (s, i, f), n in sorted(cells.items())
                  if n < min_per_category or n * 3 < largest[s]]
    gold_groups = {e.group for e in result.entries if e.subset == "gold"}
    orphans = [e.file for e in result.entries if e.subset == "flawed" and e.group not in gold_groups]
    unreadable = [r for r in result.rejected if r["reason"] in RejectedInput.REASONS]
    return {"ok": not missing and not unreadable, "missing": missing, "unbalanced": unbalanced,
            "unreadable": unreadable,
            "other_rejected": [r for r in result.rejected if r not in unreadable],
            "orphans": orphans}
