"""Metadata adapters: turn a music folder + metadata into ``list[Recording]`` plus rejected items.

``load_recordings(cfg)`` dispatches on ``cfg.kind``:

- ``csv``            CSV/TSV, one row per file (``eno_hf.data.sources.csv``)
- ``json_dump``      RYM-style JSON dump of albums with tracks (``...sources.json_dump``)
- ``jsonl_segments`` one JSON object per pre-cut segment (``...sources.jsonl_segments``)
- ``folders``        labels from the directory structure (``...sources.folders``)

Nothing is silently dropped: every metadata row and every entry of the walk of ``audio_root``
ends up either in ``recordings`` or in ``rejected``. Each rejected item is ``{"path",
"recording_id", "reason", "detail"}`` with ``reason`` one of ``eno_hf.errors.RejectedInput.REASONS``:

- ``missing_file``: a metadata row whose audio file does not exist;
- ``no_metadata``: an audio file under ``audio_root`` that no metadata row names;
- ``bad_metadata``: an unparseable row (detail ``"line N: ..."``, a non-UTF-8 cell included), or a
  duplicate id (later rows; detail ``"duplicate id"``);
- ``outside_root``: a path from a metadata row, a ``path_template`` or a symlink met by the walk
  that resolves (``..`` and symlinks followed) outside ``audio_root`` and ``allowed_roots``; the
  item names the resolved path and the file is never opened (``eno_hf.audio.validate.confine``);
- ``unsupported``: a file under ``audio_root`` (or named by a row) whose suffix is not an
  audio/MIDI one, a directory named like an audio file (``x.mp3/``), or an entry that is not a
  regular file (a FIFO, a socket, a device; detail ``"not a regular file"``, never opened);
  dot-files and the metadata file itself are not reported;
- ``io_error``: a folder under ``audio_root`` the walk cannot list (permission denied, I/O error;
  the files in it cannot be counted), or an entry it cannot stat.

Ids derived from file names (``folders``; ``csv`` without ``id_column``) keep the file's
extension when two files of one folder share a stem (``x.mp3``, ``x.wav``, ``x.mid``), so each
is an input of its own; ids without such a collision keep the stem.

A metadata file unusable as a whole (missing, empty, header only, a configured column missing,
not parseable) raises ``eno_hf.errors.MetadataError``: one line naming the file, line and column.

Adapters never decode audio; they only check that files exist. A path is resolved and stat'ed
once per read however many rows name it (``AudioIndex.probe``, ``AudioIndex.resolve``), so
millions of rows over a small pool of files cost no file-system calls per row.

Example:
    >>> from eno_hf.config import load_config
    >>> res = load_recordings(load_config("configs/datasets/4q.yaml").dataset.source)
    >>> len(res.recordings), len(res.rejected)
    (360, 0)
"""

from __future__ import annotations

import importlib
import os
import re
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eno_hf.audio.validate import confine, supported_extensions
from eno_hf.config import SourceConfig
from eno_hf.data.recording import Recording
from eno_hf.errors import MetadataError, RejectedInput

__all__ = ["SourceResult", "load_recordings", "reject", "row_rejection", "AudioIndex", "make_index",
           "file_ids"]

ADAPTERS = {"csv": "csv", "json_dump": "json_dump", "jsonl_segments": "jsonl_segments",
            "folders": "folders"}


@dataclass
class SourceResult:
    """Output of ``load_recordings``: accepted recordings (metadata order) and rejected items."""

    recordings: list[Recording]
    rejected: list[dict[str, Any]] = field(default_factory=list)


def reject(path: str | Path | None, recording_id: str | None, reason: str,
           detail: str = "") -> dict[str, Any]:
    """Build one rejected item ``{"path", "recording_id", "reason", "detail"}``.

    Raises:
        ValueError: ``reason`` is not in ``RejectedInput.REASONS``.
    """
    if reason not in RejectedInput.REASONS:
        raise ValueError(f"unknown reject reason {reason!r}; expected one of {RejectedInput.REASONS}")
    return {"path": printable(str(path)) if path is not None else None,
            "recording_id": printable(recording_id), "reason": reason, "detail": printable(detail)}


