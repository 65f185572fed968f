"""``eno dataset augment``: N seeded copies of every source sample, with provenance and labels
carried or transformed.

MIDI (pretty_midi), each copy applies every configured operation with parameters drawn from a
``numpy.random.Generator`` seeded by (``augment.seed``, source sample id, copy index):

=============== =========================================== ====================================
operation       parameters                                  labels
=============== =========================================== ====================================
transpose       integer semitones in [−6, +6], never 0      key moved by the same interval
                                                            (``keys.transpose_key``); mode,
                                                            roman-numeral chords unchanged
time_stretch    factor s in [0.9, 1.1] on every time and     tempo_bpm / s
                the tempo map (``PrettyMIDI.adjust_times``)
velocity_scale  factor in [0.8, 1.2], clipped to 1..127      carried
timing_jitter   each note shifted by U(−5, +5) ms           carried
note_dropout    each note removed with p = 0.02             carried
=============== =========================================== ====================================

Audio (eno's conditioned mono signal at ``dataset.audio.sample_rate``; pedalboard + numpy;
audiomentations is not used because installing it downgrades the pinned soxr — see
``eno_hf.audio.augment``): pitch_shift (integer semitones in [−2, +2], never 0; key moved) and
time_stretch (rate r in [0.9, 1.1], r > 1 faster; tempo_bpm × r), together one offline Rubber
Band pass (``pedalboard.time_stretch``); noise (Gaussian, σ in [0, 0.5 %] of full scale, numpy,
seeded; carried), gain (×[0.8, 1.2], ``pedalboard.Gain``; carried). Written as 16-bit WAV.

Every copy's ``sample_id`` is the content hash of the file written; ``provenance`` records the
source sample, the operations with their parameters, and the seed; ``group`` is the source's
(so a copy always lands in its source's split). Only imported samples are augmented: copies are
never augmented again, and rule-based synthetic pieces (``eno dataset synthesize``, which runs
after ``augment`` in ``eno dataset all``) are not augmented either, so re-running ``all`` adds nothing.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from eno_hf.config import Settings
from eno_hf.data.workers import pool_map
from eno_hf.errors import RejectedInput
from eno_hf.features.midi import load_midi
from eno_hf.utils.io import atomic_write
from eno_hf.workspace.config import AugmentConfig
from eno_hf.workspace.ingest import SAMPLE_ID_HEX, updated
from eno_hf.workspace.keys import transpose_key
from eno_hf.workspace.layout import Workspace
from eno_hf.workspace.schema import Annotations, Manifest, ManifestEntry, Provenance, Rejection


@dataclass
class AugmentReport:
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)


def _rng(seed: int, sample_id: str, copy: int) -> tuple[np.random.Generator, int]:
    s = [int(seed), zlib.crc32(sample_id.encode()), int(copy)]
    return np.random.default_rng(s), int(np.random.SeedSequence(s).generate_state(1)[0])


def _nonzero_int(rng: np.random.Generator, lo: int, hi: int) -> int:
    choices = [k for k in range(int(lo), int(hi) + 1) if k != 0]
    return int(rng.choice(choices)) if choices else 0


def draw_midi_params(cfg: AugmentConfig, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Operations with their drawn parameters (in application order)."""
    ops: list[dict[str, Any]] = []
    for op in cfg.midi_ops:
        if op == "transpose":
            ops.append({"op": op, "semitones": _nonzero_int(rng, *cfg.transpose_semitones)})
        elif op == "time_stretch":
            ops.append({"op": op, "factor": float(rng.uniform(*cfg.time_stretch))})
        elif op == "velocity_scale":
            ops.append({"op": op, "factor": float(rng.uniform(*cfg.velocity_scale))})
        elif op == "timing_jitter":
            ops.append({"op": op, "max_ms": float(cfg.timing_jitter_ms), "seed": int(rng.integers(2**31))})
        elif op == "note_dropout":
            ops.append({"op": op, "p": float(cfg.note_dropout), "seed": int(rng.integers(2**31))})
    return ops


