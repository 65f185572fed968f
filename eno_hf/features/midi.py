"""Symbolic (MIDI) features: note statistics, key/mode, chords, tempo, contour, dynamics, groove.

Libraries: ``pretty_midi`` (Raffel & Ellis 2014) reads the file and gives notes, pedal control
changes and the tempo map; ``music21`` (Cuthbert & Ariza 2010) gives the key by the
Krumhansl–Schmuckler algorithm (Krumhansl 1990, key profiles of Krumhansl & Kessler 1982;
``music21.analysis.discrete.KrumhanslSchmuckler``) and the chord progression (``chordify`` +
``roman.romanNumeralFromChord``); ``librosa`` estimates the tempo and beats of unquantized
performances from an onset-strength envelope built from the note onsets
(``librosa.feature.tempo``, ``librosa.beat.beat_track``; Ellis 2007).

Public functions:

- ``midi_statistics(path) -> dict[str, float]``: note density, velocity / duration statistics,
  pedal use, inter-onset timing (every value a float; NaN when undefined).
- ``midi_features(path, chords=True) -> MidiFeatures``: everything above plus key, mode, tempo,
  pitch range and contour, velocity curve, articulation, groove type and swing ratio, chord
  progression; ``.scalars`` (JSON-able), ``.arrays`` (NPZ-able curves).
- ``swing_ratio(onsets_s, beats_s)``, ``articulation_class(ratio)``, ``groove_class(...)``.

Definitions (units in the names): swing ratio = position of the off-beat onset inside its beat
as a fraction of the beat (straight eighths 0.5, triplet swing 2:1 = 0.667, dotted-eighth
shuffle 3:1 = 0.75), the median over beats holding exactly one interior onset; articulation
ratio = a note's duration over the time to the next onset (a legato line ≈ 1, staccato < 0.5).

Errors: ``eno_hf.errors.RejectedInput(path, "undecodable" | "empty" | "missing_file", detail)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from eno_hf.errors import RejectedInput

__all__ = [
    "MIDI_STATISTICS", "MidiFeatures", "load_midi", "midi_statistics", "midi_statistics_matrix", "midi_features", "swing_ratio",
    "articulation_class", "groove_class", "estimate_key", "chord_progression", "ONSET_MERGE_S",
]

ONSET_MERGE_S = 0.03
"""Onsets closer than this (s) are one event (a chord played by hand is never perfectly together)."""
GRID_TOLERANCE_S = 0.015
"""An onset within this of a tempo-map subdivision counts as on the grid (quantized files)."""
GRID_FIT_MIN = 0.8
"""Fraction of inter-onset intervals on the tempo-map grid above which the file's own tempo map is trusted."""
_GRID_FRACTIONS = np.array([0.0, 0.25, 1 / 3, 0.5, 2 / 3, 0.75, 1.0])
_ENVELOPE_RATE = 100  # Hz, onset-strength envelope for librosa's tempo / beat estimates


def load_midi(path: str | Path):
    """Read a MIDI file with pretty_midi.

    Returns:
        ``pretty_midi.PrettyMIDI``.

    Raises:
        RejectedInput: ``missing_file``; ``undecodable`` (not a MIDI file, truncated);
            ``empty`` (no notes outside drum tracks).
    """
    import pretty_midi

    p = Path(path)
    if not p.is_file():
        raise RejectedInput(p, "missing_file", "no such file")
    try:
        pm = pretty_midi.PrettyMIDI(str(p))
    except Exception as exc:  # noqa: BLE001 - mido/pretty_midi raise many types on bad bytes
        raise RejectedInput(p, "undecodable", f"not a readable MIDI file: {type(exc).__name__}: {exc}"[:300]) from exc
    if not any(n for inst in pm.instruments if not inst.is_drum for n in inst.notes):
        raise RejectedInput(p, "empty", "no pitched notes")
    return pm


