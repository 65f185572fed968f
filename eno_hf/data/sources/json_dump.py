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
has a bad number -> ``bad_metadata`` (detail names ``albums[i].tracks[j]``); the other albums and
tracks go on.

The dump is parsed as a stream, album by album (``ijson``, C backend ``yajl2_c``): memory holds
one album's objects at a time plus the ``Recording`` list, whatever the file's size. The file as
a whole is still checked: not UTF-8, empty, not JSON (a truncated dump included) or not an album
list raises ``MetadataError`` naming the byte offset, line and column, and nothing of it is used.

Example: the dump above with ``audio_root`` holding ``a1/01.flac`` gives
``Recording("a1-01", .../a1/01.flac, multilabel={"descriptors": ["ethereal"], "genres": ["IDM",
"Ambient"]}, numeric={"rating": 3.5}, group="a1")``.
"""

from __future__ import annotations

import codecs
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import ijson

from eno_hf.config import MultiLabelColumn, SourceConfig
from eno_hf.data.recording import Recording
from eno_hf.data.sources import (AudioIndex, candidate_path, locate, make_index, metadata_path,
                                 reject, row_rejection, split_tags, to_float, to_label)
from eno_hf.errors import MetadataError

DEFAULT_MULTILABEL = {"descriptors": MultiLabelColumn(column="descriptors"),
                      "genres": MultiLabelColumn(column="genres")}
DEFAULT_NUMERIC = {"rating": "rating"}

READ_SIZE = 1 << 18
"""Bytes handed to the parser per read (256 KiB)."""

_JSON_SPACE = b" \t\r\n"
_NOT_JSON_HINTS = (b"NaN", b"Infinity", b"-Infinity")


@dataclass(frozen=True)
class FieldMap:
    """Field names and task maps of one read, resolved once from a ``SourceConfig``.

    Attributes:
        id_field, path_field, group_field: track/album fields of the id, audio path and group.
        multilabel: task -> ``MultiLabelColumn``; singlelabel, numeric: task -> field. With no task
            map configured at all, ``DEFAULT_MULTILABEL`` and ``DEFAULT_NUMERIC``.
        not_extra: fields that are labels/id/path, so not copied into ``Recording.extra``.
    """

    id_field: str
    path_field: str
    group_field: str
    multilabel: Mapping[str, MultiLabelColumn]
    singlelabel: Mapping[str, str]
    numeric: Mapping[str, str]
    not_extra: frozenset[str]

    @classmethod
    def of(cls, cfg: SourceConfig) -> FieldMap:
        """The field map of ``cfg`` (see the module docstring for the defaults)."""
        multilabel, numeric = cfg.multilabel, cfg.numeric
        if not (cfg.multilabel or cfg.singlelabel or cfg.numeric):
            multilabel, numeric = DEFAULT_MULTILABEL, DEFAULT_NUMERIC
        id_field, path_field = cfg.id_column or "track_id", cfg.path_column or "path"
        not_extra = frozenset({m.column for m in multilabel.values()} | set(cfg.singlelabel.values())
                              | set(numeric.values()) | {id_field, path_field})
        return cls(id_field, path_field, cfg.group_column or "album_id", dict(multilabel),
                   dict(cfg.singlelabel), dict(numeric), not_extra)


def _field(track: Mapping[str, Any], album: Mapping[str, Any], name: str) -> Any:
    value = track.get(name)
    return album.get(name) if value is None else value


@dataclass(frozen=True)
class AlbumFields:
    """What every track of one album shares, computed once per album.

    Attributes:
        fields: the album's fields without ``tracks``.
        tags: multi-label task -> the album's tags (``split_tags``), the fallback of its tracks.
    """

    fields: dict[str, Any]
    tags: dict[str, list[str]]

    @classmethod
    def of(cls, album: Mapping[str, Any], fields: FieldMap) -> AlbumFields:
        """The shared fields of ``album`` under ``fields``."""
        return cls({k: v for k, v in album.items() if k != "tracks"},
                   {t: split_tags(album.get(m.column), m.separator)
                    for t, m in fields.multilabel.items()})


def track_to_recording(track: Any, album: dict[str, Any], cfg: SourceConfig, index: AudioIndex,
                       fields: FieldMap | None = None,
                       album_fields: AlbumFields | None = None) -> Recording:
    """One track (with its album) -> ``Recording``; see the module docstring for the mapping.

    Args:
        track: the track object (anything else is rejected).
        album: its album object.
        cfg: the source config; ``fields`` = ``FieldMap.of(cfg)`` when given (computed once per read).
        index: the audio index the path is resolved and looked up in.
        album_fields: ``AlbumFields.of(album, fields)`` when given (computed once per album).

    Raises:
        ValueError: a bad track (not an object, no id, a bad number, a template field missing);
            ``RejectedInput`` (a ValueError) for a path outside the audio root.
    """
    if not isinstance(track, dict):
        raise ValueError(f"track is a {type(track).__name__}, not an object")
    f = fields if fields is not None else FieldMap.of(cfg)
    rid = to_label(track.get(f.id_field))
    if rid is None:
        raise ValueError(f"no {f.id_field!r}")
    shared = album_fields if album_fields is not None else AlbumFields.of(album, f)
    # track fields win over album fields (a track key holding null too)
    candidate = candidate_path({**shared.fields, **track}, cfg, index)
    path, detail = locate(index, rid, candidate, cfg.stem_lookup)
    numeric: dict[str, float | None] = {}
    for task, name in f.numeric.items():
        value = _field(track, album, name)
        try:
            numeric[task] = to_float(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name!r} is not a number: {value!r}") from exc
    extra: dict[str, Any] = {"album_id": album.get("album_id"), "artist": album.get("artist"),
                             "album_title": album.get("title")}
    for k, v in track.items():
        if k not in f.not_extra and isinstance(v, (str, int, float, bool)):
            extra[sys.intern(k)] = v  # keys are one object per track as parsed: shared here
    if detail:
        extra["_missing_detail"] = detail
    return Recording(
        recording_id=rid, path=path,
        multilabel={t: list(shared.tags[t]) if track.get(m.column) is None
                    else split_tags(track[m.column], m.separator) for t, m in f.multilabel.items()},
        singlelabel={t: to_label(_field(track, album, c)) for t, c in f.singlelabel.items()},
        numeric=numeric,
        group=to_label(_field(track, album, f.group_field)),
        extra=extra)


class _Reader:
    """``read(n)`` over the dump's bytes for ijson, keeping track of where it is.

    Skips a UTF-8 BOM; checks that the bytes are UTF-8 as they are handed out (raising
    ``MetadataError`` at the first bad byte); counts the byte offset, line and character column of
    the next byte. From file offset ``bytewise_from`` on it hands out one byte per read, so that a
    parse error is raised at the byte that ends the parser's input (``_locate``).
    """

    def __init__(self, fh: BinaryIO, path: Path, bytewise_from: int | None = None) -> None:
        fh.seek(0)
        if fh.read(len(codecs.BOM_UTF8)) != codecs.BOM_UTF8:
            fh.seek(0)
        self.fh, self.path, self.bytewise_from = fh, path, bytewise_from
        self.offset = fh.tell()
        self.line, self.column = 1, 1
        self.chunk_start = self.offset
        self.last: tuple[int, int, int] = (self.offset, 1, 1)  # position of the last byte handed out
        self.eof = False
        self._decoder = codecs.getincrementaldecoder("utf-8")()

    def position(self) -> tuple[int, int, int]:
        """(byte offset, line, column) of the next byte."""
        return self.offset, self.line, self.column

    def read(self, n: int = -1) -> bytes:
        if n == 0:
            return b""
        size = READ_SIZE if n is None or n < 0 else n
        if self.bytewise_from is not None:
            size = 1 if self.offset >= self.bytewise_from else min(size, self.bytewise_from - self.offset)
        chunk = self.fh.read(size)
        self.last, self.chunk_start = self.position(), self.offset
        self.eof = not chunk
        pending = self._decoder.getstate()[0]
        try:
            text = self._decoder.decode(chunk, final=self.eof)
        except UnicodeDecodeError as exc:
            raise self._not_utf8(pending + chunk, exc, self.offset - len(pending)) from None
        self._advance(text)
        self.offset += len(chunk)
        return chunk

    def _advance(self, text: str) -> None:
        newline = text.rfind("\n")
        if newline < 0:
            self.column += len(text)
        else:
            self.line += text.count("\n")
            self.column = len(text) - newline

    def _not_utf8(self, data: bytes, exc: UnicodeDecodeError, data_offset: int) -> MetadataError:
        self._advance(data[: exc.start].decode("utf-8"))
        return MetadataError(self.path, f"not UTF-8 text (byte 0x{data[exc.start]:02x} at byte "
                                        f"offset {data_offset + exc.start})",
                             line=self.line, column=self.column)


def _parse_error(path: Path, fh: BinaryIO, exc: Exception, failed: _Reader) -> MetadataError:
    """The ``MetadataError`` of a parse error, naming its byte offset, line and column.

    A premature end of file is at the end. Any other error lies in the last chunk the parser read:
    the document is parsed again up to that chunk, then one byte at a time (error path only).
    """
    raw = exc.args[0] if exc.args else str(exc)
    msg = (raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw))
    msg = msg.strip().splitlines()[0] if msg.strip() else type(exc).__name__
    if failed.eof:
        offset, line, column = failed.position()
        return MetadataError(path, f"not a JSON document: {msg} at byte offset {offset}, the end of "
                                   "the file (a truncated dump?)", line=line, column=column)
    again = _Reader(fh, path, bytewise_from=failed.chunk_start)
    try:
        for _ in ijson.items(again, "\0", buf_size=READ_SIZE):
            pass
    except ijson.JSONError:
        pass
    offset, line, column = again.position() if again.eof else again.last
    fh.seek(offset)
    near = fh.read(16)
    hint = next((f" ({h.decode()} is not JSON: write null)" for h in _NOT_JSON_HINTS
                 if h in near), "")
    return MetadataError(path, f"not a JSON document: {msg} at byte offset {offset}{hint}",
                         line=line, column=column)


def _albums_prefix(fh: BinaryIO, path: Path) -> str:
    """The ijson prefix of the albums: ``"item"`` for a top-level list, ``"albums.item"`` for
    ``{"albums": [...]}`` (checked to be a list).

    Raises:
        MetadataError: empty, not UTF-8, not JSON, or not an album list.
    """
    reader = _Reader(fh, path)
    first = b""
    while not first:
        chunk = fh.read(1 << 16)
        if not chunk:
            raise MetadataError(path, "empty file", line=1)
        first = chunk.lstrip(_JSON_SPACE)[:1]
    not_albums = MetadataError(path, 'expected {"albums": [...]} or a list of albums', line=1)
    if first == b"[":
        return "item"
    reader = _Reader(fh, path)
    try:
        if first != b"{":  # a scalar, or not JSON at all: read to the end to tell which
            for _ in ijson.parse(reader, use_float=True, buf_size=READ_SIZE):
                pass
            raise not_albums
        found = False
        for prefix, event, value in ijson.parse(reader, use_float=True, buf_size=READ_SIZE):
            if found:
                if event == "start_array":
                    return "albums.item"
                raise not_albums
            if prefix == "" and event == "map_key" and value == "albums":
                found = True
            elif prefix == "" and event == "end_map":
                raise not_albums
    except ijson.JSONError as exc:
        raise _parse_error(path, fh, exc, reader) from exc
    raise not_albums


def _albums(fh: BinaryIO, path: Path) -> Iterator[Any]:
    """The album objects of the dump, one at a time (numbers as int/float).

    Raises:
        MetadataError: see ``read``; raised when the stream reaches the bad byte, so a caller must
            drop what it took from the stream so far.
    """
    prefix = _albums_prefix(fh, path)
    reader = _Reader(fh, path)
    try:
        yield from ijson.items(reader, prefix, use_float=True, buf_size=READ_SIZE)
    except ijson.JSONError as exc:
        raise _parse_error(path, fh, exc, reader) from exc


def read(cfg: SourceConfig) -> tuple[list[Recording], list[dict], AudioIndex]:
    """Parse the JSON dump named by ``cfg.metadata`` as a stream; see the module docstring.

    Returns:
        (candidate recordings in dump order, rejected albums/tracks, index of audio files).

    Raises:
        MetadataError: file missing (``missing_file``), empty, not UTF-8, not JSON (a truncated
            dump included) or not an album list (``bad_metadata``), naming byte offset, line and
            column.
    """
    path = metadata_path(cfg)
    index = make_index(cfg)
    fields = FieldMap.of(cfg)
    recordings: list[Recording] = []
    rejected: list[dict] = []
    with open(path, "rb") as fh:
        for i, album in enumerate(_albums(fh, path)):
            if not isinstance(album, dict) or not isinstance(album.get("tracks"), list):
                aid = album.get("album_id") if isinstance(album, dict) else None
                rejected.append(reject(path, to_label(aid), "bad_metadata",
                                       f"albums[{i}]: not an object with a 'tracks' list"))
                continue
            album_fields = AlbumFields.of(album, fields)
            for j, track in enumerate(album["tracks"]):
                try:
                    recordings.append(track_to_recording(track, album, cfg, index, fields,
                                                         album_fields))
                except ValueError as exc:
                    tid = to_label(track.get(fields.id_field)) if isinstance(track, dict) else None
                    rejected.append(row_rejection(path, tid, f"albums[{i}].tracks[{j}]", exc))
    return recordings, rejected, index
