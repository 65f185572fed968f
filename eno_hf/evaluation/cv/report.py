"""The cross-validation report: markdown table, files, merging runs made on the same folds."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eno_hf.evaluation.cv.scores import METRIC_LABELS
from eno_hf.evaluation.cv.stats import add_reference_differences
from eno_hf.evaluation.report import write_json


def report_dir(data_root: str | Path, dataset: str, version: str) -> Path:
    """``{data_root}/cv/{dataset}-{version}``: where ``eno cv`` writes a dataset version's folds and
    ``cv_report.json`` / ``.md`` by default (the model card reads the report from there)."""
    return Path(data_root) / "cv" / f"{dataset}-{version}"


def metric_columns(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``("head/metric", "head label")`` of every metric in the report's candidates, in the order
    they were computed (heads in model order, metrics by head kind: ``scores.KIND_METRICS``)."""
    keys: dict[str, str] = {}
    for c in report["candidates"].values():
        for k in c["metrics"]:
            head, _, metric = k.partition("/")
            keys.setdefault(k, f"{head} {METRIC_LABELS.get(metric, metric)}")
    return list(keys.items())


PROTOCOL_NAMES = {"artist": "artist-grouped", "random": "stratified random (no grouping)"}
"""How the report's header names each ``eno cv --protocol`` (``folds``)."""


def markdown_table(report: Mapping[str, Any]) -> str:
    """The report as a markdown table: one row per candidate, ``mean [low, high]`` per metric, and a
    second table of differences to the reference candidate."""
    cands = report["candidates"]
    keys = metric_columns(report)

    def cell(iv: Mapping[str, Any] | None) -> str:
        if not iv or not np.isfinite(iv.get("mean", float("nan"))):
            return "–"
        if not np.isfinite(iv.get("ci_low", float("nan"))):
            return f"{iv['mean']:.3f}"
        return f"{iv['mean']:.3f} [{iv['ci_low']:.3f}, {iv['ci_high']:.3f}]"

    head = "| candidate | " + " | ".join(label for _, label in keys) + " |"
    sep = "|---" * (len(keys) + 1) + "|"
    protocol = PROTOCOL_NAMES.get(report.get("protocol", "artist"), str(report.get("protocol")))
    lines = [f"{report['n_folds']}-fold x {report['n_repeats']} repeated {protocol} CV on "
             f"{report['n_recordings']} recordings; mean [95 % corrected-t interval] over folds.", "", head, sep]
    lines += [f"| {n} | " + " | ".join(cell(c["metrics"].get(k)) for k, _ in keys) + " |" for n, c in cands.items()]
    ref = report.get("reference")
    if ref and any("vs_reference" in c for c in cands.values()):
        lines += ["", f"Difference to `{ref}` (paired, same folds):", "", head, sep]
        lines += [f"| {n} | " + " | ".join(cell(c.get("vs_reference", {}).get(k)) for k, _ in keys) + " |"
                  for n, c in cands.items() if n != ref]
    return "\n".join(lines) + "\n"


def write_cv_report(report: Mapping[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``cv_report.json`` and ``cv_report.md`` to ``out_dir`` (another protocol than the
    artist-grouped default: ``cv_report-{protocol}.json`` / ``.md``, so it never replaces the report
    the model card reads); returns both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    protocol = report.get("protocol", "artist")
    stem = "cv_report" if protocol == "artist" else f"cv_report-{protocol}"
    js = write_json(out / f"{stem}.json", report)
    md = out / f"{stem}.md"
    md.write_text(markdown_table(report))
    return js, md


def combine_reports(paths: Sequence[str | Path], reference: str | None = "msd-musicnn-logreg") -> dict[str, Any]:
    """Merge ``cv_report.json`` files of runs on the **same folds** (e.g. candidates run in parallel
    processes) into one report with differences to ``reference``.

    Raises:
        ValueError: the runs used different folds (recordings, folds or repeats differ).
    """
    reports = [json.loads(Path(p).read_text()) for p in paths]
    keys = {(r["n_recordings"], r["n_folds"], r["n_repeats"], r.get("folds_file")) for r in reports}
    if len(keys) != 1:
        raise ValueError(f"cannot combine CV reports made on different folds: {sorted(map(str, keys))}")
    merged = {k: v for k, v in reports[0].items() if k != "candidates"}
    merged["candidates"] = {n: c for r in reports for n, c in r["candidates"].items()}
    return add_reference_differences(merged, reference)
