"""Piano transcription on PercePiano renderings: note F1 against the source MIDI, and speed (prints figures).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/transcribe.py                 # 20 performances x 2 soundfonts
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/transcribe.py --n 5 --soundfonts fluidr3

For ``--n`` PercePiano performances (``labels.csv`` rows with ``is_score == 0``, a seeded random
choice: ``--seed``), each MIDI file is rendered with FluidSynth (``eno_hf.audio.midi.render_midi``,
dry, 22,050 Hz mono, once per soundfont of ``--soundfonts``; cached, not timed), transcribed with
``eno_hf.audio.transcribe`` (``posteriorgrams`` + ``notes_from_posteriorgrams``, Basic Pitch's ONNX
model through onnxruntime with one intra-/inter-op thread; the cache is not used) and compared with
the source MIDI by ``mir_eval.transcription.precision_recall_f1_overlap`` (Raffel et al., ISMIR
2014): note F1 with a 50-ms onset tolerance and pitch within 50 cents, ``offset_ratio=None``
(onset-only) and with offsets (offset within max(50 ms, 20 % of the reference note's duration)),
once against the MIDI note-offs and once against note-offs extended while the sustain pedal is
down (``sustain_extended``: what the synthesizer sounds). Drum tracks are ignored. The tuned
default settings were chosen on 10 other performances (``eno_hf.audio.transcribe.TranscriptionSettings``);
``--basic-pitch-defaults`` measures Basic Pitch's own.

Printed: per soundfont, mean / min / max of onset-only F1, precision and recall and of the two F1
with offsets, and the transcription speed as x real time (audio seconds per wall second of the model
and note creation on one thread, per wall second and per CPU second of the process: on a shared
machine the CPU figure is the steadier one; the onnxruntime session is created before timing).
The load average is printed with the figures. ``--markdown`` prints the same as a table. ``--statistics`` also compares the MIDI statistics
the performance models read (``eno_hf.features.midi.midi_statistics``) of each transcription with
those of its source (Pearson r over performances x soundfonts, median relative error). Never asserts.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy / onnxruntime load their thread pools

import argparse
import csv
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def note_arrays(pm) -> tuple[np.ndarray, np.ndarray]:
    """``(n, 2)`` onset/offset seconds and ``(n,)`` Hz of the non-drum notes of a ``PrettyMIDI``."""
    import pretty_midi

    notes = [n for inst in pm.instruments if not inst.is_drum for n in inst.notes]
    iv = np.array([[n.start, n.end] for n in notes], dtype=np.float64).reshape(-1, 2)
    hz = np.array([pretty_midi.note_number_to_hz(n.pitch) for n in notes], dtype=np.float64)
    return iv, hz


def sustain_extended(pm, threshold: int = 64):
    """A copy of ``pm`` whose note-offs last while the sustain pedal (CC 64 >= ``threshold``) is down,
    each cut at the next onset of the same pitch (as the MAESTRO evaluation of Hawthorne et al.,
    "Onsets and Frames", ISMIR 2018): what a synthesizer makes audible."""
    import copy

    out = copy.deepcopy(pm)
    for inst in out.instruments:
        if inst.is_drum:
            continue
        cc = sorted((c for c in inst.control_changes if c.number == 64), key=lambda c: c.time)
        downs, down_at = [], None
        for c in cc:
            if c.value >= threshold and down_at is None:
                down_at = c.time
            elif c.value < threshold and down_at is not None:
                downs.append((down_at, c.time))
                down_at = None
        if down_at is not None:
            downs.append((down_at, max([n.end for n in inst.notes] + [down_at])))
        by_pitch: dict[int, list] = {}
        for n in sorted(inst.notes, key=lambda n: n.start):
            by_pitch.setdefault(n.pitch, []).append(n)
        for notes in by_pitch.values():
            for i, n in enumerate(notes):
                end = n.end
                for d, u in downs:
                    if d <= end < u:
                        end = u
                        break
                if i + 1 < len(notes):
                    end = min(end, max(notes[i + 1].start, n.end))
                n.end = end
    return out


def note_scores(ref_pm, est_pm, onset_tolerance_s: float = 0.05) -> dict[str, float]:
    """Note precision / recall / F1 of ``est_pm`` against ``ref_pm`` (mir_eval): onset-only, with
    offsets (the reference's note-offs) and with offsets against the sustain-extended reference."""
    import mir_eval

    prf = mir_eval.transcription.precision_recall_f1_overlap
    ri, rp = note_arrays(ref_pm)
    ei, ep = note_arrays(est_pm)
    p, r, f, _ = prf(ri, rp, ei, ep, onset_tolerance=onset_tolerance_s, offset_ratio=None)
    _, _, f_off, _ = prf(ri, rp, ei, ep, onset_tolerance=onset_tolerance_s)
    xi, xp = note_arrays(sustain_extended(ref_pm))
    _, _, f_ped, _ = prf(xi, xp, ei, ep, onset_tolerance=onset_tolerance_s)
    return {"precision": p, "recall": r, "f1": f, "f1_offsets": f_off, "f1_offsets_pedal": f_ped,
            "n_ref": len(rp), "n_est": len(ep)}


def performances(percepiano: Path, n: int, seed: int) -> list[Path]:
    """``n`` PercePiano performance MIDI files (``is_score == 0``), a seeded random choice, sorted."""
    with open(percepiano / "labels.csv", newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("is_score", "0") == "0"]
    paths = sorted({percepiano / r["midi"] for r in rows})
    return sorted(random.Random(seed).sample(paths, min(n, len(paths))))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=20, help="performances")
    ap.add_argument("--soundfonts", nargs="+", default=["fluidr3", "musescore-lite"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", type=Path, default=None, help="PercePiano folder (default {shared}/data/percepiano)")
    ap.add_argument("--onset-threshold", type=float, default=None)
    ap.add_argument("--frame-threshold", type=float, default=None)
    ap.add_argument("--min-note-ms", type=float, default=None)
    ap.add_argument("--basic-pitch-defaults", action="store_true",
                    help="Basic Pitch's own settings instead of eno's tuned piano defaults")
    ap.add_argument("--velocity", choices=["onset_energy", "amplitude"], default=None,
                    help="how note velocities are made (default: the settings')")
    ap.add_argument("--statistics", action="store_true",
                    help="also compare eno_hf.features.midi.midi_statistics of the source and of the transcription")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args(argv)

    import pretty_midi

    from eno_hf.audio import transcribe as T
    from eno_hf.audio.midi import render_midi
    from eno_hf.locations import shared_path

    data = args.data or shared_path("data/percepiano")
    if not (data / "labels.csv").is_file():
        sys.exit(f"PercePiano not found at {data} (set ENO_SHARED_DIR or --data)")
    base = T.TranscriptionSettings.basic_pitch_defaults() if args.basic_pitch_defaults else T.TranscriptionSettings()
    settings = T.TranscriptionSettings(
        onset_threshold=args.onset_threshold if args.onset_threshold is not None else base.onset_threshold,
        frame_threshold=args.frame_threshold if args.frame_threshold is not None else base.frame_threshold,
        minimum_note_length_ms=args.min_note_ms if args.min_note_ms is not None else base.minimum_note_length_ms,
        infer_onsets=base.infer_onsets, melodia_trick=base.melodia_trick,
        velocity=args.velocity or base.velocity)
    files = performances(data, args.n, args.seed)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    print(f"# transcription benchmark {time.strftime('%Y-%m-%d %H:%M')} commit {commit} "
          f"{platform.processor() or platform.machine()} ({os.cpu_count()} CPUs) model {T.model_id()}")
    print(f"# {len(files)} performances x {len(args.soundfonts)} soundfonts, settings {settings.note_fields()}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, onnxruntime threads 1, "
          f"load average {os.getloadavg()[0]:.1f}")
    T._session(1)  # session creation not timed
    summary: dict[str, dict[str, list[float]]] = {}
    stats_src: list[dict[str, float]] = []
    stats_est: list[dict[str, float]] = []
    for sf in args.soundfonts:
        acc: dict[str, list[float]] = {"f1": [], "precision": [], "recall": [], "f1_offsets": [], "f1_offsets_pedal": []}
        audio_s = wall_s = cpu_s = 0.0
        for f in files:
            y = render_midi(f, sample_rate=T.TRANSCRIBE_SAMPLE_RATE, soundfont=sf)
            t0, c0 = time.perf_counter(), time.process_time()
            est = T.set_velocities(T.notes_from_posteriorgrams(T.posteriorgrams(y, threads=1), settings), y, settings)
            wall_s += time.perf_counter() - t0
            cpu_s += time.process_time() - c0
            audio_s += y.shape[0] / T.TRANSCRIBE_SAMPLE_RATE
            sc = note_scores(pretty_midi.PrettyMIDI(str(f)), est)
            if args.statistics:
                import tempfile

                from eno_hf.features.midi import midi_statistics

                with tempfile.TemporaryDirectory() as tmp:
                    est.write(str(Path(tmp) / "t.mid"))
                    stats_est.append(midi_statistics(Path(tmp) / "t.mid"))
                stats_src.append(midi_statistics(f))
            for k in acc:
                acc[k].append(sc[k])
            print(f"{sf:15s} {f.stem:45s} {y.shape[0] / T.TRANSCRIBE_SAMPLE_RATE:6.1f} s  notes ref {sc['n_ref']:4d} "
                  f"est {sc['n_est']:4d}  F1 {sc['f1']:.3f} (P {sc['precision']:.3f} R {sc['recall']:.3f})  "
                  f"F1+off {sc['f1_offsets']:.3f} (pedal-extended ref {sc['f1_offsets_pedal']:.3f})", flush=True)
        acc["x_realtime"] = [audio_s / wall_s]
        acc["x_realtime_cpu"] = [audio_s / cpu_s]
        summary[sf] = acc
    if stats_src:
        from eno_hf.features.midi import MIDI_STATISTICS

        print("\n# midi_statistics of the transcription vs the source MIDI, over every performance x soundfont:")
        print("# Pearson r, and median |transcription - source| / |source|")
        for k in MIDI_STATISTICS:
            a = np.array([d[k] for d in stats_src], dtype=float)
            b = np.array([d[k] for d in stats_est], dtype=float)
            ok = np.isfinite(a) & np.isfinite(b)
            r = np.corrcoef(a[ok], b[ok])[0, 1] if ok.sum() > 2 and a[ok].std() > 0 and b[ok].std() > 0 else float("nan")
            rel = np.median(np.abs(b[ok] - a[ok]) / np.maximum(np.abs(a[ok]), 1e-9)) if ok.any() else float("nan")
            print(f"{k:28s} r {r:6.3f}  median relative error {rel:7.3f}")
    print(f"\n# load average at the end {os.getloadavg()[0]:.1f}")
    if args.markdown:
        print("| soundfont | note F1 onset-only, mean (min-max) | precision | recall | note F1 with offsets "
              "| same, sustain-extended reference | x real time (1 thread): wall, CPU |")
        print("|---|---|---|---|---|---|---|")
    for sf, acc in summary.items():
        def fmt(k: str) -> str:
            v = np.asarray(acc[k])
            return f"{v.mean():.3f} ({v.min():.3f}-{v.max():.3f})"
        if args.markdown:
            print(f"| {sf} | {fmt('f1')} | {fmt('precision')} | {fmt('recall')} | {fmt('f1_offsets')} | "
                  f"{fmt('f1_offsets_pedal')} | {acc['x_realtime'][0]:.1f}, {acc['x_realtime_cpu'][0]:.1f} |")
        else:
            print(f"{sf:15s} F1 {fmt('f1')}  P {fmt('precision')}  R {fmt('recall')}  F1+offsets {fmt('f1_offsets')}  "
                  f"F1+offsets (sustain-extended ref) {fmt('f1_offsets_pedal')}  "
                  f"x real time {acc['x_realtime'][0]:.1f} (wall), {acc['x_realtime_cpu'][0]:.1f} (CPU)")


if __name__ == "__main__":
    main()
