"""Look at a music collection and write an ``eno.yaml`` for it (the library behind ``eno init``).

``detect(path)`` decides the source kind and the fields of ``dataset.source`` from what is on disk:

- a folder of audio/MIDI files in one sub-folder per label -> ``folders`` (one level: single-label
  classes; deeper levels: several tags per file or album folders, asked in the file);
- a CSV/TSV (the file itself, or one beside the audio) -> ``csv``;
- a RYM-style JSON dump (a list of album objects with ``tracks``, or ``{"albums": [...]}``)
  -> ``json_dump``;
- a JSONL of pre-cut segments (``segment_id``, ``recording_id``, ``segment_start``,
  ``segment_end`` per line) -> ``jsonl_segments``.

For tables it measures at most ``max_rows`` rows (default 2000) and picks the id field, the
path field or a path template, the label fields (few distinct values -> single-label; strings
joined by a separator -> multi-label with that separator; JSON lists -> multi-label), the numeric
fields and the grouping field (artist/album/performer-like names, else repeated values that are
not labels). Every choice that could have gone another way is kept as a question
(``Plan.questions``) and written as ``# QUESTION:`` next to it in the file.

``render_yaml(plan, out)`` writes the commented ``eno.yaml`` layered on a built-in recipe without
a dataset (``defaults: [tagger]``); paths inside the output folder are written relative to the
file. A task with one value among the recordings found is left out (a question), and a folder
whose metadata file names none of its audio falls back to its label folders (a question).
``init_collection(path)`` does both, validates the result with ``eno_hf.config.load_config`` and
``eno_hf.data.sources.load_recordings`` in a temporary file beside the target, and only then
moves it into place; it returns the summary ``eno init`` prints.

Errors: every unusable input raises ``InitError`` (a ``MetadataError``: one line naming the file,
and the line/column where it applies); nothing is written then.

Example:
    >>> res = init_collection("my-music")          # my-music/happy/a.mp3, my-music/sad/b.wav ...
    >>> res.summary["kind"], res.summary["tasks"]["label"]["labels"]
    ('folders', 2)
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eno_hf.errors import MetadataError

if TYPE_CHECKING:  # annotations only: `eno init` loads the config and the sources when it checks a plan
    from eno_hf.config import Settings
    from eno_hf.data.sources import SourceResult

log = logging.getLogger(__name__)

__all__ = ["InitError", "Task", "Plan", "InitResult", "detect", "render_yaml", "init_collection",
           "AUDIO_SUFFIXES", "MAX_ROWS"]

AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aiff", ".aif",
                            ".mid", ".midi"})
"""Suffixes counted as audio/MIDI (``SourceConfig().extensions``)."""
METADATA_KINDS = {".csv": "csv", ".tsv": "csv", ".tab": "csv", ".json": "json_dump",
                  ".jsonl": "jsonl_segments", ".ndjson": "jsonl_segments"}
"""Metadata file suffix -> source kind (a folder's metadata is looked for at its top level)."""
MAX_ROWS = 2000
"""Rows (CSV rows, JSON tracks, JSONL lines) read to decide the fields."""
DATA_ROOT = ".eno"
"""``paths.data_root`` written into the file (relative to it): a hidden folder in the collection,
which the folder scan of ``eno_hf.data.sources`` does not enter."""

_ID_HINTS = ("id", "song", "track", "key", "uid", "uuid", "file", "filename", "recording", "clip",
             "sample", "segment", "name")
_GROUP_HINTS = ("artist", "album", "performer", "composer", "band", "release", "session",
                "speaker", "singer", "player", "pianist", "recording", "piece", "work", "source")
_LABEL_HINTS = ("genre", "mood", "label", "class", "tag", "emotion", "quadrant", "instrument",
                "style", "descriptor", "category")
_TARGET_HINTS = ("rating", "score", "valence", "arousal", "energy", "danceability", "tension",
                 "dominance")
_NOT_TARGET_SUFFIXES = ("_std", "_sd", "_stderr", "_var", "_count", "_total")
_SEPARATORS = (";", "|", ",")  # not "/": "Pop/Rock" is one genre
_JSONL_REQUIRED = ("segment_id", "recording_id", "segment_start", "segment_end")


class InitError(MetadataError):
    """An input ``eno init`` cannot use; ``str()`` is one line naming the file (line/column when
    known). The CLI prints it and exits 2; nothing is written."""


# ----------------------------------------------------------------------------- plan
@dataclass
class Task:
    """One label task found in the metadata.

    Attributes:
        name: task (and head) name, e.g. ``quadrant``.
        kind: ``singlelabel``, ``multilabel`` or ``regression``.
        column: the metadata field it reads (None for ``folders``).
        separator: multi-label separator for string cells (``;``).
        enabled: written as an active setting (False: written commented out, with a question).
    """

    name: str
    kind: str
    column: str | None = None
    separator: str | None = None
    enabled: bool = True


@dataclass
class Plan:
    """What ``detect`` found: the source kind, its settings and the open questions.

    Attributes:
        kind: ``csv``, ``json_dump``, ``jsonl_segments`` or ``folders``.
        path: the path ``eno init`` was given (absolute).
        audio_root: folder the audio lies in (absolute).
        metadata: the metadata file (absolute), None for ``folders``.
        source: other ``dataset.source`` fields (``id_column``, ``path_template``, ...).
        tasks: label tasks, enabled ones first.
        questions: setting key -> questions written next to it (``# QUESTION: ...``).
        notes: setting key -> plain comments written next to it.
        rows_read: rows measured to decide (tables), or audio files seen (folders).
        files: suffix -> number of files under ``audio_root`` (dot-files skipped).
        name: dataset name (from the folder or file name).
    """

    kind: str
    path: Path
    audio_root: Path
    metadata: Path | None = None
    source: dict[str, Any] = field(default_factory=dict)
    tasks: list[Task] = field(default_factory=list)
    questions: dict[str, list[str]] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    rows_read: int = 0
    files: dict[str, int] = field(default_factory=dict)
    name: str = "collection"

    def ask(self, key: str, text: str) -> None:
        """Add a question next to setting ``key``."""
        self.questions.setdefault(key, []).append(text)

    def note(self, key: str, text: str) -> None:
        """Add a plain comment next to setting ``key``."""
        self.notes.setdefault(key, []).append(text)

    def all_questions(self) -> list[str]:
        """Every question, in the order they were asked."""
        return [q for qs in self.questions.values() for q in qs]


@dataclass
class InitResult:
    """What ``init_collection`` wrote and found.

    Attributes:
        config: the written ``eno.yaml`` (absolute).
        plan: the detection ``Plan``.
        summary: JSON-ready report: kind, files by suffix, recordings, tasks (labels, top ones),
            groups, rejects, questions, next commands.
    """

    config: Path
    plan: Plan
    summary: dict[str, Any]


# ----------------------------------------------------------------------------- helpers
def _snake(name: str) -> str:
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", str(name))
    s = re.sub(r"[^0-9a-zA-Z]+", "_", s).strip("_").lower()
    return s or "field"


def _task_name(column: str, taken: set[str]) -> str:
    base = _snake(column)
    for suffix in ("_str_split", "_split", "_str", "_list", "_tags"):
        if base.endswith(suffix) and len(base) > len(suffix):
            base = base[: -len(suffix)]
            break
    name, i = base, 2
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name)
    return name


