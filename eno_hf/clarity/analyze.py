"""The ``analyze`` report of ``features.csv``: NaN/Inf counts, gold-vs-flawed effect sizes, PNG plots.

Effect size: Cohen's d with the pooled standard deviation (Cohen 1988), flawed minus gold, overall
and per flaw (each flaw's files against all gold files); features are ranked by ``|d|``. Plots
(matplotlib, Agg): ``distributions_subset.png`` (box plots of the top features by subset x
instrument), ``effect_sizes.png`` (heat map flaw x top features). ``analysis.json`` also has all
64 features' distributions per subset x instrument (n, mean, std, 5th/50th/95th percentile; a
64-panel PNG took ~30 s to draw on the shared machine, so the plot keeps the top features).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from eno_hf.features.fingerprint import FINGERPRINT_NAMES
from eno_hf.utils.io import atomic_write_json

__all__ = ["cohens_d", "nonfinite_counts", "distributions", "analyze_features"]


def cohens_d(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's d of ``b`` against ``a`` (mean(b) - mean(a)) / pooled std; 0.0 when undefined."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.size < 2 or b.size < 2:
        return 0.0
    pooled = np.sqrt(((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / (a.size + b.size - 2))
    return float((b.mean() - a.mean()) / pooled) if pooled > 0 else 0.0


def nonfinite_counts(frame: pd.DataFrame, columns: list[str] | tuple[str, ...] = FINGERPRINT_NAMES
                     ) -> dict[str, dict[str, int]]:
    """Per column ``{"nan": n, "inf": n}`` (numpy ``isnan`` / ``isinf``)."""
    out = {}
    for c in columns:
        v = frame[c].to_numpy(dtype=float)
        out[c] = {"nan": int(np.isnan(v).sum()), "inf": int(np.isinf(v).sum())}
    return out


def distributions(frame: pd.DataFrame, columns: list[str] | tuple[str, ...] = FINGERPRINT_NAMES
                  ) -> dict[str, dict[str, dict[str, float]]]:
    """Per column, per ``"{subset}/{instrument}"``: ``n``, ``mean``, ``std`` (ddof 1), ``p5``,
    ``p50``, ``p95`` of the finite values (numpy; NaN when a cell has no finite value)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for c in columns:
        cells = {}
        for (sub, inst), g in frame.groupby(["subset", "instrument"]):
            v = g[c].to_numpy(dtype=float)
            v = v[np.isfinite(v)]
            q = np.percentile(v, [5, 50, 95]) if v.size else [np.nan] * 3
            cells[f"{sub}/{inst}"] = {"n": int(v.size), "mean": float(v.mean()) if v.size else float("nan"),
                                      "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
                                      "p5": float(q[0]), "p50": float(q[1]), "p95": float(q[2])}
        out[c] = cells
    return out


def _box_grid(plt, frame: pd.DataFrame, features: list[str], groups: list[tuple[str, str]], title: str,
              path: Path, ncol: int = 4) -> str:
    """Box plots of ``features`` per (subset, instrument) group into ``path``; returns it."""
    nrow = int(np.ceil(len(features) / ncol)) or 1
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.2 * nrow), squeeze=False)
    for ax, c in zip(axes.flat, features):
        data = [frame[(frame.subset == s) & (frame.instrument == i)][c].to_numpy() for s, i in groups]
        ax.boxplot(data, showfliers=False)
        ax.set_xticks(range(1, len(groups) + 1), [f"{s[0].upper()}:{i}" for s, i in groups],
                      rotation=60, fontsize=7)
        ax.set_title(c, fontsize=8)
    for ax in list(axes.flat)[len(features):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return str(path)


def analyze_features(frame: pd.DataFrame, out_dir: Path, top_k: int = 12) -> dict[str, Any]:
    """Write ``analysis.json`` and the PNG plots into ``out_dir``; return the report.

    Report keys: ``files``, ``by_subset_instrument`` (counts), ``distributions`` (per column, per
    subset/instrument: n, mean, std, p5, p50, p95), ``nonfinite`` (per column),
    ``nonfinite_total`` (must be 0), ``effect_sizes`` (overall, sorted by |d|), ``effect_sizes_by_flaw``,
    ``plots``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    cols = list(FINGERPRINT_NAMES)
    nf = nonfinite_counts(frame, cols)
    gold = frame[frame.subset == "gold"]
    flawed = frame[frame.subset == "flawed"]
    overall = sorted(({"feature": c, "cohens_d": round(cohens_d(gold[c], flawed[c]), 4)} for c in cols),
                     key=lambda r: -abs(r["cohens_d"]))
    flaws = sorted(set(flawed.flaw))
    by_flaw = {f: {c: round(cohens_d(gold[c], flawed[flawed.flaw == f][c]), 4) for c in cols} for f in flaws}
    best_by_flaw = {f: sorted(d.items(), key=lambda kv: -abs(kv[1]))[:5] for f, d in by_flaw.items()}
    top = [r["feature"] for r in overall[:top_k]]

    plots = {}
    groups = [(s, i) for s in ("gold", "flawed") for i in sorted(set(frame.instrument))
              if ((frame.subset == s) & (frame.instrument == i)).any()]
    plots["distributions"] = _box_grid(plt, frame, top, groups,
                                       "Top features by |Cohen's d| (gold vs flawed); G = gold, F = flawed",
                                       out_dir / "distributions_subset.png")

    if flaws:
        heat_cols = sorted({c for f in flaws for c, _ in best_by_flaw[f]})
        mat = np.array([[by_flaw[f][c] for c in heat_cols] for f in flaws])
        fig, ax = plt.subplots(figsize=(0.5 * len(heat_cols) + 3, 0.45 * len(flaws) + 2.5))
        lim = float(np.max(np.abs(mat))) or 1.0
        im = ax.imshow(mat, cmap="coolwarm", vmin=-lim, vmax=lim, aspect="auto")
        ax.set_xticks(range(len(heat_cols)), heat_cols, rotation=75, fontsize=7)
        ax.set_yticks(range(len(flaws)), flaws, fontsize=8)
        fig.colorbar(im, ax=ax, label="Cohen's d (flaw vs gold)")
        fig.tight_layout()
        plots["effect_sizes"] = str(out_dir / "effect_sizes.png")
        fig.savefig(plots["effect_sizes"], dpi=80)
        plt.close(fig)

    counts = frame.groupby(["subset", "instrument"]).size()
    report = {
        "files": int(len(frame)),
        "by_subset_instrument": {f"{s}/{i}": int(n) for (s, i), n in counts.items()},
        "distributions": distributions(frame, cols),
        "nonfinite": nf,
        "nonfinite_total": int(sum(v["nan"] + v["inf"] for v in nf.values())),
        "effect_sizes": overall,
        "effect_sizes_by_flaw": {f: [{"feature": c, "cohens_d": d} for c, d in v] for f, v in best_by_flaw.items()},
        "plots": plots,
    }
    atomic_write_json(out_dir / "analysis.json", report, indent=1)
    return report
