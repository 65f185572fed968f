"""eno at the size of a 300k-album collection, by simulation (prints figures, never asserts).

    .venv/bin/python benchmarks/scale.py --sizes 3k,30k,300k          # metadata stages
    .venv/bin/python benchmarks/scale.py --audio 1k,5k,20k --dask     # eno build end to end

**Metadata** (``--sizes``, in albums; ~10 tracks each): per size, a RYM-style JSON dump
(``benchmarks/synthetic_collection.make_dump``: Zipf-like labels over ~1,200 descriptors and ~300
genres, ~3 albums per artist, 0.1 % of the albums broken (``--broken-fraction``), every track
pointing at one of 20 real 4Q clips copied once into the work dir) is generated (not timed), then a fresh subprocess times, with the library functions
``eno_hf.data.build.build_dataset`` calls, in its order:

``ingest``   ``eno_hf.data.sources.load_recordings`` (adapter + ``finalize``: ids, files);
``labels``   ``clean_labels`` and the build's sort by id;
``matrix``   ``label_matrix`` over all label tasks (the split's stratification input);
``version``  content hashes of the distinct audio files (the pool; no hash cache) and
             ``compute_version`` over every recording with the build's metadata fingerprint;
``split``    ``assign_splits`` (+ ``assign_folds`` with ``--k-folds`` > 1), grouped by artist;
``qc``       the QC report over every recording (``make_qc_report``) and its writing.

Per stage it prints wall s, CPU s (user + system of the process, all threads), peak RSS so far
(``ru_maxrss``), RSS now, and rows/s (recordings + rejected rows per wall second). Then a table
across sizes with the growth exponent (log-log slope of wall time between consecutive sizes) and
the projection to 300k albums: the largest measured size scaled by the last exponent (measured
directly when 300k ran). A size runs in its own process under ``--timeout-s`` and a memory guard
(``--max-rss-gb``, the child is killed above it): a stage that did not finish is reported so.
Split quality (on ``--quality-size``): per label with >= 20 rows (and >= 200), its share of rows
in each split minus the split's fraction; max and mean absolute deviation over labels and splits,
and the share of label-split cells more than 5 points off; the same over groups (what grouped
stratification balances), and all of it for a seeded random split of the groups, for scale. ``--code-root DIR`` runs the stages on another
checkout of eno (e.g. a ``git worktree`` of an older commit under /tmp) for a before/after.

**Audio** (``--audio``, in files): per size, ``make_audio`` writes that many distinct 10-s
excerpts (``--excerpt-s``) of the 4Q clips and long-form tracks (16 kHz mono FLAC, reused when
present under ``--work-dir``), then ``eno build --config small`` (4Q source mapping pointed at the
CSV) runs in a subprocess on a fresh data root with ``--workers`` processes. Printed: wall, CPU
(the process tree, from ``wait4``; a psutil sum per process as a cross-check), files/s, audio-s
per CPU-s, peak RSS of the parent, of the largest worker and of the whole tree (psutil sampled
every 0.2 s), the build's own phase times, and the growth exponent of wall time. ``--dask`` then
builds the largest size (or ``--dask-size``) again through the Prefect flow ``eno-build`` with
``run.task_runner=dask`` (a LocalCluster of ``--workers`` single-threaded processes) on another
fresh data root: the same dataset version as the plain build is checked, and the scheduler
overhead is (dask CPU - plain CPU) / plain CPU (``eno build`` itself ignores ``run.task_runner``:
only the flows use it).
Projection: hours for 3M tracks from the marginal CPU s per file between the two largest sizes
(start-up left out; 2 and N cores, work split evenly), and for 12,000 h of audio from the
audio-s per CPU-s that gives.

Work files (dumps, excerpts, data roots) live under ``--work-dir`` (default
``/tmp/eno-scale``), never in the repository; generated dumps and audio are reused across runs.
``--json FILE`` also writes every figure as JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PROJECT_ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from synthetic_collection import log_slope, make_audio, make_dump, make_pool  # noqa: E402

STAGES = ("ingest", "labels", "matrix", "version", "split", "qc")
TARGET_ALBUMS = 300_000
TARGET_TRACKS = 3_000_000
TARGET_AUDIO_H = 12_000


def parse_size(text: str) -> int:
    """``"3k"`` -> 3000, ``"1.5M"`` -> 1500000, ``"200"`` -> 200."""
    t = text.strip().lower()
    mult = {"k": 1_000, "m": 1_000_000}.get(t[-1:], 1)
    return int(float(t[:-1] if mult > 1 else t) * mult)


def _rss_now_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# ----------------------------------------------------------------------------- metadata child
def _emit(obj: dict[str, Any]) -> None:
    print("@@" + json.dumps(obj), flush=True)


def _deviations(counts: Any, fractions: Any, least: int) -> dict[str, Any]:
    """Max/mean |share - fraction| over labels with >= ``least`` members; ``counts`` (splits, labels)."""
    import numpy as np

    total = counts.sum(axis=0)
    keep = total >= least
    dev = np.abs(counts[:, keep] / total[keep] - fractions[:, None])
    return {"n_labels": int(keep.sum()),
            "max_abs_dev": round(float(dev.max()), 4) if dev.size else None,
            "mean_abs_dev": round(float(dev.mean()), 4) if dev.size else None,
            "cells_over_5pt": round(float((dev > 0.05).mean()), 4) if dev.size else None}


def _split_quality(split_of: list[str], y: Any, groups: list[str], fractions: dict[str, float],
                   seed: int, min_rows: int = 20) -> dict[str, Any]:
    """Label balance of a split: per label (column of ``y``, dense or scipy sparse, rows =
    recordings), its share of rows in each split minus the split's fraction, over labels with >=
    ``min_rows`` (and 10x that) rows; the same over groups (share of the groups holding the label:
    what grouped iterative stratification balances); and, for scale, the same measures for a
    random split of the groups by the fractions (seeded)."""
    import numpy as np
    import scipy.sparse as sp

    names = [s for s, f in fractions.items() if f > 0]
    fr = np.array([fractions[s] for s in names])
    y = sp.csr_matrix(y)
    keys, member = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    g_of_row = sp.csr_matrix((np.ones(len(member)), (member, np.arange(len(member)))),
                             shape=(len(keys), len(member)))
    yg = (g_of_row @ y) > 0  # (groups, labels): the group holds the label
    split_arr = np.asarray(split_of)
    split_of_group = np.empty(len(keys), dtype=object)
    split_of_group[member] = split_arr

    def measures(row_split: Any, group_split: Any) -> dict[str, Any]:
        rc = np.vstack([np.asarray(y[row_split == s].sum(axis=0)).ravel() for s in names]).astype(float)
        gc = np.vstack([np.asarray(yg[group_split == s].sum(axis=0)).ravel() for s in names]).astype(float)
        return {"row_share": {s: round(float((row_split == s).mean()), 4) for s in names},
                f"rows>={min_rows}": _deviations(rc, fr, min_rows),
                f"rows>={10 * min_rows}": _deviations(rc, fr, 10 * min_rows),
                f"groups>={min_rows}": _deviations(gc, fr, min_rows)}

    rng = np.random.default_rng(seed)
    rand_group = rng.choice(np.array(names, dtype=object), size=len(keys), p=fr)
    return {"eno": measures(split_arr, split_of_group),
            "random_groups": measures(rand_group[member], rand_group)}


def metadata_child(info_path: Path, k_folds: int, quality: bool, qc_dir: Path) -> None:
    """Time the build's metadata stages on one dump; one ``@@{json}`` line per stage on stdout."""
    import gc

    info = json.loads(info_path.read_text())
    import eno_hf  # noqa: F401
    from eno_hf.config import load_config

    overrides = list(info["overrides"]) + [f"dataset.split.k_folds={k_folds}", "dataset.name=scale"]
    settings = load_config("base", overrides)
    cfg = settings.dataset
    _emit({"event": "start", "eno_hf": str(Path(eno_hf.__file__).resolve().parent),
           "rss_mb": round(_rss_now_mb(), 1)})
    state: dict[str, Any] = {}

    def stage(name: str, fn, rows_of) -> None:
        gc.collect()
        c0, t0 = _cpu_self(), time.perf_counter()
        fn(state)
        wall, cpu = time.perf_counter() - t0, _cpu_self() - c0
        rows = rows_of(state)
        _emit({"event": "stage", "stage": name, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
               "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
               "rss_mb": round(_rss_now_mb(), 1), "rows": rows,
               "rows_per_s": round(rows / wall, 1) if wall > 0 else None})

    def ingest(st):
        from eno_hf.data.sources import load_recordings
        st["source"] = load_recordings(cfg.source)

    def labels(st):
        import inspect

        from eno_hf.data.labels import clean_labels
        kw = {"in_place": True} if "in_place" in inspect.signature(clean_labels).parameters else {}
        st["labels"] = clean_labels(st["source"].recordings, cfg.labels, **kw)  # as the build calls it
        st["recs"] = sorted(st["labels"].recordings, key=lambda r: r.recording_id)
        st["rejected"] = [dict(r) for r in st["source"].rejected]
        del st["source"]

    def matrix(st):
        from eno_hf.data.labels import label_matrix
        vocab = st["labels"].vocab
        tasks = cfg.split.stratify_on or sorted(vocab)
        st["y"] = label_matrix(st["recs"], vocab, [t for t in tasks if t in vocab])

    def version(st):
        import eno_hf.data.build as build
        from eno_hf.data.workers import hash_files

        recs, rejected, vocab = st["recs"], st["rejected"], st["labels"].vocab
        by_path = hash_files(sorted({str(r.path) for r in recs}), max(1, cfg.num_workers))
        hashes = {r.recording_id: by_path[str(r.path)] for r in recs}
        if hasattr(build, "dataset_version"):  # the build's own function (row-by-row hashing)
            st["version"] = build.dataset_version(cfg, hashes, recs, rejected, vocab)
            return
        from eno_hf.data.version import compute_version  # older checkouts: the build's call, inlined
        from eno_hf.features import FEATURE_DEFINITIONS_VERSION

        st["version"] = compute_version(hashes.items(), cfg, {
            "recordings": build._metadata_fingerprint(recs),
            "feature_definitions": FEATURE_DEFINITIONS_VERSION, "vocab": vocab,
            "source_rejected": sorted(json.dumps(r, sort_keys=True, default=str)
                                      for r in rejected if build._versioned(r))})

    def split(st):
        from eno_hf.data.splits import assign_folds, assign_splits
        recs, y = st["recs"], st["y"]
        groups = [r.group if r.group is not None else r.recording_id for r in recs]
        st["split_of"] = assign_splits(groups, y, cfg.split, dataset=cfg.name)
        if cfg.split.k_folds > 1:
            tv = [i for i, s in enumerate(st["split_of"]) if s != "test"]
            st["folds"] = assign_folds([groups[i] for i in tv], y[tv], cfg.split.k_folds,
                                       cfg.split.seed, dataset=cfg.name)

    def qc_inputs(st):  # not timed: what the build's processing stage leaves (3 segments per file)
        from types import SimpleNamespace
        stats = {"lufs_before": -14.0, "lufs_after": -18.0, "gain_db": -4.0, "peak_after_dbfs": -1.5,
                 "clipping_prevented": False, "duration_s": 30.0}
        st["outcomes"] = {r.recording_id: {"n_segments": 3, "stats": stats} for r in st["recs"]}
        st["jobs"] = [SimpleNamespace(recording=r) for r in st["recs"]]

    def qc(st):
        import eno_hf.data.build as build
        import eno_hf.data.qc as qcmod
        recs, vocab, outcomes = st["recs"], st["labels"].vocab, st["outcomes"]
        ml = sorted({t for r in recs[:1000] for t in r.multilabel})
        jobs_of: dict[str, list[Any]] = {s: [] for s in ("train", "validation", "test")}
        for job, s in zip(st["jobs"], st["split_of"]):
            jobs_of[s].append(job)
        if hasattr(build, "_SplitRecords"):  # entries made when read, as the build does
            split_records: dict[str, Any] = {s: build._SplitRecords(js, outcomes, ml, [])
                                             for s, js in jobs_of.items()}
        else:  # older checkouts: one dict per recording
            split_records = {s: [{"recording_id": j.recording.recording_id,
                                  "group": j.recording.group or j.recording.recording_id,
                                  "n_segments": outcomes[j.recording.recording_id]["n_segments"],
                                  "labels": {t: j.recording.multilabel.get(t, []) for t in ml}} for j in js]
                             for s, js in jobs_of.items()}
        cond = [outcomes[r.recording_id]["stats"] for r in recs]
        tasks = {t: ("multilabel", vocab.get(t, [])) for t in ml}
        common = dict(dataset=cfg.name, version=st["version"], n_inputs=len(recs) + len(st["rejected"]),
                      rejected=st["rejected"], split_recordings=split_records, tasks=tasks,
                      non_finite={}, conditioning=cond)
        qc_dir.mkdir(parents=True, exist_ok=True)
        if hasattr(qcmod, "write_qc_rows"):  # summary + one streamed row per input
            qcmod.write_qc_rows(qc_dir / qcmod.QC_ROWS_NAME, (
                {"recording_id": rec.recording_id, "split": s,
                 "n_segments": outcomes[rec.recording_id]["n_segments"]}
                for rec, s in zip(recs, st["split_of"])), st["rejected"])
            report = qcmod.make_qc_report(n_written=len(recs), **common)
        else:  # older checkouts: every written recording inside qc_report.json
            report = qcmod.make_qc_report(written=[{"recording_id": rec.recording_id, "n_segments": 3,
                                                    "split": s} for rec, s in zip(recs, st["split_of"])],
                                          **common)
        qcmod.write_qc_report(report, qc_dir / "qc_report.json")
        st["qc_ok"] = report["accounting"]["invariant_holds"]

    n_rows = lambda st: len(st.get("recs", st.get("source").recordings if "source" in st else [])) \
        + len(st.get("rejected", st["source"].rejected if "source" in st else []))  # noqa: E731
    stage("ingest", ingest, n_rows)
    _emit({"event": "counts", "recordings": len(state["source"].recordings),
           "rejected": len(state["source"].rejected), "expected_recordings": info["n_valid"]})
    for name, fn in (("labels", labels), ("matrix", matrix), ("version", version), ("split", split)):
        stage(name, fn, n_rows)
    qc_inputs(state)
    stage("qc", qc, n_rows)
    y = state["y"]
    import hashlib

    split_sha = hashlib.sha256("\n".join(f"{r.recording_id} {s}" for r, s in
                                         zip(state["recs"], state["split_of"])).encode()).hexdigest()[:16]
    _emit({"event": "done", "version": state["version"], "qc_invariant": state["qc_ok"],
           "split_sha256": split_sha,
           "matrix": {"shape": list(y.shape), "type": type(y).__name__,
                      "mb": round(_nbytes(y) / 2**20, 1)},
           "n_labels": {t: len(v) for t, v in state["labels"].vocab.items()}})
    if quality:
        fr = {"train": cfg.split.train, "validation": cfg.split.validation, "test": cfg.split.test}
        groups = [r.group if r.group is not None else r.recording_id for r in state["recs"]]
        _emit({"event": "quality", **_split_quality(state["split_of"], y, groups, fr, cfg.split.seed)})