def apply_midi_ops(pm, ops: list[dict[str, Any]]):
    """Apply ``ops`` to a ``pretty_midi.PrettyMIDI`` in place and return it. Pitches leaving
    0..127 after a transposition are dropped; dropout keeps at least one note per instrument."""
    for op in ops:
        kind = op["op"]
        notes_of = [i for i in pm.instruments if not i.is_drum]
        if kind == "transpose":
            for inst in notes_of:
                inst.notes = [n for n in inst.notes if 0 <= n.pitch + op["semitones"] <= 127]
                for n in inst.notes:
                    n.pitch += op["semitones"]
        elif kind == "time_stretch":
            end = max(pm.get_end_time(), 1e-3)
            pm.adjust_times(np.array([0.0, end]), np.array([0.0, end * op["factor"]]))
        elif kind == "velocity_scale":
            for inst in pm.instruments:
                for n in inst.notes:
                    n.velocity = int(np.clip(round(n.velocity * op["factor"]), 1, 127))
        elif kind == "timing_jitter":
            r = np.random.default_rng(op["seed"])
            for inst in pm.instruments:
                for n in inst.notes:
                    d = float(r.uniform(-op["max_ms"], op["max_ms"])) / 1000.0
                    d = max(d, -n.start)
                    n.start += d
                    n.end += d
        elif kind == "note_dropout":
            r = np.random.default_rng(op["seed"])
            for inst in pm.instruments:
                keep = [n for n in inst.notes if r.random() >= op["p"]]
                inst.notes = keep or inst.notes[:1]
    return pm


def transform_labels(ann: Annotations, ops: list[dict[str, Any]]) -> Annotations:
    """The labels of a copy made with ``ops`` (MIDI or audio operation names)."""
    changes: dict[str, Any] = {"is_verified": False, "quality_score": None}
    key, tempo = ann.key, ann.tempo_bpm
    for op in ops:
        if op["op"] in ("transpose", "pitch_shift"):
            key = transpose_key(key, op["semitones"])
        elif op["op"] == "time_stretch" and tempo is not None:
            # MIDI: durations × factor (slower when > 1); audio: Rubber Band rate r (faster when > 1)
            tempo = tempo / op["factor"] if "factor" in op else tempo * op["rate"]
    changes.update(key=key, tempo_bpm=tempo)
    return updated(ann, **changes)


def draw_audio_params(cfg: AugmentConfig, rng: np.random.Generator) -> list[dict[str, Any]]:
    ops: list[dict[str, Any]] = []
    for op in cfg.audio_ops:
        if op == "pitch_shift":
            lo, hi = cfg.pitch_shift_semitones
            ops.append({"op": op, "semitones": _nonzero_int(rng, int(np.ceil(lo)), int(np.floor(hi)))})
        elif op == "time_stretch":
            ops.append({"op": op, "rate": float(rng.uniform(*cfg.time_stretch))})
        elif op == "noise":
            ops.append({"op": op, "std": float(rng.uniform(*cfg.noise_amplitude)), "seed": int(rng.integers(2**31))})
        elif op == "gain":
            ops.append({"op": op, "factor": float(rng.uniform(*cfg.gain))})
    return ops


def apply_audio_ops(y: np.ndarray, sr: int, ops: list[dict[str, Any]]) -> np.ndarray:
    """``(n,)`` float32 mono → augmented ``(m,)`` float32 in [−1, 1] (m ≈ n / rate after a time
    stretch).

    pitch_shift and time_stretch run as one pass of Rubber Band (``pedalboard.time_stretch``,
    via ``eno_hf.audio.augment.rubberband_shift``; the two are independent there, so their order
    does not matter); gain is ``pedalboard.Gain`` (dB = 20·log10 factor); noise is seeded
    Gaussian noise from numpy (pedalboard has no noise generator).
    """
    import pedalboard

    from eno_hf.audio.augment import rubberband_shift

    y = np.asarray(y, dtype=np.float32)
    semitones = sum(op["semitones"] for op in ops if op["op"] == "pitch_shift")
    rate = float(np.prod([op["rate"] for op in ops if op["op"] == "time_stretch"]))
    if semitones or rate != 1.0:
        y = rubberband_shift(y, sr, semitones=semitones, rate=rate)
    for op in ops:
        if op["op"] == "noise":
            y = y + np.random.default_rng(op["seed"]).normal(0.0, op["std"], y.shape).astype(np.float32)
        elif op["op"] == "gain":
            y = pedalboard.Gain(gain_db=20.0 * float(np.log10(op["factor"])))(y, float(sr))
    return np.clip(y, -1.0, 1.0).astype(np.float32)