CONFIG_FILE_NAME = "eno.yaml"
"""The config file ``eno init`` writes into a collection: not an input, never reported as unsupported."""


class AudioIndex:
    """The files under a root folder (recursive walk, symlinked folders not followed), sorted.

    Every entry of the walk is accounted for: audio files (suffix in ``extensions``) go to
    ``files``; symlinks that resolve outside the allowed roots go to ``outside`` (never opened);
    other files go to ``unsupported`` (dot-files and the ``exclude`` files, e.g. the metadata
    file itself, are ignored); folders named like audio files (``x.mp3/``) go to
    ``unsupported_dirs`` (their content is still walked); folders the walk cannot list and
    entries it cannot stat go to ``unreadable`` (``RejectedInput`` with reason ``io_error``).

    Args:
        root: folder to scan; None gives an empty index.
        extensions: accepted suffixes (case-insensitive), e.g. ``[".wav", ".mp3"]``.
        allowed_roots: further folders paths may resolve into (``SourceConfig.allowed_roots``).
        exclude: files not to report as unsupported (the metadata file). Hidden folders (a name
            starting with ``.``, e.g. the ``.eno`` data root `eno init` writes) are not scanned.
        follow_symlinks: take symlinks as their targets wherever they point, and walk symlinked
            folders (each real folder once, so a link loop ends): for a folder the user named
            on the command line (``eno tag``), never for a configured data root. Default False:
            symlinks are confined to the root and ``allowed_roots``.

    ``probe`` and ``resolve`` remember their answers (up to ``CACHE_ENTRIES`` paths each, then
    they start over): an index serves one read of the file system's state.
    """

    CACHE_ENTRIES = 1 << 18
    """Paths remembered by ``probe`` / ``resolve`` / folder resolution before their caches are emptied."""

    def __init__(self, root: Path | None, extensions: list[str],
                 allowed_roots: list[Path] | tuple[Path, ...] = (),
                 exclude: tuple[Path, ...] = (), follow_symlinks: bool = False) -> None:
        self.root = Path(root).absolute() if root is not None else None
        self.exts = supported_extensions(extensions)
        self.roots: list[Path] = ([self.root] if self.root is not None else []) + \
            [Path(r).expanduser().absolute() for r in allowed_roots]
        self.files: list[Path] = []
        self.outside: list[RejectedInput] = []
        self.unsupported: list[Path] = []
        self.unsupported_dirs: list[Path] = []
        self.unreadable: list[RejectedInput] = []
        self.follow = follow_symlinks
        if self.root is not None and self.root.is_dir():
            self._walk({Path(p).absolute().resolve() for p in exclude})
        self._by_stem: dict[str, list[Path]] = {}
        for p in self.files:
            self._by_stem.setdefault(p.stem, []).append(p)
        self._allowed = [str(r.resolve()) for r in self.roots]
        self._probes: dict[Path, tuple[str, str]] = {}
        self._real_dirs: dict[Path, str] = {}
        self._lexical: dict[str, Path] = {}

    def _escapes(self, p: Path) -> bool:
        """Record ``p`` in ``outside`` if it is a symlink resolving outside the roots."""
        if self.follow or not p.is_symlink():
            return False
        try:
            confine(p, self.roots)
        except RejectedInput as exc:
            self.outside.append(exc)
            return True
        return False

    def _unlisted(self, exc: OSError) -> None:
        """``os.walk``'s ``onerror``: a folder that cannot be listed is an ``io_error`` record."""
        self.unreadable.append(RejectedInput(
            exc.filename, "io_error",
            f"cannot list folder: {exc.strerror or exc}; the files in it are not counted"))

    def _walk(self, exclude: set[Path]) -> None:
        assert self.root is not None
        seen: set[Path] = {self.root.resolve()}
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=self.follow,
                                                    onerror=self._unlisted):
            here = Path(dirpath)
            # hidden folders are not inputs (.eno = the data root `eno init` writes, .AppleDouble, .git)
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            if self.follow:  # each real folder once: a link loop or a second link is not rewalked
                keep = []
                for d in dirnames:
                    real = (here / d).resolve()
                    if real not in seen:
                        seen.add(real)
                        keep.append(d)
                dirnames[:] = keep
            for d in sorted(dirnames):
                p = here / d
                try:
                    if not self._escapes(p) and (self.follow or not p.is_symlink()) \
                            and Path(d).suffix.lower() in self.exts:
                        self.unsupported_dirs.append(p)
                except OSError as exc:
                    self._unstat(p, exc)
            for name in filenames:
                p = here / name
                try:
                    self._entry(p, name, exclude)
                except OSError as exc:
                    self._unstat(p, exc)
        self.files.sort()
        self.unsupported.sort()
        self.unsupported_dirs.sort()
        self.outside.sort(key=lambda e: str(e.path))
        self.unreadable.sort(key=lambda e: str(e.path))

    def _unstat(self, p: Path, exc: OSError) -> None:
        self.unreadable.append(RejectedInput(p, "io_error", f"cannot stat: {exc.strerror or exc}"))

    def _entry(self, p: Path, name: str, exclude: set[Path]) -> None:
        """Sort one file entry of the walk (raises ``OSError`` when it cannot be stat'ed)."""
        if self._escapes(p):
            return
        if p.suffix.lower() in self.exts:
            if p.is_dir():  # a symlink to a folder named like audio
                self.unsupported_dirs.append(p)
            else:  # a dangling symlink too: rejected later as missing_file
                self.files.append(p)
        elif not name.startswith(".") and name != CONFIG_FILE_NAME and p.absolute().resolve() not in exclude:
            self.unsupported.append(p)

    def by_stem(self, stem: str) -> list[Path]:
        """Files whose stem (name without suffix) equals ``stem``."""
        return list(self._by_stem.get(stem, []))

    def resolve(self, raw: str | Path) -> Path:
        """``raw`` as an absolute path: joined to the root when relative (or cwd without a root),
        and confined to the audio root + allowed roots (``eno_hf.audio.validate.confine``).

        Raises:
            RejectedInput: ``outside_root`` (naming the resolved path; nothing is opened).
        """
        key = raw if isinstance(raw, str) else str(raw)
        hit = self._lexical.get(key)
        if hit is not None:
            return hit
        # the lexical path as ``confine`` makes it; its resolved form from ``probe`` (cached per
        # folder); ``confine`` itself raises the rejection (and is the reference for the check)
        p = Path(raw).expanduser()
        if not p.is_absolute():
            if self.root is None and not self.roots:
                return confine(raw, self.roots, base=Path.cwd())
            p = (self.root if self.root is not None else Path.cwd().absolute()) / p
        if not self._inside(self.probe(p)[0]):
            return confine(raw, self.roots, base=self.root if self.root is not None else Path.cwd())
        if len(self._lexical) >= self.CACHE_ENTRIES:
            self._lexical.clear()
        self._lexical[key] = p
        return p

    def _inside(self, resolved: str) -> bool:
        return any(resolved == r or resolved.startswith(r if r.endswith(os.sep) else r + os.sep)
                   for r in self._allowed)

    def probe(self, path: str | Path) -> tuple[str, str]:
        """``(resolved path, kind)`` of ``path``, stat'ed once per index.

        ``resolved`` is ``Path(path).resolve()`` as a string (symlinks and ``..`` followed; a
        path that does not exist resolved as far as it goes), computed from the cached resolved
        folder plus one ``lstat`` of the name. ``kind`` is what the path is, symlinks followed:
        ``"file"`` (regular file), ``"dir"``, ``"other"`` (FIFO, socket, device) or ``"missing"``
        (absent, a dangling link, or not stat-able).
        """
        p = path if isinstance(path, Path) else Path(path)
        hit = self._probes.get(p)
        if hit is not None:
            return hit
        try:
            st: os.stat_result | None = os.lstat(p)
        except (OSError, ValueError):
            st = None
        if (st is not None and stat.S_ISLNK(st.st_mode)) or not p.is_absolute() or ".." in p.parts \
                or p.parent == p:
            resolved = str(p.resolve())
            try:
                st = os.stat(p)
            except (OSError, ValueError):
                st = None
        else:  # the name is no link: its folder's real path + the name
            resolved = os.path.join(self._real_dir(p.parent), p.name)
        kind = "missing" if st is None else "file" if stat.S_ISREG(st.st_mode) \
            else "dir" if stat.S_ISDIR(st.st_mode) else "other"
        if len(self._probes) >= self.CACHE_ENTRIES:
            self._probes.clear()
        hit = self._probes[p] = (resolved, kind)
        return hit

    def _real_dir(self, folder: Path) -> str:
        hit = self._real_dirs.get(folder)
        if hit is None:
            if len(self._real_dirs) >= self.CACHE_ENTRIES:
                self._real_dirs.clear()
            hit = self._real_dirs[folder] = str(folder.resolve())
        return hit

    def is_file(self, path: str | Path) -> bool:
        """Whether ``path`` is a regular file (symlinks followed; ``probe``, cached)."""
        return self.probe(path)[1] == "file"


