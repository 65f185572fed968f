"""The gold/flawed folder layout and its file-name pattern.

Layout (under a root, ``raw/`` by default)::

    gold/{instrument}/{sound}_gold_{index}.wav
    flawed/{instrument}/{sound}_flawed_{flaw}_{index}.wav

``instrument`` is one of ``drums, vocals, bass, guitar, keys``; ``sound`` names what was recorded
(``kick``, ``snare``, ``bass``, ...), lowercase letters/digits with ``-`` inside; ``flaw`` the same
alphabet (``muddy``, ``over-compressed``: hyphens, never ``_``); ``index`` three or more digits.
A flawed file's *group* (its source recording) is ``{instrument}/{sound}_{index}``: a flawed file
shares the index of the gold file it was made from, so all variants of one recording can be kept
on one side of a split. Extensions: ``.wav``, ``.flac``, ``.aif``, ``.aiff`` (case-insensitive).

Example:
    >>> parse_name("flawed/drums/kick_flawed_muddy_001.wav")
    ParsedName(subset='flawed', instrument='drums', sound='kick', flaw='muddy', index='001')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from eno_hf.clarity.config import INSTRUMENTS

__all__ = ["NAME_PATTERN", "ParsedName", "parse_name", "gold_name", "flawed_name", "AUDIO_SUFFIXES"]

_TOKEN = r"[a-z0-9]+(?:-[a-z0-9]+)*"
NAME_PATTERN = re.compile(
    rf"^(?P<sound>{_TOKEN})_(?P<subset>gold|flawed)(?:_(?P<flaw>{_TOKEN}))?_(?P<index>\d{{3,}})"
    r"\.(?:wav|flac|aiff?)$", re.IGNORECASE)
"""``{sound}_gold_{index}.ext`` or ``{sound}_flawed_{flaw}_{index}.ext``."""

AUDIO_SUFFIXES = (".wav", ".flac", ".aif", ".aiff")


@dataclass(frozen=True)
class ParsedName:
    """One file's labels from its path. ``flaw`` is ``"none"`` for gold files."""

    subset: str
    instrument: str
    sound: str
    flaw: str
    index: str

    @property
    def group(self) -> str:
        """Source recording: ``{instrument}/{sound}_{index}`` (shared by a gold file and its variants)."""
        return f"{self.instrument}/{self.sound}_{self.index}"


def parse_name(path: str | Path) -> ParsedName:
    """Parse ``{subset}/{instrument}/{file name}`` (the last three path parts).

    Raises:
        ValueError: naming the path and what does not match (folder, instrument, pattern, or a
            subset/flaw that contradicts the folder: gold files carry no flaw, flawed files must).
    """
    p = Path(path)
    parts = p.parts
    if len(parts) < 3:
        raise ValueError(f"{p}: expected {{gold|flawed}}/{{instrument}}/{{file}}")
    folder, instrument, name = parts[-3].lower(), parts[-2].lower(), parts[-1]
    if folder not in ("gold", "flawed"):
        raise ValueError(f"{p}: top folder {parts[-3]!r} is neither 'gold' nor 'flawed'")
    if instrument not in INSTRUMENTS:
        raise ValueError(f"{p}: instrument folder {parts[-2]!r} not one of {', '.join(INSTRUMENTS)}")
    m = NAME_PATTERN.match(name)
    if m is None:
        raise ValueError(f"{p}: file name does not match {{sound}}_gold_{{NNN}} or "
                         f"{{sound}}_flawed_{{flaw}}_{{NNN}} (.wav/.flac/.aif[f])")
    subset = m["subset"].lower()
    flaw = (m["flaw"] or "").lower()
    if subset != folder:
        raise ValueError(f"{p}: name says {subset!r} but the file is under {folder!r}/")
    if subset == "gold" and flaw:
        raise ValueError(f"{p}: a gold file name carries no flaw (got {flaw!r})")
    if subset == "flawed" and not flaw:
        raise ValueError(f"{p}: a flawed file name must name its flaw")
    return ParsedName(subset, instrument, m["sound"].lower(), flaw or "none", m["index"])


def gold_name(sound: str, index: int) -> str:
    """``{sound}_gold_{index:03d}.wav``."""
    return f"{sound}_gold_{index:03d}.wav"


def flawed_name(sound: str, flaw: str, index: str | int) -> str:
    """``{sound}_flawed_{flaw}_{index:03d}.wav`` (``index`` kept as given when a string)."""
    idx = index if isinstance(index, str) else f"{index:03d}"
    return f"{sound}_flawed_{flaw}_{idx}.wav"
