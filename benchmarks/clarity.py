"""Clarity model latency: onnxruntime vs scikit-learn per fingerprint, and fingerprint extraction cost.

Prints, in one run, side by side:

- onnxruntime (CPU, 1 intra/inter-op thread, batch 1) latency per fingerprint of the flaw classifier,
  the correction regressor and both in sequence: wall p50 / p99 / mean in ms over ``--runs`` calls
  after ``--warmup`` calls, and p50 / p99 of the calling thread's CPU time per call
  (``time.thread_time``: what a core of one's own would give; on a machine shared with other jobs
  the wall p99 is mostly time spent preempted);
- scikit-learn (``n_jobs=1``, batch 1) ``predict_proba`` + ``predict`` of the same pair;
- fingerprint extraction (``eno_hf.features.fingerprint``) per second of audio on the normalized
  ``processed/`` files of the run (wall and CPU ms per audio second, median over files).

Target: ONNX p99 < 5 ms for the plug-in. Inputs are the real fingerprints of the run's
``features.parquet``. Run after ``eno clarity run``:

    PYTHONPATH=$PWD .venv/bin/python benchmarks/clarity.py [--config configs/clarity.yaml] [--set k=v]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

import eno_hf  # noqa: F401


def _lat(fn, X: np.ndarray, runs: int, warmup: int) -> dict[str, float]:
    for i in range(warmup):
        fn(X[i % len(X): i % len(X) + 1])
    wall, cpu = [], []
    for i in range(runs):
        x = X[i % len(X): i % len(X) + 1]
        c0, t0 = time.thread_time(), time.perf_counter()
        fn(x)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
    w, c = np.asarray(wall) * 1e3, np.asarray(cpu) * 1e3
    return {"p50_ms": float(np.percentile(w, 50)), "p99_ms": float(np.percentile(w, 99)),
            "mean_ms": float(w.mean()), "cpu_p50_ms": float(np.percentile(c, 50)),
            "cpu_p99_ms": float(np.percentile(c, 99)), "runs": runs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="configs/clarity.yaml")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--sklearn-runs", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--files", type=int, default=20, help="processed files timed for extraction")
    args = ap.parse_args()

    import joblib
    import pandas as pd
    import soundfile as sf
    from threadpoolctl import threadpool_limits

    from eno_hf.clarity.export import onnx_session
    from eno_hf.clarity.job import paths
    from eno_hf.config import load_config
    from eno_hf.features.fingerprint import fingerprint

    s = load_config(args.config, args.set)
    p = paths(s)
    cfg = json.loads((p.model_dir / "config.json").read_text())
    frame = pd.read_parquet(cfg["features_parquet"])
    X = np.ascontiguousarray(frame[cfg["feature_columns"]].to_numpy(np.float32))
    sc = onnx_session(p.model_dir / cfg["onnx"]["flaw_classifier"], threads=1)
    sr_ = onnx_session(p.model_dir / cfg["onnx"]["correction_regressor"], threads=1)
    clf = joblib.load(p.sklearn_dir / "classifier.joblib")  # this run's own files
    reg = joblib.load(p.sklearn_dir / "regressor.joblib")
    clf.set_params(n_jobs=1)
    reg.set_params(n_jobs=1)

    rows = {}
    with threadpool_limits(1):
        rows["onnx classifier"] = _lat(lambda x: sc.run(None, {"fingerprint": x}), X, args.runs, args.warmup)
        rows["onnx regressor"] = _lat(lambda x: sr_.run(None, {"fingerprint": x}), X, args.runs, args.warmup)
        rows["onnx both"] = _lat(lambda x: (sc.run(None, {"fingerprint": x}), sr_.run(None, {"fingerprint": x})),
                                 X, args.runs, args.warmup)
        rows["sklearn both"] = _lat(lambda x: (clf.predict_proba(x), reg.predict(x)), X, args.sklearn_runs, 5)

        log = json.loads((p.reports / "normalization_log.json").read_text())
        written = [r for r in log["files"] if r.get("processed") and r["status"] == "normalized"]
        step = max(len(written) // args.files, 1)
        per_s_wall, per_s_cpu, audio = [], [], 0.0
        for r in written[::step][: args.files]:
            y, sr = sf.read(str(p.workdir / r["processed"]), dtype="float32")
            fingerprint(y[: sr], sr)  # warm-up
            t0, c0 = time.perf_counter(), time.process_time()
            fingerprint(y, sr)
            dur = y.shape[0] / sr
            per_s_wall.append((time.perf_counter() - t0) * 1e3 / dur)
            per_s_cpu.append((time.process_time() - c0) * 1e3 / dur)
            audio += dur

    print(f"eno clarity benchmark  ({os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; model "
          f"{p.model_dir}; {len(X)} real fingerprints; RF {clf.n_estimators} trees, depth {clf.max_depth})")
    print(f"{'batch 1, 1 thread':<18}{'wall p50':>10}{'wall p99':>10}{'wall mean':>10}{'CPU p50':>10}"
          f"{'CPU p99':>10}{'runs':>7}   (ms)")
    for name, r in rows.items():
        print(f"{name:<18}{r['p50_ms']:>10.3f}{r['p99_ms']:>10.3f}{r['mean_ms']:>10.3f}{r['cpu_p50_ms']:>10.3f}"
              f"{r['cpu_p99_ms']:>10.3f}{r['runs']:>7}")
    both = rows["onnx both"]
    print(f"ONNX classifier + regressor: wall p99 {both['p99_ms']:.3f} ms "
          f"({'meets' if both['p99_ms'] < 5.0 else 'MISSES'} the 5 ms budget on this machine now), "
          f"thread-CPU p99 {both['cpu_p99_ms']:.3f} ms "
          f"({'meets' if both['cpu_p99_ms'] < 5.0 else 'MISSES'} it on a core of its own)")
    print(f"fingerprint extraction: median {np.median(per_s_wall):.1f} ms wall / "
          f"{np.median(per_s_cpu):.1f} ms CPU per second of audio ({len(per_s_wall)} files, "
          f"{audio:.1f} s of audio at {cfg['sample_rate']} Hz) -- on top of the ONNX call")


if __name__ == "__main__":
    main()
