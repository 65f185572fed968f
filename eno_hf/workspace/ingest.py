"""Import files into a workspace and annotate them (folder names, a metadata table, or a person).

- ``import_folder``: every MIDI/audio file under a folder becomes a sample whose id is the first
  16 hex digits of the SHA-256 of its bytes (``eno_hf.audio.io.content_hash``); a file whose
  content is already in the workspace is reported as a duplicate (reason ``duplicate_content``)
  and not added. Files are linked (or copied) to ``raw/{midi,audio}/{sample_id}{ext}``.
- ``emotion_from_folders``: the first folder name on the file's path (below the imported folder)
  found in ``folder_emotions`` gives the emotion; valence/arousal come from
  ``emotion_valence_arousal`` (``eno_hf.workspace.config.EMOTION_VALENCE_AROUSAL``).
- ``annotate_from_csv``: valence/arousal (and emotion = their circumplex quadrant) from a table.
- ``annotate_interactive``: rich prompts showing a sample's extracted features; plays nothing.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from eno_hf.errors import RejectedInput
from eno_hf.workspace.config import CsvAnnotations, ImportSource, WorkspaceConfig
from eno_hf.workspace.layout import Workspace
from eno_hf.workspace.schema import Annotations, Manifest, ManifestEntry, Rejection

SAMPLE_ID_HEX = 16


@dataclass
class ImportReport:
    """Outcome of one ``import_folder`` call (lists of sample ids / dicts)."""

    imported: list[str] = field(default_factory=list)
    duplicates: list[dict[str, str]] = field(default_factory=list)
    already_present: list[str] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)


def updated(ann: Annotations, **changes: Any) -> Annotations:
    """A validated copy of ``ann`` with ``changes`` (pydantic's ``model_copy`` does not validate)."""
    return Annotations.model_validate({**ann.model_dump(), **changes})


def quadrant_emotion(valence: float, arousal: float) -> str:
    """Circumplex quadrant of (valence, arousal): happy (+,+), angry (−,+), sad (−,−), calm (+,−)."""
    if valence >= 0:
        return "happy" if arousal >= 0 else "calm"
    return "angry" if arousal >= 0 else "sad"


def _kind(path: Path, cfg: WorkspaceConfig) -> str | None:
    ext = path.suffix.lower()
    if ext in cfg.midi_extensions:
        return "midi"
    if ext in cfg.audio_extensions:
        return "audio"
    return None


def _group(stem: str, pattern: str | None) -> str:
    if pattern:
        m = re.search(pattern, stem)
        if m and m.groups():
            return "_".join(g for g in m.groups() if g is not None)
    return stem


def _files(src: ImportSource, cfg: WorkspaceConfig) -> list[Path]:
    root = Path(src.path)
    files = sorted(p for p in root.rglob("*") if p.is_file() and _kind(p, cfg) is not None
                   and (src.kind == "auto" or _kind(p, cfg) == src.kind))
    if src.limit_per_folder is not None:
        per: dict[Path, int] = {}
        kept = []
        for p in files:
            top = p.relative_to(root).parts[0] if len(p.relative_to(root).parts) > 1 else Path(".")
            if per.get(top, 0) < src.limit_per_folder:
                per[top] = per.get(top, 0) + 1
                kept.append(p)
        files = kept
    return files[: src.limit] if src.limit is not None else files


def emotion_from_folders(path: Path, root: Path, cfg: WorkspaceConfig) -> Annotations | None:
    """Emotion (and its valence/arousal) from the folder names between ``root`` and the file."""
    for part in Path(path).relative_to(root).parts[:-1]:
        emotion = cfg.folder_emotions.get(part.lower())
        if emotion is not None:
            v, a = cfg.emotion_valence_arousal.get(emotion, (None, None))
            return Annotations(emotion=emotion, valence=v, arousal=a)
    return None


def _read_csv(spec: CsvAnnotations) -> dict[str, dict[str, str]]:
    from eno_hf.data.sources.csv import read_rows

    _, rows = read_rows(Path(spec.path))
    return {str(r.get(spec.id_column, "")).strip(): r for _, r in rows}


def _scale(value: str | None, spec: CsvAnnotations, invert: bool = False) -> float | None:
    try:
        x = float(value) if value not in (None, "") else None
    except ValueError:
        return None
    if x is None:
        return None
    y = 2.0 * (x - spec.scale_low) / (spec.scale_high - spec.scale_low) - 1.0
    y = -y if invert else y
    return max(-1.0, min(1.0, y))


def csv_annotations(row: dict[str, str], spec: CsvAnnotations, cfg: WorkspaceConfig) -> tuple[Annotations, str | None]:
    """(Annotations, performer) of one table row (see ``CsvAnnotations``)."""
    v = _scale(row.get(spec.valence_column), spec, spec.valence_invert) if spec.valence_column else None
    a = _scale(row.get(spec.arousal_column), spec) if spec.arousal_column else None
    emotion = (row.get(spec.emotion_column) or None) if spec.emotion_column else None
    if emotion is None and v is not None and a is not None:
        emotion = quadrant_emotion(v, a)
    performer = (row.get(spec.performer_column) or None) if spec.performer_column else None
    return Annotations(emotion=emotion, valence=v, arousal=a), performer


def _place(src: Path, dest: Path, copy: bool) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() or dest.is_symlink():
        dest.unlink()
    if copy:
        shutil.copy2(src, dest)
    else:
        os.symlink(src.resolve(), dest)


def import_folder(ws: Workspace, manifest: Manifest, src: ImportSource, cfg: WorkspaceConfig) -> ImportReport:
    """Add every MIDI/audio file under ``src.path`` to ``manifest`` (in place; the caller saves),
    without labels (``annotate_from_sources`` adds them).

    Unreadable or empty files are recorded in ``manifest.rejected`` (stage ``import``) and the
    import goes on; decoding is checked later by ``extract``.

    Raises:
        RejectedInput: ``missing_file`` if ``src.path`` is not a folder.
    """
    from eno_hf.audio.io import content_hash

    root = Path(src.path)
    if not root.is_dir():
        raise RejectedInput(root, "missing_file", "import source is not a folder")
    name = src.name or root.name
    by_id = manifest.by_id()
    by_original = {e.original_path: e.sample_id for e in manifest.samples}
    report = ImportReport()
    for path in _files(src, cfg):
        kind = _kind(path, cfg)
        try:
            if path.stat().st_size == 0:
                raise RejectedInput(path, "empty", "zero bytes")
            sid = content_hash(path)[:SAMPLE_ID_HEX]
        except RejectedInput as exc:
            report.rejected.append({"path": str(path), "reason": exc.reason, "detail": exc.detail})
            manifest.rejected.append(Rejection(path=str(path), reason=exc.reason, detail=exc.detail, stage="import"))
            continue
        except OSError as exc:
            report.rejected.append({"path": str(path), "reason": "io_error", "detail": str(exc)})
            manifest.rejected.append(Rejection(path=str(path), reason="io_error", detail=str(exc), stage="import"))
            continue
        if sid in by_id:
            if by_id[sid].original_path == str(path.resolve()):
                report.already_present.append(sid)
                continue
            first = by_id[sid].original_path or by_id[sid].file_path
            detail = f"same content as {first} (sample {sid})"
            report.duplicates.append({"path": str(path), "duplicate_of": str(first), "sample_id": sid})
            if not any(r.path == str(path) and r.reason == "duplicate_content" for r in manifest.rejected):
                manifest.rejected.append(Rejection(path=str(path), reason="duplicate_content", detail=detail,
                                                   stage="import", sample_id=sid))
            continue
        if str(path.resolve()) in by_original:
            report.already_present.append(by_original[str(path.resolve())])
            continue
        rel = f"raw/{kind}/{sid}{path.suffix.lower()}"
        _place(path, ws.abs(rel), src.copy_files)
        entry = ManifestEntry(sample_id=sid, file_path=rel, kind=kind, origin="imported", source=name,
                              original_path=str(path.resolve()), group=f"{name}:{_group(path.stem, src.group_pattern)}",
                              annotations=Annotations())
        manifest.samples.append(entry)
        by_id[sid] = entry
        report.imported.append(sid)
    return report


def annotate_from_sources(manifest: Manifest, cfg: WorkspaceConfig, overwrite: bool = False) -> dict[str, int]:
    """Label imported samples from their source's folder names and metadata table.

    For each sample whose ``original_path`` lies under a configured source folder: the emotion
    from the folder names (``folder_labels``), then valence/arousal/emotion/performer from the
    source's table (``csv``, keyed by file stem) where it has them. Labels a person set
    (``is_verified``) are never changed; others only when missing unless ``overwrite``.

    Returns:
        ``{"folders": n, "table": n, "unlabelled": n}``.
    """
    counts = {"folders": 0, "table": 0, "unlabelled": 0}
    roots = [(Path(s.path).resolve(), s, _read_csv(s.csv) if s.csv is not None else {}) for s in cfg.sources.values()]
    for e in manifest.samples:
        if e.origin != "imported" or not e.original_path or e.annotations.is_verified:
            continue
        path = Path(e.original_path)
        for root, src, table in roots:
            if root not in path.parents:
                continue
            changes: dict[str, Any] = {}
            if src.folder_labels:
                ann = emotion_from_folders(path, root, cfg)
                if ann is not None:
                    changes.update(emotion=ann.emotion, valence=ann.valence, arousal=ann.arousal)
                    counts["folders"] += 1
            if path.stem in table:
                ann, performer = csv_annotations(table[path.stem], src.csv, cfg)
                changes.update({k: v for k, v in ann.model_dump().items()
                                if v is not None and k in ("emotion", "valence", "arousal")})
                if performer:
                    e.performer = performer
                counts["table"] += 1
            changes = {k: v for k, v in changes.items() if overwrite or getattr(e.annotations, k) is None}
            if changes:
                e.annotations = updated(e.annotations, **changes)
            break
        if not e.annotations.emotion:
            counts["unlabelled"] += 1
    return counts


# ----------------------------------------------------------------------------- interactive
_FEATURES_SHOWN = ("duration_s", "tempo_bpm", "key", "mode", "note_density_per_s", "velocity_mean",
                   "pitch_range_semitones", "articulation", "groove_type", "swing_ratio",
                   "chord_progression", "rms_dbfs", "integrated_lufs", "spectral_centroid_mean_hz")


def annotate_interactive(ws: Workspace, manifest: Manifest, cfg: WorkspaceConfig, console: Any = None,
                         only_missing: bool = True, limit: int | None = None,
                         load_features: Callable[[ManifestEntry], dict] | None = None) -> list[str]:
    """Ask a person for each sample's labels with rich prompts (nothing is played).

    For each sample (those without an emotion when ``only_missing``) it prints the extracted
    features (``processed/features/{id}.json``) and asks: emotion (one of the categories, or
    ``skip`` / ``quit``), valence and arousal (default: the emotion's map entry), notes. An
    answered sample gets ``is_verified = True``. The manifest is saved after each answer.

    Returns:
        the sample ids annotated.
    """
    import json

    from rich.console import Console
    from rich.prompt import FloatPrompt, Prompt
    from rich.table import Table

    console = console or Console()
    done: list[str] = []
    todo = [e for e in manifest.samples if not (only_missing and e.annotations.emotion)]
    for entry in todo[:limit] if limit is not None else todo:
        feats: dict = {}
        if load_features is not None:
            feats = load_features(entry)
        elif entry.features_path and ws.abs(entry.features_path).is_file():
            feats = json.loads(ws.abs(entry.features_path).read_text(encoding="utf-8"))
        table = Table(title=f"{entry.sample_id}  {entry.kind}  {entry.original_path or entry.file_path}")
        table.add_column("feature")
        table.add_column("value", justify="right")
        for k in _FEATURES_SHOWN:
            if k in feats:
                v = feats[k]
                table.add_row(k, f"{v:.3g}" if isinstance(v, float) else str(v))
        console.print(table)
        choice = Prompt.ask("emotion", choices=[*cfg.categories, "skip", "quit"], console=console,
                            default=entry.annotations.emotion or "skip")
        if choice == "quit":
            break
        if choice == "skip":
            continue
        dv, da = cfg.emotion_valence_arousal.get(choice, (0.0, 0.0))
        v = FloatPrompt.ask("valence [-1, 1]", default=dv, console=console)
        a = FloatPrompt.ask("arousal [-1, 1]", default=da, console=console)
        note = Prompt.ask("notes", default="", console=console)
        entry.annotations = updated(entry.annotations, emotion=choice, valence=max(-1.0, min(1.0, v)),
                                    arousal=max(-1.0, min(1.0, a)), notes=note, is_verified=True)
        ws.save(manifest)
        done.append(entry.sample_id)
    return done
