"""RYM-style JSON dump adapter: albums with tracks; track labels fall back to album labels.

Schema (a top-level list of albums is accepted too)::

    {"albums": [
      {"album_id": "a1", "artist": "Boards of Canada", "title": "Geogaddi",
       "descriptors": ["hypnotic", "nocturnal"], "genres": ["IDM"], "rating": 3.9,
       "tracks": [
         {"track_id": "a1-01", "path": "a1/01.flac", "title": "Ready Lets Go",
          "descriptors": ["ethereal"],            # optional: overrides the album's
          "genres": "IDM; Ambient",              # list, or a string split on the task separator
          "rating": 3.5}                          # optional float
       ]}
    ]}

Field mapping (``SourceConfig``):

- id: ``id_column`` (default ``"track_id"``); path: ``path_column`` (default ``"path"``, relative to
  audio_root or absolute), else ``path_template`` formatted over the album fields updated by the
  track fields, else stem lookup of the id under audio_root;
- labels: ``multilabel`` (task -> {column: field, separator}), ``singlelabel``, ``numeric``; each
  field is read from the track, and from the album when the track lacks it (absent or null). With
  no task maps configured at all, the defaults are ``descriptors`` and ``genres`` (multi-label,
  separator ``;``) and ``rating`` (numeric);
- group: ``group_column`` (default ``"album_id"``; ``"artist"`` keeps an artist in one split),
  track field first, then album field;
- extra: ``album_id``, ``artist``, ``album_title``, ``title`` and other scalar track fields.

Rejected: an album without a ``tracks`` list or a track that is not an object / lacks an id /
has a bad number -> ``bad_metadata`` (detail names ``albums[i].tracks[j]``).

Example: the dump above with ``audio_root`` holding ``a1/01.flac`` gives
``Recording("a1-01", .../a1/01.flac, multilabel={"descriptors": ["ethereal"], "genres": ["IDM",
"Ambient"]}, numeric={"rating": 3.5}, group="a1")``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eno_hf.config import MultiLabelColumn, SourceConfig
from eno_hf.data.recording import Recording
from eno_hf.data.sources import (AudioIndex, candidate_path, locate, make_index, metadata_path,
                                 reject, row_rejection, split_tags, to_float, to_label)
from eno_hf.errors import MetadataError

DEFAULT_MULTILABEL = {"descriptors": MultiLabelColumn(column="descriptors"),
                      "genres": MultiLabelColumn(column="genres")}
DEFAULT_NUMERIC = {"rating": "rating"}


def _field(track: dict[str, Any], album: dict[str, Any], name: str) -> Any:
    value = track.get(name)
    return album.get(name) if value is None else value


def track_to_recording(track: dict[str, Any], album: dict[str, Any], cfg: SourceConfig,
                       index: AudioIndex) -> Recording:
    """One track (with its album) -> ``Recording``. Raises ``ValueError`` on a bad track."""
    if not isinstance(track, dict):
        raise ValueError(f"track is a {type(track).__name__}, not an object")
    multilabel_map = cfg.multilabel
    numeric_map = cfg.numeric
    if not (cfg.multilabel or cfg.singlelabel or cfg.numeric):
        multilabel_map, numeric_map = DEFAULT_MULTILABEL, DEFAULT_NUMERIC
    id_field = cfg.id_column or "track_id"
    rid = to_label(track.get(id_field))
    if rid is None:
        raise ValueError(f"no {id_field!r}")
    merged = {**{k: v for k, v in album.items() if k != "tracks"}, **track}
    candidate = candidate_path(merged, cfg, index)  # track fields win over album fields
    path, detail = locate(index, rid, candidate, cfg.stem_lookup)
    numeric: dict[str, float | None] = {}
    for task, name in numeric_map.items():
        try:
            numeric[task] = to_float(_field(track, album, name))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name!r} is not a number: {_field(track, album, name)!r}") from exc
    extra: dict[str, Any] = {"album_id": album.get("album_id"), "artist": album.get("artist"),
                             "album_title": album.get("title")}
    label_fields = {m.column for m in multilabel_map.values()} | set(cfg.singlelabel.values()) \
        | set(numeric_map.values()) | {id_field, cfg.path_column or "path"}
    extra.update({k: v for k, v in track.items() if k not in label_fields
                  and isinstance(v, (str, int, float, bool))})
    if detail:
        extra["_missing_detail"] = detail
    return Recording(
        recording_id=rid, path=path,
        multilabel={t: split_tags(_field(track, album, m.column), m.separator)
                    for t, m in multilabel_map.items()},
        singlelabel={t: to_label(_field(track, album, f)) for t, f in cfg.singlelabel.items()},
        numeric=numeric,
        group=to_label(_field(track, album, cfg.group_column or "album_id")),
        extra=extra)


def read(cfg: SourceConfig) -> tuple[list[Recording], list[dict], AudioIndex]:
    """Parse the JSON dump named by ``cfg.metadata``; see the module docstring.

    Raises:
        MetadataError: file missing (``missing_file``), empty, not UTF-8, not JSON or not an
            album list (``bad_metadata``), naming line and column.
    """
    path = metadata_path(cfg)
    index = make_index(cfg)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise MetadataError(path, f"not UTF-8 text (byte 0x{raw[exc.start]:02x})", line=line,
                            column=col) from exc
    if not text.strip():
        raise MetadataError(path, "empty file", line=1)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MetadataError(path, f"not a JSON document: {exc.msg}", line=exc.lineno,
                            column=exc.colno) from exc
    albums = data.get("albums") if isinstance(data, dict) else data
    if not isinstance(albums, list):
        raise MetadataError(path, 'expected {"albums": [...]} or a list of albums', line=1)
    recordings: list[Recording] = []
    rejected: list[dict] = []
    for i, album in enumerate(albums):
        if not isinstance(album, dict) or not isinstance(album.get("tracks"), list):
            aid = album.get("album_id") if isinstance(album, dict) else None
            rejected.append(reject(path, to_label(aid), "bad_metadata",
                                   f"albums[{i}]: not an object with a 'tracks' list"))
            continue
        for j, track in enumerate(album["tracks"]):
            try:
                recordings.append(track_to_recording(track, album, cfg, index))
            except ValueError as exc:
                tid = to_label(track.get(cfg.id_column or "track_id")) \
                    if isinstance(track, dict) else None
                rejected.append(row_rejection(path, tid, f"albums[{i}].tracks[{j}]", exc))
    return recordings, rejected, index
