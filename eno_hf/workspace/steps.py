"""The workspace steps as functions of the root ``Settings`` (used by ``eno dataset`` and the
Prefect flow ``flows/workspace.py``). Each opens the workspace, does its step, saves the manifest
atomically and returns a JSON-able summary.

The workspace job (``WORKSPACE``, ``eno_hf.jobs``): the ``eno dataset all`` steps as ``Stage`` s over
a ``WorkspaceState``::

    create → import → annotate → extract → augment → synthesize → extract_new → split → validate

(``extract_new`` extracts the copies and syntheses; the Prefect task of every stage is
``workspace-{step}``, ``extract_new``'s ``workspace-extract``). A failed run resumes where it
stopped: every step skips finished work (content-hash ids, features already on disk, copies found
by provenance), so the job has no markers of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eno_hf.config import Settings
from eno_hf.jobs import Job, Stage
from eno_hf.workspace.augment import augment_workspace
from eno_hf.workspace.config import ImportSource
from eno_hf.workspace.extract import extract_workspace
from eno_hf.workspace.ingest import annotate_from_sources, import_folder
from eno_hf.workspace.layout import Workspace
from eno_hf.workspace.schema import Manifest
from eno_hf.workspace.split import split_workspace
from eno_hf.workspace.synth import synthesize_workspace
from eno_hf.workspace.validate import validate_workspace


_BOOKKEEPING = {".json", ".npz", ".txt", ".csv"}


def _open(settings: Settings) -> tuple[Workspace, Manifest]:
    ws = Workspace.open(settings.workspace, settings.paths.data_root)
    return ws, ws.load()


def step_create(settings: Settings) -> dict[str, Any]:
    ws = Workspace.create(settings.workspace, settings.paths.data_root)
    return {"workspace": str(ws.path), "samples": len(ws.load().samples)}


def step_import(settings: Settings, folders: list[Path] | None = None, copy_files: bool = False) -> dict[str, Any]:
    """Import the configured sources (or ``folders``, each as a source with default settings)."""
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


def step_annotate(settings: Settings, overwrite: bool = False) -> dict[str, Any]:
    ws, manifest = _open(settings)
    counts = annotate_from_sources(manifest, settings.workspace, overwrite=overwrite)
    ws.save(manifest)
    return counts


def step_extract(settings: Settings, force: bool = False, progress=None) -> dict[str, Any]:
    ws, manifest = _open(settings)
    rep = extract_workspace(ws, manifest, settings, force=force, progress=progress)
    return {"extracted": len(rep.extracted), "cached": len(rep.cached), "rejected": rep.rejected}


def step_augment(settings: Settings, copies_midi: int | None = None, copies_audio: int | None = None,
                 progress=None) -> dict[str, Any]:
    ws, manifest = _open(settings)
    rep = augment_workspace(ws, manifest, settings, copies_midi, copies_audio, progress=progress)
    return {"created": len(rep.created), "existing": len(rep.existing), "rejected": rep.rejected}


def step_synthesize(settings: Settings, per_category: int | None = None) -> dict[str, Any]:
    ws, manifest = _open(settings)
    return {"created": len(synthesize_workspace(ws, manifest, settings, per_category))}


def step_validate(settings: Settings):
    ws, manifest = _open(settings)
    return validate_workspace(ws, manifest, settings)


def step_split(settings: Settings, progress: bool = True) -> dict[str, Any]:
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


# ----------------------------------------------------------------------------- the job
@dataclass
class WorkspaceState:
    """What the workspace steps returned so far.

    Attributes:
        progress: ``progress(description) -> wrap(iterable, total)`` for extract/augment (run
            option; ``None`` shows nothing).
        summary: step name -> its JSON-able summary, in run order (``validate`` excluded).
        validation: the ``ValidationReport`` of ``validate``.
    """

    progress: Callable[[str], Any] | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    validation: Any = None

    def update(self, changes: dict[str, Any]) -> None:
        """Record a stage's ``{step: summary}`` (``validate``: ``{"validation": report}``).

        Raises:
            KeyError: a key that is not a workspace stage name or ``validation``.
        """
        for name, value in changes.items():
            if name == "validation":
                self.validation = value
            elif name in WORKSPACE_STEPS:
                self.summary[name] = value
            else:
                raise KeyError(f"workspace stage returned unknown field {name!r}")

    def bar(self, description: str) -> Any:
        return self.progress(description) if self.progress is not None else None


WORKSPACE_STEPS = ("create", "import", "annotate", "extract", "augment", "synthesize", "extract_new", "split",
                   "validate")
"""The workspace job's stages, in order."""


def workspace_result(settings: Settings, state: WorkspaceState) -> dict[str, Any]:
    """``{step: summary}`` of a run, ``validate``'s as ``ValidationReport.to_dict()``
    (``summary["validate"]["passed"]``: whether every score reached its threshold)."""
    out = dict(state.summary)
    if state.validation is not None:
        out["validate"] = state.validation.to_dict()
    return out


WORKSPACE = Job("workspace", (
    Stage("create", lambda s, st: {"create": step_create(s)}, "cpu", task_name="workspace-create"),
    Stage("import", lambda s, st: {"import": step_import(s)}, "cpu", task_name="workspace-import"),
    Stage("annotate", lambda s, st: {"annotate": step_annotate(s)}, "cpu", task_name="workspace-annotate"),
    Stage("extract", lambda s, st: {"extract": step_extract(s, False, st.bar("extract"))}, "cpu",
          task_name="workspace-extract", retries=1),
    Stage("augment", lambda s, st: {"augment": step_augment(s, None, None, st.bar("augment"))}, "cpu",
          task_name="workspace-augment", retries=1),
    Stage("synthesize", lambda s, st: {"synthesize": step_synthesize(s)}, "cpu", task_name="workspace-synthesize"),
    Stage("extract_new", lambda s, st: {"extract_new": step_extract(s, False, st.bar("extract (new)"))}, "cpu",
          task_name="workspace-extract", retries=1),
    Stage("split", lambda s, st: {"split": step_split(s, progress=True)}, "cpu",
          task_name="workspace-split"),
    Stage("validate", lambda s, st: {"validation": step_validate(s)}, "cpu", task_name="workspace-validate"),
), WorkspaceState, workspace_result)
"""The workspace job (``eno_hf.jobs.JOBS["workspace"]``); its result is ``workspace_result``."""