def _notes(pm) -> np.ndarray:
    """``(n, 4)`` float64 rows ``(start_s, end_s, pitch, velocity)`` of pitched notes, sorted by start."""
    rows = [(n.start, n.end, n.pitch, n.velocity) for inst in pm.instruments if not inst.is_drum
            for n in inst.notes]
    arr = np.asarray(rows, dtype=np.float64).reshape(-1, 4)
    return arr[np.lexsort((arr[:, 2], arr[:, 0]))]


def _onsets(starts: np.ndarray, merge_s: float = ONSET_MERGE_S) -> np.ndarray:
    """Distinct onset times (s): sorted starts with those within ``merge_s`` of the previous kept one merged."""
    out: list[float] = []
    for t in np.sort(starts):
        if not out or t - out[-1] >= merge_s:
            out.append(float(t))
    return np.asarray(out)


def _pedal_stats(pm, duration_s: float, number: int = 64) -> dict[str, float]:
    """Sustain pedal (CC ``number``, down when value >= 64): fraction of time down and presses per second."""
    events = sorted((cc.time, cc.value >= 64) for inst in pm.instruments for cc in inst.control_changes
                    if cc.number == number)
    down_s, presses, down_at = 0.0, 0, None
    for t, down in events:
        if down and down_at is None:
            down_at, presses = t, presses + 1
        elif not down and down_at is not None:
            down_s += t - down_at
            down_at = None
    if down_at is not None:
        down_s += max(0.0, duration_s - down_at)
    return {"pedal_fraction": down_s / duration_s if duration_s > 0 else float("nan"),
            "pedal_presses_per_s": presses / duration_s if duration_s > 0 else float("nan")}


def _stats(x: np.ndarray, prefix: str) -> dict[str, float]:
    if x.size == 0:
        return {f"{prefix}_{k}": float("nan") for k in ("mean", "std", "min", "max")}
    return {f"{prefix}_mean": float(x.mean()), f"{prefix}_std": float(x.std()),
            f"{prefix}_min": float(x.min()), f"{prefix}_max": float(x.max())}


def _statistics(pm, notes: np.ndarray) -> dict[str, float]:
    start = float(notes[:, 0].min())
    duration_s = float(notes[:, 1].max()) - start
    onsets = _onsets(notes[:, 0])
    ioi = np.diff(onsets)
    polyphony = len(notes) / max(1, len(onsets))
    out: dict[str, float] = {
        "duration_s": duration_s,
        "n_notes": float(len(notes)),
        "note_density_per_s": len(notes) / duration_s if duration_s > 0 else float("nan"),
        "onset_density_per_s": len(onsets) / duration_s if duration_s > 0 else float("nan"),
        "notes_per_onset": float(polyphony),
        **_stats(notes[:, 3], "velocity"),
        **_stats(notes[:, 1] - notes[:, 0], "note_duration_s"),
        **_stats(notes[:, 2], "pitch"),
        **_stats(ioi, "ioi_s"),
        "ioi_cv": float(ioi.std() / ioi.mean()) if ioi.size and ioi.mean() > 0 else float("nan"),
    }
    out.update(_pedal_stats(pm, float(notes[:, 1].max())))
    out.update(_performance_nuances(pm, notes, onsets, duration_s))
    return out