def candidate_path(row: Mapping[str, Any], cfg: SourceConfig, index: AudioIndex) -> Path | None:
    """The audio path a metadata row names: its path field (``cfg.path_column``, default ``path``)
    or ``cfg.path_template`` formatted over the row (``str.format_map``: any mapping, e.g. a
    ``ChainMap`` of a track over its album); None if neither is given.

    Raises:
        ValueError: ``path_template`` names a field the row lacks.
    """
    path_field = cfg.path_column or "path"
    if to_label(row.get(path_field)):
        return index.resolve(str(row[path_field]).strip())
    if cfg.path_template:
        try:
            return index.resolve(cfg.path_template.format_map(row))
        except KeyError as exc:
            raise ValueError(f"path_template field {exc} missing") from exc
    return None


def locate(index: AudioIndex, recording_id: str, candidate: Path | None,
           stem_lookup: bool) -> tuple[Path | None, str]:
    """Pick the audio file of a row: ``candidate`` if it exists, else a unique stem match.

    Returns:
        (path or None, detail): the existing file, or ``candidate`` (may not exist) / None with a
        detail explaining why nothing was found.
    """
    if candidate is not None and index.is_file(candidate):
        return candidate, ""
    if stem_lookup:
        matches = index.by_stem(recording_id)
        if len(matches) == 1:
            return matches[0], ""
        if len(matches) > 1:
            return candidate, (f"{len(matches)} files with stem {recording_id!r}: "
                               + ", ".join(str(m) for m in matches[:5]))
    if candidate is not None:
        return candidate, f"file not found: {candidate}"
    return None, f"no path for id {recording_id!r} (no path column/template, no stem match)"


