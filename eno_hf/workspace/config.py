"""Typed settings of dataset workspaces: ``Settings.workspace`` (``eno_hf.config``).

Every default lives here; ``configs/workspace.yaml`` overrides them for the 4Q + PercePiano
example. This module imports nothing from eno so ``eno_hf.config`` can import it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)  # finite floats only


EMOTIONS = ("happy", "angry", "sad", "calm")
"""The four categories of the emotion recognizer: Russell's circumplex quadrants
(Q1 +valence +arousal, Q2 −valence +arousal, Q3 −valence −arousal, Q4 +valence −arousal)."""

EMOTION_VALENCE_AROUSAL: dict[str, tuple[float, float]] = {
    "happy": (0.8, 0.6),
    "angry": (-0.7, 0.8),
    "sad": (-0.7, -0.6),
    "calm": (0.6, -0.7),
}
"""Emotion → (valence, arousal) in [−1, 1]: the centre of each category on Russell's circumplex
(J. A. Russell, "A circumplex model of affect", J. Pers. Soc. Psychol. 39(6), 1980: happy/glad at
about 10–30°, angry/tense at about 100–120°, sad/depressed at about 200–210°, calm/relaxed at about
300–320°, radius ≈ 1), rounded. Used when a label gives only the category."""


class CsvAnnotations(_Model):
    """Annotations read from a metadata table keyed by file stem (e.g. PercePiano ``labels.csv``).

    ``valence`` and ``arousal`` are mapped linearly from ``[scale_low, scale_high]`` to
    ``[−1, 1]`` (``valence_invert`` flips the sign, for a pleasant→dark scale); the emotion is
    the circumplex quadrant of (valence, arousal) unless ``emotion_column`` gives it.
    """

    path: Path
    id_column: str
    valence_column: str | None = None
    valence_invert: bool = False
    arousal_column: str | None = None
    scale_low: float = 0.0
    scale_high: float = 1.0
    emotion_column: str | None = None
    performer_column: str | None = None
    group_column: str | None = None
    """Split group from the table (e.g. 4Q ``Artist``: one artist never spans two splits);
    replaces the import's group for the sample and its augmented copies."""


class ImportSource(_Model):
    """One folder to import."""

    path: Path
    name: str | None = None
    """Source name recorded per sample (default: its key in ``workspace.sources``, else the folder name)."""
    kind: Literal["auto", "midi", "audio"] = "auto"
    limit: int | None = None
    """Import at most this many files (sorted by path; a quick subset)."""
    limit_per_folder: int | None = None
    """At most this many files per immediate sub-folder (a class-balanced subset)."""
    group_pattern: str | None = None
    """Regex on the file stem; its capture groups joined by ``_`` give the split group (files
    of one group never cross splits). Default: the stem (each file its own group)."""
    copy_files: bool = False
    """Copy the files into ``raw/``; default: symbolic links (the data stays where it is)."""
    folder_labels: bool = True
    """Annotate the emotion from the folder names (``folder_emotions``)."""
    csv: CsvAnnotations | None = None


class AugmentConfig(_Model):
    """``eno dataset augment``: copies per source sample with random parameters (seeded)."""

    midi_copies: int = 2
    audio_copies: int = 1
    seed: int = 0
    midi_ops: list[Literal["transpose", "time_stretch", "velocity_scale", "timing_jitter", "note_dropout"]] = Field(
        default_factory=lambda: ["transpose", "time_stretch", "velocity_scale", "timing_jitter", "note_dropout"])
    audio_ops: list[Literal["pitch_shift", "time_stretch", "noise", "gain"]] = Field(
        default_factory=lambda: ["pitch_shift", "time_stretch", "noise", "gain"])
    transpose_semitones: tuple[int, int] = (-6, 6)
    time_stretch: tuple[float, float] = (0.9, 1.1)
    velocity_scale: tuple[float, float] = (0.8, 1.2)
    timing_jitter_ms: float = 5.0
    note_dropout: float = 0.02
    pitch_shift_semitones: tuple[float, float] = (-2.0, 2.0)
    noise_amplitude: tuple[float, float] = (0.0, 0.005)
    """Gaussian noise standard deviation relative to full scale (0–0.5 %)."""
    gain: tuple[float, float] = (0.8, 1.2)


class SynthConfig(_Model):
    """``eno dataset synthesize``: rule-based MIDI per emotion (``eno_hf.workspace.synth``)."""

    per_category: int = 4
    bars: int = 8
    seed: int = 0
    tonics: list[str] = Field(default_factory=lambda: ["C", "D", "E-", "F", "G", "A", "B-"])


class ValidateThresholds(_Model):
    """Minimum scores; ``eno dataset validate`` exits non-zero below any of them."""

    balance: float = 0.5
    diversity: float = 0.3
    quality: float = 0.8
    structure: float = 1.0


class WorkspaceConfig(_Model):
    """A dataset workspace (``eno dataset ...``)."""

    root: Path | None = None
    """Folder holding one sub-folder per workspace; default ``{paths.data_root}/workspaces``.
    Import source paths in a YAML file are relative to that file."""
    dataset_id: str = "emotion"
    target_model: Literal["emotion", "melody", "harmony", "dynamics", "groove"] = "emotion"
    categories: list[str] = Field(default_factory=lambda: list(EMOTIONS))
    target_per_category: int = 100
    emotion_valence_arousal: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: dict(EMOTION_VALENCE_AROUSAL))
    folder_emotions: dict[str, str] = Field(default_factory=lambda: {
        "q1": "happy", "q2": "angry", "q3": "sad", "q4": "calm",
        "happy": "happy", "angry": "angry", "tense": "angry", "sad": "sad", "calm": "calm"})
    """Folder name (case-insensitive) → emotion; 4Q quadrants Q1..Q4 and plain names."""
    sources: dict[str, ImportSource] = Field(default_factory=dict)
    """Source name → folder to import (a mapping so ``--set workspace.sources.NAME.limit=10`` works)."""
    midi_extensions: list[str] = Field(default_factory=lambda: [".mid", ".midi"])
    audio_extensions: list[str] = Field(
        default_factory=lambda: [".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aiff", ".aif"])
    chords: bool = True
    """extract: run music21's key and chord analysis on MIDI (≈ 0.3–1 s per file)."""
    transcribe_audio: Literal["auto", "always", "never"] = "auto"
    """extract: transcribe audio samples to MIDI (``eno_hf.audio.transcribe``, Basic Pitch) and take
    their key, mode, tempo, groove, swing ratio, articulation and chords from the transcription's
    MIDI features, as for MIDI samples (the audio's own chroma key and tempo stay as ``audio_*``).
    ``auto``: when basic-pitch is installed (extra ``transcription``); ``always``: a missing
    install is an error; ``never``: audio features only."""
    num_workers: int = 2
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    synth: SynthConfig = Field(default_factory=SynthConfig)
    thresholds: ValidateThresholds = Field(default_factory=ValidateThresholds)
    """Splits use ``dataset.split`` (fractions, seed) and the dataset build settings of ``dataset``."""
