"""Evaluation report on disk (``metrics.json``, ``per_tag_{head}.csv``, PNG plots) and a rich
summary table on the terminal."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from eno_hf.utils.io import atomic_write_json, to_jsonable  # noqa: F401  (to_jsonable: re-exported)
from eno_hf.metrics import SUMMARY_KEYS, Head
from eno_hf.models.heads import MULTILABEL, SINGLELABEL, HeadSpec

PER_TAG_COLUMNS = ("tag", "support", "n_labelled", "roc_auc", "ap", "f1", "threshold")
PER_CLASS_COLUMNS = ("label", "support", "precision", "recall", "f1")


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented, strict JSON (NaN -> null), atomically (``eno_hf.utils.io``)."""
    return atomic_write_json(path, data)


def write_per_tag_csv(path: str | Path, rows: Sequence[Mapping[str, Any]],
                      columns: Sequence[str] = PER_TAG_COLUMNS) -> Path:
    """Write per-tag (or per-class) rows as CSV (empty cells for undefined values)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in to_jsonable(row).items()})
    return path


def write_report(
    out_dir: str | Path,
    results: Mapping[str, Any],
    heads: Sequence[Head],
    per_tag_tables: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    plots: bool = True,
    arrays: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    history: Sequence[Mapping[str, Any]] | None = None,
    baselines: Mapping[str, Mapping[str, Any]] | None = None,
    top_k: int = 8,
) -> dict[str, Path]:
    """Write an evaluation report folder.

    Args:
        out_dir: folder (created).
        results: ``evaluate_heads`` output (``{head: metrics, "score": float}``).
        heads: ``HeadSpec`` s (or their dict form, read through ``HeadSpec.coerce``).
        per_tag_tables: head -> per-tag rows; default ``results[head]["per_tag"]`` (multi-label) or
            ``results[head]["per_class"]`` (single-label).
        plots: also write PNGs: ``roc_auc_{head}.png`` (multi-label), ``pr_{head}.png`` (needs
            ``arrays``), ``confusion_{head}.png`` (single-label), ``training_curves.png`` (needs
            ``history``).
        arrays: head -> ``(y, probs)`` for PR curves.
        history: training log history (``TrainerState.log_history``).
        baselines: ``{baseline_name: {head: metrics}}``, written to ``baselines.json``.
        top_k: number of tags in the PR plot.

    Returns:
        ``{"metrics": path, "per_tag_{head}": path, "plot_...": path}``. ``metrics.json`` holds
        ``results`` as strict JSON (NaN -> null), i.e. ``to_jsonable(results)``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {"metrics": write_json(out_dir / "metrics.json", results)}
    if baselines:
        paths["baselines"] = write_json(out_dir / "baselines.json", baselines)

    for head in map(HeadSpec.coerce, heads):
        name, kind = head.name, head.kind
        m = results.get(name)
        if not isinstance(m, Mapping):
            continue
        if per_tag_tables and name in per_tag_tables:
            rows = per_tag_tables[name]
        else:
            rows = m.get("per_tag") or m.get("per_class")
        if rows:
            cols = PER_TAG_COLUMNS if kind == MULTILABEL else PER_CLASS_COLUMNS
            paths[f"per_tag_{name}"] = write_per_tag_csv(out_dir / f"per_tag_{name}.csv", rows, cols)
        if not plots:
            continue
        from eno_hf.evaluation import plots as P  # matplotlib only when plotting

        if kind == MULTILABEL and m.get("per_tag"):
            paths[f"plot_roc_auc_{name}"] = P.plot_per_tag_auc(
                m["per_tag"], out_dir / f"roc_auc_{name}.png", title=f"{name}: ROC-AUC per tag")
            if arrays and name in arrays:
                y, probs = arrays[name]
                labels = [r["tag"] for r in m["per_tag"]]
                paths[f"plot_pr_{name}"] = P.plot_pr_curves(
                    y, probs, labels, out_dir / f"pr_{name}.png", top_k=top_k,
                    title=f"{name}: precision-recall, {top_k} most frequent tags")
        elif kind == SINGLELABEL and m.get("confusion_matrix"):
            paths[f"plot_confusion_{name}"] = P.plot_confusion_matrix(
                m["confusion_matrix"], m["labels"], out_dir / f"confusion_{name}.png",
                title=f"{name}: confusion matrix")
    if plots and history:
        from eno_hf.evaluation import plots as P

        paths["plot_training_curves"] = P.plot_training_curves(
            history, out_dir / "training_curves.png")
    return paths


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def summary_table(
    results: Mapping[str, Any], baselines: Mapping[str, Mapping[str, Any]] | None = None,
    title: str = "Evaluation",
) -> Table:
    """A rich ``Table``: rows = ``head / metric`` (``SUMMARY_KEYS`` per kind, then ``score``),
    columns = the model and each baseline side by side."""
    baselines = baselines or {}
    table = Table(title=title)
    table.add_column("head", style="bold")
    table.add_column("metric")
    table.add_column("model", justify="right", style="cyan")
    for name in baselines:
        table.add_column(name, justify="right")
    for head, m in results.items():
        if not isinstance(m, Mapping) or m.get("kind") not in SUMMARY_KEYS:
            continue
        for i, key in enumerate(SUMMARY_KEYS[m["kind"]]):
            cells = [_fmt(m.get(key))]
            for b in baselines.values():
                bm = b.get(head)
                cells.append(_fmt(bm.get(key)) if isinstance(bm, Mapping) else "–")
            table.add_row(head if i == 0 else "", key, *cells)
        table.add_section()
    table.add_row("score", "mean", _fmt(results.get("score")),
                  *[_fmt(b.get("score")) for b in baselines.values()], style="bold")
    return table


def print_summary(
    results: Mapping[str, Any], baselines: Mapping[str, Mapping[str, Any]] | None = None,
    console: Console | None = None, title: str = "Evaluation",
) -> Table:
    """Print ``summary_table`` with rich (to ``console`` or stdout) and return the table."""
    table = summary_table(results, baselines, title)
    (console or Console()).print(table)
    return table
