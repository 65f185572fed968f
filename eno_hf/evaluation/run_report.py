"""A run's results as markdown and table rows: what an orchestrator shows beside the run.

``run_report_markdown`` summarizes one run of (a slice of) the main job from the outputs it
produced — dataset QC (inputs, written, rejected by reason, splits), test metrics beside the
baselines, the dataset version's cross-validated figures with their intervals when ``eno cv`` has
been run, and where the plots, the model and the registered model are. ``metrics_rows`` is the
same metrics as a list of flat rows (one per ``head/metric``). Plain Python: the Prefect flows
publish both as artifacts (``eno_hf.flows.runner.publish_run_artifacts``); nothing here imports
Prefect.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from eno_hf.metrics import SUMMARY_KEYS

PLOT_SUFFIXES = (".png", ".svg")
MAX_REJECTED_SHOWN = 10


def _num(value: Any) -> float | None:
    """A finite float, or None (NaN, None, non-numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(float(value)) else float(value)


def metrics_rows(metrics: Mapping[str, Any] | None,
                 baselines: Mapping[str, Mapping[str, Any]] | None = None) -> list[dict[str, Any]]:
    """One row per scalar test metric: ``{"head", "metric", "model", <baseline name>: value, ...}``.

    Args:
        metrics: ``evaluate_heads`` output / ``metrics.json`` (``{head: {kind, ...}, "score": float}``).
        baselines: ``{name: metrics of the same form}`` (``label_prior``, ``feature_probe``).

    Returns:
        Rows in ``SUMMARY_KEYS`` order per head, then ``{"head": "score", "metric": "mean", ...}``;
        values are floats or None where undefined (NaN / missing). Empty without metrics.
    """
    if not metrics:
        return []
    baselines = baselines or {}
    rows = []
    for head, m in metrics.items():
        if not isinstance(m, Mapping) or m.get("kind") not in SUMMARY_KEYS:
            continue
        for key in SUMMARY_KEYS[m["kind"]]:
            row = {"head": head, "metric": key, "model": _num(m.get(key))}
            for name, b in baselines.items():
                bm = b.get(head) if isinstance(b, Mapping) else None
                row[name] = _num(bm.get(key)) if isinstance(bm, Mapping) else None
            rows.append(row)
    if "score" in metrics:
        row = {"head": "score", "metric": "mean", "model": _num(metrics.get("score"))}
        row.update({name: _num(b.get("score")) if isinstance(b, Mapping) else None for name, b in baselines.items()})
        rows.append(row)
    return rows


def _cell(value: Any) -> str:
    return "–" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    return (["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(_cell(c).replace("|", "\\|") for c in r) + " |" for r in rows])


def _qc_section(dataset: Mapping[str, Any] | None, qc: Mapping[str, Any]) -> list[str]:
    acc = qc.get("accounting") or {}
    out = ["## Dataset", ""]
    if dataset:
        out += [f"- **{k}**: `{v}`" for k, v in dataset.items() if v is not None]
    out += [f"- inputs: {acc.get('n_inputs', '?')}, written: {acc.get('n_written', '?')}, "
            f"rejected: {acc.get('n_rejected', '?')}"
            + ("" if acc.get("invariant_holds", True) else " (**the counts do not add up**)"), ""]
    by_reason = qc.get("rejected_by_reason") or {}
    if by_reason:
        out += ["Rejected by reason:", "", *_table(["reason", "inputs"], sorted(by_reason.items())), ""]
        rejected = qc.get("rejected") or []
        if rejected:
            out += [f"First {min(len(rejected), MAX_REJECTED_SHOWN)} of {len(rejected)} rejected inputs:", "",
                    *_table(["input", "reason", "detail"],
                            [[r.get("path") or r.get("recording_id"), r.get("reason"), r.get("detail")]
                             for r in rejected[:MAX_REJECTED_SHOWN]]), ""]
    splits = qc.get("splits") or {}
    if splits:
        out += _table(["split", "recordings", "segments", "groups"],
                      [[s, v.get("n_recordings"), v.get("n_segments"), v.get("n_groups")] for s, v in splits.items()])
        out.append("")
    for w in qc.get("warnings") or []:
        out += [f"**Note**: {w}", ""]
    return out


def run_report_markdown(*, title: str, dataset: Mapping[str, Any] | None = None,
                        qc_report: Mapping[str, Any] | None = None, metrics: Mapping[str, Any] | None = None,
                        baselines: Mapping[str, Mapping[str, Any]] | None = None,
                        cv_report: Mapping[str, Any] | None = None, eval_dir: str | Path | None = None,
                        model_dir: str | Path | None = None, registered: str | Path | None = None,
                        tags: str | Path | None = None, cached: Mapping[str, bool] | None = None) -> str:
    """Markdown summary of a run; every section appears only when its input is given.

    Args:
        title: first-level heading (e.g. the flow run's name).
        dataset: ``{name, version, path}`` of the dataset version.
        qc_report: the build's QC report (``eno_hf.data.qc``): inputs, written, rejected by reason
            (and the first rejected inputs), splits, warnings.
        metrics: test metrics; shown beside ``baselines`` (``metrics_rows``).
        cv_report: an ``eno cv`` report of the dataset version: its table of means with 95 %
            intervals (``eno_hf.evaluation.cv.markdown_table``).
        eval_dir: evaluation folder; its ``metrics.json`` and plots (PNG/SVG) are listed.
        model_dir: trained model folder. registered: the hub version folder. tags: tags JSONL.
        cached: ``{stage: reused?}``; reused stages are named.

    Returns:
        Markdown text.
    """
    out = [f"# {title}", ""]
    if cached:
        reused = [k for k, v in cached.items() if v]
        out += [f"Reused (inputs unchanged): {', '.join(reused)}." if reused else "Every stage ran.", ""]
    if qc_report:
        out += _qc_section(dataset, qc_report)
    elif dataset:
        out += ["## Dataset", "", *[f"- **{k}**: `{v}`" for k, v in dataset.items() if v is not None], ""]
    rows = metrics_rows(metrics, baselines)
    if rows:
        names = list(baselines or {})
        out += ["## Test metrics", "",
                "Recording level, beside the baselines on the same recordings (`label_prior`: training "
                "label frequencies; `feature_probe`: logistic regression on fingerprint + MFCC statistics).", "",
                *_table(["head", "metric", "model", *names],
                        [[r["head"], r["metric"], r["model"], *[r[n] for n in names]] for r in rows]), ""]
    if cv_report:
        from eno_hf.evaluation.cv import markdown_table

        out += ["## Cross-validated quality", "", markdown_table(cv_report).rstrip(), ""]
    elif rows:
        out += ["The test split holds a few dozen recordings: a sanity check, not a quality estimate. "
                "`eno cv` gives cross-validated figures with 95 % intervals.", ""]
    files: list[str] = []
    if eval_dir:
        ev = Path(eval_dir)
        files.append(f"- evaluation: `{ev}` (`metrics.json`, per-tag CSV)")
        if ev.is_dir():
            files += [f"  - plot: `{p}`" for p in sorted(ev.iterdir()) if p.suffix in PLOT_SUFFIXES]
    if model_dir:
        files.append(f"- model: `{model_dir}`")
    if registered:
        files.append(f"- registered model: `{registered}` (model card: `{Path(registered) / 'README.md'}`)")
    if tags:
        files.append(f"- tags: `{tags}`")
    if files:
        out += ["## Where things are", "", *files, ""]
    return "\n".join(out)