def _nbytes(y: Any) -> int:
    if hasattr(y, "nbytes"):
        return int(y.nbytes)
    return int(sum(getattr(y, a).nbytes for a in ("data", "indices", "indptr") if hasattr(y, a)))


# ----------------------------------------------------------------------------- metadata parent
def _dump_for(work: Path, n_albums: int, seed: int, broken_fraction: float) -> Path:
    """Generate (or reuse) the dump of ``n_albums``; returns its ``.info.json`` sidecar."""
    pool_root = work / "pool-root"
    pool = make_pool(pool_root, 20)
    dump = work / "dumps" / f"albums-{n_albums}-seed{seed}-broken{broken_fraction:g}.json"
    info_path = dump.with_suffix(".info.json")
    if info_path.is_file() and dump.is_file():
        return info_path
    t0 = time.perf_counter()
    info = make_dump(dump, n_albums, seed=seed, pool=pool, audio_root=pool_root, broken_fraction=broken_fraction)
    print(f"  generated {dump} ({info.n_tracks:,} tracks, {dump.stat().st_size / 2**20:.0f} MB) in "
          f"{time.perf_counter() - t0:.1f} s (not timed)", flush=True)
    info_path.write_text(json.dumps({"overrides": info.source_overrides(), "n_albums": info.n_albums,
                                     "n_tracks": info.n_tracks, "n_valid": info.n_valid,
                                     "n_groups": info.n_groups}))
    return info_path


