"""``eno dataset extract``: features of every sample, saved per sample and into its annotations.

- Audio (and the FluidSynth rendering of every MIDI sample): eno's own path —
  ``eno_hf.audio.conditioning.load_and_condition`` (decode, mono, soxr resample, BS.1770 loudness
  normalization; MIDI rendered by ``eno_hf.audio.midi``) then the 64-d
  ``eno_hf.features.fingerprint`` (librosa spectral/rhythm/chroma statistics). The audio key is
  Krumhansl–Schmuckler on the fingerprint's mean chroma (``keys.chroma_key``), the audio tempo the
  fingerprint's ``tempo_bpm``.
- MIDI: ``eno_hf.features.midi.midi_features`` (pretty_midi + music21): key/mode, tempo, note
  density, pitch range and contour, velocity curve, articulation, groove type, swing ratio, chord
  progression.
- Audio with transcription (``workspace.transcribe_audio``; default ``auto``: when basic-pitch is
  installed): the recording is transcribed (``eno_hf.audio.transcribe.transcribe_to_file``, Basic
  Pitch, cached by content), its notes are kept in the ``.npz`` as ``transcription_notes``
  ``(n, 4)`` float32 (onset s, offset s, MIDI pitch, velocity), and its ``midi_features`` give
  the label fields as for a MIDI sample (``midi_source``: ``transcription``,
  ``transcription_n_notes``). A transcription with no note rejects the sample
  as ``silent``, like every eno input whose transcription is empty. Without transcription the
  audio key (Krumhansl–Schmuckler on the mean chroma) and tempo fill ``key``/``mode``/``tempo_bpm``.

Output: ``processed/features/{sample_id}.json`` (scalars, strict JSON: NaN → null) and
``.npz`` (``fingerprint`` (64,) float32, and for MIDI ``velocity_curve`` (32,), ``melody`` (k, 2),
``onsets_s``, ``beats_s``). Label fields not yet set (key, mode, tempo_bpm, groove_type,
swing_ratio, articulation, chord_progression) are filled from the features; a human's labels are
never overwritten. A file that cannot be decoded is moved from the manifest's samples to its
rejected list with the reason (stage ``extract``); the others go on.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from eno_hf.audio.transcribe import transcribe_to_file
from eno_hf.config import AudioConfig, Settings
from eno_hf.data.workers import pool_map
from eno_hf.errors import RejectedInput
from eno_hf.features.midi import load_midi, midi_features
from eno_hf.utils.io import atomic_write_json
from eno_hf.workspace.ingest import updated
from eno_hf.workspace.keys import canonical_key, chroma_key
from eno_hf.workspace.layout import Workspace
from eno_hf.workspace.schema import Manifest, Rejection

LABEL_FIELDS = ("key", "mode", "tempo_bpm", "groove_type", "swing_ratio", "articulation", "chord_progression")


@dataclass
class ExtractJob:
    sample_id: str
    kind: str
    path: str
    out_json: str
    out_npz: str
    audio_cfg: AudioConfig
    chords: bool
    transcribe: bool = False


@dataclass
class ExtractReport:
    extracted: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)


def _finite_or_none(v: Any) -> Any:
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(float(v)) else None
    if isinstance(v, np.integer):
        return int(v)
    return v


def sample_features(job: ExtractJob) -> dict[str, Any]:
    """Compute and write one sample's features. Returns ``{"sample_id", "status", ...}``; never
    raises for a bad input (status ``rejected`` with ``reason``/``detail``)."""
    from eno_hf.audio.conditioning import load_and_condition
    from eno_hf.features.fingerprint import FINGERPRINT_NAMES, fingerprint

    try:
        scalars: dict[str, Any] = {}
        arrays: dict[str, np.ndarray] = {}
        if job.kind == "midi":
            mf = midi_features(job.path, chords=job.chords)
            scalars.update(mf.scalars)
            scalars["key"] = canonical_key(scalars.get("key")) or ""
            arrays.update(mf.arrays)
        samples, stats = load_and_condition(job.path, job.audio_cfg)
        fp = fingerprint(samples, job.audio_cfg.sample_rate, stats)
        arrays["fingerprint"] = fp.astype(np.float32)
        audio = {f"audio_{n}": float(v) for n, v in zip(FINGERPRINT_NAMES, fp)}
        chroma = fp[[FINGERPRINT_NAMES.index(n) for n in FINGERPRINT_NAMES if n.startswith("chroma_")]]
        akey, amode, ar = chroma_key(chroma)
        audio.update({"audio_key": akey, "audio_mode": amode, "audio_key_correlation": ar,
                      "audio_duration_s": float(stats.duration_s)})
        scalars.update(audio)
        if job.kind == "audio" and job.transcribe:
            mf, notes = _transcription_features(job)
            scalars.update(mf.scalars)
            scalars.update({"key": canonical_key(scalars.get("key")) or "", "midi_source": "transcription",
                            "transcription_n_notes": int(notes.shape[0]), "duration_s": float(stats.duration_s)})
            arrays.update(mf.arrays)
            arrays["transcription_notes"] = notes
        elif job.kind == "audio":
            scalars.update({"key": akey, "mode": amode, "key_correlation": ar,
                            "tempo_bpm": audio["audio_tempo_bpm"], "duration_s": float(stats.duration_s)})
    except RejectedInput as exc:
        return {"sample_id": job.sample_id, "status": "rejected", "reason": exc.reason, "detail": exc.detail}
    except FileNotFoundError as exc:  # synthesizer or soundfont missing: a per-file reason too
        return {"sample_id": job.sample_id, "status": "rejected", "reason": "io_error", "detail": str(exc)}
    clean = {k: _finite_or_none(v) for k, v in scalars.items()}
    n_num = sum(isinstance(v, (float, int)) and not isinstance(v, bool) for v in scalars.values())
    n_bad = sum(isinstance(v, float) and not math.isfinite(v) for v in scalars.values())
    n_bad += int(sum(np.count_nonzero(~np.isfinite(a)) for a in arrays.values()))
    clean["n_nonfinite"] = n_bad
    clean["n_numeric"] = n_num
    Path(job.out_json).parent.mkdir(parents=True, exist_ok=True)
    np.savez(job.out_npz, **arrays)
    atomic_write_json(job.out_json, clean, indent=1, sanitize=False)
    return {"sample_id": job.sample_id, "status": "ok", "features": clean}


def _transcription_features(job: ExtractJob) -> tuple[Any, np.ndarray]:
    """Transcribe ``job.path`` (cached MIDI file) and return its ``MidiFeatures`` and notes
    ``(n, 4)`` float32 (onset s, offset s, pitch, velocity), sorted by onset. The MIDI file stays
    in the transcription cache: a ``.mid`` in the workspace would be an input of the split's
    dataset build. Raises ``RejectedInput`` (``silent`` when no note)."""
    mid = transcribe_to_file(job.path, audio_cfg=job.audio_cfg, threads=1)
    notes = sorted((n.start, n.end, n.pitch, n.velocity) for inst in load_midi(mid).instruments for n in inst.notes)
    return midi_features(mid, chords=job.chords), np.asarray(notes, dtype=np.float32).reshape(-1, 4)


def transcription_enabled(mode: str) -> bool:
    """Whether ``workspace.transcribe_audio`` = ``mode`` transcribes audio samples here.

    Raises:
        ImportError: ``always`` without basic-pitch installed (the message gives the install line).
        FileNotFoundError: ``always`` and basic-pitch's wheel has no ONNX model.
    """
    from eno_hf.audio.transcribe import model_path, unavailable_reason  # looked up at call time (tests patch it)

    if mode == "never":
        return False
    if mode == "always":
        model_path()
        return True
    reason = unavailable_reason()
    if reason is not None:
        import logging

        logging.getLogger(__name__).info("audio samples get audio features only (workspace.transcribe_audio=auto): %s",
                                         reason)
    return reason is None


def _map(jobs: list[ExtractJob], workers: int) -> Iterable[dict[str, Any]]:
    """``sample_features`` over ``jobs`` through ``eno_hf.data.workers.pool_map``: the first job
    runs in this process and the workers are forked from it, so imports and librosa's numba
    compilation (``beat_track``'s uncached gufunc: ~20 s per fresh process) happen once, not once
    per worker. A MIDI job goes first when there is one (it exercises both the MIDI and the audio
    path); results come back in job order."""
    first = next((i for i, j in enumerate(jobs) if j.kind == "midi"), 0)
    ordered = jobs[first:first + 1] + jobs[:first] + jobs[first + 1:]
    yield from pool_map(sample_features, ordered, workers)


def labels_from_features(feats: dict[str, Any]) -> dict[str, Any]:
    """Annotation values implied by a features dict (only fields with a usable value)."""
    out: dict[str, Any] = {}
    if feats.get("key"):
        out["key"] = feats["key"]
    if feats.get("mode") in ("major", "minor"):
        out["mode"] = feats["mode"]
    t = feats.get("tempo_bpm")
    if isinstance(t, (int, float)) and t > 0:
        out["tempo_bpm"] = float(t)
    if feats.get("groove_type") in ("straight", "swing", "shuffle", "laid-back", "rushed"):
        out["groove_type"] = feats["groove_type"]
    s = feats.get("swing_ratio")
    if isinstance(s, (int, float)) and 0 < s < 1:
        out["swing_ratio"] = float(s)
    if feats.get("articulation") in ("staccato", "detached", "legato"):
        out["articulation"] = feats["articulation"]
    if feats.get("chord_progression"):
        out["chord_progression"] = feats["chord_progression"]
    return out


def extract_workspace(ws: Workspace, manifest: Manifest, settings: Settings, force: bool = False, progress: Any = None) -> ExtractReport:
    """Extract features of every sample of ``manifest`` (in place; saves the manifest).

    Args:
        ws: ``Workspace``; manifest: its ``Manifest``; settings: root ``Settings``
            (``dataset.audio`` conditioning and MIDI rendering, ``workspace.chords``,
            ``workspace.num_workers``).
        force: recompute samples whose features file exists.
    """
    cfg = settings.workspace
    report = ExtractReport()
    transcribe = any(e.kind == "audio" for e in manifest.samples) and transcription_enabled(cfg.transcribe_audio)
    jobs = []
    for e in manifest.samples:
        rel_json = f"processed/features/{e.sample_id}.json"
        if not force and e.features_path == rel_json and ws.abs(rel_json).is_file():
            report.cached.append(e.sample_id)
            continue
        jobs.append(ExtractJob(e.sample_id, e.kind, str(ws.abs(e.file_path)), str(ws.abs(rel_json)),
                               str(ws.abs(f"processed/features/{e.sample_id}.npz")), settings.dataset.audio,
                               cfg.chords, transcribe=transcribe and e.kind == "audio"))
    by_id = manifest.by_id()
    results = _map(jobs, cfg.num_workers)
    if progress is not None:
        results = progress(results, len(jobs))
    bad: set[str] = set()
    for res in results:
        e = by_id[res["sample_id"]]
        if res["status"] != "ok":
            bad.add(e.sample_id)
            report.rejected.append({"sample_id": e.sample_id, "path": e.original_path or e.file_path,
                                    "reason": res["reason"], "detail": res["detail"]})
            manifest.rejected.append(Rejection(path=e.original_path or e.file_path, reason=res["reason"],
                                               detail=res["detail"], stage="extract", sample_id=e.sample_id))
            continue
        e.features_path = f"processed/features/{e.sample_id}.json"
        fill = {k: v for k, v in labels_from_features(res["features"]).items()
                if getattr(e.annotations, k) is None}
        if fill:
            e.annotations = updated(e.annotations, **fill)
        report.extracted.append(e.sample_id)
    manifest.samples = [e for e in manifest.samples if e.sample_id not in bad]
    ws.save(manifest)
    return report


def load_features(ws, entry) -> dict[str, Any]:
    """The saved scalar features of a sample (``{}`` if not extracted)."""
    if entry.features_path and ws.abs(entry.features_path).is_file():
        return json.loads(ws.abs(entry.features_path).read_text(encoding="utf-8"))
    return {}