def _performance_nuances(pm, notes: np.ndarray, onsets: np.ndarray, duration_s: float) -> dict[str, float]:
    """The performance-nuance keys of ``midi_statistics`` (see there)."""
    start, end, vel = notes[:, 0], notes[:, 1], notes[:, 3]
    dur = np.maximum(end - start, 1e-3)
    idx = np.searchsorted(onsets, start, side="right") - 1  # onset each note belongs to
    onset_vel = np.bincount(idx, weights=vel, minlength=len(onsets)) / np.maximum(np.bincount(idx, minlength=len(onsets)), 1)
    nxt = idx + 1
    ok = nxt < len(onsets)
    legato = dur[ok] / np.maximum(onsets[nxt[ok]] - start[ok], 1e-3)
    ioi = np.maximum(np.diff(onsets), 1e-3)
    p10, p90 = np.percentile(vel, [10, 90])
    nan = float("nan")
    return {
        "polyphony": float(dur.sum() / duration_s) if duration_s > 0 else nan,
        "velocity_p10": float(p10), "velocity_p90": float(p90), "velocity_p10_p90_range": float(p90 - p10),
        "velocity_change": float(np.abs(np.diff(onset_vel)).mean()) if len(onsets) > 1 else nan,
        "log_note_duration_median": float(np.median(np.log(dur))),
        "legato_ratio": float(np.median(legato)) if legato.size else nan,
        "log_ioi_ratio_std": float(np.diff(np.log(ioi)).std()) if ioi.size > 1 else nan,
        "soft_pedal_fraction": _pedal_stats(pm, float(end.max()), number=67)["pedal_fraction"],
    }


MIDI_STATISTICS: tuple[str, ...] = (
    "duration_s", "n_notes", "note_density_per_s", "onset_density_per_s", "notes_per_onset",
    *(f"velocity_{k}" for k in ("mean", "std", "min", "max")),
    *(f"note_duration_s_{k}" for k in ("mean", "std", "min", "max")),
    *(f"pitch_{k}" for k in ("mean", "std", "min", "max")),
    *(f"ioi_s_{k}" for k in ("mean", "std", "min", "max")), "ioi_cv",
    "pedal_fraction", "pedal_presses_per_s",
    "polyphony", "velocity_p10", "velocity_p90", "velocity_p10_p90_range", "velocity_change",
    "log_note_duration_median", "legato_ratio", "log_ioi_ratio_std", "soft_pedal_fraction",
)
"""The keys of ``midi_statistics``, in order (the columns of ``midi_statistics_matrix``)."""


def midi_statistics_matrix(paths: list[str | Path]) -> tuple[np.ndarray, list[dict[str, str]]]:
    """``(n, len(MIDI_STATISTICS))`` float64 rows of ``midi_statistics`` for ``paths`` (NaN where a
    statistic is undefined); a rejected file gets a NaN row and a ``{"path", "reason", "detail"}``
    entry in the second return value."""
    out = np.full((len(paths), len(MIDI_STATISTICS)), np.nan)
    rejected = []
    for i, p in enumerate(paths):
        try:
            s = midi_statistics(p)
            out[i] = [s[k] for k in MIDI_STATISTICS]
        except RejectedInput as exc:
            rejected.append({"path": str(p), "reason": exc.reason, "detail": exc.detail})
    return out, rejected


def midi_statistics(path: str | Path) -> dict[str, float]:
    """Note-level statistics of a MIDI performance (pretty_midi).

    Keys (all floats, NaN when undefined): ``duration_s`` (first onset to last offset),
    ``n_notes``, ``note_density_per_s``, ``onset_density_per_s`` (distinct onsets, chords merged
    within ``ONSET_MERGE_S``), ``notes_per_onset``, ``velocity_{mean,std,min,max}`` (MIDI 1–127),
    ``note_duration_s_{mean,std,min,max}``, ``pitch_{mean,std,min,max}`` (MIDI note numbers),
    ``ioi_s_{mean,std,min,max}`` and ``ioi_cv`` (inter-onset intervals of distinct onsets),
    ``pedal_fraction`` (fraction of the time the sustain pedal, CC 64 ≥ 64, is down),
    ``pedal_presses_per_s``; performance nuances: ``polyphony`` (sounding notes averaged over
    time), ``velocity_p10``/``velocity_p90``, ``velocity_p10_p90_range``, ``velocity_change`` (mean
    absolute change of the mean onset velocity between consecutive onsets),
    ``log_note_duration_median``, ``legato_ratio`` (median of a note's duration over the time to the
    next distinct onset; > 1 overlapping), ``log_ioi_ratio_std`` (std of ``log`` of consecutive IOI
    ratios: local tempo instability), ``soft_pedal_fraction`` (CC 67). ``MIDI_STATISTICS`` lists the
    keys in order (``midi_statistics_matrix`` columns; the symbolic baseline of
    ``eno_hf.performance``).

    Raises:
        RejectedInput: see ``load_midi``.
    """
    pm = load_midi(path)
    return _statistics(pm, _notes(pm))


