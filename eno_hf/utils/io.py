"""The one place for atomic writes, pointer files, file and JSON hashing and JSON sanitising.

- ``atomic_path(path)``: a temporary path in the target's folder for a writer that wants a path (a
  subprocess, a library); on success it is ``os.replace`` d into place (readers see the old file or
  the new one, never a partial one; POSIX ``rename(2)`` is atomic within one file system, NFS
  included). A failure leaves no temporary file behind.
- ``atomic_write(path, write, binary=True, fsync=False)``: ``write(fh)`` into such a temporary.
- ``atomic_write_text``/``atomic_write_json``: the same for text and strict JSON (sanitised, or
  refused when ``sanitize=False``).
- ``file_digest(path)``/``file_sha256(path)``: SHA-256 of a file's bytes, streamed
  (``hashlib.file_digest``): content hashes, cache keys, download manifests.
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
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["owned_temp_prefix", "atomic_path", "atomic_write", "atomic_write_text", "atomic_write_json", "write_pointer",
           "read_pointer", "file_digest", "file_sha256", "json_hash", "to_jsonable"]


def owned_temp_prefix(final: str | Path) -> str:
    """Prefix of a temporary for ``final`` in its folder: ``.{name}.{host}-{pid}.``, so a later
    process can tell an orphan of a killed process from a live writer's file
    (``eno_hf.data.staging.remove_stale``)."""
    host = socket.gethostname().replace("-", "_").replace(".", "_") or "host"
    return f".{Path(final).name}.{host}-{os.getpid()}."


@contextmanager
def atomic_path(path: str | Path, prefix: str | None = None, suffix: str = "") -> Iterator[Path]:
    """A temporary file beside ``path`` to write; on a clean exit it replaces ``path`` (``os.replace``).

    Args:
        path: destination; its parent folders are created.
        prefix: name prefix of the temporary (default ``owned_temp_prefix(path)``, so cleaners can
            tell a dead writer's orphan from a live one's file).
        suffix: name suffix of the temporary (a program that picks the format by extension).

    Yields:
        The temporary's ``Path`` (created empty, mode 0600, as ``tempfile.mkstemp`` makes it).

    Raises:
        Whatever the body or the file system raises; the temporary is removed first and ``path``
        is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=owned_temp_prefix(path) if prefix is None else prefix, suffix=suffix,
                                dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | Path, write: Callable[[IO[Any]], Any], binary: bool = True,
                 fsync: bool = False) -> Path:
    """Write ``path`` atomically: ``write(fh)`` into an ``atomic_path`` temporary, then ``os.replace``.

    Args:
        path: destination; its parent folders are created.
        write: called once with the open temp file (``"wb"`` when ``binary`` else ``"w"`` UTF-8).
        binary: open mode of the temp file.
        fsync: flush the bytes to the device before the rename (the file then survives a power
            loss, not only a crash of the process; slower, for files written rarely).

    Returns:
        ``path`` as a ``Path``.

    Raises:
        Whatever ``write`` or the file system raises; the temp file is removed first.
    """
    with atomic_path(path) as tmp:
        with open(tmp, "wb") if binary else open(tmp, "w", encoding="utf-8") as fh:
            write(fh)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
    return Path(path)


def atomic_write_text(path: str | Path, text: str, fsync: bool = False) -> Path:
    """``atomic_write`` of a UTF-8 text. Returns ``path``."""
    return atomic_write(path, lambda fh: fh.write(text), binary=False, fsync=fsync)


def atomic_write_json(path: str | Path, obj: Any, indent: int | None = 2, sort_keys: bool = False,
                      sanitize: bool = True, fsync: bool = False) -> Path:
    """Write ``obj`` as strict JSON plus a newline, atomically (``atomic_write``). Returns ``path``.

    Args:
        sanitize: write ``to_jsonable(obj)`` (NaN/±inf → ``null``, numpy → Python, paths → ``str``);
            ``False`` writes ``obj`` as it is.

    Raises:
        ValueError: ``sanitize=False`` and ``obj`` holds NaN or ±inf (nothing is written).
        TypeError: ``sanitize=False`` and ``obj`` holds something JSON does not know.
    """
    text = json.dumps(to_jsonable(obj) if sanitize else obj, indent=indent, sort_keys=sort_keys,
                      ensure_ascii=False, allow_nan=False)
    return atomic_write_text(path, text + "\n", fsync=fsync)


def write_pointer(path: str | Path, value: str) -> Path:
    """Atomically write a pointer file holding ``value`` (one line). Returns ``path``."""
    return atomic_write_text(path, value.strip() + "\n")


def read_pointer(path: str | Path) -> str | None:
    """The value of a pointer file, or ``None`` when it is missing or empty."""
    p = Path(path)
    if not p.is_file():
        return None
    return p.read_text(encoding="utf-8").strip() or None


def file_digest(path: str | Path) -> "hashlib._Hash":
    """SHA-256 hash object of the bytes of the file at ``path``, read in blocks (``hashlib.file_digest``);
    update it further for a key that covers more than the file.

    Raises:
        OSError: the file cannot be opened or read (``FileNotFoundError``, ``IsADirectoryError``...).
    """
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256")


def file_sha256(path: str | Path) -> str:
    """SHA-256 hex digest (64 characters) of the bytes of the file at ``path`` (``file_digest``).

    Raises:
        OSError: the file cannot be opened or read.
    """
    return file_digest(path).hexdigest()


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
