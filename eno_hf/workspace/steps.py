"""The workspace steps as functions of the root ``Settings`` (used by ``eno dataset`` and the
Prefect flow ``flows/workspace.py``). Each opens the workspace, does its step, saves the manifest
atomically and returns a JSON-able summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eno_hf.workspace.layout import Workspace


_BOOKKEEPING = {".json", ".npz", ".txt", ".csv"}


def _open(settings) -> tuple[Workspace, Any]:
    ws = Workspace.open(settings.workspace, settings.paths.data_root)
    return ws, ws.load()


def step_create(settings) -> dict[str, Any]:
    ws = Workspace.create(settings.workspace, settings.paths.data_root)
    return {"workspace": str(ws.path), "samples": len(ws.load().samples)}


def step_import(settings, folders: list[Path] | None = None, copy_files: bool = False) -> dict[str, Any]:
    """Import the configured sources (or ``folders``, each as a source with default settings)."""
    from eno_hf.workspace.config import ImportSource
    from eno_hf.workspace.ingest import import_folder

    ws, manifest = _open(settings)
    sources = ([ImportSource(path=Path(f), copy_files=copy_files) for f in folders] if folders
               else [src if src.name else src.model_copy(update={"name": name})
                     for name, src in settings.workspace.sources.items()])
    out: dict[str, Any] = {"sources": []}
    for src in sources:
        rep = import_folder(ws, manifest, src, settings.workspace)
        out["sources"].append({"path": str(src.path), "imported": len(rep.imported),
                               "already_present": len(rep.already_present), "duplicates": rep.duplicates,
                               "rejected": rep.rejected})
    ws.save(manifest)
    out["samples"] = len(manifest.samples)
    return out


def step_annotate(settings, overwrite: bool = False) -> dict[str, Any]:
    from eno_hf.workspace.ingest import annotate_from_sources

    ws, manifest = _open(settings)
    counts = annotate_from_sources(manifest, settings.workspace, overwrite=overwrite)
    ws.save(manifest)
    return counts


def step_extract(settings, force: bool = False, progress=None) -> dict[str, Any]:
    from eno_hf.workspace.extract import extract_workspace

    ws, manifest = _open(settings)
    rep = extract_workspace(ws, manifest, settings, force=force, progress=progress)
    return {"extracted": len(rep.extracted), "cached": len(rep.cached), "rejected": rep.rejected}


def step_augment(settings, copies_midi: int | None = None, copies_audio: int | None = None,
                 progress=None) -> dict[str, Any]:
    from eno_hf.workspace.augment import augment_workspace

    ws, manifest = _open(settings)
    rep = augment_workspace(ws, manifest, settings, copies_midi, copies_audio, progress=progress)
    return {"created": len(rep.created), "existing": len(rep.existing), "rejected": rep.rejected}


def step_synthesize(settings, per_category: int | None = None) -> dict[str, Any]:
    from eno_hf.workspace.synth import synthesize_workspace

    ws, manifest = _open(settings)
    return {"created": len(synthesize_workspace(ws, manifest, settings, per_category))}


def step_validate(settings):
    from eno_hf.workspace.validate import validate_workspace

    ws, manifest = _open(settings)
    return validate_workspace(ws, manifest, settings)


def step_split(settings, progress: bool = True) -> dict[str, Any]:
    from eno_hf.workspace.split import split_workspace

    ws, manifest = _open(settings)
    res = split_workspace(ws, manifest, settings, progress=progress)
    # the csv source indexes the whole workspace folder (its audio root): its own bookkeeping files
    # (manifest, features JSON/NPZ, splits, reports) come back as "unsupported"; they are not inputs
    rejected = [r for r in res.report.get("rejected", [])
                if not (r.get("reason") == "unsupported" and r.get("recording_id") is None
                        and Path(str(r.get("path", ""))).suffix.lower() in _BOOKKEEPING
                        and Path(str(r.get("path", ""))).resolve().is_relative_to(ws.path.resolve()))]
    return {"dataset": str(res.dataset_path), "version": res.version, "splits": res.counts,
            "cache_hit": res.cache_hit, "rejected": rejected}
