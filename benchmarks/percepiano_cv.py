"""PercePiano quality: ridge probes and the selected default in performer- and piece-grouped CV.

Reads the embeddings cached by ``benchmarks/percepiano_embed.py`` (or ``eno run``) under
``{data_root}/performance/percepiano/`` and prints, per protocol and side by side, the mean R² over
the 19 dimensions (pooled out-of-fold predictions, 95 % bootstrap interval over the protocol's
groups), Pearson r and within-passage pairwise accuracy of: the training mean, ridge on MIDI
statistics, ridge on each encoder's pooled layers with and without MIDI statistics, the probe
chosen by inner grouped CV (``eno_hf.performance.probe.nested_ridge_cv``), and per encoder the
model's own ridge ratings head (embeddings only / + MIDI statistics), next to the published
figures (symbolic ~0.35, MuQ 0.537; arXiv:2601.19029). Writes ``--out`` (JSON).

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD .venv/bin/python benchmarks/percepiano_cv.py \\
        --data-root /tmp/piano2/eno-data --encoders mtat-musicnn msd-musicnn msd-vgg msd-fcn
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-root", default="eno-data")
    ap.add_argument("--source", default=str(Path(__file__).resolve().parents[1].parent / "shared/data/percepiano"))
    ap.add_argument("--encoders", nargs="*", default=["mtat-musicnn", "msd-musicnn", "msd-vgg", "msd-fcn"])
    ap.add_argument("--protocols", nargs="*", default=["performer", "piece"])
    ap.add_argument("--only-cached", action="store_true", help="use only performances embedded by every encoder")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    from eno_hf.performance.config import PerformanceConfig
    from eno_hf.performance.job import encoder_blocks, midi_stats, probe_cv, select_rows

    t0 = time.time()
    cfg = PerformanceConfig(source=Path(a.source))
    work = Path(a.data_root) / "performance" / cfg.name
    rows = select_rows(cfg)
    if a.only_cached:
        from eno_hf.embeddings.frames import EmbedderSpec

        for name in a.encoders:
            d = work / "embeddings" / EmbedderSpec(name=name, features="prefix+embedding").key / "embeddings"
            rows = [r for r in rows if (d / f"{r.segment_id}.pt").is_file()]
    blocks, used = encoder_blocks(rows, work, a.encoders, cfg.soundfont, only_cached=a.only_cached)
    blocks["midi"] = midi_stats(rows, work)
    report = {"n": len(rows), "encoders": used, "protocols": {}}
    for p in a.protocols:
        report["protocols"][p] = probe_cv(rows, blocks, used, p)
    report["runtime_s"] = round(time.time() - t0, 1)
    print(f"n = {len(rows)} performances, encoders {used}; published: symbolic ~0.35, MuQ 0.537 mean R²")
    print(f"{'system':52s} " + " ".join(f"{p + ' R2 [95% CI]':>30s}" for p in a.protocols))
    prot = report["protocols"]

    def line(name: str, get) -> None:
        cells = []
        for p in a.protocols:
            r = get(prot[p])
            i = r["interval"]
            cells.append(f"{r['mean_r2']:8.3f} [{i['low']:6.3f}, {i['high']:6.3f}] r={r['mean_pearson']:.2f}")
        print(f"{name:52s} " + " ".join(f"{c:>30s}" for c in cells))

    line("training mean", lambda r: {**r["training_mean"], "interval": r["training_mean"]["interval"]})
    for k in prot[a.protocols[0]]["fixed"]:
        line(f"ridge {k}", lambda r, k=k: r["fixed"][k])
    line("selected by inner grouped CV", lambda r: r["selected"])
    for k in prot[a.protocols[0]]["head"]:
        line(f"model ridge head: {k}", lambda r, k=k: r["head"][k])
    for p in a.protocols:
        print(f"{p}: chosen per outer fold {prot[p]['selected']['chosen_counts']}")
    print(f"runtime {report['runtime_s']} s")
    if a.out:
        Path(a.out).write_text(json.dumps(report, indent=2, default=float))


if __name__ == "__main__":
    main()
