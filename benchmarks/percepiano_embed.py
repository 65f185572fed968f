"""PercePiano: wall and CPU time of FluidSynth rendering and of frame embedding per candidate encoder.

Renders every rated PercePiano performance (``configs/percepiano.yaml``'s soundfont, 16 kHz) into the
render cache of the performance job, then embeds all of them with each ``--encoders`` tagger
(``prefix+embedding``: the front/mid-end features and the penultimate layer in one tensor, so layer
choices are column slices) into ``{data_root}/performance/percepiano/embeddings/{key}/`` (the cache
``eno run --config configs/percepiano.yaml`` reads). Resumable: what is cached is reused (and then
timed as ~0; delete the folders to time from scratch). One torch thread per process.

Prints one line per stage, side by side: items, audio hours, wall s, CPU s (this process and its
children, i.e. FluidSynth), CPU s per audio minute, and writes ``--out`` (JSON).

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD .venv/bin/python benchmarks/percepiano_embed.py \\
        --data-root /tmp/piano2/eno-data --encoders mtat-musicnn msd-musicnn msd-vgg msd-fcn
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import torch


def _cpu() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-root", default="eno-data")
    ap.add_argument("--source", default=str(Path(__file__).resolve().parents[1].parent / "shared/data/percepiano"))
    ap.add_argument("--encoders", nargs="*", default=["mtat-musicnn", "msd-musicnn", "msd-vgg", "msd-fcn"])
    ap.add_argument("--features", default="prefix+embedding")
    ap.add_argument("--soundfont", default="fluidr3")
    ap.add_argument("--skip-render", action="store_true", help="another process renders; wait for nothing")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    torch.set_num_threads(1)
    from eno_hf.embeddings.frames import EmbedderSpec
    from eno_hf.performance.config import PerformanceConfig
    from eno_hf.performance.job import embed_rows, select_rows
    from eno_hf.performance.render import render_midi_cached

    cfg = PerformanceConfig(source=Path(a.source), limit=a.limit)
    rows = select_rows(cfg)
    work = Path(a.data_root) / "performance" / cfg.name
    res: list[dict] = []
    audio_s = 0.0
    if not a.skip_render:
        t0, c0 = time.time(), _cpu()
        for r in rows:
            audio_s += len(render_midi_cached(r.midi, work / "render", 16_000, a.soundfont)) / 16_000
        res.append({"stage": "render (FluidSynth, 16 kHz)", "items": len(rows), "audio_h": audio_s / 3600,
                    "wall_s": time.time() - t0, "cpu_s": _cpu() - c0})
        print(json.dumps(res[-1]), flush=True)
    for name in a.encoders:
        spec = EmbedderSpec(name=name, features=a.features)
        t0, c0 = time.time(), _cpu()
        table = embed_rows(rows, spec, work, a.soundfont)
        frames = sum(int(t.shape[0]) for t in table.tensors)
        res.append({"stage": f"embed {spec.key}", "items": len(table), "frames": frames, "dim": table.dim,
                    "audio_h": audio_s / 3600, "wall_s": time.time() - t0, "cpu_s": _cpu() - c0})
        print(json.dumps(res[-1]), flush=True)
    print(f"\n{'stage':58s} {'items':>6s} {'wall s':>8s} {'CPU s':>8s} {'CPU s/audio min':>16s}")
    for r in res:
        per = r["cpu_s"] / (r["audio_h"] * 60) if r["audio_h"] else float("nan")
        print(f"{r['stage']:58s} {r['items']:6d} {r['wall_s']:8.1f} {r['cpu_s']:8.1f} {per:16.2f}")
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
