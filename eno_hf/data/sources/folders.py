"""Folder adapter: labels from the directory structure under ``audio_root`` (no metadata file).

Layout and mapping (``SourceConfig``)::

    audio_root/
      happy/a.wav            -> singlelabel {folder_task: "happy"}
      sad/b.flac             -> singlelabel {folder_task: "sad"}
      rock/live/c.mp3        -> folder_mode=singlelabel: {folder_task: "rock"} (top folder only,
                                deeper folders are kept in extra["subfolders"])
                                folder_mode=multilabel: multilabel {folder_task: ["rock", "live"]}

- ``folder_mode``: ``singlelabel`` (default; the first directory level is the class) or
  ``multilabel`` (every directory level below audio_root is a tag);
- ``recording_id``: the path relative to audio_root without its suffix, ``/`` replaced by ``__``
  (``rock__live__c``), so files with the same name in different folders stay distinct; files of
  one folder sharing a stem keep their suffix (``rock__x.mp3``, ``rock__x.wav``);
- ``group`` (``folder_group``): ``stem`` (default: the same file name in two class folders is one
  group), ``parent`` (the parent folder path, e.g. an album folder), or ``none`` (own group);
- only files whose suffix is in ``extensions`` count as audio.

Rejected: an audio file directly in audio_root has no folder label -> ``no_metadata``.

Example: ``audio_root/happy/a.wav`` -> ``Recording("happy__a", .../happy/a.wav,
singlelabel={"label": "happy"}, group="a")``.
"""

from __future__ import annotations

from pathlib import Path

from eno_hf.config import SourceConfig
from eno_hf.data.recording import Recording
from eno_hf.data.sources import AudioIndex, file_ids, make_index, reject
from eno_hf.errors import MetadataError


def file_to_recording(path: Path, root: Path, cfg: SourceConfig,
                      rid: str | None = None) -> Recording | None:
    """One audio file -> ``Recording``, or None if it sits directly in ``root`` (no label).
    ``rid``: its id (default: the relative path without suffix, see ``file_ids``)."""
    rel = path.relative_to(root)
    dirs = list(rel.parent.parts)
    if not dirs:
        return None
    rid = rid or rel.with_suffix("").as_posix().replace("/", "__")
    group = {"stem": path.stem, "parent": rel.parent.as_posix(), "none": None}[cfg.folder_group]
    if cfg.folder_mode == "multilabel":
        return Recording(rid, path, multilabel={cfg.folder_task: dirs}, group=group)
    extra = {"subfolders": dirs[1:]} if len(dirs) > 1 else {}
    return Recording(rid, path, singlelabel={cfg.folder_task: dirs[0]}, group=group, extra=extra)


def read(cfg: SourceConfig) -> tuple[list[Recording], list[dict], AudioIndex]:
    """List audio files under ``cfg.audio_root`` and label them by folder (sorted by path).

    Raises:
        MetadataError: ``audio_root`` unset or not a directory (``missing_file``).
    """
    if cfg.audio_root is None:
        raise MetadataError(None, "source kind 'folders' needs dataset.source.audio_root",
                            reason="missing_file")
    root = Path(cfg.audio_root).expanduser().absolute()
    if not root.is_dir():
        raise MetadataError(root, "audio_root is not a directory", reason="missing_file")
    index = make_index(cfg, root)
    recordings: list[Recording] = []
    rejected: list[dict] = []
    ids = file_ids(index.files, index.root)
    for path in index.files:
        rec = file_to_recording(path, index.root, cfg, ids[path])
        if rec is None:
            rejected.append(reject(path, None, "no_metadata",
                                   "file directly in audio_root: no label folder"))
        else:
            recordings.append(rec)
    return recordings, rejected, index
