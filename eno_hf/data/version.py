"""Dataset versions: content-addressed ids and the on-disk layout of versioned datasets.

A version is ``sha256`` over (a) ``BUILD_FORMAT``, the dataset config hash (everything in
``DatasetConfig`` except ``num_workers``) and a hash of small build metadata (vocabularies, ...),
(b) the ``(recording_id, content_hash)`` pairs of the inputs sorted by id and (c) one row per
recording (cleaned labels, group, time range; ``eno_hf.data.build.dataset_version``) — shortened
to ``VERSION_LENGTH`` hex digits. (b) and (c) are fed to the hash one row at a time, never held
as one document, so millions of recordings cost linear time and no extra memory. The same audio +
metadata + config always gives the same version; changing any byte of any input, a label, or a
setting gives a new one.

Layout (see docs/architecture.md)::

    {data_root}/datasets/{name}/LATEST            latest version string
    {data_root}/datasets/{name}/{version}/        DatasetDict.save_to_disk + README.md,
                                                  qc_report.json, settings.json
    {data_root}/cache/segments/{content_hash[:2]}/{content_hash}-{processing_hash}-f{N}.arrow
                                                  per-file results (``eno_hf.data.file_cache``)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from eno_hf.config import DatasetConfig
from eno_hf.utils.io import json_hash, read_pointer, write_pointer

__all__ = [
    "BUILD_FORMAT", "PROCESSING_FORMAT", "VERSION_LENGTH", "dataset_config_hash", "processing_hash", "compute_version",
    "datasets_dir", "version_dir", "read_latest", "write_latest", "resolve_version",
    "segment_cache_dir",
]

BUILD_FORMAT = "eno-build-2"
"""Bumped when the row layout/columns or the way versions are hashed change, so old versions are
never reused by mistake (a bump rebuilds every dataset once; per-file results are kept: they
depend on ``PROCESSING_FORMAT``). ``eno-build-2``: versions hashed row by row."""

PROCESSING_FORMAT = "eno-build-1"
"""Bumped when per-file results (``eno_hf.data.file_cache``) change layout: part of
``processing_hash``, so a bump reprocesses every file."""

VERSION_LENGTH = 16
"""Hex digits kept from the SHA-256 version hash (64 bits)."""

_EXCLUDE_FROM_VERSION = {"num_workers", "download"}


def dataset_config_hash(cfg: DatasetConfig, length: int = 16) -> str:
    """Short SHA-256 of the dataset config (sorted-key JSON) without ``num_workers``, ``download``."""
    data = cfg.model_dump(mode="json", exclude=_EXCLUDE_FROM_VERSION)
    return json_hash(data)[:length]


def processing_hash(cfg: DatasetConfig, length: int = 12) -> str:
    """Short SHA-256 of what decides per-file results: ``audio``, ``segment``, ``features``.

    Used in per-file cache names, so relabelling or re-splitting never reprocesses audio.
    """
    data = {"format": PROCESSING_FORMAT, "audio": cfg.audio.model_dump(mode="json"),
            "segment": cfg.segment.model_dump(mode="json"),
            "features": cfg.features.model_dump(mode="json")}
    return json_hash(data)[:length]


HASH_BATCH_ROWS = 8192
"""Rows joined into one ``sha256.update`` call."""


def compute_version(content_hashes: Iterable[tuple[str, str]], cfg: DatasetConfig,
                    metadata: Any = None, rows: Iterable[Any] = ()) -> str:
    """Content-addressed dataset version, hashed incrementally (``hashlib.sha256``).

    Args:
        content_hashes: ``(recording_id, sha256 of the file bytes)`` for every input, any order
            (sorted here; already sorted by id costs one pass).
        cfg: the dataset config (``num_workers`` is ignored).
        metadata: small JSON-able build metadata (vocabularies, format numbers), hashed as
            sorted-key JSON; None if there is none.
        rows: JSON-able items (lists of str/number/None), fed one at a time in the order given
            (callers sort them, e.g. by recording id): the per-recording labels of a dataset of
            any size, never held as one document.

    Returns:
        ``VERSION_LENGTH`` lower-case hex digits.
    """
    h = hashlib.sha256()
    head = {"format": BUILD_FORMAT, "config": dataset_config_hash(cfg, length=64),
            "metadata": json_hash(metadata)}
    h.update(json.dumps(head, sort_keys=True).encode() + b"\ninputs\n")
    # length-prefixed: no id can make two different lists hash alike
    _feed(h, (f"{len(rid)}:{rid}{len(content)}:{content}\n" for rid, content in sorted(content_hashes)))
    h.update(b"rows\n")
    encode = json.JSONEncoder(separators=(",", ":"), default=str).encode  # ASCII, one line each
    _feed(h, (encode(row) + "\n" for row in rows))
    return h.hexdigest()[:VERSION_LENGTH]


def _feed(h: Any, lines: Iterable[str]) -> None:
    """``h.update`` with ``lines`` (UTF-8), ``HASH_BATCH_ROWS`` at a time."""
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= HASH_BATCH_ROWS:
            h.update("".join(batch).encode("utf-8", "surrogatepass"))
            batch.clear()
    if batch:
        h.update("".join(batch).encode("utf-8", "surrogatepass"))


def datasets_dir(data_root: str | Path, name: str) -> Path:
    """``{data_root}/datasets/{name}``."""
    return Path(data_root) / "datasets" / name


def version_dir(data_root: str | Path, name: str, version: str) -> Path:
    """``{data_root}/datasets/{name}/{version}``."""
    return datasets_dir(data_root, name) / version


def segment_cache_dir(data_root: str | Path) -> Path:
    """``{data_root}/cache/segments`` (per-file processing results)."""
    return Path(data_root) / "cache" / "segments"


def read_latest(data_root: str | Path, name: str) -> str | None:
    """The version in ``{data_root}/datasets/{name}/LATEST``, or None if there is none."""
    return read_pointer(datasets_dir(data_root, name) / "LATEST")


def write_latest(data_root: str | Path, name: str, version: str) -> Path:
    """Atomically write ``LATEST`` (temp file + ``os.replace``). Returns its path."""
    return write_pointer(datasets_dir(data_root, name) / "LATEST", version)


def resolve_version(data_root: str | Path, name: str, version: str = "latest") -> str:
    """``version`` itself, or the content of ``LATEST`` when ``version == "latest"``.

    Raises:
        FileNotFoundError: ``latest`` requested and no ``LATEST`` file, or the version folder
            does not exist.
    """
    if version == "latest":
        v = read_latest(data_root, name)
        if v is None:
            raise FileNotFoundError(f"no LATEST under {datasets_dir(data_root, name)}: "
                                    f"build dataset {name!r} first")
        version = v
    if not version_dir(data_root, name, version).is_dir():
        raise FileNotFoundError(f"dataset version not found: {version_dir(data_root, name, version)}")
    return version
