"""The performance-evaluation job (``eno run`` with ``job: performance``, or a ``performance``
section, e.g. ``configs/percepiano.yaml``): render -> embed -> (select encoder) -> T2/T4 data ->
grouped CV with baselines -> final model -> register -> tag.

The job (``PERFORMANCE``, ``eno_hf.jobs``): stages over a ``PerformanceState``, run in order by
``eno_hf.jobs.run_stages`` through a runner (``run_directly``, or ``prefect_runner`` in the flow
``eno-performance``)::

    inputs          render + embed with every candidate embedder, MIDI statistics   (gpu)
    transcribe      render at 22,050 Hz + transcribe (Basic Pitch): their statistics (cpu)
    select          embedder + tiers of the registered model, chosen on all rows     (gpu)
    cross_validate  grouped CV per protocol (nested selection inside the folds)      (gpu)
    fit             final model + report.json + model card                           (gpu)
    register        local hub (+ ClearML) through eno_hf.registry.register.register_model (io)
    tag             tag ``tag_files`` with the registered model                      (gpu)

Everything slow is cached under ``{data_root}/performance/{name}/``: FluidSynth renderings
(``render/``), frame embeddings per embedder (``embeddings/{key}/``, the ``.pt`` + metadata.jsonl
layout, resumable by shard), degraded/augmented embeddings (``embeddings/{key}-t2``/``-t4``), MIDI
statistics (``midi_statistics.json``), the statistics of the renders' transcriptions
(``transcription_statistics.json``, the MIDI files under ``transcription/``). Reports go to ``{data_root}/performance/{name}/report.json``.
The select, cross_validate (per protocol), fit and register stages leave a marker
``stages/{stage}.json`` (``eno_hf.jobs.write_marker``) keyed by a hash of their inputs (the
performance settings but ``tag_files``/``workers``/``protocols``, the rows, the choices they build on) beside
their result ``stages/{stage}.result.json`` (NaN kept); an unchanged re-run reuses them. The
tag stage always runs (one forward pass per file).

Protocols (``performance.protocols``, ``PerformanceConfig.protocols``): ``piece``-grouped folds
(unseen music, the hardest), ``performer``-grouped folds (unseen players), and the dataset's own
``composition4fold`` (passages held out, 15 % set aside as a test set) and ``performer4fold``
(performers 3-10 held out in pairs, 1-2 set aside); per fold the model (all enabled tiers; with
``ratings_fit="ridge"`` its ratings maps chosen by inner folds of the same grouping) and two
baselines are fit on the training side only: the per-dimension training mean, and a ridge
regression on the MIDI statistics of ``eno_hf.features.midi.midi_statistics`` (z-scored, alpha
chosen by the same inner grouped folds: ``probe.select_ridge``). The model is scored twice: with
the MIDI statistics (``model``, the input a MIDI file gets) and from the embeddings alone
(``model_audio_only``) and, when the ``transcribe`` stage ran, from the embeddings and the
statistics of the render's automatic transcription through ``ridge_transcription``
(``model_audio_transcription``, what ``eno tag`` gives a recording). Out-of-fold predictions of the held-out
performances are pooled; mean R² over the 19 dimensions comes with a 95 % bootstrap interval over
the protocol's groups. A set-aside test set is scored by each fold's model (``set_aside_test``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing as mp
import os
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from eno_hf.audio.midi import render_midi
from eno_hf.audio.transcribe import (TRANSCRIBE_SAMPLE_RATE, TranscriptionSettings, model_id, transcribe_to_file,
                                     unavailable_reason)
from eno_hf.config import Settings
from eno_hf.data.workers import init_worker, reap_orphans
from eno_hf.embeddings.embed import EmbedItem, embed_items_2way
from eno_hf.embeddings.frames import EmbedderSpec, build_frame_embedder, embedding_dim
from eno_hf.errors import RejectedInput
from eno_hf.features.midi import MIDI_STATISTICS, midi_statistics, midi_statistics_matrix
from eno_hf.jobs import FieldState, Job, Stage, StageRunner, read_marker, run_directly, run_stages, write_marker
from eno_hf.performance.augment import augment_waveform
from eno_hf.performance.config import EmbedderConfig, PerformanceConfig, TiersConfig
from eno_hf.performance.data import EmbeddingTable
from eno_hf.performance.degrade import DEGRADATIONS, degrade_midi
from eno_hf.performance.percepiano import DIMENSIONS, PercePianoRow, load_percepiano
from eno_hf.performance.probe import Candidate, candidates, head_candidates, nested_ridge_cv, pooled_blocks
from eno_hf.performance.protocols import protocol_folds
from eno_hf.performance.selection import (TIER_CRITERIA, EmbedderInputs, Selection, build_model_config,
                                          cross_validate, prefix_dim, select_procedure)
from eno_hf.utils.io import atomic_write_json, atomic_write_text, json_hash
from eno_hf.utils.progress import Progress

log = logging.getLogger(__name__)

__all__ = ["PERFORMANCE", "PerformanceRun", "PerformanceState", "build_model_config", "cross_validate",
           "embedder_inputs", "prefix_dim", "run_performance"]

@dataclass
class PerformanceRun:
    """Result of ``run_performance``: ``report`` (all metrics), ``model_dir``, ``registered``, ``tags``."""

    report: dict[str, Any]
    model_dir: Path | None = None
    registered: Path | None = None
    tags: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"metrics": self.report, "model": str(self.model_dir) if self.model_dir else None,
                "registered": str(self.registered) if self.registered else None, "tags": self.tags}


def _spec(e: EmbedderConfig) -> EmbedderSpec:
    return EmbedderSpec(kind=e.kind, name=e.name, features=e.features, path=e.path, hop_s=e.hop_s)


def _items(rows: list[PercePianoRow]) -> list[EmbedItem]:
    return [EmbedItem(segment_id=r.segment_id, path=str(r.midi), size_hint=float(r.midi.stat().st_size),
                      fields={"piece": r.piece, "performer": r.performer, "passage": r.passage}) for r in rows]


def select_rows(cfg: PerformanceConfig) -> list[PercePianoRow]:
    """Rated performances, the ``limit`` shortest (by MIDI size) when ``limit`` is set, in id order."""
    rows = [r for r in load_percepiano(cfg.source) if r.rated]
    if cfg.limit:
        rows = sorted(rows, key=lambda r: (r.midi.stat().st_size, r.segment_id))[: cfg.limit]
    return sorted(rows, key=lambda r: r.segment_id)


def embed_rows(rows: list[PercePianoRow], spec: EmbedderSpec, work: Path, soundfont: str | None = None,
               suffix: str = "", items: list[EmbedItem] | None = None, transform: Any = None,
               workers: int = 1) -> EmbeddingTable:
    """Embed (cached, resumable; render + embed on ``workers`` ≤ 2 processes,
    ``embed_items_2way``) and load the table of ``rows`` (or ``items``)."""
    out = work / "embeddings" / (spec.key + suffix)
    embedder = build_frame_embedder(spec)
    items = items if items is not None else _items(rows)
    markers = out / "shards"
    before = len(list(markers.glob("*.json"))) if markers.is_dir() else 0
    with Progress(None, f"render + embed {spec.key + suffix}", "shard") as bar:
        def progress(_done: int, total: int) -> None:  # finished shards of both processes
            bar.update(min(total, len(list(markers.glob("*.json"))) - before))

        embed_items_2way(items, embedder, out, workers=workers, shard_size=32, render_cache=work / "render",
                         soundfont=soundfont, transform=transform, progress=progress)
    return EmbeddingTable.from_folder(out, [it.segment_id for it in items])


def midi_stats(rows: list[PercePianoRow], work: Path) -> np.ndarray:
    """``(n, len(MIDI_STATISTICS))`` float64 MIDI statistics of ``rows`` (``eno_hf.features.midi``;
    cached in ``midi_statistics.json``; an undefined statistic, NaN, becomes 0)."""
    cache_path = work / "midi_statistics.json"
    cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    if cache.get("__keys__") != list(MIDI_STATISTICS):
        cache = {"__keys__": list(MIDI_STATISTICS)}
    for r in rows:
        if r.segment_id not in cache:
            s = midi_statistics(r.midi)
            cache[r.segment_id] = [None if not np.isfinite(s[k]) else s[k] for k in MIDI_STATISTICS]
    atomic_write_text(cache_path, json.dumps(cache))
    x = np.array([[np.nan if v is None else v for v in cache[r.segment_id]] for r in rows], dtype=np.float64)
    return np.nan_to_num(x.reshape(len(rows), len(MIDI_STATISTICS)))


def _transcribed_statistics(job: tuple[str, str, str, str | None, str]) -> tuple[str, list[float] | None]:
    """``(segment id, MIDI path, soundfont, render cache or None, transcription cache)`` -> ``(id,
    MIDI_STATISTICS values of the transcription of its 22,050-Hz rendering)``, or ``(id, None)``
    when the rendering gives no note (a module-level function: it runs in spawned processes)."""
    sid, midi, soundfont, render_cache, cache = job
    try:
        with tempfile.TemporaryDirectory() as tmp:  # renders at this rate are not kept unless asked
            samples = render_midi(midi, sample_rate=TRANSCRIBE_SAMPLE_RATE, soundfont=soundfont,
                                  cache_dir=render_cache or tmp)
        path = transcribe_to_file(samples, TRANSCRIBE_SAMPLE_RATE, cache=cache, threads=1)
    except RejectedInput:  # no note transcribed (the rows were rendered and embedded before)
        return sid, None
    s = midi_statistics(path)
    return sid, [None if not np.isfinite(s[k]) else float(s[k]) for k in MIDI_STATISTICS]


def transcription_stats(rows: list[PercePianoRow], work: Path, soundfont: str | None, workers: int = 1,
                        render_cache: Path | None = None) -> tuple[np.ndarray, list[str]]:
    """Statistics of automatic transcriptions of ``rows``' renderings: what ``eno tag`` feeds a
    model for a recording.

    Each performance is rendered with FluidSynth (``soundfont``, 22,050 Hz: Basic Pitch's rate;
    kept in ``render_cache`` when given), transcribed (``eno_hf.audio.transcribe.transcribe_to_file``,
    eno's settings, one onnxruntime thread a process, ``workers`` spawned processes when > 1,
    which die with this process even on ``kill -9``;
    MIDI cached under ``{work}/transcription``) and its ``midi_statistics`` computed. The matrix is
    cached in ``{work}/transcription_statistics.json``, keyed by the statistics' names, the
    transcription model and settings, and the soundfont.

    Returns:
        ``(n, len(MIDI_STATISTICS))`` float64 (NaN -> 0; a rendering with no transcribed note ->
        zeros) and the segment ids with no note.

    Raises:
        ImportError: basic-pitch is not installed (``eno_hf.audio.transcribe.unavailable_reason``).
    """
    reason = unavailable_reason()
    if reason is not None:
        raise ImportError(reason)
    cache_path = work / "transcription_statistics.json"
    head = {"keys": list(MIDI_STATISTICS), "model": model_id(), "settings": asdict(TranscriptionSettings()),
            "soundfont": soundfont}
    cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    if cache.get("__head__") != json.loads(json.dumps(head)):
        cache = {"__head__": head}
    todo = [(r.segment_id, str(r.midi), soundfont, None if render_cache is None else str(render_cache),
             str(work / "transcription")) for r in rows if r.segment_id not in cache]
    if todo:
        t0 = time.time()
        with Progress(len(todo), "transcribe renders", "performance") as bar:
            def take(results: Any) -> None:
                for done, (sid, values) in enumerate(results, 1):
                    cache[sid] = values
                    bar.update(done)
                    if done % 50 == 0:  # resumable: a killed run keeps what it did
                        atomic_write_text(cache_path, json.dumps(cache))

            if workers > 1:
                reap_orphans()
                # workers die with this process, even on kill -9 (init_worker)
                with mp.get_context("spawn").Pool(workers, initializer=init_worker, initargs=(os.getpid(),)) as pool:
                    take(pool.imap_unordered(_transcribed_statistics, todo, chunksize=4))
            else:
                take(map(_transcribed_statistics, todo))
        atomic_write_text(cache_path, json.dumps(cache))
        log.info("transcribed %d renders in %.0f s", len(todo), time.time() - t0)
    failed = sorted(r.segment_id for r in rows if cache[r.segment_id] is None)
    x = np.array([[np.nan if v is None else v for v in (cache[r.segment_id] or [0.0] * len(MIDI_STATISTICS))]
                  for r in rows], dtype=np.float64)
    return np.nan_to_num(x.reshape(len(rows), len(MIDI_STATISTICS))), failed


def encoder_blocks(rows: list[PercePianoRow], work: Path, names: list[str], soundfont: str | None = None,
                   only_cached: bool = False, workers: int = 1,
                   loaded: dict[str, EmbeddingTable] | None = None) -> tuple[dict[str, np.ndarray], list[str]]:
    """Pooled feature blocks (``probe.pooled_blocks``) of every encoder in ``names`` for ``rows``
    (``prefix+embedding`` frames, embedded if missing unless ``only_cached``), and the encoders used
    (an encoder missing a row is skipped when ``only_cached``). ``loaded``: encoder name →
    ``prefix+embedding`` table already in memory (covering ``rows``), used instead of the cache."""
    blocks: dict[str, np.ndarray] = {}
    used = []
    for name in names:
        spec = EmbedderSpec(name=name, features="prefix+embedding")
        folder = work / "embeddings" / spec.key
        if name in (loaded or {}):
            tab = loaded[name]
        elif only_cached and not all((folder / "embeddings" / f"{r.segment_id}.pt").is_file() for r in rows):
            log.warning("%s: not every performance is embedded; skipped", spec.key)
            continue
        else:
            tab = embed_rows(rows, spec, work, soundfont, workers=workers)
        tab = tab.subset([tab.index[r.segment_id] for r in rows])
        emb_dim = embedding_dim(EmbedderSpec(name=name, features="embedding"))
        blocks.update(pooled_blocks([t.numpy() for t in tab.tensors], emb_dim, name))
        used.append(name)
    return blocks, used


def probe_cv(rows: list[PercePianoRow], blocks: dict[str, np.ndarray], encoders: list[str], protocol: str,
             n_folds: int = 5, seed: int = 0, n_boot: int = 300, inner_folds: int = 4,
             test_blocks: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Ridge probes in the ``protocol``'s grouped folds (``probe.nested_ridge_cv``): the training
    mean, ridge on MIDI statistics, ridge on each encoder's pooled layers (with and without MIDI
    statistics), the probe whose (encoder, layers, pooling, MIDI weight, alpha) the inner
    grouped CV chose per outer fold, and per encoder the model's own ridge ratings head
    (``head``: ``{encoder}`` = embeddings only, ``{encoder}+midi``; ``probe.head_candidates``).
    Each with mean R² and a 95 % bootstrap interval over groups, pooled over the performances some
    fold holds out (``protocols.protocol_folds``; ``n_evaluated`` of ``n``). ``test_blocks``: blocks
    the held-out performances are predicted from instead (``probe.nested_ridge_cv``), e.g. the MIDI
    statistics of transcriptions while training reads the source MIDI's."""
    from eno_hf.performance.metrics import bootstrap_interval, regression_report

    y = np.stack([r.labels for r in rows]).astype(np.float64)
    pf = protocol_folds(rows, protocol, n_folds, seed)
    key, folds, ev = pf.groups, pf.folds, pf.evaluated
    passages = [r.passage for r in rows]
    fixed = [Candidate(None)]
    for e in encoders:
        fixed += [Candidate(e, "prefix+embedding", "meanstd"), Candidate(e, "prefix+embedding", "meanstd", 1.0)]
    res = nested_ridge_cv(blocks, y, key, folds, candidates(encoders), inner_folds=inner_folds, seed=seed, fixed=fixed,
                          test_blocks=test_blocks)

    def rep(pred: np.ndarray) -> dict[str, Any]:
        r = regression_report(y[ev], pred[ev], [passages[i] for i in ev], DIMENSIONS)
        return {**{k: v for k, v in r.items() if k != "per_dimension"},
                "per_dimension_r2": {d: v["r2"] for d, v in r["per_dimension"].items()},
                "interval": bootstrap_interval(y[ev], pred[ev], [key[i] for i in ev], n_boot, seed)}

    mean_pred = np.zeros_like(y)
    for tr, te in folds:
        mean_pred[te] = y[tr].mean(0)
    out = {"protocol": protocol, "folds": len(folds), "n": len(rows), "n_evaluated": len(ev),
           "set_aside": len(pf.set_aside), "training_mean": rep(mean_pred),
           "selected": {**rep(res["selected"]), "choices": res["choices"], "chosen_counts": res["chosen_counts"]},
           "fixed": {k: rep(v) for k, v in res["fixed"].items()}, "inner_r2": res["inner_r2"], "head": {}}
    for e in encoders:
        prefix = f"{e}/prefix/mean" in blocks
        for midi in (False, True):
            r = nested_ridge_cv(blocks, y, key, folds, head_candidates(e, prefix, midi), inner_folds=inner_folds, seed=seed,
                                test_blocks=test_blocks)
            out["head"][e + ("+midi" if midi else "")] = rep(r["selected"])
    return out


