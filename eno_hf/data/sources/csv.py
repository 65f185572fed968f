"""CSV/TSV metadata adapter: one row per audio file.

Schema (columns named in ``SourceConfig``; any other columns go to ``Recording.extra``)::

    id_column        unique id (default: the stem of the resolved path, its file name when rows
                     name files sharing a stem, x.mp3 + x.wav; needs path_column/template)
    path_column      path relative to audio_root (or absolute)            -- or --
    path_template    Python format string over the row, e.g. "{Quadrant}/{Song}.mp3"   -- or --
    stem_lookup      a file under audio_root whose stem equals the id (also the fallback when
                     the column/template path does not exist)
    multilabel       task -> {column, separator}: tags in one cell, e.g. "Gloomy; Somber"
    singlelabel      task -> column (empty -> None)
    numeric          task -> column, parsed as float (empty -> None; unparseable -> bad_metadata)
    group_column     value that must not cross splits (artist, album)

The file is read as UTF-8 (a BOM is accepted; a row holding bytes that are not UTF-8 is rejected
alone as ``bad_metadata`` naming its line and column), any line ending (CRLF included), standard CSV
quoting. The delimiter is ``cfg.delimiter`` or sniffed from the header line (``,``, tab, ``;``,
``|``; ``.tsv`` files default to tab).

Example (``configs/datasets/4q.yaml``, the 4Q emotion dataset CSV as it ships)::

    "Song","Artist","Title","Quadrant",...,"MoodsStrSplit",...,"GenresStr",...
    "MT0000011975","Curse of the Golden Vampire","Ultrasonic Meltdown","Q2",...,
        "Fierce; Harsh; Hostile",...,"Electronic",...

    source: {kind: csv, metadata: .../panda_dataset_taffc_metadata.csv, audio_root: .../4q-dev,
             id_column: Song, path_template: "{Quadrant}/{Song}.mp3",
             multilabel: {descriptors: {column: MoodsStrSplit, separator: ";"},
                          genres: {column: GenresStr, separator: ";"}},
             singlelabel: {quadrant: Quadrant}, group_column: Artist}

    -> Recording(recording_id="MT0000011975", path=.../Q2/MT0000011975.mp3,
                 multilabel={"descriptors": ["Fierce", "Harsh", "Hostile"], "genres": ["Electronic"]},
                 singlelabel={"quadrant": "Q2"}, group="Curse of the Golden Vampire", ...)
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from eno_hf.config import SourceConfig
from eno_hf.data.recording import Recording
from eno_hf.data.sources import (AudioIndex, check_utf8, locate, make_index, metadata_path,
                                 row_rejection, split_tags, to_float, to_label)
from eno_hf.errors import MetadataError

_SNIFF_DELIMITERS = ",\t;|"


def sniff_delimiter(header_line: str, path: Path) -> str:
    """Delimiter of a CSV/TSV from its header line (``csv.Sniffer``); fallback by suffix."""
    try:
        return csv.Sniffer().sniff(header_line, delimiters=_SNIFF_DELIMITERS).delimiter
    except csv.Error:
        return "\t" if path.suffix.lower() in (".tsv", ".tab") else ","


def iter_rows(path: Path, delimiter: str | None = None,
              check_header: Callable[[list[str]], None] | None = None,
              ) -> tuple[list[str], Iterator[tuple[int, dict]]]:
    """Header and a stream of ``(line_number, row_dict)`` pairs of a CSV/TSV file.

    The file is read as it is iterated (memory holds one row, whatever the file's size). Rows
    with too many fields carry the extra values under the key ``None``; rows with too few carry
    None values (``csv.DictReader`` semantics). Blank lines are skipped. Bytes that are not
    UTF-8 are kept as surrogate escapes (``decode_text`` semantics): ``read`` rejects only the
    rows holding them. ``line_number`` is the line the row ends on (1-based; the header is line 1).

    ``check_header(header)`` is called before the stream is handed out (the file is closed
    when it raises).

    Raises:
        MetadataError: here: empty file, a header that is blank or not UTF-8, a CSV syntax error
            in the header or first row, or a header without data rows; while iterating: a CSV
            syntax error or a read error further down (naming the file and line).
    """
    try:
        fh = open(path, encoding="utf-8-sig", errors="surrogateescape", newline="")
        first = fh.readline()
    except OSError as exc:
        raise MetadataError(path, f"cannot read: {exc.strerror or exc}", reason="io_error") from exc
    try:
        first = first.rstrip("\r\n")
        if not first.strip():
            raise MetadataError(path, "empty file or empty header line", line=1)
        try:
            check_utf8(first, "header")
        except ValueError as exc:
            raise MetadataError(path, str(exc), line=1) from exc
        fh.seek(0)
        reader = csv.DictReader(fh, delimiter=delimiter or sniff_delimiter(first, path))
        rows = iter(reader)
        try:
            header = list(reader.fieldnames or [])
            head = next(rows, None)
        except csv.Error as exc:
            raise MetadataError(path, f"CSV parse error: {exc}", line=reader.line_num) from exc
        if head is None:
            raise MetadataError(path, "header only: no data rows", line=2)
        if check_header is not None:
            check_header(header)
    except BaseException:
        fh.close()
        raise

    def stream() -> Iterator[tuple[int, dict]]:
        with fh:
            yield (reader.line_num, head)
            try:
                for row in rows:
                    yield reader.line_num, row
            except csv.Error as exc:
                raise MetadataError(path, f"CSV parse error: {exc}", line=reader.line_num) from exc
            except OSError as exc:
                raise MetadataError(path, f"cannot read: {exc.strerror or exc}", line=reader.line_num,
                                    reason="io_error") from exc

    return header, stream()


def read_rows(path: Path, delimiter: str | None = None) -> tuple[list[str], list[tuple[int, dict]]]:
    """``iter_rows`` with the rows as a list (small files; ``read`` streams them).

    Raises:
        MetadataError: as ``iter_rows``.
    """
    header, rows = iter_rows(path, delimiter)
    return header, list(rows)


def _check_columns(path: Path, header: list[str], cfg: SourceConfig) -> None:
    wanted = [("id_column", cfg.id_column), ("path_column", cfg.path_column),
              ("group_column", cfg.group_column)]
    wanted += [(f"multilabel.{t}", m.column) for t, m in cfg.multilabel.items()]
    wanted += [(f"singlelabel.{t}", c) for t, c in cfg.singlelabel.items()]
    wanted += [(f"numeric.{t}", c) for t, c in cfg.numeric.items()]
    missing = [(key, c) for key, c in wanted if c and c not in header]
    if missing:
        key, col = missing[0]
        more = f" (also missing: {[c for _, c in missing[1:]]})" if len(missing) > 1 else ""
        raise MetadataError(path, f"dataset.source.{key} names a column that is not in the "
                                  f"header {header}{more}", line=1, column=col)
    if cfg.id_column is None and cfg.path_column is None and cfg.path_template is None:
        raise MetadataError(path, "set id_column, path_column or path_template to identify rows",
                            line=1)


def row_to_recording(row: dict[str, Any], cfg: SourceConfig, index: AudioIndex) -> Recording:
    """One metadata row -> ``Recording`` (path may not exist; ``finalize`` checks that).

    Raises:
        ValueError / KeyError: the row cannot be parsed (wrong field count, bad number, template
            field missing); the caller turns it into ``bad_metadata``.
    """
    if None in row:
        raise ValueError(f"too many fields: extra values {row[None]}")
    for k, v in row.items():
        check_utf8(v, f"column {k!r}")
    short = [k for k, v in row.items() if v is None]
    if short:
        raise ValueError(f"too few fields: no value for {short}")
    candidate: Path | None = None
    if cfg.path_column and (row.get(cfg.path_column) or "").strip():
        candidate = index.resolve(row[cfg.path_column].strip())
    elif cfg.path_template:
        try:
            candidate = index.resolve(cfg.path_template.format(**row))
        except KeyError as exc:
            raise ValueError(f"path_template field {exc} not in row") from exc
    if cfg.id_column:
        rid = (row.get(cfg.id_column) or "").strip()
        if not rid:
            raise ValueError(f"empty id column {cfg.id_column!r}")
    elif candidate is not None:
        rid = candidate.stem
    else:
        raise ValueError("no id: empty path column and no id_column")
    path, detail = locate(index, rid, candidate, cfg.stem_lookup)
    multilabel = {task: split_tags(row.get(m.column), m.separator)
                  for task, m in cfg.multilabel.items()}
    singlelabel = {task: to_label(row.get(col)) for task, col in cfg.singlelabel.items()}
    numeric: dict[str, float | None] = {}
    for task, col in cfg.numeric.items():
        try:
            numeric[task] = to_float(row.get(col))
        except ValueError as exc:
            raise ValueError(f"numeric column {col!r}: {row.get(col)!r} is not a number") from exc
    used = {cfg.id_column, cfg.path_column, cfg.group_column, *cfg.singlelabel.values(),
            *cfg.numeric.values(), *(m.column for m in cfg.multilabel.values())}
    extra: dict[str, Any] = {k: v for k, v in row.items() if k not in used}
    if detail:
        extra["_missing_detail"] = detail
    group = to_label(row.get(cfg.group_column)) if cfg.group_column else None
    return Recording(recording_id=rid, path=path, multilabel=multilabel, singlelabel=singlelabel,
                     numeric=numeric, group=group, extra=extra)


def read(cfg: SourceConfig) -> tuple[list[Recording], list[dict], AudioIndex]:
    """Parse the CSV/TSV named by ``cfg.metadata``; see the module docstring.

    Returns:
        (candidate recordings in file order, rejected rows, index of audio files under audio_root).

    Raises:
        MetadataError: metadata file missing (``missing_file``), empty, header-only, unparseable
            or lacking a configured column (``bad_metadata``).
    """
    path = metadata_path(cfg)
    index = make_index(cfg)
    _, rows = iter_rows(path, cfg.delimiter, lambda header: _check_columns(path, header, cfg))
    recordings: list[Recording] = []
    rejected: list[dict] = []
    for line, row in rows:
        try:
            recordings.append(row_to_recording(row, cfg, index))
        except (ValueError, KeyError, IndexError) as exc:
            rid = (row.get(cfg.id_column) or None) if cfg.id_column else None
            rejected.append(row_rejection(path, rid, f"line {line}", exc))
    if cfg.id_column is None:  # ids from file stems: x.mp3 and x.wav keep their suffix
        paths_of: dict[str, set[Path]] = {}
        for rec in recordings:
            if rec.path is not None:
                paths_of.setdefault(rec.recording_id, set()).add(Path(rec.path))
        for rec in recordings:
            if rec.path is not None and len(paths_of.get(rec.recording_id, ())) > 1:
                rec.recording_id = Path(rec.path).name
    return recordings, rejected, index
