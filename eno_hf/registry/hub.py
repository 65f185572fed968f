"""A local model hub: a folder of named, versioned model directories.

Layout::

    {hub_dir}/{name}/v1/            copy of the model directory (config.json, model.safetensors, ...)
    {hub_dir}/{name}/v1/registry.json   {name, version, created, source, content_sha256, metadata}
    {hub_dir}/{name}/v2/ ...
    {hub_dir}/{name}/latest         text file holding the latest version string ("v2")

Versions are ``v{N}``, N = 1 + the highest existing N (never reused). Each ``registry.json`` also
records ``content_sha256``: a hash over the copied files (relative path + bytes), so identical models
registered twice can be recognised. Registering is atomic per version: files are copied into a
temporary folder that is renamed into place, and ``latest`` is replaced atomically; claiming
the version number and moving ``latest`` happen under a ``filelock`` lock (``{name}/.lock``), so
concurrent writers (other processes, other machines on a shared hub) get distinct versions and
``latest`` names the newest.

``resolve`` turns a spec into a model directory: an existing directory path, ``name`` (latest) or
``name@version`` (``name@latest`` also works).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock

from eno_hf.utils.io import atomic_write_json, read_pointer, to_jsonable, write_pointer

REGISTRY_FILE = "registry.json"
LATEST_FILE = "latest"
LOCK_FILE = ".lock"
LOCK_TIMEOUT_S = 600
_VERSION_RE = re.compile(r"^v(\d+)$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _check_name(name: str) -> None:
    if not _NAME_RE.match(name or ""):
        raise ValueError(f"invalid model name {name!r}: use letters, digits, '.', '_' or '-'")


def _versions(model_root: Path) -> list[str]:
    if not model_root.is_dir():
        return []
    found = [(int(m.group(1)), p.name) for p in model_root.iterdir()
             if p.is_dir() and (m := _VERSION_RE.match(p.name))]
    return [v for _, v in sorted(found)]


def content_hash(directory: str | Path) -> str:
    """SHA-256 hex over every file under ``directory`` (sorted relative paths + bytes, streamed).

    ``registry.json`` is left out so a registered copy hashes like its source.
    """
    root = Path(directory)
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != REGISTRY_FILE):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def register(model_dir: str | Path, hub_dir: str | Path, name: str, metadata: dict[str, Any] | None = None
             ) -> Path:
    """Copy ``model_dir`` into ``{hub_dir}/{name}/v{N}/`` and point ``latest`` at it.

    Args:
        model_dir: a saved model directory (must contain ``config.json``).
        hub_dir: hub root (created if needed).
        name: model name (letters, digits, ``._-``).
        metadata: JSON-serialisable facts stored in ``registry.json`` under ``metadata`` (e.g.
            ``metrics``, ``dataset`` version, run settings).

    Returns:
        The new version directory.

    Raises:
        FileNotFoundError: ``model_dir`` missing or without ``config.json``.
        ValueError: invalid ``name``.
    """
    src = Path(model_dir)
    if not (src / "config.json").is_file():
        raise FileNotFoundError(f"{src}: not a saved model directory (no config.json)")
    _check_name(name)
    root = Path(hub_dir) / name
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    try:
        shutil.copytree(src, tmp / "model", ignore=shutil.ignore_patterns(REGISTRY_FILE))
        staged = tmp / "model"
        info: dict[str, Any] = {
            "name": name,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "source": str(src.resolve()),
            "content_sha256": content_hash(staged),
            "metadata": to_jsonable(metadata or {}),
        }
        # Claim the next version and move the pointer under one lock (filelock; a lock file beside
        # the versions, so writers on other machines sharing the hub over NFS take it too): the
        # slow copy above runs unlocked, ``latest`` never goes back to an older version.
        with FileLock(str(root / LOCK_FILE), timeout=LOCK_TIMEOUT_S):
            existing = _versions(root)
            version = f"v{int(existing[-1][1:]) + 1 if existing else 1}"
            info["version"] = version
            atomic_write_json(staged / REGISTRY_FILE, info, sanitize=False)
            target = root / version
            os.rename(staged, target)
            write_pointer(root / LATEST_FILE, version)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def latest_version(hub_dir: str | Path, name: str) -> str:
    """The version named in ``{hub}/{name}/latest`` (or the highest ``v{N}`` if that file is missing).

    Raises:
        FileNotFoundError: no version of ``name`` is registered.
    """
    root = Path(hub_dir) / name
    version = read_pointer(root / LATEST_FILE)
    if version and (root / version).is_dir():
        return version
    versions = _versions(root)
    if not versions:
        raise FileNotFoundError(f"no model {name!r} registered in {hub_dir}")
    return versions[-1]


def resolve(spec: str | Path, hub_dir: str | Path | None = None) -> Path:
    """Model directory for ``spec``.

    Args:
        spec: an existing directory path; ``name`` (its ``latest`` version); ``name@v3``;
            ``name@latest``.
        hub_dir: hub root (needed unless ``spec`` is a directory).

    Returns:
        The model directory (contains ``config.json``).

    Raises:
        FileNotFoundError: nothing matches (the message lists registered versions).
    """
    path = Path(spec)
    if path.is_dir():
        return path
    if hub_dir is None:
        raise FileNotFoundError(f"{spec}: not a directory and no hub_dir given")
    name, _, version = str(spec).partition("@")
    if not version or version == "latest":
        version = latest_version(hub_dir, name)
    target = Path(hub_dir) / name / version
    if not target.is_dir():
        known = _versions(Path(hub_dir) / name)
        raise FileNotFoundError(f"{spec}: no such model version in {hub_dir} (registered: {known or 'none'})")
    return target


def list_models(hub_dir: str | Path) -> list[dict[str, Any]]:
    """Every registered version: ``registry.json`` contents plus ``path`` and ``latest`` (bool),
    sorted by name then version number. An absent hub gives ``[]``."""
    hub = Path(hub_dir)
    if not hub.is_dir():
        return []
    out = []
    for root in sorted(p for p in hub.iterdir() if p.is_dir() and not p.name.startswith(".")):
        versions = _versions(root)
        if not versions:
            continue
        latest = latest_version(hub, root.name)
        for v in versions:
            reg = root / v / REGISTRY_FILE
            info = json.loads(reg.read_text(encoding="utf-8")) if reg.is_file() else {"name": root.name, "version": v}
            info.update(path=str(root / v), latest=(v == latest))
            out.append(info)
    return out
