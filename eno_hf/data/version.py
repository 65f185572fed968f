"""Dataset versions: content-addressed ids and the on-disk layout of versioned datasets.

A version is ``sha256`` over (a) the sorted ``(recording_id, content_hash)`` pairs of the inputs,
(b) a hash of their cleaned labels/groups/time ranges, (c) the dataset config hash (everything
in ``DatasetConfig`` except ``num_workers``) and (d) ``BUILD_FORMAT`` — shortened to
``VERSION_LENGTH`` hex digits. The same audio + metadata + config always gives the same version;
changing any byte of any input, a label, or a setting gives a new one.

Layout (see docs/architecture.md)::

    {data_root}/datasets/{name}/LATEST            latest version string
    {data_root}/datasets/{name}/{version}/        DatasetDict.save_to_disk + README.md,
                                                  qc_report.json, settings.json
    {data_root}/cache/segments/{content_hash}-{processing_hash}.arrow per-file results
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from eno_hf.config import DatasetConfig
from eno_hf.utils.io import json_hash, read_pointer, write_pointer

__all__ = [
    "BUILD_FORMAT", "VERSION_LENGTH", "dataset_config_hash", "processing_hash", "compute_version",
    "datasets_dir", "version_dir", "read_latest", "write_latest", "resolve_version",
    "segment_cache_dir",
]

BUILD_FORMAT = "eno-build-1"
"""Bumped when the row layout/columns change, so old versions are never reused by mistake."""

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
    data = {"format": BUILD_FORMAT, "audio": cfg.audio.model_dump(mode="json"),
            "segment": cfg.segment.model_dump(mode="json"),
            "features": cfg.features.model_dump(mode="json")}
    return json_hash(data)[:length]


def compute_version(content_hashes: Iterable[tuple[str, str]], cfg: DatasetConfig,
                    metadata: Any = None) -> str:
    """Content-addressed dataset version.

    Args:
        content_hashes: ``(recording_id, sha256 of the file bytes)`` for every input.
        cfg: the dataset config (``num_workers`` is ignored).
        metadata: JSON-able description of labels/groups/time ranges (order-insensitive lists
            should be sorted by the caller); None if labels are not to be included.

    Returns:
        ``VERSION_LENGTH`` lower-case hex digits.
    """
    payload = {
        "format": BUILD_FORMAT,
        "inputs": sorted([list(pair) for pair in content_hashes]),
        "config": dataset_config_hash(cfg, length=64),
        "metadata": json_hash(metadata),
    }
    return json_hash(payload)[:VERSION_LENGTH]


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
