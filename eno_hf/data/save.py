"""Writing a split as a ``Dataset.save_to_disk``-compatible folder, streaming from the per-file caches."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from eno_hf.data.arrow import ARRAY_COLUMNS
from eno_hf.utils.io import atomic_write_json

__all__ = ["write_split", "SHARD_ROWS", "WRITER_BATCH_SIZE"]

WRITER_BATCH_SIZE = 32
"""Rows buffered before an Arrow record batch is written (~0.5 MB per 10-s row at 16 kHz)."""

SHARD_ROWS = 1000
"""Rows per Arrow shard (~0.5 GB with 10-s waveforms + features at 16 kHz)."""


def write_split(out_dir: Path, split: str, chunks: Iterable[tuple[list[dict[str, Any]], Any]],
                features: Any, fingerprint: str, shard_rows: int = SHARD_ROWS) -> int:
    """Write rows as a ``Dataset.save_to_disk``-compatible folder, streaming (bounded memory).

    ``chunks`` yields, per recording, its scalar rows (ids, times, labels, audio path, fold:
    encoded here with ``features``, e.g. ClassLabel names -> ids) and a ``pyarrow.Table`` with
    its array columns already in the dataset's Arrow types (the per-file cache, memory-mapped).
    Tables of up to ``WRITER_BATCH_SIZE`` rows are written by
    ``datasets.arrow_writer.ArrowWriter.write_table`` into ``data-XXXXX-of-NNNNN.arrow`` shards
    of at most ``shard_rows`` rows (a recording is never split across shards unless it alone
    exceeds them), followed by ``state.json`` and ``dataset_info.json`` as ``save_to_disk``
    writes them. ``save_to_disk`` itself is not used: it embeds the bytes of every file an
    ``Audio`` column points to (here: the whole source file once per segment), whereas this
    dataset's ``audio`` column is path-based by design. Returns the number of rows.
    """
    import pyarrow as pa
    from datasets import Dataset, Features, concatenate_datasets
    from datasets.arrow_writer import ArrowWriter
    from datasets.utils.py_utils import asdict  # the serializer save_to_disk uses

    out_dir.mkdir(parents=True, exist_ok=True)
    schema = features.arrow_schema
    scalar_names = [k for k in features if k not in ARRAY_COLUMNS]
    scalar_features = Features({k: features[k] for k in scalar_names})
    scalar_schema = pa.schema([schema.field(k) for k in scalar_names])
    files: list[Path] = []
    writer: ArrowWriter | None = None
    buffer: list[Any] = []
    in_shard = n = 0

    def open_writer() -> ArrowWriter:
        files.append(out_dir / f".shard-{len(files):05d}.arrow")
        return ArrowWriter(features=features, path=str(files[-1]),
                           writer_batch_size=WRITER_BATCH_SIZE, embed_local_files=False)

    def flush() -> None:
        if buffer and writer is not None:
            writer.write_table(pa.concat_tables(buffer))
            buffer.clear()

    for rows, arrays in chunks:
        if not rows:
            continue
        if writer is None or (in_shard and in_shard + len(rows) > shard_rows):
            flush()
            if writer is not None:
                writer.finalize()
                writer.close()
            writer, in_shard = open_writer(), 0
        table = pa.Table.from_pylist([scalar_features.encode_example(r) for r in rows],
                                     schema=scalar_schema)
        for col in features:
            if col in ARRAY_COLUMNS:
                table = table.append_column(schema.field(col), arrays[col])
        buffer.append(table.select(list(features)))
        in_shard += len(rows)
        n += len(rows)
        if sum(t.num_rows for t in buffer) >= WRITER_BATCH_SIZE:
            flush()
    if writer is None:  # empty split: one empty shard, as load_from_disk expects
        writer = open_writer()
    flush()
    writer.finalize()
    writer.close()
    names = [f"data-{i:05d}-of-{len(files):05d}.arrow" for i in range(len(files))]
    for f, name in zip(files, names):
        os.replace(f, out_dir / name)
    parts = [Dataset.from_file(str(out_dir / name), split=split) for name in names]
    ds = parts[0] if len(parts) == 1 else concatenate_datasets(parts)
    state = {"_data_files": [{"filename": name} for name in names], "_fingerprint": fingerprint,
             "_format_columns": None, "_format_kwargs": {}, "_format_type": None,
             "_output_all_columns": False, "_split": split}
    info = asdict(ds.info)
    del ds, parts
    atomic_write_json(out_dir / "state.json", state, sort_keys=True, sanitize=False)
    atomic_write_json(out_dir / "dataset_info.json", {k: info[k] for k in sorted(info)}, sanitize=False)
    return n