def _t2_data(cfg: PerformanceConfig, rows: list[PercePianoRow], spec: EmbedderSpec, work: Path) -> dict[str, Any]:
    chosen = balanced_rows(rows, cfg.degrade_segments)  # every outer fold of both protocols gets sources
    items, order, groups, source = [], [], [], []
    for r in chosen:
        for kind in DEGRADATIONS:
            for sev in range(cfg.degrade_severities + 1):
                data = degrade_midi(r.midi, kind, sev, cfg.degrade_severities, cfg.seed)
                items.append(EmbedItem(segment_id=f"{r.segment_id}__{kind}{sev}", midi_bytes=data,
                                       size_hint=float(len(data)), fields={"severity": sev, "kind": kind, "source": r.segment_id}))
                order.append(-sev)
                groups.append(f"{r.segment_id}/{kind}")
                source.append(r.segment_id)
    table = embed_rows([], spec, work, cfg.soundfont, "-t2", items, workers=cfg.workers)
    keep = [table.index[it.segment_id] for it in items if it.segment_id in table.index]
    ok = [i for i, it in enumerate(items) if it.segment_id in table.index]
    return {"table": table.subset(keep), "order": np.array([order[i] for i in ok], float),
            "groups": [groups[i] for i in ok], "source": [source[i] for i in ok],
            "midi": _bytes_midi_stats([items[i].midi_bytes for i in ok])}