def _tokens(name: str) -> list[str]:
    return _snake(name).split("_")


def _hint_rank(name: str, hints: tuple[str, ...]) -> int | None:
    """Index of the first hint among ``name``'s words (``track_id`` -> ``id``), else None."""
    words = set(_tokens(name)) | {_snake(name).replace("_", "")}
    for i, h in enumerate(hints):
        if h in words:
            return i
    return None


def _is_url(v: str) -> bool:
    return bool(re.match(r"^[a-z][a-z0-9+.-]*://", v.strip(), re.I))


def _is_number(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, (int, float)):
        return math.isfinite(float(v))
    try:
        return math.isfinite(float(str(v).strip()))
    except ValueError:
        return False


def _is_int(v: Any) -> bool:
    try:
        f = float(str(v).strip()) if not isinstance(v, (int, float)) else float(v)
    except ValueError:
        return False
    return f.is_integer()


def _empty(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip()) or (isinstance(v, list) and not v)


def _rel(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` when inside it (``.`` for ``base`` itself), else absolute."""
    try:
        rel = path.resolve().relative_to(base.resolve())
    except ValueError:
        return str(path.resolve())
    return rel.as_posix() or "."


def _y(value: Any) -> str:
    """One YAML flow scalar/collection."""
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10**6).strip()
    return text[:-4].rstrip() if text.endswith("\n...") else text


def _walk(root: Path, skip: set[Path]) -> tuple[list[Path], list[Path]]:
    """(audio/MIDI files, other files) under ``root``, sorted; dot-files/folders and ``skip``
    folders are not entered."""
    audio: list[Path] = []
    other: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames
                             if not d.startswith(".") and (here / d).resolve() not in skip)
        for name in filenames:
            if name.startswith("."):
                continue
            p = here / name
            (audio if p.suffix.lower() in AUDIO_SUFFIXES else other).append(p)
    return sorted(audio), sorted(other)


def _suffix_counts(files: list[Path]) -> dict[str, int]:
    return dict(Counter(p.suffix.lower() or "(none)" for p in files).most_common())


# ----------------------------------------------------------------------------- field profiles
@dataclass
class _Field:
    name: str
    values: list[Any]          # non-empty values, row order
    n_rows: int
    distinct: int
    numeric: float             # fraction of values that are numbers
    integer: bool              # all numeric values are integers
    lists: float               # fraction of values that are JSON lists
    urls: float
    audio_suffix: float        # fraction of values ending in an audio suffix
    exists: float              # fraction resolving to an existing audio file under the root
    stems: float               # fraction equal to the stem of an audio file under the root
    separator: str | None = None
    tags_per_row: float = 0.0
    tag_vocab: int = 0

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def unique(self) -> bool:
        return self.n == self.n_rows and self.distinct == self.n and self.lists == 0


def _tag_sets(f: _Field) -> list[set[str]]:
    out = []
    for v in f.values:
        items = v if isinstance(v, list) else (str(v).split(f.separator) if f.separator else [v])
        out.append({str(t).strip().casefold() for t in items if str(t).strip()})
    return out


def _separator(values: list[str]) -> tuple[str | None, float, int]:
    """Best multi-label separator of string cells: (separator, tags per row, tag vocabulary), or
    (None, 0, 0) when the cells do not look like joined tags (splitting must reuse tags)."""
    best: tuple[float, str, float, int] | None = None
    n = len(values)
    if n < 2:
        return None, 0.0, 0
    for sep in _SEPARATORS:
        with_sep = sum(sep in v for v in values)
        if with_sep < max(1, 0.1 * n):
            continue
        tags = [t.strip().casefold() for v in values for t in v.split(sep) if t.strip()]
        counts = Counter(tags)
        vocab = len(counts)
        # joined tags reuse their tags across rows; free text with commas does not
        if not tags or sum(c for c in counts.values() if c > 1) < 0.5 * len(tags):
            continue
        if any(len(t) > 40 for t in set(tags)):
            continue
        score = with_sep / n + len(tags) / max(vocab, 1) / 100
        if best is None or score > best[0]:
            best = (score, sep, len(tags) / n, vocab)
    return (best[1], best[2], best[3]) if best else (None, 0.0, 0)


def _profile(rows: list[dict[str, Any]], names: list[str], root: Path,
             stems: dict[str, list[Path]]) -> dict[str, _Field]:
    out: dict[str, _Field] = {}
    n_rows = len(rows)
    for name in names:
        values = [r.get(name) for r in rows if not _empty(r.get(name))]
        n = max(len(values), 1)
        scalars = [str(v).strip() for v in values if not isinstance(v, (list, dict))]
        exists = 0
        for v in scalars:
            if Path(v).suffix.lower() in AUDIO_SUFFIXES and not _is_url(v):
                try:
                    p = Path(v) if Path(v).is_absolute() else root / v
                    exists += p.is_file()
                except (OSError, ValueError):
                    pass
        numeric = [v for v in values if _is_number(v)]
        f = _Field(
            name=name, values=values, n_rows=n_rows,
            distinct=len({json.dumps(v, sort_keys=True, default=str) if isinstance(v, (list, dict))
                          else str(v).strip() for v in values}),
            numeric=len(numeric) / n, integer=all(_is_int(v) for v in numeric),
            lists=sum(isinstance(v, list) for v in values) / n,
            urls=sum(_is_url(v) for v in scalars) / n,
            audio_suffix=sum(Path(v).suffix.lower() in AUDIO_SUFFIXES for v in scalars) / n,
            exists=exists / n, stems=sum(v in stems for v in scalars) / n)
        if f.lists >= 0.5:
            sets = _tag_sets(f)
            f.tags_per_row = sum(len(s) for s in sets) / n
            f.tag_vocab = len(set().union(*sets)) if sets else 0
        elif f.numeric < 0.95 and f.urls == 0 and scalars:
            f.separator, f.tags_per_row, f.tag_vocab = _separator(scalars)
        out[name] = f
    return out


def _similar(a: _Field, b: _Field, rows: list[dict[str, Any]]) -> float:
    """Mean per-row Jaccard similarity of two multi-label fields' tag sets."""
    sa, sb = [], []
    for r in rows:
        for f, acc in ((a, sa), (b, sb)):
            v = r.get(f.name)
            items = [] if _empty(v) else (v if isinstance(v, list) else
                                          str(v).split(f.separator) if f.separator else [v])
            acc.append({str(t).strip().casefold() for t in items if str(t).strip()})
    scores = [len(x & y) / len(x | y) for x, y in zip(sa, sb) if x | y]
    return sum(scores) / len(scores) if scores else 0.0


# ----------------------------------------------------------------------------- table detection
def _choose_fields(plan: Plan, rows: list[dict[str, Any]], names: list[str],
                   fixed: set[str], id_field: str | None, path_field: str | None,
                   default_group: str | None) -> None:
    """Fill ``plan.source`` and ``plan.tasks`` from measured rows (all table kinds).

    ``fixed``: fields the kind uses itself (never labels); ``id_field``/``path_field``: already
    decided by the kind (else detected here); ``default_group``: the adapter's own default group.
    """
    root = plan.audio_root
    audio, _ = _walk(root, set())
    stems: dict[str, list[Path]] = {}
    for p in audio:
        stems.setdefault(p.stem, []).append(p)
    prof = _profile(rows, names, root, stems)
    where = plan.metadata

    # -- path field
    if path_field is None:
        cands = [f for f in prof.values() if f.name not in fixed and f.urls == 0
                 and (f.audio_suffix >= 0.5 or f.exists >= 0.5)]
        cands.sort(key=lambda f: (-f.exists, -f.audio_suffix, f.name))
        if cands:
            path_field = cands[0].name
            if len(cands) > 1:
                plan.ask("path_column", f"{[c.name for c in cands]} all hold audio file names; "
                                        f"{path_field!r} was chosen (most files found).")
    if path_field is not None:
        plan.source["path_column"] = path_field
        pf = prof.get(path_field)
        if pf is not None and pf.exists < 1.0:
            plan.note("path_column", f"{pf.exists:.0%} of the {pf.n} values read name an existing "
                                     "file (the others are listed as rejects)")

    # -- id field
    if id_field is None:
        cands = []
        for f in prof.values():
            if (f.name in fixed or not f.unique or f.urls > 0 or (f.numeric == 1 and not f.integer)
                    or f.separator or any(len(str(v)) > 200 for v in f.values)):
                continue
            if f.name == path_field:
                continue
            hint = _hint_rank(f.name, _ID_HINTS) is not None
            no_space = all(" " not in str(v).strip() for v in f.values)
            cands.append((3 * f.stems + hint + 0.5 * no_space, f.name))
        cands.sort(key=lambda c: (-c[0], c[1]))
        strong = [c for c in cands if c[0] >= 1.0]
        if strong:
            id_field = strong[0][1]
            plan.source["id_column"] = id_field
            close = [c[1] for c in strong[1:] if strong[0][0] - c[0] < 0.5]
            if close:
                plan.ask("id_column", f"{[id_field, *close]} are all unique per row; {id_field!r} was "
                                      "chosen (it matches file names / is named like an id).")
        elif path_field is not None:
            plan.note("id_column", f"no id column: a recording's id is the file name of {path_field!r} "
                                   "without its suffix")
        elif cands:
            id_field = cands[0][1]
            plan.source["id_column"] = id_field
            plan.ask("id_column", f"{id_field!r} is unique per row but neither named like an id nor "
                                  "matching file names; is it the recording id?"
                     + (f" (also unique: {[c[1] for c in cands[1:5]]})" if len(cands) > 1 else ""))
        else:
            raise InitError(where, f"no id column: no column is non-empty and unique on every one of "
                                   f"the {len(rows)} rows read, and none names audio files "
                                   f"(columns: {names})", line=1)
    else:
        plan.source.setdefault("id_column", id_field)

    # -- path template (no path field: the id names the file somewhere under the root)
    if path_field is None and id_field is not None:
        _path_template(plan, rows, id_field, prof, stems)

    # -- group field
    used = {id_field, path_field, *fixed}
    group_cands = []
    for f in prof.values():
        if f.name in used or f.lists > 0 or f.urls > 0 or f.n == 0 or f.separator:
            continue
        rank = _hint_rank(f.name, _GROUP_HINTS)
        if rank is not None and f.distinct >= 2:
            group_cands.append((0, rank, f.name))
        elif f.numeric < 0.95 and 2 <= f.distinct <= 0.8 * f.n and f.distinct > _label_max(f.n):
            group_cands.append((1, 0, f.name))
    group_cands.sort()
    group = group_cands[0][2] if group_cands else None

    # -- labels
    taken: set[str] = set()
    multi: list[_Field] = []
    single: list[_Field] = []
    numeric: list[_Field] = []
    for f in prof.values():
        if f.name in used or f.name == group or f.urls > 0 or f.n == 0 \
                or any(c[0] == 0 and c[2] == f.name for c in group_cands):  # artist-like: not a label
            continue
        if f.lists >= 0.5 or f.separator:
            if f.tag_vocab >= 2:
                multi.append(f)
        elif f.numeric >= 0.95:
            if f.distinct >= 2:
                numeric.append(f)
        elif 2 <= f.distinct <= _label_max(f.n):
            single.append(f)
    # near-duplicate multi-label fields: keep the one whose tags are most reused
    keep: list[_Field] = []
    # (most tags per row first: a finer split of the same tags, e.g. "Calm/Peaceful" -> two)
    for f in sorted(multi, key=lambda f: (-round(f.tags_per_row, 3),
                                          -(f.tags_per_row * f.n / max(f.tag_vocab, 1)), f.name)):
        twin = next((k for k in keep if _similar(k, f, rows) >= 0.5), None)
        t = Task(_task_name(f.name, taken), "multilabel", f.name, f.separator or ";",
                 enabled=twin is None)
        plan.tasks.append(t)
        if twin is None:
            keep.append(f)
        else:
            plan.ask(f"task:{t.name}", f"{f.name!r} holds nearly the same tags as {twin.name!r} "
                                       f"(kept: more tags per row); use it instead?")
    for f in sorted(single, key=lambda f: (_hint_rank(f.name, _LABEL_HINTS) is None, f.name)):
        t = Task(_task_name(f.name, taken), "singlelabel", f.name, enabled=f.numeric < 0.5)
        plan.tasks.append(t)
        if not t.enabled:
            plan.ask(f"task:{t.name}", f"{f.name!r} is mostly numbers with a few other values "
                                       "(an index?); uncomment it if its values are classes.")
    has_labels = any(t.enabled for t in plan.tasks)
    for f in numeric:
        low = _snake(f.name)
        target = not f.integer and (_hint_rank(f.name, _TARGET_HINTS) is not None
                                    or not has_labels)
        target = target and not low.endswith(_NOT_TARGET_SUFFIXES)
        t = Task(_task_name(f.name, taken), "regression", f.name, enabled=target)
        plan.tasks.append(t)
    off = [t.column for t in plan.tasks if t.kind == "regression" and not t.enabled]
    if off:
        plan.ask("numeric", f"numeric columns {_few(off)} are left out (commented below); uncomment "
                            "those that are targets to predict.")
    on = [t.column for t in plan.tasks if t.kind == "regression" and t.enabled]
    if on:
        plan.ask("numeric", f"numeric columns {_few(on)} are trained as regression targets; remove "
                            "those that are not.")
    if len([t for t in plan.tasks if t.kind == "singlelabel" and t.enabled]) > 1:
        plan.ask("singlelabel", "several columns have few distinct values; each is a single-label "
                                "task. Remove those that are not labels to learn.")
    if not any(t.enabled for t in plan.tasks):
        raise InitError(where, f"no label column found in the {len(rows)} rows read: no column with "
                               f"few distinct values, joined tags or numbers (columns: {names})",
                        line=1)
    plan.tasks.sort(key=lambda t: not t.enabled)

    # -- group
    if group is not None:
        plan.source["group_column"] = group
        others = [c[2] for c in group_cands[1:4]]
        if group_cands[0][0] == 1:
            plan.ask("group_column", f"{group!r} was chosen as the group (recordings sharing a value "
                                     "never cross train/test) because its values repeat; is it an "
                                     "artist/album-like field?" + (f" Others: {others}" if others else ""))
        elif others:
            plan.ask("group_column", f"{group!r} keeps its recordings in one split; {others} could "
                                     "be the group instead.")
    elif default_group:
        plan.note("group_column", f"no artist/album-like field: the group is {default_group}")
        plan.ask("group_column", "no artist/album-like field found; recordings of one artist may "
                                 "land in both train and test, so scores may be optimistic.")
    else:
        plan.ask("group_column", "no grouping column found (no artist/album/performer-like field, "
                                 "no repeated non-label values): every recording is its own group; "
                                 "recordings of one artist may land in both train and test.")

    urls = [f.name for f in prof.values() if f.urls >= 0.5]
    if urls:
        plan.note("download", f"{urls[0]!r} holds URLs: `eno download --set "
                              f"dataset.download.url_column={urls[0]}` fetches missing audio")


