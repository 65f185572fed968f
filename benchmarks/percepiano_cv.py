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

``--transcribe``: audio in through transcription. Every performance is rendered with FluidSynth
(the config's soundfont, dry, 22,050 Hz: Basic Pitch's rate; cached under ``{work}/render22k``),
transcribed and its ``midi_statistics`` computed (``eno_hf.performance.job.transcription_stats``,
as the job's ``transcribe`` stage: eno's settings, one onnxruntime thread per process,
``--workers`` processes; cached under ``{work}/transcription`` and
``{work}/transcription_statistics.json``). Then two more tables, each over the same protocols: the
held-out performances predicted from their transcription's statistics by maps trained on the
source MIDI's (``audio + transcription``: what ``eno tag --transcribe`` does with a model without a
``ridge_transcription`` map), and maps trained and predicted on transcriptions
(``transcription-trained``: what a ``ridge_transcription`` map does). The audio-only figures are the
``model ridge head: {encoder}`` lines of the MIDI table. A transcription that fails (no note,
say) gets the statistics of no notes (zeros) and is counted.

``--test-soundfont NAME`` (with ``--transcribe``): a new piano. The held-out performances of every
fold are rendered with another soundfont (``timgm6mb``, say: ``musescore-lite``'s compressed
``.sf3`` renders ~10x slower; embeddings and transcriptions
cached under ``{work}/test-soundfont-NAME``) while training reads the config's: one more table,
trained on the training soundfont's embeddings and transcriptions, predicted from the other's.
There ``ridge midi`` is the transcription's statistics alone, ``model ridge head: {encoder}``
audio only, ``{encoder}+midi`` and ``selected`` audio + transcription.
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
    ap.add_argument("--transcribe", action="store_true",
                    help="also predict from transcriptions of renders (see the module docstring)")
    ap.add_argument("--workers", type=int, default=2, help="transcription processes")
    ap.add_argument("--test-soundfont", default=None,
                    help="with --transcribe: predict held-out performances from renders with this soundfont")
    ap.add_argument("--limit", type=int, default=None, help="only the N shortest performances (a smoke run)")
    a = ap.parse_args()
    if a.test_soundfont and not a.transcribe:
        ap.error("--test-soundfont needs --transcribe (the new piano is read as audio + transcription)")
    from eno_hf.performance.config import PerformanceConfig
    from eno_hf.utils.logs import setup_logging

    setup_logging()  # progress lines of the transcription (minutes)
    from eno_hf.performance.job import encoder_blocks, midi_stats, probe_cv, select_rows, transcription_stats

    t0 = time.time()
    cfg = PerformanceConfig(source=Path(a.source), limit=a.limit)
    work = Path(a.data_root) / "performance" / cfg.name
    rows = select_rows(cfg)
    if a.only_cached:
        from eno_hf.embeddings.frames import EmbedderSpec

        for name in a.encoders:
            d = work / "embeddings" / EmbedderSpec(name=name, features="prefix+embedding").key / "embeddings"
            rows = [r for r in rows if (d / f"{r.segment_id}.pt").is_file()]
    blocks, used = encoder_blocks(rows, work, a.encoders, cfg.soundfont, only_cached=a.only_cached,
                                  workers=a.workers)
    blocks["midi"] = midi_stats(rows, work)
    report = {"n": len(rows), "encoders": used, "protocols": {}}
    for p in a.protocols:
        report["protocols"][p] = probe_cv(rows, blocks, used, p)
    tables = {"MIDI input (source MIDI statistics)": report["protocols"]}
    if a.transcribe:
        t_s = time.time()
        trans, failed = transcription_stats(rows, work, cfg.soundfont, a.workers, render_cache=work / "render22k")
        t_s = time.time() - t_s
        report["transcription"] = {"failed": failed, "seconds": round(t_s, 1)}
        print(f"transcribed {len(rows)} renders in {t_s:.0f} s ({len(failed)} without notes: {failed[:5]})")
        report["audio+transcription"] = {p: probe_cv(rows, blocks, used, p, test_blocks={"midi": trans})
                                         for p in a.protocols}
        report["transcription-trained"] = {p: probe_cv(rows, {**blocks, "midi": trans}, used, p)
                                           for p in a.protocols}
        tables["audio + transcription (trained on source MIDI, predicted from transcriptions)"] = \
            report["audio+transcription"]
        tables["transcription-trained (trained and predicted on transcriptions)"] = report["transcription-trained"]
        if a.test_soundfont:  # a new piano: the held-out rows read from renders with another soundfont
            twork = work / f"test-soundfont-{Path(a.test_soundfont).stem}"
            tblocks, _ = encoder_blocks(rows, twork, used, a.test_soundfont, workers=a.workers)
            ttrans, tfailed = transcription_stats(rows, twork, a.test_soundfont, a.workers,
                                                  render_cache=twork / "render22k")
            report["test_soundfont"] = {"soundfont": a.test_soundfont, "failed": tfailed}
            report["new-piano"] = {p: probe_cv(rows, {**blocks, "midi": trans}, used, p,
                                               test_blocks={**tblocks, "midi": ttrans}) for p in a.protocols}
            tables[f"new piano: trained on {cfg.soundfont} renders, predicted from {a.test_soundfont} renders "
                   "(ridge midi = transcription only; head {encoder} = audio only)"] = report["new-piano"]
    report["runtime_s"] = round(time.time() - t0, 1)
    print(f"n = {len(rows)} performances, encoders {used}; published: symbolic ~0.35, MuQ 0.537 mean R²")
    for title, prot in tables.items():
        print(f"\n## {title}")
        print_table(prot, a.protocols)
    print(f"runtime {report['runtime_s']} s")
    if a.out:
        Path(a.out).write_text(json.dumps(report, indent=2, default=float))


def print_table(prot: dict, protocols: list[str]) -> None:
    """One line per system: mean R² [95 % CI] and Pearson r in each protocol."""
    print(f"{'system':52s} " + " ".join(f"{p + ' R2 [95% CI]':>30s}" for p in protocols))

    def line(name: str, get) -> None:
        cells = []
        for p in protocols:
            r = get(prot[p])
            i = r["interval"]
            cells.append(f"{r['mean_r2']:8.3f} [{i['low']:6.3f}, {i['high']:6.3f}] r={r['mean_pearson']:.2f}")
        print(f"{name:52s} " + " ".join(f"{c:>30s}" for c in cells))

    line("training mean", lambda r: r["training_mean"])
    for k in prot[protocols[0]]["fixed"]:
        line(f"ridge {k}", lambda r, k=k: r["fixed"][k])
    line("selected by inner grouped CV", lambda r: r["selected"])
    for k in prot[protocols[0]]["head"]:
        line(f"model ridge head: {k}", lambda r, k=k: r["head"][k])
    for p in protocols:
        print(f"{p}: chosen per outer fold {prot[p]['selected']['chosen_counts']}")


if __name__ == "__main__":
    main()