def _bytes_midi_stats(midi: list[bytes]) -> np.ndarray:
    """``(n, len(MIDI_STATISTICS))`` float64 MIDI statistics of in-memory MIDI files (undefined or
    unreadable -> 0, as ``midi_stats``)."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for k, data in enumerate(midi):
            paths.append(Path(tmp) / f"{k}.mid")
            paths[-1].write_bytes(data)
        x, _ = midi_statistics_matrix(paths)
    return np.nan_to_num(x)


def _t4_data(cfg: PerformanceConfig, rows: list[PercePianoRow], spec: EmbedderSpec, work: Path,
             table: EmbeddingTable) -> dict[str, Any]:
    chosen = balanced_rows(rows, cfg.augment_segments)
    sr = build_frame_embedder(spec).sample_rate
    aug = embed_rows(chosen, spec, work, cfg.soundfont, "-t4",
                     transform=lambda w, it: augment_waveform(w, sr, cfg.augment, it.segment_id)[0])
    ids = [r.segment_id for r in chosen if r.segment_id in aug.index and r.segment_id in table.index]
    return {"clean": table.subset([table.index[s] for s in ids]), "augmented": aug.subset([aug.index[s] for s in ids]),
            "source": ids}


def balanced_rows(rows: list[PercePianoRow], limit: int) -> list[PercePianoRow]:
    """``limit`` rows spread over the performers *and* the pieces: greedily, the row whose performer
    and piece have been picked least so far (sum of the two counts, then the performer's), the
    shortest (MIDI size) first; in id order.

    The T2/T4 sources: each performer-grouped and each piece-grouped outer fold then trains on
    most of them and tests on a few. (The 16 shortest overall put 15 in one performer fold; the
    shortest of each performer are mostly one piece, so one piece fold held most of those.)
    """
    from collections import Counter

    left = sorted(rows, key=lambda r: (r.midi.stat().st_size, r.segment_id))
    performers, pieces, out = Counter(), Counter(), []
    while left and len(out) < limit:
        best = min(range(len(left)), key=lambda i: (performers[left[i].performer] + pieces[left[i].piece],
                                                    performers[left[i].performer], i))
        r = left.pop(best)
        performers[r.performer] += 1
        pieces[r.piece] += 1
        out.append(r)
    return sorted(out, key=lambda r: r.segment_id)


#: (row label, report key) of each system in a protocol's report, in display order
REPORT_SYSTEMS = (("this model (MIDI input: embeddings + MIDI statistics)", "model"),
                  ("this model (audio input: embeddings + transcription statistics)", "model_audio_transcription"),
                  ("this model (audio input: embeddings only)", "model_audio_only"),
                  ("ridge on MIDI statistics", "baseline_ridge_midi"), ("training mean", "baseline_mean"))


def _nested_selection_lines(report: dict[str, Any]) -> list[str]:
    """Model-card lines on the choices made inside the outer folds (empty when none were)."""
    parts = []
    for prot, r in report["protocols"].items():
        c = (r.get("selection") or {}).get("counts")
        if c:
            emb = ", ".join(f"`{k}` {v}" for k, v in c["embedder"].items())
            parts.append(f"{prot}: {emb} of {r['folds']} folds; T2/T3/T4 kept in {c['t2']}/{c['t3']}/{c['t4']}")
    if not parts:
        return []
    return ["The figures below are nested: in each outer fold the embedder and the tiers were chosen again from "
            "its training side only (" + "; ".join(parts) + ").", ""]


def _registered_map_lines(report: dict[str, Any]) -> list[str]:
    """Model-card lines on ``registered_midi_map`` (empty when no protocol decided it)."""
    c = report.get("registered_midi_map") or {}
    if "protocol" not in c:
        return []
    what = ("so this model's MIDI map (`ridge_midi`) **is that ridge**" if c["midi_statistics_only"]
            else "so this model keeps the MIDI map chosen by inner CV")
    return [f"On {c['protocol']}, the hardest protocol of this run, the model with MIDI input scored mean R² "
            f"{c['model_mean_r2']:.3f} and the ridge on MIDI statistics {c['baseline_ridge_midi_mean_r2']:.3f}: "
            f"{what}.", ""]


def performance_model_card(report: dict[str, Any]) -> str:
    """Markdown model card (``README.md`` of the model directory) from a ``run_performance`` report:
    data, embedder, tiers, and per protocol the cross-validated mean R² [95 % CI] of the model and
    the baselines, beside the published figures."""
    lines = [f"# {report.get('model_name', 'eno-piano')}: piano performance evaluation", "",
             f"Regresses the 19 PercePiano perceptual ratings (0-1 scale) of a performance from frame embeddings of "
             f"`{report['embedder']}` (MIDI rendered with FluidSynth). Trained on {report['n']} performances of "
             f"{len(report['pieces'])} pieces by {len(report['performers'])} performers"
             + (" (**biased subset**: only cached embeddings)" if report.get("only_cached") else "") + ".",
             f"Tiers: {', '.join(k for k, v in report['tiers'].items() if v is True) or 't1'} (T1 always)"
             + (" — chosen by performer-grouped CV on " + str(report["tier_selection"]["n"]) + " performances: "
                + "; ".join(f"{t} {'kept' if d['kept'] else 'dropped'} ({TIER_CRITERIA[t][2]} {d['with']:.3f} with, "
                            f"{d['without']:.3f} without)" for t, d in report["tier_selection"]["decisions"].items())
                if report.get("tier_selection", {}).get("decisions") else "") + ".",
             *([f"Ratings: closed-form ridge chosen by inner grouped CV: "
                + "; ".join(f"`{k}` {v['candidate']} (alpha {v['alpha']:g})" for k, v in report["ridge_selection"].items()
                            if "candidate" in v)
                + " (`ridge_midi` is used when the input is MIDI, `ridge_transcription` for a recording's "
                  "automatic transcription)."] if report.get("ridge_selection") else []),
             *([f"Quality (T2 severity ranking): closed-form pairwise ranking ridge, alpha "
                f"{report['ridge_selection']['quality']['alpha']:g} by inner folds grouped by source performance"
                + (f"; for MIDI input `quality_ridge_midi` (embeddings + MIDI statistics, block weights "
                   f"{report['ridge_selection']['quality']['midi']['block_weights']}, alpha "
                   f"{report['ridge_selection']['quality']['midi']['alpha']:g})"
                   if "midi" in report["ridge_selection"]["quality"] else "") + "."]
               if "quality" in report.get("ridge_selection", {}) else []), "",
             *_registered_map_lines(report),
             *_nested_selection_lines(report),
             "| protocol | system | mean R² [95 % CI] | pairwise acc. |", "|---|---|---|---|"]
    for prot, r in report["protocols"].items():
        for label, key in REPORT_SYSTEMS:
            m = r.get(key)
            if not m:
                continue
            i = m.get("interval")
            ci = f" [{i['low']:.3f}, {i['high']:.3f}]" if i else ""
            lines.append(f"| {prot} ({r['folds']} folds) | {label} | {m['mean_r2']:.3f}{ci} | "
                         f"{m.get('mean_pairwise_accuracy', float('nan')):.3f} |")
    pub = report.get("published_mean_r2", {})
    lines += ["", f"Published (segment-level splits, not these protocols): {pub}.", ""]
    for prot, r in report["protocols"].items():
        m, b = r["model"], r["baseline_ridge_midi"]
        i = m.get("interval") or {"low": m["mean_r2"], "high": m["mean_r2"]}
        verdict = ("above: the model's interval excludes it" if i["low"] > b["mean_r2"] else
                   "below: the model's interval excludes it" if i["high"] < b["mean_r2"] else
                   "the model's interval includes it: not separated")
        lines.append(f"- {prot}: the model is {m['mean_r2'] - b['mean_r2']:+.3f} mean R² from the ridge on MIDI "
                     f"statistics ({verdict}).")
        st = r.get("set_aside_test")
        if st:
            lines.append(f"- {prot}, its set-aside test set ({st['n']} performances): mean R² {st['mean_r2']:.3f}, "
                         f"ridge on MIDI statistics {st['ridge_midi_mean_r2']:.3f} (means over the {r['folds']} "
                         "folds' models).")
    lines += ["", "Piece-grouped R² stays near 0: each piece shifts the mean ratings, and unseen pieces are hard. "
              "See docs/performance.md.", ""]
    return "\n".join(lines)


def embedder_inputs(cfg: PerformanceConfig, rows: list[PercePianoRow], work: Path
                    ) -> tuple[dict[str, EmbedderInputs], list[PercePianoRow]]:
    """Render and embed ``rows`` with ``cfg.embedder`` and every ``cfg.candidates`` entry (cached,
    resumable), and the rows every one of them embedded (a file that fails to render is in the
    embedding report of ``embeddings/{key}/``). T2/T4 data (``_t2_data``/``_t4_data``) are
    attached lazily: built only for an embedder some selection chooses.

    With ``cfg.only_cached``, the rows are those already embedded by ``cfg.embedder``, and a
    candidate missing any of them is skipped (warned).

    Returns:
        embedder key -> ``EmbedderInputs`` (row-aligned with the returned rows), and the rows.
    """
    specs = list({s.key: s for s in [_spec(cfg.embedder)] + [_spec(c) for c in cfg.candidates]}.values())
    if cfg.only_cached:
        cached = {p.stem for p in (work / "embeddings" / specs[0].key / "embeddings").glob("*.pt")}
        rows = [r for r in rows if r.segment_id in cached]
        keep = [specs[0]]
        for spec in specs[1:]:
            have = {p.stem for p in (work / "embeddings" / spec.key / "embeddings").glob("*.pt")}
            if all(r.segment_id in have for r in rows):
                keep.append(spec)
            else:
                log.warning("only_cached: %s has not embedded every performance; not a candidate", spec.key)
        specs = keep
    tables = {spec.key: embed_rows(rows, spec, work, cfg.soundfont, workers=cfg.workers) for spec in specs}
    rows = [r for r in rows if all(r.segment_id in t.index for t in tables.values())]
    inputs: dict[str, EmbedderInputs] = {}
    for spec in specs:
        tab = tables[spec.key]
        tab = tab.subset([tab.index[r.segment_id] for r in rows])

        def load_t2(spec: EmbedderSpec = spec) -> dict[str, Any] | None:
            return _t2_data(cfg, rows, spec, work) if cfg.tiers.t2 and cfg.degrade_segments else None

        def load_t4(spec: EmbedderSpec = spec, tab: EmbeddingTable = tab) -> dict[str, Any] | None:
            return _t4_data(cfg, rows, spec, work, tab) if cfg.tiers.t4 and cfg.augment_segments else None

        inputs[spec.key] = EmbedderInputs(spec, tab, load_t2, load_t4)
    return inputs, rows


# ----------------------------------------------------------------------------- the job's stages
@dataclass
class PerformanceState(FieldState):
    """What the performance stages produced so far (in memory).

    Attributes:
        started: ``time.time()`` when the job started (the report's ``runtime_s``).
        rows / inputs / stats: the performances, embedder key -> ``EmbedderInputs`` (row-aligned),
            ``(n, S)`` float64 MIDI statistics (``inputs``).
        transcription: ``(n, S)`` float64 statistics of the renders' automatic transcriptions, or
            None when transcription is off or unavailable (``transcribe``); transcription_info:
            what the report says of it.
        final: the ``Selection`` of the registered model (``select``).
        report: the job's report (``select`` starts it, ``cross_validate`` adds ``protocols``,
            ``fit`` ``ridge_selection`` and ``runtime_s``).
        model_dir / registered / tags: ``fit``, ``register``, ``tag``.
        cached: stage name -> whether its marker was reused.
    """

    progress: bool = True
    started: float = field(default_factory=time.time)
    rows: list[PercePianoRow] | None = None
    inputs: dict[str, EmbedderInputs] | None = None
    stats: np.ndarray | None = None
    transcription: np.ndarray | None = None
    transcription_info: dict[str, Any] | None = None
    final: Selection | None = None
    report: dict[str, Any] | None = None
    model_dir: Path | None = None
    registered: Path | None = None
    tags: list[dict[str, Any]] | None = None
    cached: dict[str, bool] = field(default_factory=dict)

    state_label = "performance state"


def _cfg(settings: Settings) -> PerformanceConfig:
    cfg = settings.performance
    if cfg is None:
        raise ValueError("settings.performance is not set")
    return cfg


def _work(settings: Settings) -> Path:
    return Path(settings.paths.data_root) / "performance" / _cfg(settings).name


def _plain(o: Any) -> Any:
    """``o`` with numpy scalars/arrays as Python numbers/lists and tuples as lists, dict keys
    included (NaN kept: JSON ``NaN``)."""
    if isinstance(o, dict):
        return {(k.item() if isinstance(k, np.generic) else k): _plain(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_plain(v) for v in o]
    if isinstance(o, np.ndarray):
        return _plain(o.tolist())
    if isinstance(o, np.generic):
        return o.item()
    return o


def _reuse(settings: Settings, name: str, key: str) -> Any:
    """The stored result of stage ``name`` when its marker holds ``key``, else None."""
    stages = _work(settings) / "stages"
    if read_marker(stages / f"{name}.json", key) is None or not (stages / f"{name}.result.json").is_file():
        return None
    return json.loads((stages / f"{name}.result.json").read_text(encoding="utf-8"))


def _store(settings: Settings, name: str, key: str, result: Any) -> None:
    """Write stage ``name``'s ``result`` (JSON, NaN kept), then its marker (``key``), both atomically."""
    stages = _work(settings) / "stages"
    atomic_write_text(stages / f"{name}.result.json", json.dumps(_plain(result), default=float))
    write_marker(stages / f"{name}.json", key, {"result": f"{name}.result.json"})


def _inputs_key(settings: Settings, state: PerformanceState) -> dict[str, Any]:
    """What every later stage's result depends on: the performance settings (but where to tag, how
    many processes embed, and which protocols are listed: each protocol's CV keys on its own name,
    and ``fit`` on every listed protocol's CV key) and the rows."""
    return {"performance": _cfg(settings).model_dump(mode="json", exclude={"tag_files", "workers", "protocols",
                                                                          "transcribe_audio"}),
            "rows": [r.segment_id for r in state.rows]}


def _transcription_key(state: PerformanceState) -> dict[str, Any]:
    """What the CV and fit stages take from ``transcribe``: nothing without transcriptions (so the
    markers of a run without them stay valid), else a hash of the statistics."""
    if state.transcription is None:
        return {}
    return {"transcription": hashlib.sha256(np.ascontiguousarray(state.transcription).tobytes()).hexdigest()}


def _choice(final: Selection) -> dict[str, Any]:
    return {"embedder": final.inputs.spec.key, "tiers": final.tiers.model_dump(mode="json")}


def stage_inputs(settings: Settings, state: PerformanceState) -> dict[str, Any]:
    """Render and embed the rated performances with every candidate embedder (``embedder_inputs``,
    cached and resumable by shard) and their MIDI statistics (``midi_stats``)."""
    cfg, work = _cfg(settings), _work(settings)
    inputs, rows = embedder_inputs(cfg, select_rows(cfg), work)
    return {"rows": rows, "inputs": inputs, "stats": midi_stats(rows, work)}


def stage_transcribe(settings: Settings, state: PerformanceState) -> dict[str, Any]:
    """Statistics of automatic transcriptions of the performances' renders (``transcription_stats``),
    for the ``ridge_transcription`` map, when ``performance.transcribe_audio`` asks for them
    (``auto``: when basic-pitch is installed) and the model reads MIDI statistics (``ratings_fit:
    ridge`` with ``use_midi_statistics``).

    Raises:
        ImportError: ``transcribe_audio: always`` without basic-pitch.
    """
    state.require("rows")
    cfg = _cfg(settings)
    if cfg.transcribe_audio == "never" or cfg.ratings_fit != "ridge" or not cfg.use_midi_statistics:
        return {"transcription": None, "transcription_info": None}
    reason = unavailable_reason()
    if reason is not None:
        if cfg.transcribe_audio == "always":
            raise ImportError(f"performance.transcribe_audio is 'always': {reason}")
        log.warning("no transcription map: %s", reason)
        return {"transcription": None, "transcription_info": {"skipped": reason}}
    x, failed = transcription_stats(state.rows, _work(settings), cfg.soundfont, workers=cfg.workers)
    return {"transcription": x, "transcription_info": {"model": model_id(), "soundfont": cfg.soundfont,
                                                       "without_notes": failed}}


def stage_select(settings: Settings, state: PerformanceState) -> dict[str, Any]:
    """The embedder and tiers of the registered model, chosen on all rows (``select_procedure``),
    and the report's head (data, embedder, tiers, their selection reports)."""
    state.require("rows", "inputs", "stats")
    cfg, rows = _cfg(settings), state.rows
    key = json_hash({"stage": "select", **_inputs_key(settings, state)})
    stored = _reuse(settings, "select", key)
    if stored is not None and stored["embedder"] in state.inputs:
        final = Selection(state.inputs[stored["embedder"]], TiersConfig.model_validate(stored["tiers"]),
                          stored["report"])
        cached = True
    else:
        final = select_procedure(cfg, state.inputs, rows, state.stats, np.arange(len(rows)))
        _store(settings, "select", key, {**_choice(final), "report": final.report})
        cached = False
    spec, table = final.inputs.spec, final.inputs.table
    report: dict[str, Any] = {"dataset": cfg.name, "n": len(rows), "embedder": spec.key, "dim": table.dim,
                              "pieces": dict(Counter(r.piece for r in rows)),
                              "performers": dict(Counter(r.performer for r in rows)),
                              "only_cached": cfg.only_cached, "limit": cfg.limit,
                              "nested_selection": cfg.nested_selection,
                              "selection": final.report["embedder"], "tiers": final.tiers.model_dump(),
                              "tier_selection": final.report["tiers"], "protocols": {},
                              "published_mean_r2": {"symbolic": 0.35, "muq_audio_arXiv_2601.19029": 0.537},
                              **({"transcription": state.transcription_info} if state.transcription_info else {})}
    return {"final": final, "report": report, "cached": {"select": cached}}


def _cv_key(settings: Settings, state: PerformanceState, protocol: str) -> str:
    cfg = _cfg(settings)
    return json_hash({"stage": "cross_validate", "protocol": protocol, **_inputs_key(settings, state),
                      "final": None if cfg.nested_selection else _choice(state.final), **_transcription_key(state)})


def stage_cross_validate(settings: Settings, state: PerformanceState) -> dict[str, Any]:
    """Grouped CV of the model and the baselines per protocol (``cross_validate``; with
    ``nested_selection`` the embedder and tiers are chosen inside each outer fold, else the
    registered model's choice is cross-validated). One marker per protocol (``cv-{protocol}``)."""
    state.require("rows", "inputs", "stats", "final", "report")
    cfg, final = _cfg(settings), state.final
    protocols: dict[str, Any] = {}
    reused = []
    for protocol in cfg.protocols:
        key = _cv_key(settings, state, protocol)
        stored = _reuse(settings, f"cv-{protocol}", key)
        if stored is None:
            stored = (cross_validate(cfg, state.inputs, state.rows, state.stats, protocol,
                                     transcription=state.transcription) if cfg.nested_selection
                      else cross_validate(cfg, final.inputs, state.rows, state.stats, protocol, tiers=final.tiers,
                                          transcription=state.transcription))
            _store(settings, f"cv-{protocol}", key, stored)
        else:
            reused.append(protocol)
        protocols[protocol] = stored
    return {"report": {**state.report, "protocols": protocols},
            "cached": {"cross_validate": bool(cfg.protocols) and len(reused) == len(cfg.protocols)}}


#: protocols from the hardest (unseen pieces) to the easiest (unseen players)
HARDEST_FIRST = ("piece", "composition4fold", "performer4fold", "performer")


def registered_midi_map(report: dict[str, Any]) -> dict[str, Any]:
    """Which ``ridge_midi`` the registered model gets, from the CV figures of its own run: on the
    hardest protocol cross-validated (``HARDEST_FIRST``), when the ridge on MIDI statistics (the
    baseline) scores a higher mean R² than the model with MIDI input, the registered model's
    ``ridge_midi`` is that baseline (``midi_statistics_only``), so the registered model is never
    below the best baseline of its run there; else the map chosen by inner CV.

    Returns:
        ``{"protocol", "model_mean_r2", "baseline_ridge_midi_mean_r2", "midi_statistics_only"}``,
        or ``{"midi_statistics_only": False}`` when no protocol was cross-validated.
    """
    prot = next((p for p in HARDEST_FIRST if p in report.get("protocols", {})), None)
    if prot is None:
        return {"midi_statistics_only": False}
    r = report["protocols"][prot]
    model, base = float(r["model"]["mean_r2"]), float(r["baseline_ridge_midi"]["mean_r2"])
    return {"protocol": prot, "model_mean_r2": model, "baseline_ridge_midi_mean_r2": base,
            "midi_statistics_only": bool(base > model)}


def _fit_key(settings: Settings, state: PerformanceState) -> str:
    return json_hash({"stage": "fit", **_inputs_key(settings, state), "final": _choice(state.final),
                      "cv": [_cv_key(settings, state, p) for p in _cfg(settings).protocols],
                      "midi_map": registered_midi_map(state.report), **_transcription_key(state)})


def stage_fit(settings: Settings, state: PerformanceState) -> dict[str, Any]:
    """The final model on every row with the registered model's choice (``fit_tiers``), saved into
    ``{work}/model`` with its ``eval_report.json`` and model card (``README.md``); the report in
    ``{work}/report.json`` (strict JSON: NaN as null)."""
    state.require("rows", "stats", "final", "report")
    cfg, work, rows, final = _cfg(settings), _work(settings), state.rows, state.final
    model_dir = work / "model"
    key = _fit_key(settings, state)
    stored = _reuse(settings, "fit", key)
    if stored is not None and (model_dir / "config.json").is_file():
        log.info("performance model reused (same settings, rows and choices): %s", model_dir)
        return {"report": stored, "model_dir": model_dir, "cached": {"fit": True}}
    from eno_hf.performance.trainer import InvarianceData, OrdinalData, fit_tiers

    spec, table, t2, t4, tiers = final.inputs.spec, final.inputs.table, final.inputs.t2, final.inputs.t4, final.tiers
    report = dict(state.report)
    report["registered_midi_map"] = choice = registered_midi_map(report)
    if choice["midi_statistics_only"]:
        log.warning("on %s the ridge on MIDI statistics (mean R² %.3f) beat the model with MIDI input (%.3f): the "
                    "registered model's MIDI map is that ridge", choice["protocol"],
                    choice["baseline_ridge_midi_mean_r2"], choice["model_mean_r2"])
    mcfg = build_model_config(cfg, table.dim, spec, t2=t2 is not None and tiers.t2, t3=tiers.t3,
                              transcription=state.transcription is not None)
    y = np.stack([r.labels for r in rows]).astype(np.float64)
    model = fit_tiers(mcfg, table, y, [r.passage for r in rows],
                      t2=OrdinalData(t2["table"], t2["order"], t2["groups"], keys=t2["source"],
                                     midi=t2["midi"] if mcfg.midi_statistics else None) if t2 and tiers.t2 else None,
                      t4=InvarianceData(t4["clean"], t4["augmented"]) if t4 and tiers.t4 else None,
                      epochs=cfg.epochs, learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay, seed=cfg.seed,
                      groups_per_batch=cfg.groups_per_batch, per_group=cfg.per_group,
                      ridge_groups=[getattr(r, cfg.ridge_groups) for r in rows], midi=state.stats,
                      transcription=state.transcription, midi_statistics_only=choice["midi_statistics_only"])
    report["ridge_selection"] = dict(model.config.ridge_selection)
    model.save_pretrained(model_dir)
    report["runtime_s"] = round(time.time() - state.started, 1)
    atomic_write_json(work / "report.json", report)
    atomic_write_json(model_dir / "eval_report.json", report)
    atomic_write_text(model_dir / "README.md", performance_model_card({**report, "model_name": cfg.model_name}))
    _store(settings, "fit", key, report)
    return {"report": report, "model_dir": model_dir, "cached": {"fit": False}}


def registry_summary(report: dict[str, Any]) -> dict[str, Any]:
    """Per protocol the model's mean R², the MIDI-statistics ridge's and (when scored) the
    audio-only and audio + transcription model's: the metrics registered with the model."""
    return {p: {"mean_r2": v["model"]["mean_r2"], "ridge_midi_mean_r2": v["baseline_ridge_midi"]["mean_r2"],
                **({"audio_only_mean_r2": v["model_audio_only"]["mean_r2"]} if "model_audio_only" in v else {}),
                **({"audio_transcription_mean_r2": v["model_audio_transcription"]["mean_r2"]}
                   if "model_audio_transcription" in v else {})}
            for p, v in report["protocols"].items()}


def stage_register(settings: Settings, state: PerformanceState) -> dict[str, Any]:
    """Register ``{work}/model`` as ``performance.model_name`` through
    ``eno_hf.registry.register.register_model`` (local hub, + ClearML when ``registry.clearml``)
    with the per-protocol summary (``registry_summary``) as its metrics. An unchanged model (same
    files, same summary) whose hub version still exists is not registered again."""
    state.require("model_dir", "report", "final")
    from eno_hf.registry.register import register_model  # up to the registry: the job registers the model it trained

    cfg, model_dir = _cfg(settings), state.model_dir
    summary = registry_summary(state.report)
    files = sorted(p for p in model_dir.rglob("*") if p.is_file())
    key = json_hash({"stage": "register", "name": cfg.model_name, "summary": summary,
                     "embedder": state.final.inputs.spec.key,
                     "model": [str(model_dir.resolve())] + [(p.relative_to(model_dir).as_posix(), p.stat().st_size,
                                                             p.stat().st_mtime_ns) for p in files]})
    marker = _work(settings) / "stages" / "register.json"
    done = read_marker(marker, key)
    if done and Path(done["version_dir"]).is_dir():
        log.info("performance model already registered as %s", done["version_dir"])
        return {"registered": Path(done["version_dir"]), "cached": {"register": True}}
    reg_settings = settings.model_copy(update={"registry": settings.registry.model_copy(
        update={"model_name": cfg.model_name})})
    reg = register_model(reg_settings, model_dir, name=cfg.model_name, metrics=summary,
                         metadata={"metrics": summary, "embedder": state.final.inputs.spec.key})
    write_marker(marker, key, reg.to_dict())
    log.info("performance model %s registered as %s", model_dir, reg.version_dir)
    return {"registered": Path(reg.version_dir), "cached": {"register": False}}


def stage_tag(settings: Settings, state: PerformanceState) -> dict[str, Any]:
    """Tag ``performance.tag_files`` with the registered model
    (``eno_hf.inference.performance.tag_performance_paths``; MIDI rendered into ``{work}/render``)."""
    state.require("registered")
    from eno_hf.inference.performance import tag_performance_paths  # up to inference: the job tags with its model

    cfg = _cfg(settings)
    return {"tags": list(tag_performance_paths(cfg.tag_files, state.registered, render_cache=_work(settings) / "render"))}


def _performance_result(settings: Settings, state: PerformanceState) -> PerformanceRun:
    return PerformanceRun(state.report, state.model_dir, state.registered, state.tags)


PERFORMANCE = Job("performance", (
    Stage("inputs", stage_inputs, "gpu", task_name="eno-performance-inputs"),
    Stage("transcribe", stage_transcribe, "cpu", task_name="eno-performance-transcribe"),
    Stage("select", stage_select, "gpu", task_name="eno-performance-select"),
    Stage("cross_validate", stage_cross_validate, "gpu", task_name="eno-performance-cross-validate"),
    Stage("fit", stage_fit, "gpu", task_name="eno-performance-fit"),
    Stage("register", stage_register, "io", task_name="eno-performance-register"),
    Stage("tag", stage_tag, "gpu", enabled=lambda s: bool(s.performance is not None and s.performance.tag_files),
          task_name="eno-performance-tag"),
), PerformanceState, _performance_result)
"""The performance job (``eno_hf.jobs.JOBS["performance"]``); its result is a ``PerformanceRun``."""


def run_performance(settings: Settings, progress: Any = None, runner: StageRunner = run_directly) -> PerformanceRun:
    """Run the whole job for ``settings.performance`` (``PERFORMANCE`` through ``runner``; see the
    module docstring): embed with every candidate embedder (``embedder_inputs``); the registered
    model's embedder and tiers chosen on all rows; grouped CV per protocol, the embedder and tiers
    chosen inside each outer fold from its training side (``cfg.nested_selection``; else the
    registered model's choice); the final model; register; tag.

    Raises:
        ValueError: ``settings.performance`` missing. FileNotFoundError: PercePiano not found.
    """
    _cfg(settings)
    state = run_stages(PERFORMANCE, settings, state=PerformanceState(), runner=runner)
    return _performance_result(settings, state)
