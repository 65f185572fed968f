"""The workspace folder: ``{root}/{dataset_id}/``.

```
config.json                    WorkspaceInfo (dataset id, target model, categories, target count)
manifest.json                  Manifest (one entry per sample + rejected inputs), written atomically
raw/midi/  raw/audio/          imported files (links or copies), named {sample_id}{ext}
raw/synthetic/                 rule-based MIDI (and nothing else)
processed/features/            {sample_id}.json (scalars) + {sample_id}.npz (curves)
processed/augmented/           augmented MIDI / WAV, named {sample_id}{ext}
processed/dataset.csv          the table the dataset build reads (``split``)
annotations/{sample_id}.json   the sample's Annotations (a copy of the manifest's, for editing tools)
splits/{train,val,test}.txt    sample ids per split
reports/validation.json        the last validation report
```
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from pydantic import ValidationError

from eno_hf.workspace.config import WorkspaceConfig
from eno_hf.utils.io import atomic_write_json
from eno_hf.workspace.schema import Manifest, ManifestEntry, WorkspaceInfo

SUBDIRS = ("raw/midi", "raw/audio", "raw/synthetic", "processed/features", "processed/augmented",
           "annotations", "splits", "reports")

_DURABLE = {"indent": 1, "sanitize": False, "fsync": True}
"""How a workspace's own records are written (``atomic_write_json``): strict JSON (NaN refused), on
the device before the rename, so a crash or a power loss never leaves a half-written manifest."""


class WorkspaceError(ValueError):
    """A workspace is missing or its files fail the schema (the message names the file)."""


class Workspace:
    """A workspace folder and its manifest.

    Args:
        path: the workspace folder ``{root}/{dataset_id}``.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # ----------------------------------------------------------------- paths
    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    def abs(self, rel: str | Path) -> Path:
        """Absolute path of a workspace-relative path."""
        return self.path / rel

    def rel(self, path: str | Path) -> str:
        """Workspace-relative POSIX path of a file inside the workspace."""
        return Path(path).resolve().relative_to(self.path.resolve()).as_posix() if Path(path).is_absolute() \
            else Path(path).as_posix()

    # ----------------------------------------------------------------- create / open
    @staticmethod
    def folder(cfg: WorkspaceConfig, data_root: str | Path) -> Path:
        """``{cfg.root or data_root/workspaces}/{cfg.dataset_id}``."""
        return Path(cfg.root if cfg.root is not None else Path(data_root) / "workspaces") / cfg.dataset_id

    @classmethod
    def create(cls, cfg: WorkspaceConfig, data_root: str | Path) -> Workspace:
        """Create (or reopen) ``{cfg.root}/{cfg.dataset_id}`` with its sub-folders, ``config.json``
        and an empty manifest. An existing workspace keeps its manifest; ``config.json`` is
        rewritten from ``cfg`` (categories, targets) keeping its creation time."""
        ws = cls(cls.folder(cfg, data_root))
        for sub in SUBDIRS:
            (ws.path / sub).mkdir(parents=True, exist_ok=True)
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        if ws.config_path.is_file():
            created = ws.info().created_utc
        info = WorkspaceInfo(dataset_id=cfg.dataset_id, target_model=cfg.target_model,
                             categories=list(cfg.categories), target_per_category=cfg.target_per_category,
                             created_utc=created)
        atomic_write_json(ws.config_path, info.model_dump(mode="json"), **_DURABLE)
        if not ws.manifest_path.is_file():
            ws.save(Manifest(dataset_id=cfg.dataset_id))
        return ws

    @classmethod
    def open(cls, cfg: WorkspaceConfig, data_root: str | Path) -> Workspace:
        """Open an existing workspace. Raises ``WorkspaceError`` if it was never created."""
        ws = cls(cls.folder(cfg, data_root))
        if not ws.manifest_path.is_file():
            raise WorkspaceError(f"{ws.path}: no workspace here (run `eno dataset create` first)")
        return ws

    def info(self) -> WorkspaceInfo:
        return WorkspaceInfo.model_validate(self._read(self.config_path))

    def _read(self, path: Path) -> dict:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise WorkspaceError(f"{path}: unreadable: {exc}") from exc

    def load(self) -> Manifest:
        """Read and validate ``manifest.json``. Raises ``WorkspaceError`` naming each bad field."""
        try:
            return Manifest.model_validate(self._read(self.manifest_path))
        except ValidationError as exc:
            lines = [f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()[:20]]
            raise WorkspaceError(f"{self.manifest_path}: invalid manifest:\n  " + "\n  ".join(lines)) from exc

    def save(self, manifest: Manifest) -> None:
        """Validate and write ``manifest.json`` atomically, and ``annotations/{sample_id}.json``
        for every sample whose file content would change."""
        manifest = Manifest.model_validate(manifest.model_dump())
        atomic_write_json(self.manifest_path, manifest.model_dump(mode="json"), **_DURABLE)
        for e in manifest.samples:
            self.write_annotation(e)

    def write_annotation(self, entry: ManifestEntry) -> None:
        path = self.path / "annotations" / f"{entry.sample_id}.json"
        data = entry.annotations.model_dump(mode="json")
        if path.is_file():
            try:
                if json.loads(path.read_text(encoding="utf-8")) == data:
                    return
            except (OSError, json.JSONDecodeError):
                pass
        atomic_write_json(path, data, **_DURABLE)
