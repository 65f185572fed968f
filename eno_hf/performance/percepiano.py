"""PercePiano (Kim et al.): 1,043 real piano performances as MIDI with 19 perceptual ratings.

``../shared/data/percepiano/labels.csv`` (see its README): ``segment_id, piece, n_bars, segment,
performer, is_score, midi``, then the 19 dimensions (mean rating / 7, in (0, 1]) and their ``_std``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["DIMENSIONS", "PercePianoRow", "load_percepiano", "passage_id"]

DIMENSIONS = (
    "timing_stable_unstable", "articulation_short_long", "articulation_soft_cushioned_hard_solid",
    "pedal_sparse_dry_saturated_wet", "pedal_clean_blurred", "timbre_even_colorful", "timbre_shallow_rich",
    "timbre_bright_dark", "timbre_soft_loud", "dynamic_sophisticated_mellow_raw_crude",
    "dynamic_little_range_large_range", "music_making_fast_paced_slow_paced", "music_making_flat_spacious",
    "music_making_disproportioned_balanced", "music_making_pure_dramatic_expressive",
    "emotion_optimistic_pleasant_dark", "emotion_low_energy_high_energy", "emotion_honest_imaginative",
    "interpretation_unsatisfactory_convincing",
)
"""The 19 perceptual dimensions, in the dataset's order (checked against ``labels.csv`` on load)."""


@dataclass(frozen=True)
class PercePianoRow:
    """One performance. ``labels``: ``(19,)`` float32 in (0, 1], NaN when not rated.
    ``passage``: ``piece`` + ``n_bars`` + ``segment`` (the same music played by several performers)."""

    segment_id: str
    piece: str
    n_bars: int
    segment: str
    performer: str
    is_score: bool
    midi: Path
    labels: np.ndarray

    @property
    def passage(self) -> str:
        return passage_id(self.piece, self.n_bars, self.segment)

    @property
    def rated(self) -> bool:
        return bool(np.isfinite(self.labels).all())


def passage_id(piece: str, n_bars: int, segment: str) -> str:
    """``"{piece}_{n_bars}bars_{segment}"``: the group of performances of one passage."""
    return f"{piece}_{int(n_bars)}bars_{segment}"


SCORE_PERFORMERS = ("Score", "Score2")


def load_percepiano(root: str | Path) -> list[PercePianoRow]:
    """Read ``{root}/labels.csv``; MIDI paths are resolved inside ``root`` (never outside it).

    Column fix: in the Schubert rows of ``labels.csv`` the ``segment`` and ``performer`` columns are
    swapped (their file names are ``{piece}_{n}bars_{performer}_{segment}``: the ``segment`` column
    holds ``0``-``12`` and ``Score``, 14 values each used by every passage, and ``performer`` holds
    the passage numbers ``01``-``37``). A piece whose ``segment`` column holds ``Score`` is read
    swapped, so ``performer`` always names the player and ``is_score`` marks the deadpan renderings.

    Raises:
        FileNotFoundError: no ``labels.csv``. ValueError: unexpected columns, or a ``midi`` path
            that leaves ``root``.
    """
    root = Path(root).resolve()
    path = root / "labels.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: PercePiano labels not found")
    rows: list[PercePianoRow] = []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in ("segment_id", "piece", "performer", "midi", *DIMENSIONS) if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing columns {missing}")
        raw = list(reader)
        swapped = {r["piece"] for r in raw if r["segment"] in SCORE_PERFORMERS}
        for r in raw:
            seg, perf = (r["performer"], r["segment"]) if r["piece"] in swapped else (r["segment"], r["performer"])
            midi = (root / r["midi"]).resolve()
            if root not in midi.parents:
                raise ValueError(f"{path}: midi path {r['midi']!r} leaves the data root")
            labels = np.array([float(r[d]) if r[d] not in ("", None) else np.nan for d in DIMENSIONS], dtype=np.float32)
            rows.append(PercePianoRow(segment_id=r["segment_id"], piece=r["piece"], n_bars=int(r["n_bars"]),
                                      segment=str(seg), performer=str(perf),
                                      is_score=perf in SCORE_PERFORMERS, midi=midi,
                                      labels=labels))
    return rows
