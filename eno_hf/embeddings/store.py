"""Embeddings-only datasets: import ``{segment_id}.pt|.npy`` + ``metadata.jsonl`` with QC, export back.

Layout (the GPU-box workflow; ``eno embed`` writes it, ``export_embeddings`` too)::

    {src}/embeddings/{segment_id}.pt    # (frames, dim) float32 (or (dim,)), torch.save of a tensor
    {src}/embeddings/{segment_id}.npy   # or a NumPy array (np.load(allow_pickle=False))
    {src}/metadata.jsonl                # segment_id, recording_id, segment_start, segment_end, + fields

``import_embeddings`` turns it into a versioned dataset
``{data_root}/datasets/{name}/{version}/`` (``Dataset.save_to_disk`` + ``qc_report.json``;
``LATEST`` updated). Columns: the metadata fields, ``frames`` (int) and ``embedding``
(``list<list<float32>>``, ``(frames, dim)``). The version is a SHA-256 over the sorted
``(segment_id, sha256 of the float32 values and shape)`` pairs and the metadata rows (without the
derived ``frames``), so the same embeddings give the same version whether stored as ``.pt`` or
``.npy``. Every tensor and metadata row ends up in the dataset or in the QC report with a reason:

* ``missing_file``: a metadata row whose tensor is absent;
* ``no_metadata``: a tensor file with no metadata row;
* ``bad_metadata``: a row without ``segment_id``/``recording_id``, an unsafe id (path separators,
  ``..``), a duplicate id, or ``segment_end <= segment_start``;
* ``undecodable``: a file ``torch.load(weights_only=True)`` / ``np.load(allow_pickle=False)`` refuses
  (never unpickled), or that holds no single tensor;
* ``bad_shape``: not 1-D/2-D, zero frames, or a ``dim`` different from the expected one
  (``expected_dim``, else the most common dim in the folder);
* ``bad_dtype``: not a floating-point tensor;
* ``nan_inf``: any NaN or Inf value.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from eno_hf.errors import RejectedInput
from eno_hf.utils.io import atomic_write_json

__all__ = ["ImportResult", "export_embeddings", "import_embeddings", "load_embedding_dataset", "load_tensor",
           "read_metadata"]

SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
REQUIRED = ("segment_id", "recording_id")


@dataclass
class ImportResult:
    """``path`` of the version folder, ``version``, ``accepted`` count, ``rejected`` rows
    (``{"segment_id", "path", "reason", "detail"}``)."""

    path: Path
    version: str
    accepted: int
    rejected: list[dict[str, str]] = field(default_factory=list)


def load_tensor(path: str | Path) -> np.ndarray:
    """Load one embedding file without unpickling: ``.pt`` with ``torch.load(weights_only=True)``,
    ``.npy`` with ``np.load(allow_pickle=False)``.

    Returns:
        the array as stored (not yet checked for shape/dtype/finiteness).

    Raises:
        RejectedInput: ``undecodable`` (unreadable, pickled objects, or not one tensor).
    """
    path = Path(path)
    try:
        if path.suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(obj, dict) and len(obj) == 1:
                obj = next(iter(obj.values()))
            if not isinstance(obj, torch.Tensor):
                raise RejectedInput(path, "undecodable", f"holds a {type(obj).__name__}, not a tensor")
            if obj.dtype == torch.bfloat16:
                obj = obj.float()
            arr = obj.detach().cpu().numpy()
    except RejectedInput:
        raise
    except Exception as exc:  # noqa: BLE001 - torch/numpy raise many types for bad files
        raise RejectedInput(path, "undecodable", f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from exc
    return arr


def check_tensor(arr: np.ndarray, path: str | Path, expected_dim: int | None) -> np.ndarray:
    """Validate and normalise one embedding: -> ``(frames, dim)`` float32.

    Raises:
        RejectedInput: ``bad_dtype``, ``bad_shape`` or ``nan_inf`` (see the module docstring).
    """
    if not np.issubdtype(arr.dtype, np.floating):
        raise RejectedInput(path, "bad_dtype", f"dtype {arr.dtype}, expected a floating-point tensor")
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise RejectedInput(path, "bad_shape", f"shape {tuple(arr.shape)}, expected (frames, dim) or (dim,)")
    if expected_dim is not None and arr.shape[1] != expected_dim:
        raise RejectedInput(path, "bad_shape", f"dim {arr.shape[1]}, expected {expected_dim}")
    arr = arr.astype(np.float32, copy=False)
    bad = int((~np.isfinite(arr)).sum())
    if bad:
        raise RejectedInput(path, "nan_inf", f"{bad} non-finite values")
    return arr


def read_metadata(path: str | Path) -> list[dict[str, Any]]:
    """``metadata.jsonl`` rows (blank lines skipped). Raises ``RejectedInput(bad_metadata)`` on a
    line that is not a JSON object, ``missing_file`` when the file is absent."""
    path = Path(path)
    if not path.is_file():
        raise RejectedInput(path, "missing_file", "metadata.jsonl not found")
    rows = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RejectedInput(path, "bad_metadata", f"line {i}: {exc}") from exc
        if not isinstance(row, dict):
            raise RejectedInput(path, "bad_metadata", f"line {i}: not a JSON object")
        rows.append(row)
    return rows


def _reject(out: list[dict[str, str]], sid: str, path: Any, reason: str, detail: str) -> None:
    out.append({"segment_id": str(sid), "path": str(path or ""), "reason": reason, "detail": detail})


def import_embeddings(src: str | Path, data_root: str | Path, name: str, expected_dim: int | None = None
                      ) -> ImportResult:
    """Import an embeddings folder as a versioned dataset (see the module docstring).

    Args:
        src: folder with ``embeddings/`` and ``metadata.jsonl``.
        data_root: eno data root; the dataset goes to ``{data_root}/datasets/{name}/{version}``.
        name: dataset name.
        expected_dim: required embedding size (default: the most common size found).

    Returns:
        ``ImportResult``.

    Raises:
        RejectedInput: ``metadata.jsonl`` missing or not JSON lines.
        ValueError: nothing could be imported (every reason is in the message).
    """
    from datasets import Dataset

    from eno_hf.data.version import version_dir, write_latest

    src = Path(src)
    emb_dir = src / "embeddings"
    meta = read_metadata(src / "metadata.jsonl")
    files: dict[str, Path] = {}
    for p in sorted(emb_dir.glob("*")) if emb_dir.is_dir() else []:
        if p.suffix in (".pt", ".npy"):
            files.setdefault(p.stem, p)
    rejected: list[dict[str, str]] = []
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for row in meta:
        sid = str(row.get("segment_id", ""))
        missing = [k for k in REQUIRED if row.get(k) in (None, "")]
        if missing:
            _reject(rejected, sid, src / "metadata.jsonl", "bad_metadata", f"missing {missing}")
            continue
        if not SAFE_ID.match(sid) or ".." in sid:
            _reject(rejected, sid, src / "metadata.jsonl", "bad_metadata", "unsafe segment_id (path characters)")
            continue
        if sid in seen:
            _reject(rejected, sid, src / "metadata.jsonl", "bad_metadata", "duplicate segment_id")
            continue
        seen.add(sid)
        start, end = row.get("segment_start"), row.get("segment_end")
        if start is not None and end is not None and float(end) <= float(start):
            _reject(rejected, sid, src / "metadata.jsonl", "bad_metadata", f"segment_end {end} <= segment_start {start}")
            continue
        if sid not in files:
            _reject(rejected, sid, emb_dir / f"{sid}.pt", "missing_file", "no tensor for this metadata row")
            continue
        rows.append(row)
    for sid, p in files.items():
        if sid not in seen:
            _reject(rejected, sid, p, "no_metadata", "tensor without a metadata.jsonl row")
    loaded: list[tuple[dict[str, Any], np.ndarray, str]] = []
    for row in rows:
        p = files[str(row["segment_id"])]
        try:
            arr = load_tensor(p)
            loaded.append((row, arr, ""))
        except RejectedInput as exc:
            _reject(rejected, row["segment_id"], p, exc.reason, exc.detail)
    dims = Counter(a.shape[-1] for _, a, _ in loaded if a.ndim in (1, 2) and np.issubdtype(a.dtype, np.floating))
    dim = expected_dim if expected_dim is not None else (dims.most_common(1)[0][0] if dims else None)
    good: list[tuple[dict[str, Any], np.ndarray, str]] = []
    for row, arr, digest in loaded:
        try:
            arr = check_tensor(arr, files[str(row["segment_id"])], dim)
            digest = hashlib.sha256(repr(arr.shape).encode() + np.ascontiguousarray(arr).tobytes()).hexdigest()
            good.append((row, arr, digest))
        except RejectedInput as exc:
            _reject(rejected, row["segment_id"], exc.path, exc.reason, exc.detail)
    if not good:
        reasons = Counter(r["reason"] for r in rejected)
        raise ValueError(f"{src}: no embedding could be imported ({dict(reasons)})")
    fields = sorted({k for row, _, _ in good for k in row} - {"embedding", "frames"})
    payload = {"format": "eno-embeddings-1", "dim": dim,
               "inputs": sorted([str(r["segment_id"]), d] for r, _, d in good),
               "metadata": sorted(json.dumps({k: v for k, v in r.items() if k != "frames"}, sort_keys=True, default=str)
                                  for r, _, _ in good)}
    version = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
    out = version_dir(data_root, name, version)
    columns: dict[str, list[Any]] = {k: [r.get(k) for r, _, _ in good] for k in fields}
    columns["frames"] = [int(a.shape[0]) for _, a, _ in good]
    columns["embedding"] = [a for _, a, _ in good]
    ds = Dataset.from_dict(columns)
    out.parent.mkdir(parents=True, exist_ok=True)
    ds.save_to_disk(str(out))
    report = {"source": str(src), "name": name, "version": version, "dim": dim, "accepted": len(good),
              "rejected": len(rejected), "reasons": dict(Counter(r["reason"] for r in rejected)),
              "rejections": rejected, "frames_total": int(sum(columns["frames"]))}
    atomic_write_json(out / "qc_report.json", report)
    write_latest(data_root, name, version)
    return ImportResult(out, version, len(good), rejected)


def load_embedding_dataset(data_root: str | Path, name: str, version: str = "latest"):
    """The imported ``datasets.Dataset`` of ``name`` at ``version`` (``latest`` = ``LATEST``)."""
    from datasets import load_from_disk

    from eno_hf.data.version import resolve_version, version_dir

    v = resolve_version(data_root, name, version)
    return load_from_disk(str(version_dir(data_root, name, v)))


def export_embeddings(dataset: Any, out_dir: str | Path, fmt: str = "pt") -> Path:
    """Write an embeddings dataset (rows with ``segment_id`` + ``embedding``) back to the folder layout.

    Args:
        dataset: a ``datasets.Dataset`` or a list of dicts.
        fmt: ``"pt"`` (``torch.save`` of a float32 tensor) or ``"npy"``.

    Returns:
        ``out_dir``. Raises ``ValueError`` on an unsafe ``segment_id`` or unknown ``fmt``.
    """
    if fmt not in ("pt", "npy"):
        raise ValueError(f"unknown format {fmt!r}")
    out = Path(out_dir)
    (out / "embeddings").mkdir(parents=True, exist_ok=True)
    with open(out / "metadata.jsonl", "w", encoding="utf-8") as fh:
        for row in dataset:
            sid = str(row["segment_id"])
            if not SAFE_ID.match(sid) or ".." in sid:
                raise ValueError(f"unsafe segment_id {sid!r}")
            arr = np.asarray(row["embedding"], dtype=np.float32)
            if fmt == "pt":
                torch.save(torch.from_numpy(arr), out / "embeddings" / f"{sid}.pt")
            else:
                np.save(out / "embeddings" / f"{sid}.npy", arr, allow_pickle=False)
            fh.write(json.dumps({k: v for k, v in row.items() if k not in ("embedding", "frames")}) + "\n")
    return out