# ----------------------------------------------------------------------------- timing
def _grid_fit(onsets: np.ndarray, beats: np.ndarray, tol_s: float = GRID_TOLERANCE_S) -> float:
    """Fraction of inter-onset intervals within ``tol_s`` of a whole number of beat subdivisions
    (quarters or thirds of the local beat of ``beats``). Phase-invariant: a constant delay of every
    onset (a laid-back or rushed player on a quantized grid) still fits."""
    if len(beats) < 2 or len(onsets) < 2:
        return 0.0
    period = np.diff(beats)
    idx = np.clip(np.searchsorted(beats, onsets[:-1], side="right") - 1, 0, len(period) - 1)
    ioi_beats = np.diff(onsets) / period[idx]
    frac = ioi_beats - np.floor(ioi_beats)
    dist = np.min(np.abs(frac[:, None] - _GRID_FRACTIONS[None, :]), axis=1) * period[idx]
    return float(np.mean(dist <= tol_s))


def _onset_envelope(notes: np.ndarray, end_s: float) -> np.ndarray:
    env = np.zeros(int(np.ceil(end_s * _ENVELOPE_RATE)) + 2, dtype=np.float32)
    np.add.at(env, np.round(notes[:, 0] * _ENVELOPE_RATE).astype(int), notes[:, 3] / 127.0)
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(env, 1.0)


def _tempo_and_beats(pm, notes: np.ndarray, onsets: np.ndarray) -> tuple[float, np.ndarray, str]:
    """(tempo_bpm, beat times, source): the file's tempo map when its onsets sit on that grid
    (quantized/synthesized files), otherwise librosa's estimate from the onset envelope."""
    end_s = float(notes[:, 1].max())
    grid = np.asarray(pm.get_beats(), dtype=np.float64)
    grid = grid[grid <= end_s + 1e-6]
    if len(grid) >= 3 and _grid_fit(onsets, grid) >= GRID_FIT_MIN:
        times, qpm = pm.get_tempo_changes()
        # time-weighted tempo of the map over the notes' span
        bounds = np.append(np.clip(times, 0, end_s), end_s)
        weights = np.diff(bounds)
        tempo = float(np.average(qpm, weights=weights)) if weights.sum() > 0 else float(qpm[0])
        return tempo, grid, "tempo_map"
    import librosa

    env = _onset_envelope(notes, end_s)
    tempo, beat_frames = librosa.beat.beat_track(onset_envelope=env, sr=_ENVELOPE_RATE, hop_length=1,
                                                 units="frames")
    beats = np.asarray(beat_frames, dtype=np.float64) / _ENVELOPE_RATE
    return float(np.atleast_1d(tempo)[0]), beats, "onsets"


def swing_ratio(onsets_s: np.ndarray, beats_s: np.ndarray, min_beats: int = 4) -> float:
    """Swing ratio from inter-onset timing.

    For each beat interval holding exactly one onset strictly inside (between 30 % and 85 % of
    the beat), the onset's position as a fraction of the beat; the median over such beats.
    Straight eighths → 0.5, triplet swing (2:1) → 0.667, shuffle (3:1) → 0.75
    (cf. Friberg & Sundström 2002, "Swing ratios and ensemble timing in jazz performance").

    Args:
        onsets_s: ``(n,)`` distinct onset times (s).
        beats_s: ``(m,)`` beat times (s), increasing.
        min_beats: fewer qualifying beats than this → NaN.

    Returns:
        float in (0.3, 0.85), or NaN.
    """
    onsets_s, beats_s = np.asarray(onsets_s, float), np.asarray(beats_s, float)
    fracs = []
    for b0, b1 in zip(beats_s[:-1], beats_s[1:]):
        period = b1 - b0
        inside = onsets_s[(onsets_s > b0 + 0.1 * period) & (onsets_s < b1 - 0.1 * period)]
        if len(inside) == 1:
            f = (inside[0] - b0) / period
            if 0.3 < f < 0.85:
                fracs.append(f)
    return float(np.median(fracs)) if len(fracs) >= min_beats else float("nan")


