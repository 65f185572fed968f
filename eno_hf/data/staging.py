"""Owned temporaries of a dataset build, and safe removal of the ones a killed build left.

A build writes a version into ``{data_root}/datasets/{name}/.{version}.tmp-XXXX/`` and moves it
into place at the end; per-file results are written to temporaries in
``{data_root}/cache/segments/`` and its sub-folders (``{content_hash[:2]}/``) and renamed. A ``kill -9`` leaves these behind. They are removed
by the next build, but only when no live process owns them:

- staging folders hold ``.owner.lock`` (JSON: pid, host, created) on which the building process
  keeps an exclusive ``fcntl.flock`` until it is done; a folder whose lock can be taken is
  orphaned (the kernel drops the lock of a dead process, also over NFS v4 through POSIX locks).
  A folder without a lock file (killed between ``mkdtemp`` and the lock) is orphaned once it is
  older than ``UNLOCKED_GRACE_S``;
- cache temporaries are named ``.{final name}.{host}-{pid}.XXXX`` (``cache_temp_prefix``); one is
  orphaned when it was made on this host by a pid that no longer exists (other hosts' files are
  left alone).

Example::

    >>> tmp = make_staging_dir(parent, version)      # locked, owned by this process
    >>> ...write into tmp...
    >>> release_staging_dir(tmp)                      # unlock and remove
    >>> remove_stale(parent, cache_dir)              # in the next build: [paths removed]
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

from eno_hf.utils.io import owned_temp_prefix

log = logging.getLogger(__name__)

__all__ = ["LOCK_NAME", "UNLOCKED_GRACE_S", "make_staging_dir", "release_staging_dir",
           "cache_temp_prefix", "remove_stale"]

LOCK_NAME = ".owner.lock"
UNLOCKED_GRACE_S = 600.0
"""A staging folder without its lock file is left alone for this long (it may be being made)."""

_HELD: dict[str, int] = {}
"""Staging folder -> fd of its held lock (this process)."""


def _host() -> str:
    return socket.gethostname().replace("-", "_").replace(".", "_") or "host"


def make_staging_dir(parent: str | Path, version: str) -> Path:
    """Create ``parent/.{version}.tmp-XXXX/`` holding an exclusively locked ``.owner.lock``.

    The lock stays held (fd kept open) until ``release_staging_dir`` or process exit.
    """
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}.tmp-", dir=parent))
    fd = os.open(tmp / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "created": time.time()}).encode())
    _HELD[str(tmp)] = fd
    return tmp


def release_staging_dir(tmp: str | Path) -> None:
    """Remove the staging folder (whatever is left of it) and drop its lock."""
    shutil.rmtree(tmp, ignore_errors=True)
    fd = _HELD.pop(str(tmp), None)
    if fd is not None:
        os.close(fd)


cache_temp_prefix = owned_temp_prefix
"""Prefix of a temporary for ``final`` in its folder: ``.{name}.{host}-{pid}.`` (``eno_hf.utils.io``)."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _staging_orphaned(tmp: Path) -> bool:
    lock = tmp / LOCK_NAME
    if str(tmp) in _HELD:
        return False
    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        try:
            return time.time() - tmp.stat().st_mtime > UNLOCKED_GRACE_S
        except FileNotFoundError:
            return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # a live process holds it
    finally:
        os.close(fd)  # closing drops our probe lock too
    return True


def _cache_temp_orphaned(path: Path) -> bool:
    host = _host()
    parts = path.name.rsplit(".", 2)  # [".{final}", "{host}-{pid}", "XXXX"]
    if len(parts) != 3 or "-" not in parts[1]:
        return False
    owner_host, _, pid = parts[1].rpartition("-")
    return owner_host == host and pid.isdigit() and not _pid_alive(int(pid))


def remove_stale(datasets_parent: str | Path | None = None,
                 cache_dir: str | Path | None = None) -> list[Path]:
    """Remove orphaned temporaries of killed builds (see the module docstring). Returns them.

    Args:
        datasets_parent: ``{data_root}/datasets/{name}`` (staging folders ``.*.tmp-*``).
        cache_dir: ``{data_root}/cache/segments`` (temporaries ``.*.{host}-{pid}.*``, in it and
            in its sub-folders one level down; one ``scandir`` per folder, no ``stat`` per file).
    """
    removed: list[Path] = []
    if datasets_parent is not None and Path(datasets_parent).is_dir():
        for tmp in sorted(Path(datasets_parent).glob(".*.tmp-*")):
            if tmp.is_dir() and _staging_orphaned(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
                removed.append(tmp)
    if cache_dir is not None and Path(cache_dir).is_dir():
        folders = [str(cache_dir)]
        with os.scandir(cache_dir) as top:
            folders += sorted(e.path for e in top if not e.name.startswith(".") and e.is_dir())
        for folder in folders:
            try:
                with os.scandir(folder) as entries:
                    stale = [Path(e.path) for e in entries if e.name.startswith(".") and e.is_file()
                             and _cache_temp_orphaned(Path(e.path))]
            except OSError:  # removed meanwhile
                continue
            for path in stale:
                path.unlink(missing_ok=True)
                removed.append(path)
    if removed:
        log.info("removed %d temporaries left by killed builds: %s", len(removed),
                 ", ".join(str(p) for p in removed[:5]))
    return removed
