"""PercePiano: the tier model (T1, T1+T3) beside the ridge baselines in the same grouped folds.

Uses the performances whose frame embeddings of ``--encoder`` are cached under
``{data_root}/performance/percepiano/`` (``benchmarks/percepiano_embed.py``); prints mean R² [95 %
bootstrap CI over groups] of the tier model per variant, the training mean and ridge on MIDI
statistics, per protocol. Writes ``--out`` (JSON).

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD .venv/bin/python benchmarks/percepiano_tiers.py \\
        --data-root /tmp/piano2/eno-data --encoder mtat-musicnn --protocols performer
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
    ap.add_argument("--encoder", default="mtat-musicnn")
    ap.add_argument("--protocols", nargs="*", default=["performer", "piece"])
    ap.add_argument("--variants", nargs="*", default=["t1", "t1+t3"])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    from eno_hf.embeddings.frames import EmbedderSpec
    from eno_hf.performance.config import PerformanceConfig
    from eno_hf.performance.job import cross_validate, embed_rows, midi_stats, select_rows
    from eno_hf.performance.selection import EmbedderInputs

    spec = EmbedderSpec(name=a.encoder, features="prefix+embedding")
    base = PerformanceConfig(source=Path(a.source))
    work = Path(a.data_root) / "performance" / base.name
    d = work / "embeddings" / spec.key / "embeddings"
    rows = [r for r in select_rows(base) if (d / f"{r.segment_id}.pt").is_file()]
    table = embed_rows(rows, spec, work, base.soundfont)
    table = table.subset([table.index[r.segment_id] for r in rows])
    stats = midi_stats(rows, work)
    out: dict = {"n": len(rows), "encoder": spec.key, "results": {}}
    for v in a.variants:
        cfg = base.model_copy(update={"epochs": a.epochs, "tiers": base.tiers.model_copy(update={"t3": "t3" in v})})
        for p in a.protocols:
            t0 = time.time()
            res = cross_validate(cfg, EmbedderInputs.fixed(spec, table), rows, stats, p, tiers=cfg.tiers)
            res["runtime_s"] = round(time.time() - t0, 1)
            out["results"][f"{v}/{p}"] = res
            m, b, i = res["model"], res["baseline_ridge_midi"], res["model"]["interval"]
            print(f"{v:8s} {p:10s} n={len(rows)} tier model R2 {m['mean_r2']:.3f} [{i['low']:.3f}, {i['high']:.3f}]"
                  f"  ridge MIDI {b['mean_r2']:.3f}  training mean {res['baseline_mean']['mean_r2']:.3f}"
                  f"  ({res['runtime_s']} s)", flush=True)
    if a.out:
        Path(a.out).write_text(json.dumps(out, indent=2, default=float))


if __name__ == "__main__":
    main()
