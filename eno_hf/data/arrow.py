"""The built dataset's Arrow types: ``dataset_features`` (the ``datasets.Features``), and the
numpy ↔ Arrow conversion of the per-segment array columns (``array_column``, ``row_to_numpy``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from eno_hf.config import DatasetConfig

__all__ = ["ARRAY_COLUMNS", "dataset_features", "array_column", "array_types", "row_to_numpy"]

ARRAY_COLUMNS = ("waveform", "log_mel", "mfcc", "fingerprint")
"""Per-segment array columns (each present only when enabled in ``FeaturesConfig``)."""


def dataset_features(cfg: DatasetConfig, vocab: dict[str, list[str]], multilabel: Sequence[str],
                     singlelabel: Sequence[str], numeric: Sequence[str], with_fold: bool = False):
    """The ``datasets.Features`` of a built dataset (see docs/architecture.md, "Columns")."""
    from datasets import Audio, ClassLabel, Features, List, Value

    f: dict[str, Any] = {
        "segment_id": Value("string"), "recording_id": Value("string"),
        "group": Value("string"), "path": Value("string"),
        "segment_start_s": Value("float32"), "segment_end_s": Value("float32"),
    }
    for t in multilabel:
        f[t] = List(ClassLabel(names=list(vocab.get(t, []))))
    for t in singlelabel:
        f[t] = ClassLabel(names=list(vocab.get(t, [])))
    for t in numeric:
        f[t] = Value("float32")
    feats = cfg.features
    if feats.waveform:
        f["waveform"] = List(Value("float16"))
    if feats.log_mel:
        f["log_mel"] = List(List(Value("float16")))
    if feats.mfcc:
        f["mfcc"] = List(List(Value("float32")))
    if feats.fingerprint:
        f["fingerprint"] = List(Value("float32"), length=64)
    if cfg.audio_column:
        f["audio"] = Audio(decode=True)
    if with_fold:
        f["fold"] = Value("int32")
    return Features(f)




def array_column(arrays: list[np.ndarray], arrow_type: Any) -> Any:
    """Per-row numpy arrays -> one Arrow array of ``arrow_type`` (list, list of lists, or
    fixed-size list of a float), built from one concatenated buffer and offsets (no per-row
    Python objects; ``datasets`` would flatten and convert every row separately)."""
    import pyarrow as pa

    def build(parts: list[np.ndarray], typ: Any) -> Any:
        if pa.types.is_fixed_size_list(typ):
            flat = np.concatenate([np.ravel(p) for p in parts]) if parts else np.zeros(0)
            return pa.FixedSizeListArray.from_arrays(build_values(flat, typ.value_type),
                                                     typ.list_size)
        lengths = np.fromiter((len(p) for p in parts), dtype=np.int64, count=len(parts))
        offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
        inner = [row for p in parts for row in p] if pa.types.is_list(typ.value_type) else None
        if inner is not None:
            values = build(inner, typ.value_type)
        else:
            flat = np.concatenate([np.ravel(p) for p in parts]) if parts else np.zeros(0)
            values = build_values(flat, typ.value_type)
        return pa.ListArray.from_arrays(offsets, values, type=typ)

    def build_values(flat: np.ndarray, typ: Any) -> Any:
        return pa.array(np.ascontiguousarray(flat, dtype=typ.to_pandas_dtype()), type=typ)

    return build(arrays, arrow_type)


def array_types(cfg: DatasetConfig) -> dict[str, Any]:
    """Arrow types of the enabled array columns, as ``dataset_features`` declares them."""
    schema = dataset_features(cfg, {}, [], [], []).arrow_schema
    return {c: schema.field(c).type for c in ARRAY_COLUMNS if c in schema.names}


def row_to_numpy(value: Any) -> np.ndarray:
    """One Arrow list value (``list``/``list<list>``/fixed-size list of floats) as numpy."""
    import pyarrow as pa

    arr = value.values
    if pa.types.is_list(arr.type):
        flat = arr.flatten().to_numpy(zero_copy_only=False)
        return flat.reshape(len(arr), -1) if len(arr) else flat.reshape(0, 0)
    return arr.to_numpy(zero_copy_only=False)
