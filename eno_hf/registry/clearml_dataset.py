"""A dataset version as a ClearML Dataset, registered in a subprocess with a timeout.

``register_dataset_version(version_dir, name, version, ...)`` runs ``python -m
eno_hf.registry.clearml_dataset`` (``clearml.Dataset.create`` → ``add_files`` of the small
metadata files — ``dataset_info.json`` / ``dataset_dict.json``, ``qc_report.json``, ``README.md``,
``settings.json`` — the data-root path and version in the dataset's description and tags →
``upload`` → ``finalize``) so that ClearML can never block eno: the child is killed after
``timeout_s``. The audio/Arrow data stays where it is (the data root); ClearML gets the lineage.
Offline (default, ``CLEARML_OFFLINE_MODE=1``) the session is stored as
``$CLEARML_CACHE_DIR/offline/{id}.zip`` (default ``~/.clearml/cache/offline``); sync it to a server
with ``clearml.Task.import_offline_session(zip)``. ``finalize`` is a no-op offline (ClearML warns
"Cannot finalize dataset in offline mode"); it happens on import.

Measured here (2 cores under load 16-18): 85-270 s per registration, almost all of it ``import
clearml`` + task creation; hence ``registry.clearml_datasets`` is off by default. The result is
read from a file the child writes (ClearML captures the child's stdout); a child that registered
and then crashed in ClearML's exit hooks (seen once under pytest: "exception SystemExit() is not a
BaseException subclass") is recorded as ``ok`` with its ``exit_code``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from eno_hf.utils.io import atomic_write_json

__all__ = ["METADATA_FILES", "register_dataset_version"]

METADATA_FILES = ("dataset_dict.json", "dataset_info.json", "qc_report.json", "qc_rows.jsonl", "README.md", "settings.json")


def register_dataset_version(version_dir: str | Path, name: str, version: str, data_root: str | Path,
                             project: str = "eno", offline: bool = True, timeout_s: float = 300.0,
                             record: str | Path | None = None) -> dict[str, Any]:
    """Register ``version_dir`` as ClearML Dataset ``name`` / ``version`` (never raises).

    Returns:
        ``{"status": "ok", "id": ...}``, or ``{"status": "timeout" | "failed", "detail": ...}``;
        also written to ``record`` (JSON) when given.
    """
    # a fresh ClearML process: not a child of a Task this process (or its parent) started, which
    # ClearML would otherwise attach to through these variables (seen as a failed registration)
    env = {k: v for k, v in os.environ.items()
           if k not in {"CLEARML_PROC_MASTER_ID", "TRAINS_PROC_MASTER_ID", "CLEARML_TASK_ID", "TRAINS_TASK_ID"}}
    if offline:
        env["CLEARML_OFFLINE_MODE"] = "1"
    with tempfile.TemporaryDirectory(prefix="eno-clearml-") as tmp:
        result = Path(tmp) / "result.json"  # not stdout: ClearML captures the child's console
        cmd = [sys.executable, "-m", "eno_hf.registry.clearml_dataset", str(version_dir), name, version,
               str(Path(data_root).resolve()), project, "1" if offline else "0", str(result)]
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s)
            if result.is_file():  # registered; a crash in ClearML's exit hooks is recorded, not fatal
                out = {"status": "ok", **json.loads(result.read_text(encoding="utf-8")),
                       **({"exit_code": proc.returncode, "detail": proc.stderr[-2000:]} if proc.returncode else {})}
            else:
                out = {"status": "failed", "detail": (proc.stderr or proc.stdout)[-2000:]}
        except subprocess.TimeoutExpired:
            out = {"status": "timeout", "detail": f"ClearML registration took more than {timeout_s:g} s (killed)"}
    if record is not None:
        atomic_write_json(record, out)
    return out


def _main(argv: list[str]) -> None:
    version_dir, name, version, data_root, project, offline, result = argv
    from clearml import Dataset, Task

    if offline == "1":
        Task.set_offline(True)
    ds = Dataset.create(dataset_name=name, dataset_project=project, dataset_version=None,
                        description=f"eno dataset {name} version {version}; data in {data_root}/datasets/{name}/{version}",
                        dataset_tags=[f"version:{version}", "eno"])
    files = [p for f in METADATA_FILES for p in Path(version_dir).rglob(f) if p.is_file()]
    for p in files:
        ds.add_files(str(p), dataset_path=str(p.parent.relative_to(version_dir)))
    ds.upload()
    ds.finalize()
    atomic_write_json(result, {"id": ds.id, "files": [str(p.relative_to(version_dir)) for p in files],
                               "offline": offline == "1"})


if __name__ == "__main__":
    _main(sys.argv[1:])