def finalize(recordings: list[Recording], rejected: list[dict[str, Any]],
             index: AudioIndex) -> SourceResult:
    """Shared checks after an adapter: duplicate ids, missing files, orphan audio files.

    ``recordings`` are candidates in metadata order; ``rejected`` are rows the adapter could not
    parse. Returns the accepted recordings and all rejected items (adapter's first).
    """
    out: list[Recording] = []
    rejected = list(rejected)
    seen: dict[str, Recording] = {}
    claimed: set[str] = set()  # resolved paths named by a row (``index.probe``: stat'ed once each)
    for item in rejected:
        if item.get("path"):
            claimed.add(index.probe(Path(item["path"]).absolute())[0])
    for rec in recordings:
        kind = "missing"
        if rec.path is not None:
            resolved, kind = index.probe(rec.path)
            claimed.add(resolved)
        if rec.recording_id in seen:
            first = seen[rec.recording_id]
            rejected.append(reject(rec.path, rec.recording_id, "bad_metadata",
                                   f"duplicate id (first: {first.path})"))
            continue
        seen[rec.recording_id] = rec
        if kind == "dir":
            rejected.append(reject(rec.path, rec.recording_id, "unsupported",
                                   "a directory, not an audio file"))
            continue
        if kind == "other":
            # a FIFO, socket or device: never opened (reading a FIFO would block)
            rejected.append(reject(rec.path, rec.recording_id, "unsupported", "not a regular file"))
            continue
        if kind != "file":
            detail = rec.extra.pop("_missing_detail", "") or f"file not found: {rec.path}"
            rejected.append(reject(rec.path, rec.recording_id, "missing_file", detail))
            continue
        rec.extra.pop("_missing_detail", None)
        suffix = rec.path.suffix if isinstance(rec.path, Path) else Path(rec.path).suffix
        if suffix.lower() not in index.exts:
            rejected.append(reject(rec.path, rec.recording_id, "unsupported",
                                   f"suffix {suffix or '(none)'!r} is not a "
                                   "supported audio/MIDI format"))
            continue
        out.append(rec)
    for p in index.files:
        if index.probe(p)[0] not in claimed:
            rejected.append(reject(p, None, "no_metadata",
                                   f"audio file under {index.root} named by no metadata row"))
    for exc in index.outside:
        rejected.append(reject(exc.path, None, exc.reason, exc.detail))
    for exc in index.unreadable:
        rejected.append(reject(exc.path, None, exc.reason, exc.detail))
    for p in index.unsupported:
        if index.probe(p)[0] not in claimed:
            rejected.append(reject(p, None, "unsupported",
                                   f"suffix {p.suffix or '(none)'!r} is not a supported "
                                   "audio/MIDI format"))
    for p in index.unsupported_dirs:
        if index.probe(p)[0] not in claimed:
            rejected.append(reject(p, None, "unsupported",
                                   "a directory named like an audio file (its files are "
                                   "listed separately)"))
    return SourceResult(out, rejected)


