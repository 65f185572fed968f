"""File-level checks before anything is decoded: supported suffixes, confinement to the allowed
roots, and the cheap ``stat``/``access`` checks of one file.

The lowest layer of ``eno_hf.audio``: it opens nothing. ``eno_hf.audio.validate`` (the one input
validator) re-exports these names; ``eno_hf.audio.io`` and ``eno_hf.data.sources`` use them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from eno_hf.config import SourceConfig
from eno_hf.errors import RejectedInput

__all__ = ["supported_extensions", "is_supported", "confine", "check_file"]

_MIDI_SUFFIXES = (".mid", ".midi")


def supported_extensions(extensions: Iterable[str] | None = None) -> frozenset[str]:
    """Lower-case suffixes (with the dot) eno decodes: ``extensions`` (default: the dataset
    source default list, ``SourceConfig().extensions``) plus ``.mid``/``.midi``."""
    exts = SourceConfig().extensions if extensions is None else extensions
    out = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in exts}
    return frozenset(out | set(_MIDI_SUFFIXES))


def is_supported(path: str | Path, extensions: Iterable[str] | None = None) -> bool:
    """Whether ``path``'s suffix (case-insensitive) is one eno decodes."""
    return Path(path).suffix.lower() in supported_extensions(extensions)


def _resolved_roots(roots: Iterable[str | Path]) -> list[Path]:
    return [Path(r).expanduser().resolve() for r in roots]


def confine(raw: str | Path, roots: Sequence[str | Path], base: str | Path | None = None) -> Path:
    """``raw`` as an absolute path, checked to resolve inside one of ``roots``.

    Args:
        raw: a path from metadata / a template / a walk; relative paths are joined to ``base``
            (default: the first root).
        roots: allowed folders (the audio root first, then ``SourceConfig.allowed_roots``); an
            empty sequence allows nothing.
        base: folder relative paths are relative to.

    Returns:
        The lexical absolute path (``base / raw`` or ``raw``; symlinks not replaced, so dataset
        ``path`` columns keep the names users gave).

    Raises:
        RejectedInput: ``outside_root`` naming the resolved path; nothing is opened.
    """
    p = Path(raw).expanduser()
    if not p.is_absolute():
        if base is None and not roots:
            raise RejectedInput(p, "outside_root", "relative path and no audio root configured")
        p = Path(base if base is not None else roots[0]).expanduser().absolute() / p
    resolved = p.resolve()
    allowed = _resolved_roots(roots)
    if not any(resolved == r or resolved.is_relative_to(r) for r in allowed):
        shown = ", ".join(str(r) for r in allowed) or "(none)"
        raise RejectedInput(resolved, "outside_root",
                            f"{raw} resolves to {resolved}, outside the audio root(s) {shown}; "
                            "add its folder to dataset.source.allowed_roots to allow it")
    return p


def check_file(path: str | Path, extensions: Iterable[str] | None = None,
               check_suffix: bool = False) -> Path:
    """Cheap checks before decoding (one ``stat`` and one ``access``; the file is not read).

    Raises:
        RejectedInput: ``missing_file`` (does not exist), ``unsupported`` (a directory, or
            ``check_suffix`` and the suffix is not supported), ``io_error`` (not readable by this
            user), ``empty`` (zero bytes).
    """
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise RejectedInput(path, "missing_file", "file not found") from None
    except OSError as exc:
        raise RejectedInput(path, "io_error", f"cannot stat: {exc.strerror or exc}") from exc
    if path.is_dir():
        raise RejectedInput(path, "unsupported", "a directory, not an audio file")
    if not path.is_file():
        raise RejectedInput(path, "unsupported", "not a regular file")
    if check_suffix and not is_supported(path, extensions):
        raise RejectedInput(path, "unsupported",
                            f"suffix {path.suffix or '(none)'!r} is not a supported audio/MIDI "
                            f"format ({', '.join(sorted(supported_extensions(extensions)))})")
    if not os.access(path, os.R_OK):
        raise RejectedInput(path, "io_error", "permission denied (not readable by this user)")
    if st.st_size == 0:
        raise RejectedInput(path, "empty", "zero-byte file")
    return path