class TreeSampler(threading.Thread):
    """Samples the RSS of a process and its descendants every ``interval`` s (psutil)."""

    def __init__(self, pid: int, interval: float = 0.2, kill_above_mb: float | None = None) -> None:
        super().__init__(daemon=True)
        import psutil

        self.proc = psutil.Process(pid)
        self.cmdline = self.proc.cmdline()
        self.interval, self.kill_above_mb = interval, kill_above_mb
        self.peak_parent_mb = self.peak_child_mb = self.peak_tree_mb = 0.0
        self.n_children_max = 0
        self.cpu_of: dict[int, float] = {}  # last CPU s seen per process (a cross-check of wait4)
        self.role_of: dict[int, str] = {}  # what each process is (``_role``), for the CPU breakdown
        self.killed = False
        self._halt = threading.Event()

    def run(self) -> None:
        import psutil

        while not self._halt.is_set():
            try:
                parent = self.proc.memory_info().rss / 2**20
                t = self.proc.cpu_times()
                self.cpu_of[self.proc.pid] = t.user + t.system
                kids = []
                for c in self.proc.children(recursive=True):
                    try:
                        kids.append(c.memory_info().rss / 2**20)
                        t = c.cpu_times()
                        self.cpu_of[c.pid] = t.user + t.system
                        if c.pid not in self.role_of:
                            cmd = c.cmdline()
                            self.role_of[c.pid] = "forked worker" if cmd == self.cmdline else _role(cmd)
                    except psutil.Error:
                        pass
            except psutil.Error:
                break
            self.peak_parent_mb = max(self.peak_parent_mb, parent)
            self.peak_child_mb = max([self.peak_child_mb, *kids])
            self.peak_tree_mb = max(self.peak_tree_mb, parent + sum(kids))
            self.n_children_max = max(self.n_children_max, len(kids))
            if self.kill_above_mb and parent + sum(kids) > self.kill_above_mb:
                self.killed = True
                for c in self.proc.children(recursive=True):
                    c.kill()
                self.proc.kill()
                break
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


