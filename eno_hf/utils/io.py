"""The one place for atomic writes, pointer files, JSON hashing and JSON sanitising.

- ``atomic_write(path, write, binary=True)``: ``write(fh)`` into a temporary file in the target's
  folder, then ``os.replace`` it into place (readers see the old file or the new one, never a
  partial one; POSIX ``rename(2)`` is atomic within one file system, NFS included). A failed
  ``write`` leaves no temporary file behind.
- ``atomic_write_text``/``atomic_write_json``: the same for text and (strict, sanitised) JSON.
- ``write_pointer``/``read_pointer``: a one-line text file naming the current version of
  something (``datasets/{name}/LATEST``, ``hub/{name}/latest``).
- ``json_hash(obj, length)``: SHA-256 hex of the canonical JSON of ``obj`` (sorted keys, compact
  separators, ``default=str``): every config, cache and version key in eno.
- ``to_jsonable(obj)``: numpy scalars/arrays → Python, NaN/±inf → ``None``, paths → ``str``,
  sets → sorted lists, mapping keys → ``str``; anything else unknown → ``str(obj)``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

__all__ = ["owned_temp_prefix", "atomic_write", "atomic_write_text", "atomic_write_json", "write_pointer", "read_pointer",
           "json_hash", "to_jsonable"]


def owned_temp_prefix(final: str | Path) -> str:
    """Prefix of a temporary for ``final`` in its folder: ``.{name}.{host}-{pid}.``, so a later
    process can tell an orphan of a killed process from a live writer's file
    (``eno_hf.data.staging.remove_stale``)."""
    host = socket.gethostname().replace("-", "_").replace(".", "_") or "host"
    return f".{Path(final).name}.{host}-{os.getpid()}."


def atomic_write(path: str | Path, write: Callable[[IO[Any]], Any], binary: bool = True) -> Path:
    """Write ``path`` atomically: ``write(fh)`` into a temp file beside it (named by
    ``owned_temp_prefix``), then ``os.replace``.

    Args:
        path: destination; its parent folders are created.
        write: called once with the open temp file (``"wb"`` when ``binary`` else ``"w"`` UTF-8).
        binary: open mode of the temp file.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        Whatever ``write`` or the file system raises; the temp file is removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=owned_temp_prefix(path), dir=path.parent)
    try:
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")) as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """``atomic_write`` of a UTF-8 text. Returns ``path``."""
    return atomic_write(path, lambda fh: fh.write(text), binary=False)


def atomic_write_json(path: str | Path, obj: Any, indent: int | None = 2, sort_keys: bool = False) -> Path:
    """Write ``to_jsonable(obj)`` as strict JSON (NaN → ``null``) plus a newline, atomically."""
    text = json.dumps(to_jsonable(obj), indent=indent, sort_keys=sort_keys, ensure_ascii=False,
                      allow_nan=False)
    return atomic_write_text(path, text + "\n")


def write_pointer(path: str | Path, value: str) -> Path:
    """Atomically write a pointer file holding ``value`` (one line). Returns ``path``."""
    return atomic_write_text(path, value.strip() + "\n")


def read_pointer(path: str | Path) -> str | None:
    """The value of a pointer file, or ``None`` when it is missing or empty."""
    p = Path(path)
    if not p.is_file():
        return None
    return p.read_text(encoding="utf-8").strip() or None


def json_hash(obj: Any, length: int | None = None) -> str:
    """SHA-256 hex digest of ``json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)``.

    Args:
        obj: JSON-like data (pydantic models: pass ``model.model_dump(mode="json")``).
        length: keep this many leading hex digits (``None``: all 64).
    """
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")
    digest = hashlib.sha256(blob).hexdigest()
    return digest if length is None else digest[:length]


def to_jsonable(obj: Any) -> Any:
    """Strict-JSON version of ``obj`` (see the module docstring); containers are copied."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return [to_jsonable(v) for v in sorted(obj, key=str)]
    if type(obj).__module__ == "numpy":
        if hasattr(obj, "tolist"):  # ndarray and numpy scalars
            return to_jsonable(obj.tolist())
        return str(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "model_dump"):  # pydantic models
        return to_jsonable(obj.model_dump(mode="json"))
    return str(obj)
