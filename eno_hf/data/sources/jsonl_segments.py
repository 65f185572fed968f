"""JSONL segment adapter: one JSON object per line, each a time range of a recording.

Schema (one object per line; blank lines are ignored)::

    {"segment_id": "song1_a", "recording_id": "song1", "segment_start": 0.0, "segment_end": 12.5,
     "path": "albums/song1.flac", "moods": ["calm", "dreamy"], "genre": "ambient", "energy": 0.2}

- required: ``segment_id``, ``recording_id``, ``segment_start``, ``segment_end`` (seconds,
  ``0 <= start < end``);
- path: ``path_column`` field (default ``"path"``), else ``path_template`` over the object, else a
  file under audio_root whose stem equals ``recording_id``;
- labels: the fields named by ``multilabel`` (list, or string split on the separator),
  ``singlelabel`` and ``numeric`` in ``SourceConfig``;
- ``Recording.recording_id`` = ``segment_id``; ``start_s``/``end_s`` = the range;
  ``group`` = the ``group_column`` field if configured, else ``recording_id``, so segments of one
  recording never cross splits; ``extra["source_recording_id"]`` = ``recording_id``.

Rejected: a line that is not a JSON object, lacks a required field, or has a bad time range or
number -> ``bad_metadata`` (detail ``"line N: ..."``).

Example: with ``multilabel: {moods: {column: moods}}``, ``singlelabel: {genre: genre}`` the line
above gives ``Recording("song1_a", .../albums/song1.flac, multilabel={"moods": ["calm", "dreamy"]},
singlelabel={"genre": "ambient"}, group="song1", start_s=0.0, end_s=12.5)``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from eno_hf.config import SourceConfig
from eno_hf.data.recording import Recording
from eno_hf.data.sources import (AudioIndex, candidate_path, check_utf8, decode_text, locate,
                                 make_index, metadata_path, row_rejection, split_tags, to_float,
                                 to_label)
from eno_hf.errors import MetadataError

REQUIRED = ("segment_id", "recording_id", "segment_start", "segment_end")


def object_to_recording(obj: Any, cfg: SourceConfig, index: AudioIndex) -> Recording:
    """One JSON object -> ``Recording``. Raises ``ValueError`` on a bad object."""
    if not isinstance(obj, dict):
        raise ValueError(f"a {type(obj).__name__}, not an object")
    missing = [k for k in REQUIRED if to_label(obj.get(k)) is None]
    if missing:
        raise ValueError(f"missing {missing}")
    sid, rid = to_label(obj["segment_id"]), to_label(obj["recording_id"])
    try:
        start, end = float(obj["segment_start"]), float(obj["segment_end"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"segment_start/segment_end not numbers: {exc}") from exc
    if not (math.isfinite(start) and math.isfinite(end) and 0 <= start < end):
        raise ValueError(f"bad time range [{start}, {end}] s")
    candidate = candidate_path(obj, cfg, index)
    path, detail = locate(index, rid, candidate, cfg.stem_lookup)
    numeric: dict[str, float | None] = {}
    for task, name in cfg.numeric.items():
        try:
            numeric[task] = to_float(obj.get(name))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name!r} is not a number: {obj.get(name)!r}") from exc
    used = {*REQUIRED, cfg.path_column or "path", *cfg.singlelabel.values(), *cfg.numeric.values(),
            *(m.column for m in cfg.multilabel.values())}
    extra: dict[str, Any] = {k: v for k, v in obj.items() if k not in used}
    extra["source_recording_id"] = rid
    if detail:
        extra["_missing_detail"] = detail
    group = to_label(obj.get(cfg.group_column)) if cfg.group_column else rid
    return Recording(
        recording_id=sid, path=path,
        multilabel={t: split_tags(obj.get(m.column), m.separator) for t, m in cfg.multilabel.items()},
        singlelabel={t: to_label(obj.get(f)) for t, f in cfg.singlelabel.items()},
        numeric=numeric, group=group, start_s=start, end_s=end, extra=extra)


def read(cfg: SourceConfig) -> tuple[list[Recording], list[dict], AudioIndex]:
    """Parse the JSONL file named by ``cfg.metadata``; see the module docstring.

    Raises:
        MetadataError: file missing (``missing_file``) or empty (``bad_metadata``); a line
            that is not UTF-8 or not a valid object is rejected alone (``bad_metadata``).
    """
    path = metadata_path(cfg)
    index = make_index(cfg)
    lines = decode_text(path.read_bytes()).splitlines()
    if not any(line.strip() for line in lines):
        raise MetadataError(path, "empty file: no JSON lines", line=1)
    recordings: list[Recording] = []
    rejected: list[dict] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        obj: Any = None
        try:
            check_utf8(line, "line")
            obj = json.loads(line)
            recordings.append(object_to_recording(obj, cfg, index))
        except (json.JSONDecodeError, ValueError) as exc:
            sid = to_label(obj.get("segment_id")) if isinstance(obj, dict) else None
            rejected.append(row_rejection(path, sid, f"line {n}", exc))
    return recordings, rejected, index