def _role(cmdline: list[str]) -> str:
    """A short name for a child process of a build from its command line: the Prefect API server,
    a process spawned by multiprocessing (a Dask worker), or the program's name (a forked pool
    worker, whose command line is its parent's, is named by the caller)."""
    text = " ".join(cmdline)
    if "uvicorn" in text or "prefect" in text and "server" in text:
        return "prefect server"
    if "multiprocessing" in text and "spawn" in text or "forkserver" in text:
        return "spawned worker"
    if "resource_tracker" in text:
        return "resource tracker"
    return Path(cmdline[0]).name if cmdline else "?"


def _wait4(proc: subprocess.Popen, timeout_s: float) -> tuple[int, float, bool]:
    """Wait for ``proc`` (kill it after ``timeout_s``); (returncode, CPU s of it and its waited-for
    descendants, timed_out)."""
    timer = threading.Timer(timeout_s, proc.kill)
    timer.start()
    try:
        _, status, ru = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    timed_out = proc.returncode == -9
    return proc.returncode, ru.ru_utime + ru.ru_stime, timed_out


def run_metadata_size(work: Path, n_albums: int, args: argparse.Namespace, quality: bool) -> dict[str, Any]:
    info_path = _dump_for(work, n_albums, args.seed, args.broken_fraction)
    info = json.loads(info_path.read_text())
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child-metadata", str(info_path),
           "--k-folds", str(args.k_folds), "--qc-dir", str(work / "qc" / f"{n_albums}")]
    if quality:
        cmd.append("--quality")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    if args.code_root:
        env["PYTHONPATH"] = str(Path(args.code_root).resolve())
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=args.code_root or PROJECT_ROOT)
    sampler = TreeSampler(proc.pid, 0.5, args.max_rss_gb * 1024)
    sampler.start()
    result: dict[str, Any] = {"n_albums": n_albums, "n_tracks": info["n_tracks"], "n_groups": info["n_groups"],
                              "stages": {}}
    err_lines: list[str] = []
    threading.Thread(target=lambda: err_lines.extend(proc.stderr), daemon=True).start()
    timer = threading.Timer(args.timeout_s, proc.kill)
    timer.start()
    t0 = time.perf_counter()
    for line in proc.stdout:
        if not line.startswith("@@"):
            continue
        ev = json.loads(line[2:])
        if ev["event"] == "stage":
            result["stages"][ev["stage"]] = ev
            print(f"  {n_albums:>8,} albums  {ev['stage']:<8} wall {ev['wall_s']:>8.2f} s  cpu {ev['cpu_s']:>8.2f} s  "
                  f"peak RSS {ev['peak_rss_mb']:>8.0f} MB  RSS now {ev['rss_mb']:>8.0f} MB  "
                  f"{ev['rows_per_s'] or 0:>10,.0f} rows/s", flush=True)
        elif ev["event"] == "start":
            result["eno_hf"] = ev["eno_hf"]
        else:
            result[ev["event"]] = {k: v for k, v in ev.items() if k != "event"}
    proc.wait()
    timer.cancel()
    sampler.stop()
    result["total_wall_s"] = round(time.perf_counter() - t0, 1)
    result["returncode"] = proc.returncode
    if sampler.killed:
        result["stopped"] = f"killed: RSS above {args.max_rss_gb} GB"
    elif proc.returncode == -9:
        result["stopped"] = f"killed: over {args.timeout_s} s"
    elif proc.returncode != 0:
        result["stopped"] = "failed: " + "".join(err_lines[-5:]).strip()[-600:]
    if "done" in result:
        d = result["done"]
        c = result["counts"]
        print(f"  {n_albums:>8,} albums  {c['recordings']:,} recordings "
              f"({'as expected' if c['recordings'] == c['expected_recordings'] else 'EXPECTED ' + str(c['expected_recordings'])}), "
              f"{result['counts']['rejected']:,} rejected; label matrix {d['matrix']['type']} "
              f"{d['matrix']['shape']} {d['matrix']['mb']} MB; version {d['version']}; split digest "
              f"{d['split_sha256']}; QC invariant {d['qc_invariant']}", flush=True)
    missing = [s for s in STAGES if s not in result["stages"]]
    if missing:
        result["not_finished"] = missing
        print(f"  {n_albums:>8,} albums  did not finish {missing[0]} ({result.get('stopped')})", flush=True)
    return result