def file_ids(paths: list[Path], root: Path) -> dict[Path, str]:
    """Recording ids derived from file paths under ``root``: the relative path without its
    suffix, ``/`` replaced by ``__`` (``rock/live/c.mp3`` -> ``rock__live__c``); files of one
    folder sharing a stem keep their suffix (``x.mp3``, ``x.wav`` -> ``x.mp3``, ``x.wav``) so
    each stays an input of its own. Ids without a collision do not depend on other files."""
    keys = {p: p.relative_to(root).with_suffix("").as_posix() for p in paths}
    count: dict[str, int] = {}
    for k in keys.values():
        count[k] = count.get(k, 0) + 1
    return {p: (p.relative_to(root).as_posix() if count[k] > 1 else k).replace("/", "__")
            for p, k in keys.items()}


def row_rejection(path: str | Path | None, recording_id: str | None, where: str,
                  exc: Exception) -> dict[str, Any]:
    """The rejected item of one unparseable metadata row: ``RejectedInput`` keeps its reason and
    names its path (e.g. ``outside_root`` + the resolved path); other errors are ``bad_metadata``
    naming the metadata file. ``where`` locates the row (``"line 7"``, ``"albums[0].tracks[2]"``).
    """
    if isinstance(exc, RejectedInput):
        return reject(exc.path, recording_id, exc.reason, f"{where}: {exc.detail}")
    return reject(path, recording_id, "bad_metadata", f"{where}: {exc}")


