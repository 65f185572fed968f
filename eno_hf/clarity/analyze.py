"""The ``analyze`` report of ``features.csv``: NaN/Inf counts, gold-vs-flawed effect sizes, PNG plots.

Effect size: Cohen's d with the pooled standard deviation (Cohen 1988), flawed minus gold, overall
and per flaw (each flaw's files against all gold files); features are ranked by ``|d|``. Plots
(matplotlib, Agg): ``distributions_subset.png`` (box plots of the top features by subset x
instrument), ``effect_sizes.png`` (heat map flaw x top features).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from eno_hf.features.fingerprint import FINGERPRINT_NAMES

__all__ = ["cohens_d", "nonfinite_counts", "analyze_features"]


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


def analyze_features(frame: pd.DataFrame, out_dir: Path, top_k: int = 12) -> dict[str, Any]:
    """Write ``analysis.json`` and the PNG plots into ``out_dir``; return the report.

    Report keys: ``files``, ``by_subset_instrument`` (counts), ``nonfinite`` (per column),
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
    ncol = 4
    nrow = int(np.ceil(len(top) / ncol)) or 1
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.2 * nrow), squeeze=False)
    for ax, c in zip(axes.flat, top):
        data = [frame[(frame.subset == s) & (frame.instrument == i)][c].to_numpy() for s, i in groups]
        ax.boxplot(data, showfliers=False)
        ax.set_xticks(range(1, len(groups) + 1), [f"{s[0].upper()}:{i}" for s, i in groups],
                      rotation=60, fontsize=7)
        ax.set_title(c, fontsize=8)
    for ax in list(axes.flat)[len(top):]:
        ax.axis("off")
    fig.suptitle("Top features by |Cohen's d| (gold vs flawed); G = gold, F = flawed")
    fig.tight_layout()
    plots["distributions"] = str(out_dir / "distributions_subset.png")
    fig.savefig(plots["distributions"], dpi=80)
    plt.close(fig)

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
        "nonfinite": nf,
        "nonfinite_total": int(sum(v["nan"] + v["inf"] for v in nf.values())),
        "effect_sizes": overall,
        "effect_sizes_by_flaw": {f: [{"feature": c, "cohens_d": d} for c, d in v] for f, v in best_by_flaw.items()},
        "plots": plots,
    }
    (out_dir / "analysis.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    return report