def _augment_one(args: tuple) -> dict[str, Any]:
    """Worker: make one copy. Returns ``{"status", "path", "ops", "seed", ...}``."""
    kind, src_path, out_dir, ops, seed, audio_cfg = args
    import hashlib
    import io
    import os

    buf = io.BytesIO()
    try:
        if kind == "midi":
            pm = apply_midi_ops(load_midi(src_path), ops)
            pm.write(buf)
            ext = ".mid"
        else:
            import soundfile as sf

            from eno_hf.audio.conditioning import load_and_condition

            y, _ = load_and_condition(src_path, audio_cfg)
            y = apply_audio_ops(y, audio_cfg.sample_rate, ops)
            sf.write(buf, y, audio_cfg.sample_rate, subtype="PCM_16", format="WAV")
            ext = ".wav"
    except RejectedInput as exc:
        return {"status": "rejected", "reason": exc.reason, "detail": exc.detail}
    sid = hashlib.sha256(buf.getvalue()).hexdigest()[:SAMPLE_ID_HEX]
    final = os.path.join(out_dir, sid + ext)
    atomic_write(final, lambda fh: fh.write(buf.getvalue()))
    return {"status": "ok", "sample_id": sid, "path": final, "ops": ops, "seed": seed}


def augment_workspace(ws: Workspace, manifest: Manifest, settings: Settings, copies_midi: int | None = None,
                      copies_audio: int | None = None, progress: Any = None) -> AugmentReport:
    """Make the configured number of copies of every imported sample lacking them (in
    place; saves the manifest). Re-running creates nothing new (copies are found by provenance
    and copy seed)."""
    cfg = settings.workspace.augment
    n_midi = cfg.midi_copies if copies_midi is None else copies_midi
    n_audio = cfg.audio_copies if copies_audio is None else copies_audio
    have = {(e.provenance.source_sample_id, e.provenance.seed) for e in manifest.samples if e.provenance}
    out_dir = str(ws.abs("processed/augmented"))
    tasks, meta = [], []
    for e in manifest.samples:
        if e.origin != "imported":  # copies are never copied again; synthetic pieces are not augmented
            continue
        n = n_midi if e.kind == "midi" else n_audio
        for c in range(n):
            rng, seed = _rng(cfg.seed, e.sample_id, c)
            if (e.sample_id, seed) in have:
                continue
            ops = draw_midi_params(cfg, rng) if e.kind == "midi" else draw_audio_params(cfg, rng)
            tasks.append((e.kind, str(ws.abs(e.file_path)), out_dir, ops, seed, settings.dataset.audio))
            meta.append(e)
    report = AugmentReport(existing=[e.sample_id for e in manifest.samples if e.origin == "augmented"])
    results = pool_map(_augment_one, tasks, settings.workspace.num_workers)  # forked from this process
    if progress is not None:
        results = progress(results, len(tasks))
    ids = manifest.by_id()
    for src, res in zip(meta, results):
        if res["status"] != "ok":
            report.rejected.append({"sample_id": src.sample_id, "reason": res["reason"], "detail": res["detail"]})
            manifest.rejected.append(Rejection(path=src.original_path or src.file_path, reason=res["reason"],
                                               detail=res["detail"], stage="augment", sample_id=src.sample_id))
            continue
        if res["sample_id"] in ids:
            continue
        entry = ManifestEntry(
            sample_id=res["sample_id"], file_path=ws.rel(res["path"]), kind=src.kind, origin="augmented",
            source=src.source, original_path=None, group=src.group, performer=src.performer,
            annotations=transform_labels(src.annotations, res["ops"]),
            provenance=Provenance(source_sample_id=src.sample_id, operations=res["ops"], seed=res["seed"]))
        manifest.samples.append(entry)
        ids[entry.sample_id] = entry
        report.created.append(entry.sample_id)
    ws.save(manifest)
    return report