def _few(names: list[str], k: int = 6) -> str:
    """``names`` for a message: the first ``k`` and how many more."""
    return str(names) if len(names) <= k else f"{names[:k]} and {len(names) - k} more"


def _label_max(n: int) -> int:
    """Most distinct values a single-label column may have among ``n`` values."""
    return max(2, min(100, n // 3))


def _path_template(plan: Plan, rows: list[dict[str, Any]], id_field: str,
                   prof: dict[str, _Field], stems: dict[str, list[Path]]) -> None:
    """Set ``path_template`` when every matched file is ``{field}/.../{id}{suffix}``."""
    root = plan.audio_root
    matched = [(r, stems[str(r[id_field]).strip()][0]) for r in rows
               if not _empty(r.get(id_field)) and len(stems.get(str(r[id_field]).strip(), [])) == 1]
    if not matched:
        plan.note("id_column", f"no file under {root} is named after {id_field!r}: rows are "
                               "matched by nothing (see rejects)")
        return
    scalar = [n for n, f in prof.items() if f.lists == 0 and n != id_field and f.urls == 0
              and not any(c in n for c in ".[]{}:!")]
    templates: Counter[str] = Counter()
    for row, path in matched:
        rel = path.relative_to(root)
        parts = []
        for part in rel.parent.parts:
            name = next((n for n in scalar if str(row.get(n, "")).strip() == part), None)
            parts.append("{" + name + "}" if name else part.replace("{", "{{").replace("}", "}}"))
        parts.append("{" + id_field + "}" + rel.suffix)
        templates["/".join(parts)] += 1
    template, hits = templates.most_common(1)[0]
    if hits >= 0.95 * len(matched):
        plan.source["path_template"] = template
        plan.note("path_template", f"fits {hits} of the {len(matched)} rows whose id names a file")
    else:
        plan.note("id_column", f"files are found by name: a file under the audio root named "
                               f"after {id_field!r} ({len(matched)} of {len(rows)} rows read match)")


def _read_text(path: Path) -> str:
    """``path`` as UTF-8 text (a BOM dropped). Raises InitError: unreadable (``io_error``) or not
    UTF-8 (naming the line of the first bad byte)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InitError(path, f"cannot read: {exc.strerror or exc}", reason="io_error") from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InitError(path, f"not UTF-8 text (byte 0x{raw[exc.start]:02x})", line=line) from exc


def _read_csv(path: Path, max_rows: int) -> tuple[list[str], list[dict[str, Any]], str]:
    from eno_hf.data.sources.csv import sniff_delimiter

    text = _read_text(path)
    lines = text.splitlines()
    first = lines[0] if lines else ""
    if not first.strip():
        raise InitError(path, "empty file or empty header line", line=1)
    delim = sniff_delimiter(first, path)
    reader = csv.DictReader(iter(lines), delimiter=delim)
    rows: list[dict[str, Any]] = []
    try:
        header = list(reader.fieldnames or [])
        for row in reader:
            rows.append(row)
            if len(rows) >= max_rows:
                break
    except csv.Error as exc:
        raise InitError(path, f"CSV parse error: {exc}", line=reader.line_num) from exc
    dup = [h for h, n in Counter(header).items() if n > 1]
    if dup:
        raise InitError(path, f"duplicate column names {dup}", line=1, column=dup[0])
    blank = [i + 1 for i, h in enumerate(header) if not str(h).strip()]
    if blank:
        raise InitError(path, f"column {blank[0]} of the header has no name", line=1)
    if not rows:
        raise InitError(path, "header only: no data rows", line=2)
    if len(header) < 2:
        raise InitError(path, f"one column only ({header}): no id and label columns "
                              f"(delimiter sniffed: {delim!r})", line=1)
    return header, [{k: v for k, v in r.items() if k is not None} for r in rows], delim


def _detect_csv(path: Path, max_rows: int) -> Plan:
    header, rows, delim = _read_csv(path, max_rows)
    plan = Plan("csv", path, path.parent, metadata=path, rows_read=len(rows),
                name=_snake(path.stem))
    if delim not in (",",):
        plan.source["delimiter"] = delim
    _choose_fields(plan, rows, header, set(), None, None, None)
    return plan


def _load_json(path: Path) -> Any:
    text = _read_text(path)
    if not text.strip():
        raise InitError(path, "empty file", line=1)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InitError(path, f"not a JSON document: {exc.msg}", line=exc.lineno,
                        column=exc.colno) from exc


def _detect_json(path: Path, max_rows: int) -> Plan:
    data = _load_json(path)
    albums = data.get("albums") if isinstance(data, dict) else data
    if not isinstance(albums, list):
        what = "an object without an 'albums' list" if isinstance(data, dict) else \
            f"a JSON {type(data).__name__}"
        raise InitError(path, f"not an album list: expected a list of albums with 'tracks' (or "
                              f'{{"albums": [...]}}), got {what}', line=1, column=1)
    if not albums:
        raise InitError(path, "an empty album list", line=1, column=1)
    rows: list[dict[str, Any]] = []
    for i, album in enumerate(albums):
        if not isinstance(album, dict) or not isinstance(album.get("tracks"), list):
            raise InitError(path, f"not an album list: albums[{i}] is not an object with a "
                                  "'tracks' list", line=1, column=1)
        for track in album["tracks"]:
            if isinstance(track, dict):
                rows.append({**{k: v for k, v in album.items() if k != "tracks"}, **track})
            if len(rows) >= max_rows:
                break
        if len(rows) >= max_rows:
            break
    if not rows:
        raise InitError(path, "no track objects in the albums' 'tracks' lists", line=1, column=1)
    names = list(dict.fromkeys(k for r in rows for k in r))
    plan = Plan("json_dump", path, path.parent, metadata=path, rows_read=len(rows),
                name=_snake(path.stem))
    id_field = "track_id" if "track_id" in names else None
    _choose_fields(plan, rows, names, set(), id_field, None, "the album (album_id)")
    if "id_column" not in plan.source:  # the adapter needs an id field
        raise InitError(path, f"no track id field: no track field is unique per track (fields: "
                              f"{names})", line=1, column=1)
    if "group_column" not in plan.source and "album_id" in names:
        plan.source["group_column"] = "album_id"
    return plan


def _detect_jsonl(path: Path, max_rows: int) -> Plan:
    rows: list[dict[str, Any]] = []
    try:
        fh = path.open(encoding="utf-8-sig")
    except OSError as exc:
        raise InitError(path, f"cannot read: {exc.strerror or exc}", reason="io_error") from exc
    with fh:
        try:
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InitError(path, f"not a JSON line: {exc.msg}", line=n,
                                    column=exc.colno) from exc
                if not isinstance(obj, dict):
                    raise InitError(path, f"a JSON {type(obj).__name__}, not an object", line=n,
                                    column=1)
                missing = [k for k in _JSONL_REQUIRED if _empty(obj.get(k))]
                if missing:
                    raise InitError(path, f"not a segment: missing {missing} (a JSONL source needs "
                                          f"{list(_JSONL_REQUIRED)} on every line)", line=n,
                                    column=1)
                rows.append(obj)
                if len(rows) >= max_rows:
                    break
        except UnicodeDecodeError as exc:
            raise InitError(path, "not UTF-8 text", line=len(rows) + 1) from exc
    if not rows:
        raise InitError(path, "empty file: no JSON lines", line=1)
    names = list(dict.fromkeys(k for r in rows for k in r))
    plan = Plan("jsonl_segments", path, path.parent, metadata=path, rows_read=len(rows),
                name=_snake(path.stem))
    # the recording id names the file (stem lookup) unless a path field does
    _choose_fields(plan, rows, names, {"segment_id", "segment_start", "segment_end"},
                   "recording_id", None, "the source recording (recording_id)")
    plan.source.pop("id_column", None)  # fixed by the adapter: segment_id
    return plan


# ----------------------------------------------------------------------------- folders
def _detect_folders(root: Path, audio: list[Path]) -> Plan:
    plan = Plan("folders", root, root, rows_read=len(audio), name=_snake(root.name))
    labelled = [p for p in audio if len(p.relative_to(root).parts) > 1]
    loose = len(audio) - len(labelled)
    if not labelled:
        raise InitError(root, f"{len(audio)} audio/MIDI files but no label folders and no metadata "
                              "file: put the files in one folder per label (happy/a.mp3, sad/b.mp3) "
                              "or add a CSV naming them")
    depths = Counter(len(p.relative_to(root).parts) - 1 for p in labelled)
    tops = Counter(p.relative_to(root).parts[0] for p in labelled)
    if loose:
        plan.note("audio_root", f"{loose} files lie directly in the folder (no label folder): "
                                "they are listed as rejects")
    if len(tops) < 2:
        plan.ask("folder_mode", f"only one label folder ({next(iter(tops))!r}): a classifier needs "
                                "at least two. Add folders, or point eno init at the folder above.")
    if max(depths) == 1:
        plan.source["folder_mode"] = "singlelabel"
        plan.source["folder_group"] = "stem"
        plan.note("folder_mode", "one folder level: the folder name is the one label of a file")
        plan.ask("folder_group", "no artist/album information: each file is its own group (files "
                                 "with the same name in two folders count as one); files of one "
                                 "artist may land in both train and test.")
    else:
        # second level repeated under several top folders -> tags (rock/live, jazz/live);
        # else album folders under a label (rock/Album A/x.mp3)
        seconds: dict[str, set[str]] = {}
        for p in labelled:
            parts = p.relative_to(root).parts
            if len(parts) > 2:
                seconds.setdefault(parts[1], set()).add(parts[0])
        shared = sum(len(tops_) > 1 for tops_ in seconds.values())
        if seconds and shared >= 0.5 * len(seconds):
            plan.source["folder_mode"] = "multilabel"
            plan.source["folder_group"] = "stem"
            plan.ask("folder_mode", f"folders {max(depths)} levels deep whose inner names "
                                    "repeat under several outer folders: every folder level is a "
                                    "tag (rock/live/x.mp3 -> [rock, live]). If the inner folders "
                                    "are albums, use folder_mode: singlelabel, folder_group: parent.")
        else:
            plan.source["folder_mode"] = "singlelabel"
            plan.source["folder_group"] = "parent"
            plan.ask("folder_mode", "folders nested below the label folders with names of their "
                                    "own (albums?): the outer folder is the label and the inner "
                                    "folder is the group (never split). If every level is a tag, "
                                    "use folder_mode: multilabel.")
    mode = plan.source["folder_mode"]
    plan.tasks.append(Task("label", mode, None, None))
    plan.source["folder_task"] = "label"
    return plan


# ----------------------------------------------------------------------------- detect
def detect(path: str | Path, max_rows: int = MAX_ROWS, skip: tuple[Path, ...] = (),
           use_metadata: bool = True) -> Plan:
    """Decide the source kind and settings of the collection at ``path``.

    Args:
        path: a folder (audio in label folders, or audio beside a CSV/TSV/JSON/JSONL at its top
            level) or a metadata file (its folder is the audio root).
        max_rows: rows/tracks/lines measured to decide the fields.
        skip: folders not to walk (e.g. the data root inside the collection).
        use_metadata: look for a metadata file in a folder (False: label folders only).

    Returns:
        ``Plan`` (kind, audio root, metadata, source fields, tasks, questions).

    Raises:
        InitError: the path does not exist, is an empty folder, holds no audio and no metadata,
            or its metadata cannot be used (no id column, not an album list, not segments...);
            the message names the file and, where it applies, the line and column.
    """
    p = Path(path).expanduser().absolute()
    if not p.exists():
        raise InitError(p, "no such file or folder", reason="missing_file")
    if p.is_file():
        kind = METADATA_KINDS.get(p.suffix.lower())
        if kind is None:
            what = "an audio file" if p.suffix.lower() in AUDIO_SUFFIXES else "not a metadata file"
            raise InitError(p, f"{what}: give a folder, or a CSV/TSV, JSON album dump or JSONL "
                               "segment file", reason="unsupported")
        plan = {"csv": _detect_csv, "json_dump": _detect_json,
                "jsonl_segments": _detect_jsonl}[kind](p, max_rows)
        audio = _walk(plan.audio_root, {s.resolve() for s in skip})[0]
        plan.files = _suffix_counts(audio)
        _outside_links(plan, audio)
        return plan
    if not p.is_dir():
        raise InitError(p, "not a file or folder", reason="unsupported")
    audio, other = _walk(p, {s.resolve() for s in skip})
    if not audio and not other:
        raise InitError(p, "empty folder: no files (dot-files are not counted)")
    metas = sorted((f for f in other if f.parent == p and f.suffix.lower() in METADATA_KINDS),
                   key=lambda f: (list(METADATA_KINDS.values()).index(METADATA_KINDS[f.suffix.lower()]),
                                  f.name))
    if not audio:
        found = ", ".join(f"{s} {n}" for s, n in _suffix_counts(other).items())
        raise InitError(p, f"no audio/MIDI files under this folder (found: {found}; audio is "
                           f"{sorted(AUDIO_SUFFIXES)})")
    errors: list[InitError] = []
    plan: Plan | None = None
    for meta in metas if use_metadata else []:
        try:
            plan = detect(meta, max_rows, skip)
        except InitError as exc:
            errors.append(exc)
            continue
        break
    if plan is None:
        try:
            plan = _detect_folders(p, audio)
        except InitError:
            if errors:
                raise errors[0] from None
            raise
        for exc in errors:
            plan.ask("kind", f"{Path(exc.path or '').name} was not used: {exc.one_line()}")
    else:
        others = [m.name for m in metas if m != plan.metadata]
        if others:
            plan.ask("metadata", f"other metadata files here: {others}; {plan.metadata.name} was "
                                 "used.")
        if len({a.relative_to(p).parts[0] for a in audio if len(a.relative_to(p).parts) > 1}) > 1:
            plan.note("kind", "the audio also lies in sub-folders; `kind: folders` would take "
                              "labels from the folder names instead of the metadata")
        plan.path = p
        plan.name = _snake(p.name)
    plan.files = _suffix_counts(audio + other)
    if "allowed_roots" not in plan.source:
        _outside_links(plan, audio)
    return plan


def _outside_links(plan: Plan, audio: list[Path]) -> None:
    """Audio files that are symlinks resolving outside the audio root: their folders go to
    ``allowed_roots`` (else every such file is rejected as ``outside_root``), asked in the file."""
    root = plan.audio_root.resolve()
    outside: set[Path] = set()
    for a in audio:
        if not a.is_symlink():
            continue
        target = a.resolve()
        if target.is_file() and not target.is_relative_to(root):
            outside.add(target.parent)
    if not outside:
        return
    roots = sorted(outside)
    if len(roots) > 5:
        roots = [Path(os.path.commonpath([str(r) for r in roots]))]
    plan.source["allowed_roots"] = [str(r) for r in roots]
    plan.ask("allowed_roots", f"audio files here are symlinks into {len(outside)} folder(s) outside "
                              "the collection; eno opens files only inside audio_root and these "
                              "allowed_roots. Remove them to refuse such links.")


# ----------------------------------------------------------------------------- yaml
def _comment_lines(prefix: str, texts: list[str], indent: str) -> list[str]:
    import textwrap

    out = []
    for t in texts:
        wrapped = textwrap.wrap(t, width=96 - len(indent) - len(prefix))
        for i, w in enumerate(wrapped):
            out.append(f"{indent}# {prefix if i == 0 else ' ' * len(prefix)}{w}")
    return out


def render_yaml(plan: Plan, out: Path, base: str = "tagger") -> str:
    """The commented ``eno.yaml`` text for ``plan``, to be written at ``out``.

    Paths inside ``out``'s folder are written relative to it (the config rule: a relative path in
    a YAML file is relative to that file's folder); others are absolute.
    """
    here = Path(out).absolute().parent
    src = plan.source

    shown: set[str] = set()

    def c(key: str, indent: str) -> list[str]:
        shown.add(key)
        return (_comment_lines("", plan.notes.get(key, []), indent)
                + _comment_lines("QUESTION: ", plan.questions.get(key, []), indent))

    n_q = len(plan.all_questions())
    L = [f"# eno configuration for {plan.path}, written by `eno init`.",
         f"# Source kind: {plan.kind}. Relative paths are relative to this file's folder.",
         f"# Built on the built-in config {base!r} (`eno config --list`): its model and training "
         "settings, with the dataset below.",
         f"# Open questions: {n_q} (search for QUESTION)." if n_q else "# No open questions.",
         f"# Next: eno ingest --config {Path(out).name}   (check labels and rejects), then "
         f"eno run --config {Path(out).name}",
         f"defaults: [{base}]",
         "paths:",
         f"  data_root: {DATA_ROOT}        # datasets, caches, runs and the model hub",
         "dataset:",
         f"  name: {_y(plan.name)}",
         "  source:"]
    L += c("kind", "    ")
    L.append(f"    kind: {plan.kind}")
    if plan.metadata is not None:
        L += c("metadata", "    ")
        L.append(f"    metadata: {_y(_rel(plan.metadata, here))}")
    L += c("audio_root", "    ")
    L.append(f"    audio_root: {_y(_rel(plan.audio_root, here))}")
    if "allowed_roots" in src:
        L += c("allowed_roots", "    ")
        L.append("    allowed_roots:")
        L += [f"      - {_y(_rel(Path(r), here))}" for r in src["allowed_roots"]]
    order = ["delimiter", "id_column", "path_column", "path_template", "group_column",
             "folder_task", "folder_mode", "folder_group"]
    for key in order:
        if key in src:
            L += c(key, "    ")
            L.append(f"    {key}: {_y(src[key])}")
        elif key in plan.questions or key in plan.notes:
            L += c(key, "    ")
            if key in ("id_column", "path_template", "path_column", "group_column") \
                    and plan.kind != "folders":
                L.append(f"    {key}: null")
    if plan.kind != "folders":
        kinds = {"multilabel": "multilabel", "singlelabel": "singlelabel", "regression": "numeric"}
        for kind, key in kinds.items():
            tasks = [t for t in plan.tasks if t.kind == kind]
            L += c(key, "    ")
            L.append(f"    {key}:" + ("" if any(t.enabled for t in tasks) else " {}"))
            for t in tasks:
                L += c(f"task:{t.name}", "      ")
                value = (f"{{column: {_y(t.column)}, separator: {json.dumps(t.separator)}}}"
                         if kind == "multilabel" else _y(t.column))
                L.append(f"      {'' if t.enabled else '# '}{t.name}: {value}")
    L += c("download", "  ")
    enabled = [t for t in plan.tasks if t.enabled]
    L += ["  labels:",
          "    lowercase: true",
          "    # tags seen fewer times than this over the whole collection are dropped",
          "    min_count: " + _y({t.name: _min_count(t, plan) for t in enabled
                                   if t.kind != "regression"})]
    L += ["model:",
          "  heads:"]
    for t in plan.tasks:
        L.append(f"    {'' if t.enabled else '# '}- {{name: {t.name}, kind: {t.kind}}}")
    L += ["registry:",
          f"  model_name: {_y(f'{plan.name}-tagger'.replace('_', '-'))}",
          "run:",
          "  tag_files: []      # files or folders tagged after training (never seen in training)",
          ""]
    rest = [q for key, qs in plan.questions.items() if key not in shown for q in qs]
    if rest:  # never lose a question: those without a setting of their own go on top
        at = L.index(f"defaults: [{base}]")
        L[at:at] = _comment_lines("QUESTION: ", rest, "")
    return "\n".join(L)


def _min_count(task: Task, plan: Plan) -> int:
    if task.kind != "multilabel":
        return 1
    return max(1, min(10, plan.rows_read // 40))


# ----------------------------------------------------------------------------- init
def init_collection(path: str | Path, out: str | Path | None = None, base: str = "tagger",
                    force: bool = False, max_rows: int = MAX_ROWS) -> InitResult:
    """Detect the collection at ``path``, write a validated ``eno.yaml`` and summarize it.

    Args:
        path: folder or metadata file (see ``detect``).
        out: the file to write; default ``eno.yaml`` in ``path`` (or beside a metadata file).
        base: built-in config (or a YAML path) the file layers on (``defaults: [base]``).
        force: overwrite an existing ``out``.
        max_rows: rows measured to decide the fields.

    Returns:
        ``InitResult`` (written path, plan, JSON-ready summary).

    Raises:
        InitError: unusable input (see ``detect``), ``out`` exists without ``force``, ``out``
            cannot be written, or the written config finds no recording; nothing is written.
        eno_hf.config.ConfigError: the generated file does not load (a bug; nothing is written).
    """
    import tempfile

    from eno_hf.config import ConfigError, load_config
    from eno_hf.data.sources import load_recordings

    p = Path(path).expanduser().absolute()
    if not p.exists():
        raise InitError(p, "no such file or folder", reason="missing_file")
    target = Path(out).expanduser().absolute() if out is not None else \
        (p if p.is_dir() else p.parent) / "eno.yaml"
    if target.exists() and not force:
        raise InitError(target, "already exists; pass --force to overwrite it")
    if not target.parent.is_dir():
        raise InitError(target.parent, "the output folder does not exist", reason="missing_file")
    _check_base(base)
    skip = (target.parent / DATA_ROOT,)
    plan = detect(p, max_rows, skip=skip)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=".eno-init-", suffix=".yaml", dir=target.parent)
    except OSError as exc:
        raise InitError(target, f"cannot write: {exc.strerror or exc} (choose another place with "
                                "--out)", reason="io_error") from exc
    tmp = Path(tmp_name)
    os.close(fd)

    def check(plan: Plan) -> tuple[Settings, SourceResult]:
        for _ in range(2):  # a second pass when a task turned out to have one value only
            tmp.write_text(render_yaml(plan, target, base), encoding="utf-8")
            try:
                settings = load_config(tmp)
            except ConfigError as exc:
                raise ConfigError(str(exc).replace(str(tmp), str(target))) from exc
            src = load_recordings(settings.dataset.source)
            if not src.recordings:
                first = src.rejected[0] if src.rejected else {}
                raise InitError(plan.metadata or plan.path,
                                f"no usable recording: {len(src.rejected)} rejected (first: "
                                f"{first.get('reason')} {first.get('path')} "
                                f"{first.get('detail', '')})".rstrip())
            if not _drop_flat_tasks(plan, src.recordings):
                break
        return settings, src

    try:
        try:
            settings, src = check(plan)
        except InitError as exc:
            if not (p.is_dir() and plan.metadata is not None):
                raise
            try:  # the metadata names none of the audio here: label folders, if any
                plan = detect(p, max_rows, skip=skip, use_metadata=False)
            except InitError:
                raise exc from None
            plan.ask("kind", f"{exc.one_line()} -- so the folder names are the labels instead.")
            settings, src = check(plan)
        summary = _summary(plan, settings, src, target)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    log.debug("wrote %s (%s, %d recordings)", target, plan.kind, summary["recordings"])
    return InitResult(target, plan, summary)


def _check_base(base: str) -> None:
    """Refuse a base config that brings a dataset of its own: its label maps would merge with
    the collection's (YAML mappings merge key by key).

    Raises:
        InitError: ``base`` sets ``dataset.source`` (e.g. ``small``: the 4Q demo).
        eno_hf.config.ConfigError: ``base`` is neither a file nor a built-in config.
    """
    from eno_hf.config import SourceConfig, load_config, resolve_config_path

    settings = load_config(base)
    if settings.dataset.source != SourceConfig():
        raise InitError(resolve_config_path(base), f"--base {base} brings its own dataset "
                        f"({settings.dataset.name!r}) whose label columns would merge with the "
                        "collection's: use a recipe without a dataset (tagger)")


def _drop_flat_tasks(plan: Plan, recordings: list[Any]) -> bool:
    """Disable (with a question) the enabled tasks that have fewer than two values among the
    recordings found; True if any was disabled.

    Raises:
        InitError: no task is left.
    """
    changed = False
    for t in plan.tasks:
        if not t.enabled:
            continue
        values: set[Any] = set()
        for r in recordings:
            if t.kind == "multilabel":
                values.update(str(v).strip().casefold() for v in r.multilabel.get(t.name, []))
            elif t.kind == "singlelabel":
                v = r.singlelabel.get(t.name)
                if v is not None:
                    values.add(str(v).strip().casefold())
            elif r.numeric.get(t.name) is not None:
                values.add(r.numeric[t.name])
        if len(values) < 2:
            t.enabled = False
            changed = True
            seen = f"only {sorted(map(str, values))}" if values else "no value"
            plan.ask(f"task:{t.name}", f"{t.column or t.name!r} has {seen} among the "
                                       f"{len(recordings)} recordings found: nothing to learn, "
                                       "left out.")
    if changed and not any(t.enabled for t in plan.tasks):
        raise InitError(plan.metadata or plan.path,
                        f"no label with two different values among the {len(recordings)} "
                        f"recordings found (tasks: {[t.name for t in plan.tasks]})")
    plan.tasks.sort(key=lambda t: not t.enabled)
    return changed


def _unreadable(recordings: list[Any]) -> list[dict[str, Any]]:
    """Rejects the build will make without decoding: zero-byte (``empty``) and unreadable
    (``io_error``) files among the recordings found (each file checked once)."""
    from eno_hf.data.sources import reject

    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for r in recordings:
        path = str(r.path)
        if path in seen:
            continue
        seen.add(path)
        try:
            if os.stat(path).st_size == 0:
                out.append(reject(path, r.recording_id, "empty", "zero bytes"))
            elif not os.access(path, os.R_OK):
                out.append(reject(path, r.recording_id, "io_error", "not readable (permissions)"))
        except OSError as exc:
            out.append(reject(path, r.recording_id, "io_error", exc.strerror or str(exc)))
    return out


def _summary(plan: Plan, settings: Settings, src: SourceResult, target: Path) -> dict[str, Any]:
    from eno_hf.data.labels import clean_labels

    labels = clean_labels(src.recordings, settings.dataset.labels)
    tasks: dict[str, Any] = {}
    for t in plan.tasks:
        if not t.enabled:
            continue
        counts: Counter[str] = Counter()
        values: list[float] = []
        for r in labels.recordings:
            if t.kind == "multilabel":
                counts.update(r.multilabel.get(t.name, []))
            elif t.kind == "singlelabel" and r.singlelabel.get(t.name) is not None:
                counts[r.singlelabel[t.name]] += 1
            elif t.kind == "regression" and r.numeric.get(t.name) is not None:
                values.append(float(r.numeric[t.name]))
        entry: dict[str, Any] = {"kind": t.kind, "column": t.column}
        if t.kind == "regression":
            entry.update(values=len(values), min=min(values, default=None),
                         max=max(values, default=None))
        else:
            entry.update(labels=len(counts), top=counts.most_common(5),
                         dropped=len(labels.dropped.get(t.name, {})))
            if t.separator:
                entry["separator"] = t.separator
        tasks[t.name] = entry
    groups = Counter(r.group if r.group is not None else f"\0{r.recording_id}"
                     for r in src.recordings)
    rejected = list(src.rejected) + _unreadable(src.recordings)
    reasons = Counter(r["reason"] for r in rejected)
    here = target.parent
    cfg = _rel(target, Path.cwd()) if _rel(target, Path.cwd()) != str(target) else str(target)
    tag_dir = _rel(plan.audio_root, Path.cwd())
    return {
        "config": str(target), "kind": plan.kind, "path": str(plan.path),
        "metadata": str(plan.metadata) if plan.metadata else None,
        "audio_root": str(plan.audio_root), "rows_read": plan.rows_read,
        "files": plan.files, "recordings": len(src.recordings),
        "source": plan.source, "tasks": tasks,
        "groups": {"column": settings.dataset.source.group_column
                   if plan.kind != "folders" else f"folder_group={plan.source.get('folder_group')}",
                   "count": len(groups),
                   "largest": max(groups.values(), default=0)},
        "rejected": {"count": len(rejected), "by_reason": dict(reasons),
                     "first": rejected[:10]},
        "questions": plan.all_questions(),
        "next": [f"eno ingest --config {cfg}", f"eno run --config {cfg}",
                 f"eno tag {tag_dir} --model {settings.registry.model_name} --config {cfg}"],
        "data_root": str(here / DATA_ROOT),
    }