def _beat_offset_ms(onsets: np.ndarray, beats: np.ndarray) -> float:
    """Median signed distance (ms) of onsets near a beat (within 12 % of it) from that beat."""
    if len(beats) < 2 or not len(onsets):
        return float("nan")
    idx = np.clip(np.searchsorted(beats, onsets), 1, len(beats) - 1)
    near = np.where(np.abs(onsets - beats[idx - 1]) < np.abs(onsets - beats[idx]), idx - 1, idx)
    d = onsets - beats[near]
    period = float(np.median(np.diff(beats)))
    d = d[np.abs(d) < 0.12 * period]
    return float(np.median(d) * 1000.0) if d.size else float("nan")


def groove_class(swing: float, beat_offset_ms: float, grid_source: str, offset_threshold_ms: float = 10.0) -> str:
    """Groove type from the swing ratio and the on-beat timing.

    ``laid-back`` / ``rushed``: on-beat onsets late / early by more than ``offset_threshold_ms``
    (median) against the file's own tempo grid (only decidable when ``grid_source ==
    "tempo_map"``); else ``shuffle`` (swing ≥ 0.71), ``swing`` (0.58 ≤ swing < 0.71), ``straight``
    (swing < 0.58 or no off-beat pairs found).
    """
    if grid_source == "tempo_map" and np.isfinite(beat_offset_ms):
        if beat_offset_ms >= offset_threshold_ms:
            return "laid-back"
        if beat_offset_ms <= -offset_threshold_ms:
            return "rushed"
    if not np.isfinite(swing) or swing < 0.58:
        return "straight"
    return "shuffle" if swing >= 0.71 else "swing"


def articulation_class(ratio: float) -> str:
    """``staccato`` (< 0.5), ``detached`` (0.5–0.9), ``legato`` (≥ 0.9) from the note-length ratio."""
    if not np.isfinite(ratio):
        return "unknown"
    return "staccato" if ratio < 0.5 else ("detached" if ratio < 0.9 else "legato")


def _articulation_ratio(notes: np.ndarray, onsets: np.ndarray) -> float:
    """Median over notes of duration / (time to the next distinct onset); the last onset is skipped."""
    nxt = np.searchsorted(onsets, notes[:, 0] + ONSET_MERGE_S, side="left")
    ok = nxt < len(onsets)
    gap = onsets[nxt[ok]] - notes[ok, 0]
    ratio = (notes[ok, 1] - notes[ok, 0]) / np.maximum(gap, 1e-3)
    return float(np.median(np.minimum(ratio, 4.0))) if ratio.size else float("nan")


# ----------------------------------------------------------------------------- melody
def _skyline(notes: np.ndarray) -> np.ndarray:
    """Melody by the skyline rule: the highest pitch of each distinct onset. ``(k, 2)`` (time_s, pitch)."""
    onsets = _onsets(notes[:, 0])
    idx = np.clip(np.searchsorted(onsets, notes[:, 0] + 1e-9, side="right") - 1, 0, len(onsets) - 1)
    top = np.full(len(onsets), -1.0)
    np.maximum.at(top, idx, notes[:, 2])
    return np.stack([onsets, top], axis=1)


