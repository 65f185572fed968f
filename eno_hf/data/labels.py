"""Label cleaning and vocabularies for multi-label and single-label tasks.

Per task, in this order (``LabelsConfig``):

1. trim and collapse inner whitespace; case-fold when ``lowercase`` (``str.casefold``);
2. map through ``aliases[task]`` (keys and values normalized the same way; a value may be a list
   to split one tag into several, e.g. ``"calm/peaceful": ["calm", "peaceful"]``, or ``""`` /
   ``[]`` to delete a tag). Tags are never split on their own: ``"Calm/Peaceful"`` stays one tag
   unless an alias maps it;
3. remove empty and duplicate tags within a row (first occurrence kept);
4. count recordings per tag over the whole list and drop tags seen fewer than
   ``min_count.get(task, default_min_count)`` times (reported in ``LabelResult.dropped``).

Single-label tasks go through the same steps (an alias to a list keeps its first item); a dropped
class becomes None (missing).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from eno_hf.config import LabelsConfig
from eno_hf.data.recording import Recording

__all__ = ["LabelResult", "normalize_tag", "clean_labels", "to_multi_hot", "label_matrix"]


@dataclass
class LabelResult:
    """Cleaned recordings (new objects), sorted vocab per task, and tags dropped by min_count.

    Attributes:
        recordings: same order as the input, labels cleaned.
        vocab: task -> sorted list of kept labels (multi-label and single-label tasks).
        dropped: task -> {label: count} for labels removed by ``min_count``.
    """

    recordings: list[Recording]
    vocab: dict[str, list[str]]
    dropped: dict[str, dict[str, int]]


def normalize_tag(tag: str, lowercase: bool = True) -> str:
    """Trim, collapse inner whitespace, optionally case-fold: ``"  Hip  Hop "`` -> ``"hip hop"``."""
    text = " ".join(str(tag).split())
    return text.casefold() if lowercase else text


def _alias_map(cfg: LabelsConfig, task: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for raw, target in (cfg.aliases.get(task) or {}).items():
        targets = [target] if isinstance(target, str) else list(target)
        out[normalize_tag(raw, cfg.lowercase)] = [normalize_tag(t, cfg.lowercase) for t in targets]
    return out


def _clean_row(tags: Sequence[str], aliases: dict[str, list[str]], lowercase: bool) -> list[str]:
    out: list[str] = []
    for tag in tags:
        if tag is None:
            continue
        norm = normalize_tag(tag, lowercase)
        for t in aliases.get(norm, [norm]):
            if t and t not in out:
                out.append(t)
    return out


def clean_labels(recordings: Sequence[Recording], cfg: LabelsConfig) -> LabelResult:
    """Clean every multi-label and single-label task of ``recordings``; see the module docstring.

    Args:
        recordings: from ``eno_hf.data.sources.load_recordings`` (not modified).
        cfg: ``LabelsConfig``.

    Returns:
        ``LabelResult(recordings, vocab, dropped)``; numeric tasks are passed through unchanged.
    """
    ml_tasks = sorted({t for r in recordings for t in r.multilabel})
    sl_tasks = sorted({t for r in recordings for t in r.singlelabel})
    overlap = set(ml_tasks) & set(sl_tasks)
    if overlap:
        raise ValueError(f"task(s) {sorted(overlap)} are both multi-label and single-label")
    ml = {t: [_clean_row(r.multilabel.get(t, []), _alias_map(cfg, t), cfg.lowercase)
              for r in recordings] for t in ml_tasks}
    sl = {}
    for t in sl_tasks:
        aliases = _alias_map(cfg, t)
        rows = [_clean_row([] if r.singlelabel.get(t) is None else [r.singlelabel[t]], aliases,
                           cfg.lowercase) for r in recordings]
        sl[t] = [row[:1] for row in rows]
    vocab: dict[str, list[str]] = {}
    dropped: dict[str, dict[str, int]] = {}
    for t, rows in {**ml, **sl}.items():
        counts = Counter(tag for row in rows for tag in row)
        min_count = cfg.min_count.get(t, cfg.default_min_count)
        drop = {tag: n for tag, n in counts.items() if n < min_count}
        dropped[t] = dict(sorted(drop.items()))
        vocab[t] = sorted(tag for tag in counts if tag not in drop)
        for row in rows:
            row[:] = [tag for tag in row if tag not in drop]
    out = []
    for i, r in enumerate(recordings):
        out.append(replace(
            r,
            multilabel={**r.multilabel, **{t: ml[t][i] for t in ml_tasks}},
            singlelabel={**r.singlelabel, **{t: (sl[t][i][0] if sl[t][i] else None)
                                             for t in sl_tasks}},
            numeric=dict(r.numeric), extra=dict(r.extra)))
    return LabelResult(out, vocab, dropped)


def to_multi_hot(rows: Sequence[Sequence[str]], vocab: Sequence[str],
                 unknown: str = "error") -> np.ndarray:
    """Multi-hot matrix of tag rows.

    Args:
        rows: n rows of tags (a single-label value ``v`` goes in as ``[v]``, missing as ``[]``).
        vocab: the column order (e.g. ``LabelResult.vocab[task]``).
        unknown: ``"error"`` raises on a tag not in ``vocab``; ``"ignore"`` skips it.

    Returns:
        ``(n, len(vocab))`` uint8 array, 1 where the row has the tag.

    Raises:
        ValueError: a tag not in ``vocab`` when ``unknown="error"``.
    """
    col = {tag: j for j, tag in enumerate(vocab)}
    out = np.zeros((len(rows), len(vocab)), dtype=np.uint8)
    for i, row in enumerate(rows):
        for tag in row:
            j = col.get(tag)
            if j is None:
                if unknown == "error":
                    raise ValueError(f"row {i}: tag {tag!r} not in vocabulary ({len(vocab)} tags)")
                continue
            out[i, j] = 1
    return out


def label_matrix(recordings: Sequence[Recording], vocab: dict[str, list[str]],
                 tasks: Sequence[str] | None = None) -> np.ndarray:
    """Concatenated multi-hot / one-hot matrix over label tasks, for stratified splitting.

    Args:
        recordings: cleaned recordings (``LabelResult.recordings``).
        vocab: ``LabelResult.vocab``.
        tasks: tasks to include (default: all in ``vocab``, sorted); single-label tasks become
            one-hot columns, missing values all-zero.

    Returns:
        ``(n, sum(len(vocab[t])))`` uint8 array.

    Raises:
        KeyError: a task not in ``vocab``.
    """
    blocks = []
    for t in (sorted(vocab) if tasks is None else tasks):
        rows = []
        for r in recordings:
            if t in r.multilabel:
                rows.append(r.multilabel[t])
            else:
                v = r.singlelabel.get(t)
                rows.append([] if v is None else [v])
        blocks.append(to_multi_hot(rows, vocab[t], unknown="ignore"))
    if not blocks:
        return np.zeros((len(recordings), 0), dtype=np.uint8)
    return np.concatenate(blocks, axis=1)