def metadata_table(results: list[dict[str, Any]], key: str = "wall_s") -> dict[str, Any]:
    """Print the cross-size table of ``key`` (``wall_s`` or ``cpu_s``) per stage with the growth
    exponent and the projection to 300k albums (the largest measured size scaled by the last
    exponent, at least 1: a smaller slope between two sizes is start-up cost or noise, not
    sub-linear growth). Returns the projection in seconds per stage."""
    sizes = [r["n_albums"] for r in results]
    print(f"\n{key[:-2]} s per stage (^ = log-log slope from the previous size)")
    print(f"  {'stage':<8}" + "".join(f"{s:>20,}" for s in sizes) + f"{'300k proj.':>14}")
    projection: dict[str, Any] = {}
    for stage in (*STAGES, "total"):
        cells, prev, last = [], None, None
        for r in results:
            if stage == "total":
                w = sum(r["stages"][s][key] for s in STAGES) if not r.get("not_finished") else None
            else:
                w = r["stages"].get(stage, {}).get(key)
            slope = log_slope(prev[0], prev[1], r["n_albums"], w) if prev and w else None
            cells.append(f"{w:>10.2f}" + (f" (^{slope:4.2f})" if slope is not None else " " * 8)
                         if w is not None else f"{'—':>18}")
            if w is not None:
                last = (r["n_albums"], w, slope)
            prev = (r["n_albums"], w) if w else None
        proj = None
        if last:
            n, w, slope = last
            proj = w if n == TARGET_ALBUMS else w * (TARGET_ALBUMS / n) ** max(slope if slope is not None else 1.0, 1.0)
        projection[stage] = round(proj, 1) if proj is not None else None
        print(f"  {stage:<8}" + "".join(f"{c:>20}" for c in cells)
              + (f"{proj:>13.0f}s" if proj is not None else f"{'—':>14}"))
    if key == "wall_s":
        peak = [max((s["peak_rss_mb"] for s in r["stages"].values()), default=0) for r in results]
        print(f"  {'peak RSS':<8}" + "".join(f"{p:>17,.0f} MB" for p in peak))
    return projection