def _contour(melody: np.ndarray) -> dict[str, Any]:
    steps = np.diff(melody[:, 1])
    n = max(1, steps.size)
    if melody.shape[0] >= 3:
        third = max(1, melody.shape[0] // 3)
        a, b, c = (melody[:third, 1].mean(), melody[third:-third or None, 1].mean(), melody[-third:, 1].mean())
        if b > a + 1 and b > c + 1:
            shape = "arch"
        elif b < a - 1 and b < c - 1:
            shape = "bowl"
        elif c > a + 1:
            shape = "ascending"
        elif c < a - 1:
            shape = "descending"
        else:
            shape = "flat"
    else:
        shape = "flat"
    return {
        "contour_up_fraction": float(np.sum(steps > 0) / n),
        "contour_down_fraction": float(np.sum(steps < 0) / n),
        "contour_repeat_fraction": float(np.sum(steps == 0) / n),
        "contour_mean_abs_interval": float(np.abs(steps).mean()) if steps.size else float("nan"),
        "contour_step_fraction": float(np.sum((np.abs(steps) > 0) & (np.abs(steps) <= 2)) / n),
        "contour_shape": shape,
    }


def _velocity_curve(notes: np.ndarray, n_points: int = 32) -> tuple[np.ndarray, dict[str, float]]:
    """Velocity over time resampled to ``n_points`` (mean velocity per equal time bin, interpolated
    over empty bins) and its statistics (slope per second by least squares, range)."""
    t, v = notes[:, 0], notes[:, 3]
    edges = np.linspace(t.min(), t.max() + 1e-9, n_points + 1)
    b = np.clip(np.digitize(t, edges) - 1, 0, n_points - 1)
    sums, counts = np.bincount(b, v, n_points), np.bincount(b, None, n_points)
    centres = (edges[:-1] + edges[1:]) / 2
    have = counts > 0
    curve = np.interp(centres, centres[have], sums[have] / counts[have]).astype(np.float32)
    slope = float(np.polyfit(t, v, 1)[0]) if len(np.unique(t)) > 1 else 0.0
    return curve, {"velocity_slope_per_s": slope, "velocity_range": float(v.max() - v.min()),
                   "velocity_curve_std": float(curve.std())}


# ----------------------------------------------------------------------------- key / chords
def _music21_stream(path: Path):
    from music21 import converter

    try:
        return converter.parse(str(path), format="midi")
    except Exception as exc:  # noqa: BLE001
        raise RejectedInput(path, "undecodable", f"music21 could not parse it: {type(exc).__name__}: {exc}"[:300]) from exc


def estimate_key(stream) -> tuple[str, str, float]:
    """Krumhansl–Schmuckler key of a music21 stream.

    Returns:
        ``(tonic, mode, correlation)``, e.g. ``("C", "major", 0.93)``; tonic spelled by music21
        (``"B-"`` = B♭), correlation = Pearson r of the winning key profile.
    """
    from music21 import analysis

    k = analysis.discrete.KrumhanslSchmuckler().getSolution(stream)
    return k.tonic.name, k.mode, float(k.correlationCoefficient)


def chord_progression(stream, key_tonic: str, key_mode: str, max_chords: int = 16) -> list[str]:
    """Roman-numeral chord progression: the stream is chordified, the pitch classes sounding in
    each measure (weighted by duration, those with ≥ 15 % of the measure's weight, at most 4)
    form that measure's chord, named with ``roman.romanNumeralFromChord`` in the key; repeats
    of the same numeral are merged. Returns at most ``max_chords`` numerals (e.g. ``["I", "V", "vi", "IV"]``).
    """
    from music21 import chord, key, roman

    k = key.Key(key_tonic, key_mode)
    chords = stream.chordify()
    out: list[str] = []
    for m in chords.getElementsByClass("Measure") or [chords]:
        weight: dict[int, float] = {}
        names: dict[int, Any] = {}
        for c in m.recurse().getElementsByClass("Chord"):
            for p in c.pitches:
                weight[p.pitchClass] = weight.get(p.pitchClass, 0.0) + float(c.quarterLength)
                names.setdefault(p.pitchClass, p)
        if not weight:
            continue
        total = sum(weight.values())
        keep = sorted((pc for pc, w in weight.items() if w >= 0.15 * total), key=lambda pc: -weight[pc])[:4]
        try:
            rn = roman.romanNumeralFromChord(chord.Chord([names[pc] for pc in keep]), k)
            fig = rn.romanNumeral + ("7" if rn.seventh is not None and len(keep) >= 4 else "")
        except Exception:  # noqa: BLE001 - unnameable sonority
            continue
        if not out or out[-1] != fig:
            out.append(fig)
        if len(out) >= max_chords:
            break
    return out


# ----------------------------------------------------------------------------- all features
@dataclass
class MidiFeatures:
    """All symbolic features of one file.

    Attributes:
        scalars: JSON-able ``{name: float | str}`` — ``midi_statistics`` keys plus ``key``
            (e.g. ``"C major"``), ``key_tonic``, ``mode`` (``major``/``minor``),
            ``key_correlation``, ``tempo_bpm``, ``tempo_source`` (``tempo_map``/``onsets``),
            ``pitch_range_semitones``, ``contour_*``, ``velocity_slope_per_s``,
            ``velocity_range``, ``velocity_curve_std``, ``articulation_ratio``,
            ``articulation``, ``swing_ratio``, ``beat_offset_ms``, ``groove_type``,
            ``chord_progression`` (``"I-V-vi-IV"``).
        arrays: ``velocity_curve`` (32,) float32 (MIDI velocity), ``melody`` (k, 2) float32
            (onset s, MIDI pitch; skyline), ``onsets_s`` (n,) float32, ``beats_s`` (m,) float32.
    """

    scalars: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def midi_features(path: str | Path, chords: bool = True) -> MidiFeatures:
    """Extract every symbolic feature of a MIDI file (see ``MidiFeatures``).

    Args:
        path: ``.mid``/``.midi`` file.
        chords: also run music21's key and chord analysis (≈ 0.3–1 s per file); when False
            ``key``/``mode``/``chord_progression`` are empty strings and ``key_correlation`` NaN.

    Raises:
        RejectedInput: see ``load_midi``; music21 failing to parse a file pretty_midi read.
    """
    p = Path(path)
    pm = load_midi(p)
    notes = _notes(pm)
    s: dict[str, Any] = _statistics(pm, notes)
    onsets = _onsets(notes[:, 0])
    tempo, beats, source = _tempo_and_beats(pm, notes, onsets)
    offset = _beat_offset_ms(onsets, beats)
    # swing is measured against beats moved onto the player's own (early/late) beat placement
    swing = swing_ratio(onsets, beats + (offset / 1000.0 if np.isfinite(offset) else 0.0))
    art = _articulation_ratio(notes, onsets)
    melody = _skyline(notes)
    curve, vstats = _velocity_curve(notes)
    s.update({
        "tempo_bpm": tempo, "tempo_source": source,
        "pitch_range_semitones": float(notes[:, 2].max() - notes[:, 2].min()),
        **_contour(melody), **vstats,
        "articulation_ratio": art, "articulation": articulation_class(art),
        "swing_ratio": swing, "beat_offset_ms": offset,
        "groove_type": groove_class(swing, offset, source),
        "key": "", "key_tonic": "", "mode": "", "key_correlation": float("nan"), "chord_progression": "",
    })
    if chords:
        stream = _music21_stream(p)
        tonic, mode, r = estimate_key(stream)
        s.update({"key": f"{tonic} {mode}", "key_tonic": tonic, "mode": mode, "key_correlation": r})
        try:
            s["chord_progression"] = "-".join(chord_progression(stream, tonic, mode))
        except Exception:  # noqa: BLE001 - a chordify failure must not lose the other features
            s["chord_progression"] = ""
    arrays = {"velocity_curve": curve, "melody": melody.astype(np.float32),
              "onsets_s": onsets.astype(np.float32), "beats_s": beats.astype(np.float32)}
    return MidiFeatures(s, arrays)
