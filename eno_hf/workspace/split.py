"""``eno dataset split``: grouped splits and the versioned Hugging Face ``DatasetDict``.

The manifest becomes a metadata table (``processed/dataset.csv``: one row per sample, the
annotations and the main MIDI statistics as columns), which eno's own dataset build reads as a
``csv`` source (``eno_hf.data.build.build_dataset``): decoding (MIDI rendered by FluidSynth),
conditioning, segmentation, log-mel/MFCC/fingerprint, grouped stratified splits (group = the
manifest's ``group``, so an augmented copy always lands in its source's split and PercePiano
performances of one passage stay together; stratified on ``emotion``), dataset card, QC report
and version, under ``{data_root}/datasets/{dataset_id}/{version}`` with ``LATEST``.
``datasets.load_from_disk`` opens it. The split of every sample is then written to
``splits/{train,val,test}.txt`` (one sample id per line).

Columns added to eno's usual ones (``segment_id, recording_id`` (= sample_id), ``group, path``,
``waveform, log_mel, mfcc, fingerprint, audio``): ``ClassLabel`` columns ``emotion, key, mode,
groove_type, articulation, chord_progression, origin, kind, source`` (missing = −1) and
``float32`` columns ``valence, arousal, tempo_bpm, swing_ratio`` and the MIDI statistics in
``MIDI_COLUMNS`` (missing = None, e.g. for audio samples). ``quality_score`` is not a column: the
validate step writes it after the split, so as a column it would change the table, and with it the
dataset version, on every re-run (it stays in the manifest and ``annotations/``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eno_hf.config import Settings, deep_merge
from eno_hf.utils.io import atomic_path
from eno_hf.workspace.extract import load_features
from eno_hf.workspace.layout import Workspace
from eno_hf.workspace.schema import Manifest

LABEL_COLUMNS = ("emotion", "key", "mode", "groove_type", "articulation", "chord_progression",
                 "origin", "kind", "source")
NUMERIC_COLUMNS = ("valence", "arousal", "tempo_bpm", "swing_ratio")
MIDI_COLUMNS = ("note_density_per_s", "velocity_mean", "velocity_std", "velocity_slope_per_s",
                "pitch_range_semitones", "articulation_ratio", "pedal_fraction", "ioi_cv",
                "contour_mean_abs_interval")
SPLIT_FILES = {"train": "train", "validation": "val", "test": "test"}


@dataclass
class SplitResult:
    dataset_path: Path
    version: str
    counts: dict[str, int]
    report: dict[str, Any]
    cache_hit: bool


def write_table(ws, manifest) -> Path:
    """``processed/dataset.csv`` from the manifest (see the module docstring)."""
    path = ws.abs("processed/dataset.csv")
    cols = ["sample_id", "file_path", "group", "performer", *LABEL_COLUMNS, *NUMERIC_COLUMNS, *MIDI_COLUMNS]
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for e in sorted(manifest.samples, key=lambda e: e.sample_id):
            a = e.annotations
            feats = load_features(ws, e) if e.kind == "midi" else {}
            row = {"sample_id": e.sample_id, "file_path": e.file_path, "group": e.group,
                   "performer": e.performer or "", "origin": e.origin, "kind": e.kind, "source": e.source}
            for c in LABEL_COLUMNS:
                row.setdefault(c, getattr(a, c, None) or "")
            for c in NUMERIC_COLUMNS:
                v = getattr(a, c)
                row[c] = "" if v is None else f"{v:.6g}"
            for c in MIDI_COLUMNS:
                v = feats.get(c)
                row[c] = "" if v is None else f"{v:.6g}"
            w.writerow(row)
    return path


def dataset_settings(ws: Workspace, settings: Settings, manifest: Manifest | None = None) -> Settings:
    """Root ``Settings`` whose ``dataset`` reads the workspace table (other dataset settings —
    audio, segments, features, split fractions and seed — are the caller's). Imported files are
    symbolic links to their original folders: those folders (and the configured sources) are the
    source's ``allowed_roots``, so eno's path confinement lets exactly them through."""
    table = ws.abs("processed/dataset.csv")
    roots = {str(Path(src.path).resolve()) for src in settings.workspace.sources.values()}
    if manifest is not None:
        roots |= {str(Path(e.original_path).resolve().parent) for e in manifest.samples if e.original_path}
    patch = {"dataset": {
        "name": settings.workspace.dataset_id,
        "source": {"kind": "csv", "metadata": str(table), "audio_root": str(ws.path.resolve()),
                   "id_column": "sample_id", "path_column": "file_path", "stem_lookup": False,
                   "allowed_roots": sorted(roots),
                   "multilabel": {}, "singlelabel": {c: c for c in LABEL_COLUMNS},
                   "numeric": {c: c for c in (*NUMERIC_COLUMNS, *MIDI_COLUMNS)}, "group_column": "group"},
        "labels": {"lowercase": False, "aliases": {}, "min_count": {}, "default_min_count": 1},
        "split": {"stratify_on": ["emotion"]},
    }}
    data = settings.model_dump(mode="json")
    data["dataset"]["source"] = {}
    return Settings.model_validate(deep_merge(data, patch))


def split_workspace(ws: Workspace, manifest: Manifest, settings: Settings, progress: bool = True) -> SplitResult:
    """Write the table, build (or reuse) the dataset version, write ``splits/*.txt``.

    Raises:
        ValueError: no usable sample (from ``build_dataset``).
    """
    from eno_hf.data.build import build_dataset

    write_table(ws, manifest)
    s = dataset_settings(ws, settings, manifest)
    res = build_dataset(s, progress=progress)
    counts = {}
    for split, fname in SPLIT_FILES.items():
        ids = sorted(set(res.dataset[split]["recording_id"])) if split in res.dataset else []
        (ws.abs(f"splits/{fname}.txt")).write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
        counts[fname] = len(ids)
    return SplitResult(res.path, res.version, counts, res.report, res.cache_hit)
