"""Ingest benchmark: full dataset build vs a naive librosa loop, worker scaling, long-file memory.

    .venv/bin/python benchmarks/ingest.py --n 120

Prints (never asserts):

1. the full build (``eno_hf.data.build.build_dataset``: decode, soxr resample, BS.1770 loudness
   normalization, 10-s segments, log-mel + MFCC + 64-d fingerprint, splits, Arrow writing, QC
   report, card) on the first ``--n`` 4q-dev clips, in audio-seconds per wall-second (× real time);
2. a naive loop over the same files (``librosa.load`` at the same rate, ``librosa`` mel
   spectrogram with the same n_fft/hop/n_mels/f_max, ``pyloudnorm`` measure + normalize), and
   the ratio build / naive (the build does strictly more work per file: MFCC, fingerprint,
   Arrow + caches);
   and the build restricted to the naive loop's work (1 worker, log-mel only) for a like-for-like
   ratio;
3. 1 vs 2 worker processes on the same files (speed-up);
4. peak RSS above the post-import baseline while building the 594-s Opus
   (``long-form/warzone2100-aftermath-track25.opus``), measured in a fresh subprocess.

Every build uses a fresh temporary data root (no cache hits). Before anything is timed, an
untimed warm-up pays the one-off costs of both sides (imports of librosa/datasets/scikit-learn,
numba JIT, filterbank caches: a 4-clip build and the naive loop on 2 clips) and reads every
benchmark file once (page cache), so neither side is charged for them. Timed order: build
(2 workers), naive loop, build restricted to the naive loop's work, build (1 worker). Each line also gives CPU seconds (this process + its finished worker
processes) and the 1-minute load average: on a shared machine the CPU ratio is the
load-independent figure, the wall-clock ratio the one the targets are stated in.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

import eno_hf  # noqa: E402,F401  (offline defaults)

DATA = PROJECT_ROOT.parent / "shared" / "data"
OPUS = DATA / "long-form" / "warzone2100-aftermath-track25.opus"


def _settings(data_root: Path, n: int, workers: int, extra: list[str] | None = None):
    from eno_hf.config import load_config

    return load_config(PROJECT_ROOT / "configs" / "small.yaml",
                       [f"paths.data_root={data_root}", f"dataset.limit={n}",
                        f"dataset.num_workers={workers}", *(extra or [])])


def _cpu_s() -> float:
    """CPU seconds (user + system) of this process and its finished, waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def run_build(n: int, workers: int, extra: list[str] | None = None) -> dict:
    """Full build on a fresh data root; returns wall and CPU seconds, audio seconds, counts."""
    import warnings

    from eno_hf.data.build import build_dataset

    with tempfile.TemporaryDirectory(prefix="eno-bench-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # few-groups split warnings on tiny runs
        settings = _settings(Path(tmp), n, workers, extra)
        load = _load()
        c0, t0 = _cpu_s(), time.perf_counter()
        res = build_dataset(settings, progress=False)
        wall, cpu = time.perf_counter() - t0, _cpu_s() - c0
        assert not res.cache_hit
        return {"wall_s": wall, "cpu_s": cpu, "audio_s": res.report["build"]["audio_s"],
                "n_written": res.report["accounting"]["n_written"],
                "n_segments": sum(len(d) for d in res.dataset.values()), "load": load}


def naive_loop(paths: list[Path], settings) -> dict:
    """librosa.load + librosa mel spectrogram + pyloudnorm per file, same settings."""
    import librosa
    import numpy as np
    import pyloudnorm

    import warnings

    warnings.filterwarnings("ignore", message="Possible clipped samples")
    a, f = settings.dataset.audio, settings.dataset.features
    audio_s = 0.0
    t0 = time.perf_counter()
    for p in paths:
        y, sr = librosa.load(p, sr=a.sample_rate, mono=True)
        meter = pyloudnorm.Meter(sr)
        y = pyloudnorm.normalize.loudness(y, meter.integrated_loudness(y), a.target_lufs)
        seg = int(settings.dataset.segment.segment_s * sr)
        for i in range(0, max(len(y) - seg // 2, 1), seg):
            mel = librosa.feature.melspectrogram(y=y[i:i + seg], sr=sr, n_fft=f.n_fft,
                                                 hop_length=f.hop_length, n_mels=f.n_mels,
                                                 fmin=f.f_min, fmax=f.f_max)
            np.asarray(librosa.power_to_db(mel), dtype=np.float16)
        audio_s += len(y) / sr
    return {"wall_s": time.perf_counter() - t0, "audio_s": audio_s}


def timed_naive(paths: list[Path], settings) -> dict:
    """``naive_loop`` plus its CPU seconds and the load average at its start."""
    load = _load()
    c0 = _cpu_s()
    out = naive_loop(paths, settings)
    return {**out, "cpu_s": _cpu_s() - c0, "load": load}


def warm_up(paths: list[Path], settings) -> None:
    """Untimed: imports, numba JIT and filterbank caches of both sides; page cache of the files."""
    for p in paths:
        p.read_bytes()
    run_build(4, 1)  # 3 splits need >= 3 groups
    naive_loop(paths[:2], settings)


def _line(name: str, r: dict) -> str:
    return (f"{name:22s}: {r['audio_s']:.0f} audio-s in {r['wall_s']:.1f} s = "
            f"{r['audio_s'] / r['wall_s']:.1f}x real time; CPU {r['cpu_s']:.1f} s = "
            f"{r['audio_s'] / r['cpu_s']:.1f} audio-s per CPU-s ({r['load']} at start)")


def _proc_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def rss_child(data_root: str) -> None:
    """(subprocess) Build the long Opus alone; print peak RSS above the post-import baseline."""
    from eno_hf.data import build as _build  # noqa: F401  (import everything first)
    from eno_hf.data.build import build_dataset
    from eno_hf.features import fingerprint, spectral  # noqa: F401

    root = Path(data_root)
    music = root / "music" / "long"
    music.mkdir(parents=True)
    os.symlink(OPUS, music / OPUS.name)
    from eno_hf.config import load_config

    settings = load_config(PROJECT_ROOT / "configs" / "base.yaml", [
        f"paths.data_root={root / 'data'}", "dataset.name=longform", "dataset.source.kind=folders",
        f"dataset.source.audio_root={root / 'music'}", "dataset.num_workers=1",
        "dataset.split.train=1.0", "dataset.split.validation=0.0", "dataset.split.test=0.0"])
    # ru_maxrss would carry the parent's peak across fork+exec: use /proc VmRSS/VmHWM and reset
    # the high-water mark after the imports (``echo 5 > /proc/self/clear_refs``, Linux >= 4.0)
    base_kb = _proc_kb("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    t0 = time.perf_counter()
    res = build_dataset(settings, progress=False)
    wall = time.perf_counter() - t0
    peak_kb = _proc_kb("VmHWM")
    print(json.dumps({"baseline_mb": base_kb / 1024, "peak_mb": peak_kb / 1024,
                      "above_baseline_mb": (peak_kb - base_kb) / 1024, "wall_s": wall,
                      "audio_s": res.report["build"]["audio_s"],
                      "n_segments": sum(len(d) for d in res.dataset.values()),
                      "arrow_mb": sum(f.stat().st_size for f in res.path.rglob("*.arrow")) / 2**20}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=120, help="4q-dev clips (first N by id)")
    ap.add_argument("--n-scaling", type=int, default=None,
                    help="clips for the 1-vs-2 worker comparison (default: --n)")
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument("--rss-child", metavar="DIR", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child:
        rss_child(args.rss_child)
        return

    from eno_hf.data.sources import load_recordings

    n_scaling = args.n_scaling or args.n
    print(f"eno ingest benchmark: {args.n} 4q-dev clips, cores={os.cpu_count()}, "
          f"{_load()} (other processes compete for the cores: compare ratios within this run)")
    with tempfile.TemporaryDirectory() as tmp:
        settings = _settings(Path(tmp), args.n, 2)
    recs = sorted(load_recordings(settings.dataset.source).recordings,
                  key=lambda r: r.recording_id)[: args.n]
    paths = [r.path for r in recs]
    warm_up(paths, settings)

    two = run_build(args.n, 2)
    print(_line("full build, 2 workers", two) + f"; {two['n_written']} clips, "
          f"{two['n_segments']} segments")
    naive = timed_naive(paths, settings)
    print(_line("naive librosa loop", naive) + " (1 process; load + mel + loudness only; "
          f"its BLAS/FFT calls used {naive['cpu_s'] / naive['wall_s']:.1f} cores on average)")
    x_build = two["audio_s"] / two["wall_s"]
    x_naive = naive["audio_s"] / naive["wall_s"]
    print(f"ratio build / naive   : {x_build / x_naive:.2f} wall-clock (target >= 3); "
          f"CPU per audio-s: build {two['cpu_s'] / two['audio_s'] / (naive['cpu_s'] / naive['audio_s']):.2f}x "
          "the naive loop's "
          "(the build does strictly more work per file: MFCC, fingerprint, LRA, hashing, "
          "Arrow + caches)")
    same = run_build(args.n, 1, ["dataset.features.mfcc=false", "dataset.features.fingerprint=false",
                                 "dataset.features.waveform=false"])
    print(_line("build, naive's work", same) + " (1 worker, log-mel only, plus hashing, "
          "caches, LRA, splits, Arrow, QC)")
    print(f"like-for-like ratio   : {same['audio_s'] / same['wall_s'] / x_naive:.2f} wall-clock, "
          f"{naive['cpu_s'] / naive['audio_s'] / (same['cpu_s'] / same['audio_s']):.2f} by CPU")

    two_s = two if n_scaling == args.n else run_build(n_scaling, 2)
    one = run_build(n_scaling, 1)
    print(_line("full build, 1 worker", one))
    x1 = one["audio_s"] / one["wall_s"]
    x2 = two_s["audio_s"] / two_s["wall_s"]
    print(f"scaling ({n_scaling} clips)  : 1 worker {x1:.1f}x, 2 workers {x2:.1f}x real time, "
          f"speed-up {one['wall_s'] / two_s['wall_s']:.2f} (target >= 1.7; needs 2 idle cores)")

    if args.skip_rss or not OPUS.is_file():
        print("peak RSS: skipped" + ("" if OPUS.is_file() else f" ({OPUS} absent)"))
        return
    with tempfile.TemporaryDirectory(prefix="eno-bench-rss-") as tmp:
        proc = subprocess.run([sys.executable, __file__, "--rss-child", tmp], capture_output=True,
                              text=True, cwd=PROJECT_ROOT)
        if proc.returncode != 0:
            print("peak RSS: child failed:\n" + proc.stderr[-2000:])
            return
        r = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"594-s opus build      : peak RSS {r['peak_mb']:.0f} MB, {r['above_baseline_mb']:.0f} MB "
          f"above the post-import RSS ({r['baseline_mb']:.0f} MB); {r['n_segments']} segments, "
          f"{r['arrow_mb']:.0f} MB of Arrow, {r['audio_s'] / r['wall_s']:.1f}x real time")


if __name__ == "__main__":
    main()