def load_recordings(cfg: SourceConfig) -> SourceResult:
    """Read recordings and labels with the adapter named by ``cfg.kind``.

    Args:
        cfg: ``SourceConfig`` (metadata file, audio_root, column/field maps).

    Returns:
        ``SourceResult(recordings, rejected)``; see the module docstring for the guarantees.

    Raises:
        MetadataError: the metadata file as a whole is missing (``missing_file``), empty,
            header-only, unparseable or lacks a configured column (``bad_metadata``), naming
            file, line and column; audio_root missing (``missing_file``).
        ValueError: unknown ``cfg.kind``.
    """
    if cfg.kind not in ADAPTERS:
        raise ValueError(f"unknown source kind {cfg.kind!r}; expected one of {sorted(ADAPTERS)}")
    module = importlib.import_module(f"{__name__}.{ADAPTERS[cfg.kind]}")
    recordings, rejected, index = module.read(cfg)
    return finalize(recordings, rejected, index)


def make_index(cfg: SourceConfig, root: Path | None = None) -> AudioIndex:
    """The ``AudioIndex`` of ``cfg`` (``root`` or ``audio_root_of(cfg)``), confined to the root
    plus ``cfg.allowed_roots``, not reporting the metadata file itself as unsupported."""
    exclude = (Path(cfg.metadata).expanduser(),) if cfg.metadata is not None else ()
    return AudioIndex(root if root is not None else audio_root_of(cfg), cfg.extensions,
                      allowed_roots=list(cfg.allowed_roots), exclude=exclude)


def audio_root_of(cfg: SourceConfig) -> Path | None:
    """``cfg.audio_root``, else the metadata file's folder, else None (absolute)."""
    if cfg.audio_root is not None:
        root = Path(cfg.audio_root).expanduser().absolute()
        if not root.is_dir():
            raise MetadataError(root, "audio_root is not a directory", reason="missing_file")
        return root
    if cfg.metadata is not None:
        return Path(cfg.metadata).expanduser().absolute().parent
    return None


def metadata_path(cfg: SourceConfig) -> Path:
    """The metadata file (absolute). Raises ``RejectedInput(missing_file)`` if absent/unset."""
    if cfg.metadata is None:
        raise MetadataError(None, f"source kind {cfg.kind!r} needs dataset.source.metadata",
                            reason="missing_file")
    p = Path(cfg.metadata).expanduser().absolute()
    if not p.is_file():
        raise MetadataError(p, "metadata file not found", reason="missing_file")
    return p


_SURROGATE = re.compile("[\udc80-\udcff]")


def decode_text(raw: bytes) -> str:
    """UTF-8 text of a metadata file (BOM dropped); invalid bytes are kept as surrogate escapes
    (``errors="surrogateescape"``) so one bad byte costs one row (see ``check_utf8``)."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    return raw.decode("utf-8", errors="surrogateescape")


def check_utf8(value: Any, what: str) -> None:
    """Raise ``ValueError`` naming ``what`` and the first bad byte if ``value`` (text from
    ``decode_text``) held bytes that are not UTF-8."""
    if isinstance(value, str) and (m := _SURROGATE.search(value)):
        raise ValueError(f"{what}: not UTF-8 text (byte 0x{ord(m.group()) - 0xDC00:02x} at "
                         f"character {m.start() + 1})")


def printable(value: Any) -> Any:
    """``value`` with surrogate escapes replaced by U+FFFD (safe to write as UTF-8 JSON)."""
    if isinstance(value, str) and _SURROGATE.search(value):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return value


def split_tags(value: Any, separator: str) -> list[str]:
    """Raw tags from a cell: a list (kept) or a string split on ``separator``; trimmed, no empties.

    Tags are interned (``sys.intern``): millions of rows share one string per distinct tag."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        items = [str(v) for v in value if v is not None]
    else:
        text = str(value)
        items = text.split(separator) if separator else [text]
    return [sys.intern(t) for t in (v.strip() for v in items) if t]


def to_float(value: Any) -> float | None:
    """Float from a cell; empty/None -> None. Raises ``ValueError`` when unparseable or NaN-like text."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    if not text:
        return None
    return float(text)


def to_label(value: Any) -> str | None:
    """Single label from a cell: trimmed string, empty/None -> None."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None