# ----------------------------------------------------------------------------- audio
def _run_build(cmd: list[str], env: dict[str, str], log: Path, timeout_s: float) -> dict[str, Any]:
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=fh, text=True, env=env, cwd=PROJECT_ROOT)
        sampler = TreeSampler(proc.pid, 0.2)
        sampler.start()
        out_lines: list[str] = []
        reader = threading.Thread(target=lambda: out_lines.extend(proc.stdout), daemon=True)
        reader.start()
        rc, cpu, timed_out = _wait4(proc, timeout_s)
        reader.join(timeout=5)
        sampler.stop()
    wall = time.perf_counter() - t0
    last = next((ln for ln in reversed(out_lines) if ln.strip().startswith("{")), "{}")
    return {"rc": rc, "timed_out": timed_out, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "peak_parent_mb": round(sampler.peak_parent_mb), "peak_worker_mb": round(sampler.peak_child_mb),
            "peak_tree_mb": round(sampler.peak_tree_mb), "max_processes": sampler.n_children_max + 1,
            "cpu_sampled_s": round(sum(sampler.cpu_of.values()), 1), "n_processes_seen": len(sampler.cpu_of),
            "cpu_by_role": _cpu_by_role(sampler, proc.pid),
            "json": json.loads(last), "log": str(log)}


def _cpu_by_role(sampler: TreeSampler, root_pid: int) -> dict[str, float]:
    """CPU s per kind of process (the last sample of each; ``main`` is the build's own process)."""
    out: dict[str, float] = {}
    for pid, cpu in sampler.cpu_of.items():
        role = "main" if pid == root_pid else sampler.role_of.get(pid, "?")
        out[role] = round(out.get(role, 0.0) + cpu, 1)
    return out


def _qc_build(path: str) -> dict[str, Any]:
    rep = json.loads((Path(path) / "qc_report.json").read_text())
    return {"n_written": rep["accounting"]["n_written"], "n_rejected": rep["accounting"]["n_rejected"],
            "rejected_by_reason": rep.get("rejected_by_reason"), "build": rep.get("build")}


DASK_SCRIPT = r"""
import json, sys
from eno_hf.flows.build import eno_build
res = eno_build(sys.argv[1], json.loads(sys.argv[2]))
print(json.dumps({"dataset": res["path"], "version": res["version"], "cache_hit": res["cache_hit"]}))
"""


def run_audio(work: Path, sizes: list[int], args: argparse.Namespace) -> dict[str, Any]:
    env = {**os.environ, "PREFECT_HOME": str(work / "prefect"), "PREFECT_LOGGING_LEVEL": "WARNING",
           "ENO_PROGRESS": "0"}
    env.pop("PREFECT_API_URL", None)
    out: dict[str, Any] = {"sizes": []}
    for n in sizes:
        t0 = time.perf_counter()
        aset = make_audio(work / f"audio-{n}-{args.excerpt_s:g}s", n, seed=args.seed, excerpt_s=args.excerpt_s)
        print(f"  {n:,} files ready under {aset.audio_root} ({aset.n_sources} sources) in "
              f"{time.perf_counter() - t0:.0f} s (not timed)", flush=True)
        root = work / f"data-{n}-pool{args.workers}-{int(time.time())}"
        ov = [*aset.overrides(), f"paths.data_root={root}", f"dataset.num_workers={args.workers}"]
        cmd = [sys.executable, "-m", "eno_hf.cli", "-q", "build", "--config", "small", "--json"]
        for o in ov:
            cmd += ["--set", o]
        r = _run_build(cmd, env, work / f"build-{n}.log", args.timeout_s)
        r.update(n_files=n, audio_s=n * args.excerpt_s)
        if r["json"].get("dataset"):
            r["qc"] = _qc_build(r["json"]["dataset"])
        out["sizes"].append(r)
        _print_audio(r)
    for prev, cur in zip(out["sizes"], out["sizes"][1:]):
        cur["wall_exponent"] = log_slope(prev["n_files"], prev["wall_s"], cur["n_files"], cur["wall_s"])
    if args.dask and out["sizes"]:
        want = parse_size(args.dask_size) if args.dask_size else out["sizes"][-1]["n_files"]
        plain = next((r for r in out["sizes"] if r["n_files"] == want), out["sizes"][-1])
        n = plain["n_files"]
        aset = make_audio(work / f"audio-{n}-{args.excerpt_s:g}s", n, seed=args.seed, excerpt_s=args.excerpt_s)
        root = work / f"data-{n}-dask{args.workers}-{int(time.time())}"
        ov = [*aset.overrides(), f"paths.data_root={root}", f"dataset.num_workers={args.workers}",
              "run.task_runner=dask", f"run.dask_workers={args.workers}"]
        r = _run_build([sys.executable, "-c", DASK_SCRIPT, "small", json.dumps(ov)], env,
                       work / f"build-{n}-dask.log", args.timeout_s)
        r.update(n_files=n, audio_s=n * args.excerpt_s, runner="dask")
        if r["json"].get("dataset"):
            r["qc"] = _qc_build(r["json"]["dataset"])
        r["same_version"] = r["json"].get("version") == plain["json"].get("version")
        r["cpu_overhead"] = round((r["cpu_s"] - plain["cpu_s"]) / plain["cpu_s"], 4) if plain["cpu_s"] else None
        out["dask"] = r
        _print_audio(r)
        print(f"  dask vs plain: version {r['json'].get('version')} vs {plain['json'].get('version')} "
              f"({'same' if r['same_version'] else 'DIFFERENT'}); CPU overhead "
              f"{100 * (r['cpu_overhead'] or 0):+.1f} % (target < 5 %); wall {r['wall_s']} s vs {plain['wall_s']} s",
              flush=True)
    ok = [r for r in out["sizes"] if r["rc"] in (0, 1) and not r["timed_out"]]
    if ok:
        big = ok[-1]
        cpu_per_file = big["cpu_s"] / big["n_files"]
        if len(ok) > 1:  # marginal cost between the two largest sizes: start-up (imports, pool) left out
            a = ok[-2]
            cpu_per_file = (big["cpu_s"] - a["cpu_s"]) / (big["n_files"] - a["n_files"])
        rt_per_core = args.excerpt_s / cpu_per_file
        proj = {"from": [r["n_files"] for r in ok[-2:]], "cpu_s_per_file": round(cpu_per_file, 4),
                "audio_s_per_cpu_s": round(rt_per_core, 2),
                "hours_3M_tracks": {str(c): round(TARGET_TRACKS * cpu_per_file / c / 3600, 1) for c in (2, 16, 64)},
                "hours_12000h_audio": {str(c): round(TARGET_AUDIO_H * 3600 / rt_per_core / c / 3600, 1)
                                       for c in (2, 16, 64)},
                "hours_3M_tracks_wall_2_workers": round(TARGET_TRACKS / (big["n_files"] / big["wall_s"]) / 3600, 1)}
        out["projection"] = proj
        print(f"\nprojection (from {proj['from']} files, {cpu_per_file * 1000:.0f} ms CPU per {args.excerpt_s:g}-s file, "
              f"{rt_per_core:.1f} audio-s per CPU-s):")
        print(f"  3M such files: {proj['hours_3M_tracks']} h on N cores (CPU-bound, even split); "
              f"{proj['hours_3M_tracks_wall_2_workers']} h at the measured 2-worker wall rate")
        print(f"  12,000 h of audio at the same real-time factor: {proj['hours_12000h_audio']} h on N cores")
    return out


