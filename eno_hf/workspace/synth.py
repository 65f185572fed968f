"""``eno dataset synthesize``: MIDI from music-theory rules per emotion, rendered by FluidSynth.

Rules per emotion (valence → mode and harmony, arousal → tempo, dynamics, articulation; after
Juslin & Laukka 2004 and Gabrielsson & Lindström 2010, "The role of structure in the musical
expression of emotions": major/fast/loud/staccato ≈ happy, minor/fast/loud/staccato ≈ angry,
minor/slow/soft/legato ≈ sad, major/slow/soft/legato ≈ calm):

======= ==================== ============ =========== ============ ===============================
emotion modes                tempo (bpm)  velocity    articulation progressions (roman numerals)
======= ==================== ============ =========== ============ ===============================
happy   ionian, lydian       112–144      80–105      detached     I-V-vi-IV, I-IV-V-I, I-vi-IV-V
angry   aeolian, phrygian    132–168      96–120      staccato     i-VI-VII-i, i-iv-V-i, i-II-i-V
sad     aeolian              56–76          40–64       legato       i-iv-v-i, i-VI-III-VII, i-iv-VI-V
calm    ionian, mixolydian   60–84        44–68       legato       I-IV-I-V, I-vi-IV-V, I-iii-IV-I
======= ==================== ============ =========== ============ ===============================

Grooves (drawn per sample): straight (off-beat eighths at 0.5 of the beat), swing (2/3),
shuffle (3/4), laid-back (every onset 25 ms behind the grid), rushed (20 ms ahead; the piece
starts one beat in so nothing is negative). Texture: a bass root per bar (octave 2), a
three-voice chord per bar voiced for the smallest total movement from the previous chord
(voice leading), and a melody on eighth notes walking the mode's scale — steps of one or two
degrees (a leap of a third at most, followed by a step back), a chord tone on every beat.

Samples are written to ``raw/synthetic/{sample_id}.mid`` (id = content hash) with their
annotations (emotion, valence/arousal from the emotion map, key, mode, tempo, groove, swing
ratio, articulation, chord progression; ``is_verified = False``, ``notes = "synthetic"``).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from eno_hf.config import Settings
from eno_hf.utils.io import atomic_write
from eno_hf.workspace.config import SynthConfig
from eno_hf.workspace.ingest import SAMPLE_ID_HEX
from eno_hf.workspace.keys import key_name, pitch_class
from eno_hf.workspace.layout import Workspace
from eno_hf.workspace.schema import Annotations, Manifest, ManifestEntry

MODES = {  # semitone offsets of the 7 degrees
    "ionian": (0, 2, 4, 5, 7, 9, 11), "lydian": (0, 2, 4, 6, 7, 9, 11), "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "aeolian": (0, 2, 3, 5, 7, 8, 10), "phrygian": (0, 1, 3, 5, 7, 8, 10),
}
MAJOR_MODES = {"ionian", "lydian", "mixolydian"}

_NUMERAL_DEGREE = {"I": 0, "II": 1, "III": 2, "IV": 3, "V": 4, "VI": 5, "VII": 6}

RULES: dict[str, dict[str, Any]] = {
    "happy": {"modes": ["ionian", "lydian"], "tempo": (112, 144), "velocity": (80, 105), "art": "detached",
              "progressions": ["I-V-vi-IV", "I-IV-V-I", "I-vi-IV-V"],
              "grooves": ["straight", "swing", "shuffle"]},
    "angry": {"modes": ["aeolian", "phrygian"], "tempo": (132, 168), "velocity": (96, 120), "art": "staccato",
              "progressions": ["i-VI-VII-i", "i-iv-V-i", "i-II-i-V"],
              "grooves": ["straight", "rushed", "shuffle"]},
    "sad": {"modes": ["aeolian"], "tempo": (56, 76), "velocity": (40, 64), "art": "legato",
            "progressions": ["i-iv-v-i", "i-VI-III-VII", "i-iv-VI-V"],
            "grooves": ["straight", "laid-back", "swing"]},
    "calm": {"modes": ["ionian", "mixolydian"], "tempo": (60, 84), "velocity": (44, 68), "art": "legato",
             "progressions": ["I-IV-I-V", "I-vi-IV-V", "I-iii-IV-I"],
             "grooves": ["straight", "laid-back", "swing"]},
}
_ART_RATIO = {"staccato": 0.35, "detached": 0.75, "legato": 1.0}
_SWING = {"straight": 0.5, "swing": 2 / 3, "shuffle": 0.75, "laid-back": 0.5, "rushed": 0.5}
_OFFSET_S = {"laid-back": 0.025, "rushed": -0.020}


@dataclass
class SynthSpec:
    emotion: str
    tonic: str
    mode_name: str
    tempo_bpm: float
    velocity: tuple[int, int]
    articulation: str
    progression: list[str]
    groove: str
    bars: int


def chord_pitches(numeral: str, tonic_pc: int, mode_name: str, octave: int = 4) -> list[int]:
    """MIDI pitches (root-position triad built from the mode's degrees) of a roman numeral; a
    ``V`` in a minor mode is major (raised leading tone, harmonic minor practice)."""
    scale = MODES[mode_name]
    deg = _NUMERAL_DEGREE[numeral.upper().rstrip("7")]
    base = 12 * (octave + 1) + tonic_pc
    out = [base + scale[(deg + k) % 7] + 12 * ((deg + k) // 7) for k in (0, 2, 4)]
    if numeral == "V" and mode_name not in MAJOR_MODES:
        out[1] = out[0] + 4
    return out


def progression_label(progression: list[str], tonic: str, mode_name: str) -> str:
    """Roman numerals of the triads actually written (music21 ``romanNumeralFromChord`` in the
    major/minor key of the tonic), e.g. lydian ``IV`` is written and labelled ``#iv``-family."""
    from music21 import chord, key, roman

    k = key.Key(tonic, "major" if mode_name in MAJOR_MODES else "minor")
    out = []
    for numeral in progression:
        pitches = chord_pitches(numeral, pitch_class(tonic), mode_name)
        out.append(roman.romanNumeralFromChord(chord.Chord(pitches), k).romanNumeral)
    return "-".join(out)


def voice_lead(prev: list[int] | None, triad: list[int]) -> list[int]:
    """The inversion/octave placement of ``triad`` (3 voices in 52..76) closest to ``prev``
    (smallest summed absolute movement)."""
    pcs = sorted({p % 12 for p in triad})
    cands = []
    for a in range(52, 77):
        if a % 12 not in pcs:
            continue
        for b in range(a + 1, a + 10):
            for c in range(b + 1, b + 10):
                if {a % 12, b % 12, c % 12} == set(pcs) and c <= 79:
                    cands.append([a, b, c])
    if prev is None:
        return min(cands, key=lambda v: abs(v[0] - 60))
    return min(cands, key=lambda v: sum(abs(x - y) for x, y in zip(v, prev)))


def draw_spec(emotion: str, rng: np.random.Generator, cfg: SynthConfig) -> SynthSpec:
    r = RULES[emotion]
    mode_name = str(rng.choice(r["modes"]))
    tonic = str(rng.choice(cfg.tonics))
    lo, hi = r["tempo"]
    return SynthSpec(emotion, tonic, mode_name, float(rng.integers(lo, hi + 1)), r["velocity"], r["art"],
                     str(rng.choice(r["progressions"])).split("-"), str(rng.choice(r["grooves"])), cfg.bars)


def compose(spec: SynthSpec, rng: np.random.Generator):
    """A ``pretty_midi.PrettyMIDI`` (piano, 4/4) following ``spec``."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=spec.tempo_bpm)
    piano = pretty_midi.Instrument(program=0, name="piano")
    beat = 60.0 / spec.tempo_bpm
    lead_in = beat if spec.groove == "rushed" else 0.0
    offset = _OFFSET_S.get(spec.groove, 0.0)
    swing = _SWING[spec.groove]
    ratio = _ART_RATIO[spec.articulation]
    tpc = pitch_class(spec.tonic)
    scale = MODES[spec.mode_name]
    vlo, vhi = spec.velocity
    prev = None
    degree = 7  # melody position in scale degrees above the tonic of octave 5 (index into 3 octaves)

    def scale_pitch(d: int) -> int:
        return 12 * 5 + tpc + scale[d % 7] + 12 * (d // 7) - 12

    def note(start: float, dur: float, pitch: int, vel: int) -> None:
        s = max(0.0, start + offset + lead_in)
        piano.notes.append(pretty_midi.Note(velocity=int(np.clip(vel, 1, 127)), pitch=int(pitch),
                                            start=s, end=s + max(0.05, dur)))

    for bar in range(spec.bars):
        numeral = spec.progression[bar % len(spec.progression)]
        triad = chord_pitches(numeral, tpc, spec.mode_name)
        voicing = voice_lead(prev, triad)
        prev = voicing
        t0 = bar * 4 * beat
        bar_vel = int(rng.integers(vlo, vhi + 1))
        # bass root + held chord (legato pad under the melody)
        note(t0, 4 * beat * 0.95, triad[0] - 24, bar_vel - 8)
        for p in voicing:
            note(t0, 4 * beat * (0.95 if spec.articulation == "legato" else ratio * 0.5 + 0.4), p, bar_vel - 15)
        chord_pcs = {p % 12 for p in triad}
        for b in range(4):
            for half in (0, 1):
                if half == 0:  # a chord tone on every beat: nearest chord-tone degree to the walk
                    cands = [d for d in range(degree - 3, degree + 4) if (tpc + scale[d % 7]) % 12 in chord_pcs]
                    degree = min(cands, key=lambda d: (abs(d - degree), rng.random())) if cands else degree
                else:
                    step = int(rng.choice([-2, -1, -1, 1, 1, 2]))
                    degree += step
                degree = int(np.clip(degree, 3, 16))
                start = t0 + (b + (swing if half else 0.0)) * beat
                length = ((swing if half == 0 else 1 - swing) * beat) * ratio
                accent = 10 if (b == 0 and half == 0) else (4 if half == 0 else 0)
                note(start, length, scale_pitch(degree), bar_vel + accent - 4 * half)
    # final tonic chord
    t_end = spec.bars * 4 * beat
    for p in chord_pitches("I" if spec.mode_name in MAJOR_MODES else "i", tpc, spec.mode_name):
        note(t_end, 2 * beat, p, vlo)
    pm.instruments.append(piano)
    return pm


def synthesize_workspace(ws: Workspace, manifest: Manifest, settings: Settings, per_category: int | None = None) -> list[str]:
    """Write ``per_category`` synthetic samples for every category of the workspace (in place;
    saves the manifest). Deterministic for a given ``synth.seed``; samples already present (same
    content) are not added twice. Returns the new sample ids."""
    cfg = settings.workspace.synth
    wcfg = settings.workspace
    n = cfg.per_category if per_category is None else per_category
    ids = manifest.by_id()
    new: list[str] = []
    out_dir = ws.abs("raw/synthetic")
    out_dir.mkdir(parents=True, exist_ok=True)
    for ci, emotion in enumerate(wcfg.categories):
        if emotion not in RULES:
            continue
        for i in range(n):
            rng = np.random.default_rng([cfg.seed, ci, i])
            spec = draw_spec(emotion, rng, cfg)
            pm = compose(spec, rng)
            buf = io.BytesIO()
            pm.write(buf)
            sid = hashlib.sha256(buf.getvalue()).hexdigest()[:SAMPLE_ID_HEX]
            final = out_dir / f"{sid}.mid"
            atomic_write(final, lambda fh: fh.write(buf.getvalue()))
            if sid in ids:
                continue
            mode = "major" if spec.mode_name in MAJOR_MODES else "minor"
            v, a = wcfg.emotion_valence_arousal.get(emotion, (None, None))
            ann = Annotations(emotion=emotion, valence=v, arousal=a,
                              key=key_name(pitch_class(spec.tonic), mode), mode=mode, tempo_bpm=spec.tempo_bpm,
                              groove_type=spec.groove, swing_ratio=_SWING[spec.groove],
                              articulation=spec.articulation, chord_progression=progression_label(spec.progression, spec.tonic, spec.mode_name),
                              notes=f"synthetic: {spec.mode_name} mode")
            entry = ManifestEntry(sample_id=sid, file_path=ws.rel(final), kind="midi", origin="synthetic",
                                  source="synthetic", group=f"synthetic:{sid}", annotations=ann)
            manifest.samples.append(entry)
            ids[sid] = entry
            new.append(sid)
    ws.save(manifest)
    return new
