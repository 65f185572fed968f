"""QC / validation report of a dataset build: every input accounted for, splits, labels, numbers.

The report is a plain JSON-able dict (``qc_report.json`` next to the dataset), a summary whose
size does not grow with the number of written inputs::

    {
      "dataset", "version", "created_utc",
      "accounting": {"n_inputs", "n_written", "n_rejected", "invariant_holds", "statement"},
      "rejected": [{"path", "recording_id", "reason", "detail"}],
      "rejected_by_reason": {reason: count},
      "splits":   {split: {"n_recordings", "n_segments", "n_groups"}},
      "group_overlap": {"a|b": [groups in both]},          # empty when splits are group-disjoint
      "labels":   {split: {task: {...label_summary...}}},
      "non_finite": {column: {"nan", "inf", "n_values"}},
      "loudness": {"lufs_before", "lufs_after", "gain_db", "peak_after_dbfs": summary,
                   "clipping_prevented": count, "n_recordings"},
    }

``build_dataset`` adds ``labels_dropped`` (tags removed by ``min_count``), ``warnings`` (e.g. an
empty split) and ``build`` (``n_processed``, ``n_from_cache``, ``audio_s``, and seconds: ``wall_s`` of the build,
its phases ``load_s`` (metadata), ``hash_s`` (content hashes), ``process_wall_s`` (per-file work)
and ``write_s`` (Arrow splits)).

``n_inputs`` counts every metadata row / audio file the source saw (accepted recordings plus
the source's own rejections); the invariant ``n_inputs == n_written + n_rejected`` is checked
and stated in ``accounting``.

One row per input goes to ``qc_rows.jsonl`` beside it (``write_qc_rows``, written as a stream;
``read_qc_rows`` iterates it)::

    {"status": "written", "recording_id", "split", "n_segments"}
    {"status": "rejected", "path", "recording_id", "reason", "detail"}
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from eno_hf.utils.io import atomic_write, atomic_write_json

__all__ = [
    "summarize", "label_summary", "NonFiniteCounter", "make_qc_report", "write_qc_report",
    "print_qc_table", "QC_ROWS_NAME", "write_qc_rows", "read_qc_rows",
]

QC_ROWS_NAME = "qc_rows.jsonl"
"""The per-input rows of a build, beside ``qc_report.json``."""


def summarize(values: Iterable[float | None]) -> dict[str, float | int | None]:
    """Count, mean, std, min, 5th/50th/95th percentiles and max of the finite values.

    Returns ``{"n": 0, ...: None}`` when there are no finite values.
    """
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    keys = ("mean", "std", "min", "p05", "median", "p95", "max")
    if arr.size == 0:
        return {"n": 0, **{k: None for k in keys}}
    q = np.percentile(arr, [5, 50, 95])
    vals = (arr.mean(), arr.std(), arr.min(), q[0], q[1], q[2], arr.max())
    return {"n": int(arr.size), **{k: round(float(v), 4) for k, v in zip(keys, vals)}}


def label_summary(values: Sequence[Any], vocab: Sequence[str], multilabel: bool) -> dict[str, Any]:
    """Label balance and diversity of one task in one split (recording level).

    Args:
        values: per recording, a list of tags (multi-label) or one class / None (single-label).
        vocab: the task's full vocabulary (label names of the ClassLabel).
        multilabel: True for tag lists.

    Returns:
        ``{"n_recordings", "n_labelled", "frequencies": {tag: count} (vocab order, zero counts
        included), "absent": [vocab tags never seen here], "n_distinct", "cardinality": summary
        of tags per recording (multi-label only), "max_share": largest class share (single-label)}``.
    """
    counts: Counter[str] = Counter()
    cardinality: list[int] = []
    labelled = 0
    for v in values:
        if multilabel:
            tags = list(v or [])
            cardinality.append(len(tags))
            counts.update(tags)
            labelled += bool(tags)
        elif v is not None:
            counts[v] += 1
            labelled += 1
    out: dict[str, Any] = {
        "n_recordings": len(values),
        "n_labelled": labelled,
        "frequencies": {t: int(counts.get(t, 0)) for t in vocab},
        "absent": [t for t in vocab if counts.get(t, 0) == 0],
        "n_distinct": sum(1 for t in vocab if counts.get(t, 0) > 0),
    }
    if multilabel:
        out["cardinality"] = summarize(cardinality)
    else:
        out["max_share"] = round(max(counts.values()) / labelled, 4) if labelled else None
    return out


class NonFiniteCounter:
    """Running NaN/Inf counts per feature column (feed arrays row by row; bounded memory)."""

    def __init__(self) -> None:
        self.counts: dict[str, dict[str, int]] = {}

    def update(self, column: str, array: Any) -> None:
        """Add the NaN/Inf/value counts of ``array`` (any shape, any float dtype) to ``column``."""
        a = np.asarray(array)
        c = self.counts.setdefault(column, {"nan": 0, "inf": 0, "n_values": 0})
        c["n_values"] += int(a.size)
        if a.size and np.issubdtype(a.dtype, np.floating):
            c["nan"] += int(np.isnan(a).sum())
            c["inf"] += int(np.isinf(a).sum())

    def to_dict(self) -> dict[str, dict[str, int]]:
        return {k: dict(v) for k, v in self.counts.items()}


def make_qc_report(
    *,
    dataset: str,
    version: str,
    n_inputs: int,
    written: Sequence[Any] | None = None,
    rejected: Sequence[Mapping[str, Any]],
    split_recordings: Mapping[str, Sequence[Mapping[str, Any]]],
    tasks: Mapping[str, tuple[str, Sequence[str]]],
    non_finite: Mapping[str, Mapping[str, int]],
    conditioning: Sequence[Mapping[str, Any]],
    n_written: int | None = None,
) -> dict[str, Any]:
    """Assemble the QC report (see the module docstring for its layout).

    Args:
        dataset, version: dataset name and version string.
        n_inputs: number of inputs the source saw (accepted recordings + source rejections).
        written: the written recordings, only counted (their rows go to ``qc_rows.jsonl``,
            ``write_qc_rows``); or give ``n_written``.
        rejected: ``{"path", "recording_id", "reason", "detail"}`` per rejected input.
        split_recordings: split -> per written recording ``{"recording_id", "group",
            "n_segments", "labels": {task: tags | class | None}}``.
        tasks: task -> (``"multilabel"`` | ``"singlelabel"``, vocabulary).
        non_finite: ``NonFiniteCounter.to_dict()``.
        conditioning: ``ConditioningStats.to_dict()`` per written recording.
        n_written: the number of written recordings, when ``written`` is not given.

    Raises:
        ValueError: neither ``written`` nor ``n_written`` given.
    """
    if n_written is None:
        if written is None:
            raise ValueError("make_qc_report needs written or n_written")
        n_written = len(written)
    n_rejected = len(rejected)
    holds = n_inputs == n_written + n_rejected
    statement = (f"n_inputs ({n_inputs}) {'==' if holds else '!='} n_written ({n_written}) "
                 f"+ n_rejected ({n_rejected})")
    splits: dict[str, Any] = {}
    labels: dict[str, Any] = {}
    groups: dict[str, set[str]] = {}
    for split, recs in split_recordings.items():
        groups[split] = {str(r.get("group")) for r in recs}
        splits[split] = {"n_recordings": len(recs),
                         "n_segments": int(sum(r.get("n_segments", 0) for r in recs)),
                         "n_groups": len(groups[split])}
        labels[split] = {
            task: label_summary([r["labels"].get(task) for r in recs], vocab, kind == "multilabel")
            for task, (kind, vocab) in tasks.items()
        }
    names = list(groups)
    overlap = {f"{a}|{b}": sorted(groups[a] & groups[b])
               for i, a in enumerate(names) for b in names[i + 1:] if groups[a] & groups[b]}
    cond = list(conditioning)
    loudness = {
        "n_recordings": len(cond),
        "lufs_before": summarize(c.get("lufs_before") for c in cond),
        "lufs_after": summarize(c.get("lufs_after") for c in cond),
        "gain_db": summarize(c.get("gain_db") for c in cond),
        "peak_after_dbfs": summarize(c.get("peak_after_dbfs") for c in cond),
        "clipping_prevented": int(sum(bool(c.get("clipping_prevented")) for c in cond)),
    }
    return {
        "dataset": dataset,
        "version": version,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "accounting": {"n_inputs": n_inputs, "n_written": n_written, "n_rejected": n_rejected,
                       "invariant_holds": holds, "statement": statement},
        "rejected": [dict(r) for r in rejected],
        "rejected_by_reason": dict(Counter(str(r.get("reason")) for r in rejected)),
        "splits": splits,
        "group_overlap": overlap,
        "labels": labels,
        "non_finite": {k: dict(v) for k, v in non_finite.items()},
        "loudness": loudness,
    }


def write_qc_report(report: Mapping[str, Any], path: str | Path) -> Path:
    """Write ``report`` as indented strict JSON (NaN -> null), atomically. Returns the path."""
    return atomic_write_json(path, report)


def write_qc_rows(path: str | Path, written: Iterable[Mapping[str, Any]],
                  rejected: Iterable[Mapping[str, Any]]) -> int:
    """Write one JSON line per input to ``path`` (atomically, as a stream; see the module docstring).

    Args:
        path: the ``qc_rows.jsonl`` file (its folder is created).
        written: ``{"recording_id", "split", "n_segments"}`` per written recording.
        rejected: ``{"path", "recording_id", "reason", "detail"}`` per rejected input.

    Returns:
        The number of rows written.
    """
    encode = json.JSONEncoder(default=str).encode  # ASCII: a lone surrogate in an id cannot fail
    count = 0

    def write(fh: Any) -> None:
        nonlocal count
        for status, rows in (("written", written), ("rejected", rejected)):
            for row in rows:
                fh.write(encode({"status": status, **row}) + "\n")
                count += 1

    atomic_write(path, write, binary=False)
    return count


def read_qc_rows(path: str | Path, status: str | None = None) -> Iterator[dict[str, Any]]:
    """The rows of a ``qc_rows.jsonl`` one at a time (see the module docstring).

    Args:
        path: the file, or the dataset version folder holding it.
        status: ``"written"`` or ``"rejected"`` to keep only those rows; None for all.

    Raises:
        FileNotFoundError: no such file (a dataset built before the rows moved out of
            ``qc_report.json`` has none: rebuild it).
    """
    p = Path(path)
    if p.is_dir():
        p = p / QC_ROWS_NAME
    with open(p, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                if status is None or row.get("status") == status:
                    yield row


def print_qc_table(report: Mapping[str, Any], console: Any = None) -> None:
    """Print the report's headline tables with rich: accounting, splits, rejections, loudness."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    acc = report["accounting"]
    style = "green" if acc["invariant_holds"] else "bold red"
    console.print(f"[bold]{report['dataset']}[/] version [bold]{report['version']}[/]: "
                  f"[{style}]{acc['statement']}[/]")

    for w in report.get("warnings") or []:
        console.print(f"[yellow]warning:[/] {w}")

    t = Table(title="Splits")
    for col in ("split", "recordings", "segments", "groups"):
        t.add_column(col, justify="right" if col != "split" else "left")
    for split, s in report["splits"].items():
        t.add_row(split, str(s["n_recordings"]), str(s["n_segments"]), str(s["n_groups"]))
    console.print(t)
    if report.get("group_overlap"):
        console.print(f"[bold red]groups in more than one split:[/] {report['group_overlap']}")

    lt = Table(title="Labels per split (distinct / vocabulary, absent)")
    lt.add_column("split")
    lt.add_column("task")
    lt.add_column("distinct", justify="right")
    lt.add_column("absent", justify="right")
    for split, tasks in report["labels"].items():
        for task, s in tasks.items():
            lt.add_row(split, task, f"{s['n_distinct']}/{len(s['frequencies'])}", str(len(s["absent"])))
    console.print(lt)

    if report["rejected"]:
        by_reason = report.get("rejected_by_reason") or {}
        counts = ", ".join(f"{k}: {v}" for k, v in sorted(by_reason.items()))
        rt = Table(title=f"Rejected inputs ({len(report['rejected'])}; {counts}; reason codes: "
                         "docs/errors.md)")
        for col in ("recording_id", "reason", "path", "detail"):
            rt.add_column(col, overflow="fold")
        for r in report["rejected"][:50]:
            rt.add_row(str(r.get("recording_id")), str(r.get("reason")), str(r.get("path")),
                       str(r.get("detail", ""))[:120])
        console.print(rt)

    loud = report["loudness"]
    nt = Table(title="Loudness (per recording) and non-finite values")
    nt.add_column("quantity")
    nt.add_column("value", overflow="fold")
    for key in ("lufs_before", "lufs_after", "gain_db"):
        s = loud[key]
        nt.add_row(key, "n/a" if not s["n"] else
                   f"median {s['median']}, p05 {s['p05']}, p95 {s['p95']} (n={s['n']})")
    nt.add_row("clipping_prevented", str(loud["clipping_prevented"]))
    for col, c in report["non_finite"].items():
        nt.add_row(f"{col} NaN/Inf", f"{c['nan']}/{c['inf']} of {c['n_values']}")
    console.print(nt)