def _print_audio(r: dict[str, Any]) -> None:
    label = r.get("runner", f"pool x{args_workers()}")
    fps = r["n_files"] / r["wall_s"] if r["wall_s"] else 0
    exp = r.get("wall_exponent")
    print(f"  {r['n_files']:>7,} files [{label}] rc {r['rc']}{' TIMEOUT' if r['timed_out'] else ''}: "
          f"wall {r['wall_s']:.0f} s, CPU {r['cpu_s']:.0f} s, {fps:.1f} files/s, "
          f"{r['audio_s'] / r['cpu_s'] if r['cpu_s'] else 0:.1f} audio-s/CPU-s, peak RSS parent "
          f"{r['peak_parent_mb']} MB, worker {r['peak_worker_mb']} MB, tree {r['peak_tree_mb']} MB"
          + (f", exponent {exp:.2f}" if exp else "") + f"; version {r['json'].get('version')}"
          + (f"; written {r['qc']['n_written']}, rejected {r['qc']['rejected_by_reason']}" if r.get("qc") else ""),
          flush=True)
    b = (r.get("qc") or {}).get("build") or {}
    print(f"      CPU sampled over {r['n_processes_seen']} processes: {r['cpu_sampled_s']} s "
          f"({', '.join(f'{k} {v}' for k, v in r.get('cpu_by_role', {}).items())}); build phases (s): "
          + ", ".join(f"{k} {b[k]}" for k in ("load_s", "hash_s", "process_wall_s", "write_s", "wall_s") if k in b),
          flush=True)


