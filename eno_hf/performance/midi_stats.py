"""Performance statistics of a MIDI file (``midi_statistics``): the symbolic baseline's features.

Read with ``pretty_midi`` (Raffel & Ellis 2014). All times in seconds, velocities in MIDI units
(0-127). Features (``MIDI_STATISTICS``, in this order):

* density: ``duration_s``, ``n_notes``, ``notes_per_s``, ``onsets_per_s`` (distinct onsets 20 ms
  apart), mean ``polyphony`` (sounding notes averaged over time);
* velocity: mean, std, 10th/90th percentile, range (p90 - p10), mean absolute change between
  consecutive onsets;
* note duration: mean, std, median of ``log(duration)``; ``legato_ratio`` (mean overlap of a note
  with the next note of a higher onset, relative to the inter-onset interval; > 1 legato);
* inter-onset timing: mean and std of the inter-onset interval, its coefficient of variation,
  std of ``log`` IOI ratio between consecutive onsets (local tempo instability);
* pitch: mean, std, range;
* pedal (CC64 >= 64 = down): ``pedal_fraction`` (time down / duration), ``pedal_changes_per_s``,
  soft pedal (CC67) fraction.

Errors: a missing, empty or corrupt file, or one with no notes, raises
``eno_hf.errors.RejectedInput`` (``missing_file`` / ``empty`` / ``undecodable`` / ``silent``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from eno_hf.errors import RejectedInput

__all__ = ["MIDI_STATISTICS", "midi_statistics", "midi_statistics_matrix"]

MIDI_STATISTICS = (
    "duration_s", "n_notes", "notes_per_s", "onsets_per_s", "polyphony",
    "velocity_mean", "velocity_std", "velocity_p10", "velocity_p90", "velocity_range", "velocity_change",
    "duration_mean", "duration_std", "log_duration_median", "legato_ratio",
    "ioi_mean", "ioi_std", "ioi_cv", "log_ioi_ratio_std",
    "pitch_mean", "pitch_std", "pitch_range",
    "pedal_fraction", "pedal_changes_per_s", "soft_pedal_fraction",
)


def _pedal_fraction(ccs: list, number: int, end: float) -> tuple[float, int]:
    events = sorted((c.time, c.value >= 64) for c in ccs if c.number == number)
    down_t, state, total, changes = 0.0, False, 0.0, 0
    for t, down in events:
        if down and not state:
            down_t, state, changes = t, True, changes + 1
        elif not down and state:
            total += t - down_t
            state = False
    if state:
        total += max(0.0, end - down_t)
    return (total / end if end > 0 else 0.0), changes


def midi_statistics(path: str | Path) -> dict[str, float]:
    """The ``MIDI_STATISTICS`` of one MIDI performance (see the module docstring).

    Returns:
        ``{name: float}`` in ``MIDI_STATISTICS`` order, all finite.

    Raises:
        RejectedInput: missing / empty / unparseable file, or no notes.
    """
    import pretty_midi

    path = Path(path)
    if not path.is_file():
        raise RejectedInput(path, "missing_file", "MIDI file not found")
    if path.stat().st_size == 0:
        raise RejectedInput(path, "empty", "zero-byte file")
    try:
        pm = pretty_midi.PrettyMIDI(str(path))
    except Exception as exc:  # noqa: BLE001 - mido/pretty_midi raise many types on corrupt files
        raise RejectedInput(path, "undecodable", f"not a valid MIDI file ({type(exc).__name__})") from exc
    notes = sorted((n for inst in pm.instruments if not inst.is_drum for n in inst.notes), key=lambda n: n.start)
    if not notes:
        raise RejectedInput(path, "silent", "MIDI file has no notes")
    start = np.array([n.start for n in notes])
    end = np.array([n.end for n in notes])
    vel = np.array([n.velocity for n in notes], dtype=float)
    pitch = np.array([n.pitch for n in notes], dtype=float)
    dur = np.maximum(end - start, 1e-3)
    t0, t1 = float(start.min()), float(max(end.max(), pm.get_end_time()))
    total = max(t1 - t0, 1e-3)
    # onsets 20 ms apart form one chord onset
    onset_t, onset_v = [start[0]], [[vel[0]]]
    for s, v in zip(start[1:], vel[1:]):
        if s - onset_t[-1] > 0.02:
            onset_t.append(s)
            onset_v.append([v])
        else:
            onset_v[-1].append(v)
    onset_t = np.array(onset_t)
    onset_vel = np.array([np.mean(v) for v in onset_v])
    ioi = np.diff(onset_t) if onset_t.size > 1 else np.array([total])
    ioi = np.maximum(ioi, 1e-3)
    lr = np.diff(np.log(ioi)) if ioi.size > 1 else np.array([0.0])
    # legato: overlap of each note's end with the next onset, relative to the IOI
    nxt = np.searchsorted(onset_t, start + 0.02, side="left")
    valid = nxt < onset_t.size
    legato = ((end[valid] - start[valid]) / np.maximum(onset_t[nxt[valid]] - start[valid], 1e-3)) if valid.any() \
        else np.array([1.0])
    ccs = [c for inst in pm.instruments for c in inst.control_changes]
    pedal, changes = _pedal_fraction(ccs, 64, t1)
    soft, _ = _pedal_fraction(ccs, 67, t1)
    p10, p90 = np.percentile(vel, [10, 90])
    stats = {
        "duration_s": total, "n_notes": float(len(notes)), "notes_per_s": len(notes) / total,
        "onsets_per_s": onset_t.size / total, "polyphony": float(dur.sum() / total),
        "velocity_mean": vel.mean(), "velocity_std": vel.std(), "velocity_p10": p10, "velocity_p90": p90,
        "velocity_range": p90 - p10,
        "velocity_change": float(np.abs(np.diff(onset_vel)).mean()) if onset_vel.size > 1 else 0.0,
        "duration_mean": dur.mean(), "duration_std": dur.std(), "log_duration_median": float(np.median(np.log(dur))),
        "legato_ratio": float(np.median(legato)),
        "ioi_mean": ioi.mean(), "ioi_std": ioi.std(), "ioi_cv": float(ioi.std() / ioi.mean()),
        "log_ioi_ratio_std": float(lr.std()),
        "pitch_mean": pitch.mean(), "pitch_std": pitch.std(), "pitch_range": pitch.max() - pitch.min(),
        "pedal_fraction": pedal, "pedal_changes_per_s": changes / total, "soft_pedal_fraction": soft,
    }
    return {k: float(np.nan_to_num(stats[k])) for k in MIDI_STATISTICS}


def midi_statistics_matrix(paths: list[str | Path]) -> tuple[np.ndarray, list[dict[str, str]]]:
    """``(n, len(MIDI_STATISTICS))`` float64 rows for ``paths``; a rejected file gets a NaN row and
    a ``{"path", "reason", "detail"}`` entry in the second return value."""
    out = np.full((len(paths), len(MIDI_STATISTICS)), np.nan)
    rejected = []
    for i, p in enumerate(paths):
        try:
            out[i] = list(midi_statistics(p).values())
        except RejectedInput as exc:
            rejected.append({"path": str(p), "reason": exc.reason, "detail": exc.detail})
    return out, rejected