def markdown(report: dict[str, Any]) -> str:
    """The figures of ``report`` as markdown tables (for docs/scale.md)."""
    lines: list[str] = []
    meta = report.get("metadata") or []
    if meta:
        lines += ["| albums | tracks | stage | wall s | CPU s | peak RSS MB | RSS after MB | rows/s |",
                  "|---:|---:|---|---:|---:|---:|---:|---:|"]
        for r in meta:
            for stage in STAGES:
                e = r["stages"].get(stage)
                if e is None:
                    lines.append(f"| {r['n_albums']:,} | {r['n_tracks']:,} | {stage} | not reached "
                                 f"({r.get('stopped', '')}) | | | | |")
                    continue
                lines.append(f"| {r['n_albums']:,} | {r['n_tracks']:,} | {stage} | {e['wall_s']:.2f} | "
                             f"{e['cpu_s']:.2f} | {e['peak_rss_mb']:,.0f} | {e['rss_mb']:,.0f} | "
                             f"{e['rows_per_s'] or 0:,.0f} |")
        lines += ["", "| stage | " + " | ".join(f"CPU s {r['n_albums'] // 1000}k (exp.)" for r in meta)
                  + " | 300k projection CPU s |", "|---|" + "---:|" * (len(meta) + 1)]
        proj = report.get("projection_300k_cpu_s") or {}
        for stage in (*STAGES, "total"):
            cells, prev = [], None
            for r in meta:
                w = (sum(r["stages"][s]["cpu_s"] for s in STAGES) if not r.get("not_finished") else None) \
                    if stage == "total" else r["stages"].get(stage, {}).get("cpu_s")
                slope = log_slope(prev[0], prev[1], r["n_albums"], w) if prev and w else None
                cells.append("—" if w is None else f"{w:.2f}" + (f" ({slope:.2f})" if slope is not None else ""))
                prev = (r["n_albums"], w) if w else None
            lines.append(f"| {stage} | " + " | ".join(cells) + f" | {proj.get(stage) or '—'} |")
    audio = report.get("audio") or {}
    rows = list(audio.get("sizes", [])) + ([audio["dask"]] if audio.get("dask") else [])
    if rows:
        lines += ["", "| files | runner | rc | wall s | CPU s | files/s | audio-s per CPU-s | peak RSS parent / "
                  "worker / tree MB | wall exponent | version |", "|---:|---|---:|---:|---:|---:|---:|---|---:|---|"]
        for r in rows:
            exp = r.get("wall_exponent")
            lines.append(f"| {r['n_files']:,} | {r.get('runner', 'pool')} | {r['rc']} | {r['wall_s']:.0f} | "
                         f"{r['cpu_s']:.0f} | {r['n_files'] / r['wall_s']:.1f} | {r['audio_s'] / r['cpu_s']:.0f} | "
                         f"{r['peak_parent_mb']:,} / {r['peak_worker_mb']:,} / {r['peak_tree_mb']:,} | "
                         f"{f'{exp:.2f}' if exp else '—'} | `{r['json'].get('version')}` |")
    return "\n".join(lines) + "\n"


_ARGS: argparse.Namespace | None = None


def args_workers() -> int:
    return _ARGS.workers if _ARGS is not None else 2


def main() -> None:
    global _ARGS
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", help="metadata sizes in albums, e.g. 3k,30k,300k")
    ap.add_argument("--audio", help="audio build sizes in files, e.g. 1k,5k,20k")
    ap.add_argument("--dask", action="store_true", help="also build one audio size with run.task_runner=dask")
    ap.add_argument("--dask-size", help="the --audio size built again with Dask (default: the largest)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--excerpt-s", type=float, default=10.0, help="length of each generated recording")
    ap.add_argument("--work-dir", type=Path, default=Path("/tmp/eno-scale"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--k-folds", type=int, default=0)
    ap.add_argument("--broken-fraction", type=float, default=0.001, help="share of broken albums in the dumps")
    ap.add_argument("--quality-size", default="30k", help="metadata size whose split quality is measured")
    ap.add_argument("--code-root", help="run the metadata stages on this eno checkout (PYTHONPATH)")
    ap.add_argument("--timeout-s", type=float, default=3600.0, help="per size (metadata) / per build (audio)")
    ap.add_argument("--max-rss-gb", type=float, default=16.0, help="metadata child killed above this RSS")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--markdown", type=Path, help="also write the figures as markdown tables here")
    ap.add_argument("--child-metadata", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--qc-dir", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--quality", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    _ARGS = args
    if args.child_metadata:
        return metadata_child(args.child_metadata, args.k_folds, args.quality, args.qc_dir)
    if args.work_dir.resolve().is_relative_to(PROJECT_ROOT):
        ap.error(f"--work-dir must be outside the repository ({PROJECT_ROOT})")
    args.work_dir.mkdir(parents=True, exist_ok=True)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=args.code_root or PROJECT_ROOT,
                          capture_output=True, text=True).stdout.strip()
    report: dict[str, Any] = {"commit": head, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                              "cpus": os.cpu_count(), "code_root": args.code_root or str(PROJECT_ROOT)}
    print(f"eno scale benchmark, commit {head}, {report['date']}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.2f}", flush=True)
    if args.sizes:
        q = parse_size(args.quality_size)
        results = []
        for n in [parse_size(s) for s in args.sizes.split(",")]:
            results.append(run_metadata_size(args.work_dir, n, args, quality=(n == q)))
        report["metadata"] = results
        report["projection_300k_wall_s"] = metadata_table(results, "wall_s")
        report["projection_300k_cpu_s"] = metadata_table(results, "cpu_s")
        for r in results:
            if "quality" in r:
                print(f"\nsplit quality at {r['n_albums']:,} albums (|share - fraction| per label and split)")
                for who, q in r["quality"].items():
                    print(f"  {who}: row shares {q['row_share']}")
                    for k, qd in q.items():
                        if k != "row_share":
                            print(f"    labels with {k}: {qd['n_labels']}, max {qd['max_abs_dev']}, mean "
                                  f"{qd['mean_abs_dev']}, cells > 5 pt off: {qd['cells_over_5pt']}")
    if args.audio:
        report["audio"] = run_audio(args.work_dir, [parse_size(s) for s in args.audio.split(",")], args)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    if args.markdown:
        args.markdown.write_text(markdown(report))


if __name__ == "__main__":
    main()
