"""Typed configuration of the mix-clarity workflow (``Settings.clarity``; ``configs/clarity.yaml``).

Every default of ``eno clarity ...`` lives here; YAML files and ``--set clarity.x=y`` only override
them. The generation recipe (flaw -> pedalboard effect + parameter ranges) is part of this config and
is seeded (``generate.seed``), so a generated data set is a pure function of the gold audio and this
config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from eno_hf.locations import shared_path

__all__ = ["ClarityConfig", "FlawRecipe", "GenerateConfig", "GoldSourceConfig", "NormalizeConfig",
           "FeatureConfig", "ModelsConfig", "INSTRUMENTS", "DEFAULT_FLAWS"]

INSTRUMENTS: tuple[str, ...] = ("drums", "vocals", "bass", "guitar", "keys")
"""The instrument folders of the gold/flawed layout."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)  # finite floats only


class FlawRecipe(_Model):
    """How one flaw is made from gold audio with one pedalboard effect.

    ``effect``: ``peak`` (``pedalboard.PeakFilter``), ``low_shelf`` (``LowShelfFilter``),
    ``high_shelf`` (``HighShelfFilter``), ``compressor`` (``Compressor`` + make-up gain back to the
    input RMS), ``distortion`` (``Distortion``), ``highpass`` / ``lowpass`` (``HighpassFilter`` /
    ``LowpassFilter``: pedalboard's 1st-order, 6 dB/octave filters, corner drawn from
    ``cutoff_range_hz``). Each generated file gets the drawn parameters and its exact correction:
    for EQ effects ``-gain_db`` on the output ``{effect}_{cutoff_hz}hz_gain_db`` (the same filter
    with the opposite gain undoes it up to the filter's phase), for the compressor
    ``compression_ratio_excess = ratio - 1`` (expand by ``ratio`` above ``threshold_db``), for
    distortion ``distortion_drive_db``, for the pass filters ``{effect}_cutoff_hz`` = the corner
    frequency to compensate (Hz; 0 = no such filter, as on gold files).
    """

    effect: Literal["peak", "low_shelf", "high_shelf", "compressor", "distortion", "highpass", "lowpass"]
    cutoff_hz: float | None = None
    """EQ centre (peak) or corner (shelves) frequency, Hz (fixed, so the correction is exact)."""
    q: float = 1.0
    """EQ quality factor (pedalboard default 0.7071 for shelves)."""
    gain_db: tuple[float, float] | None = None
    """EQ gain range (dB), drawn uniformly; negative = cut."""
    threshold_db: tuple[float, float] = (-36.0, -24.0)
    """Compressor threshold range (dBFS)."""
    ratio: tuple[float, float] = (4.0, 12.0)
    """Compressor ratio range."""
    attack_ms: float = 2.0
    release_ms: float = 80.0
    drive_db: tuple[float, float] = (12.0, 30.0)
    """Distortion drive range (dB)."""
    cutoff_range_hz: tuple[float, float] = (150.0, 500.0)
    """High-/low-pass corner range (Hz), drawn uniformly (e.g. a too-high low cut: 150–500 Hz; a
    lowpass "muffled" flaw: 2000–6000 Hz)."""
    exclude_sounds: list[str] = Field(default_factory=list)
    """Sounds this flaw is never applied to (e.g. a 150 Hz shelf on a hi-hat changes nothing
    audible, so its label would be noise)."""

    def output_name(self) -> str:
        """Name of the correction-vector output this flaw sets."""
        if self.effect in ("peak", "low_shelf", "high_shelf"):
            return f"{self.effect}_{int(round(self.cutoff_hz or 0))}hz_gain_db"
        if self.effect in ("highpass", "lowpass"):
            return f"{self.effect}_cutoff_hz"
        return "compression_ratio_excess" if self.effect == "compressor" else "distortion_drive_db"


_HIGH = ["hihat", "cymbal"]  # little energy below ~400 Hz


def _default_flaws() -> dict[str, FlawRecipe]:
    return {
        "muddy": FlawRecipe(effect="peak", cutoff_hz=300, q=1.0, gain_db=(5.0, 12.0), exclude_sounds=_HIGH),
        "boxy": FlawRecipe(effect="peak", cutoff_hz=600, q=1.4, gain_db=(5.0, 12.0)),
        "nasal": FlawRecipe(effect="peak", cutoff_hz=1200, q=1.4, gain_db=(5.0, 12.0)),
        "harsh": FlawRecipe(effect="peak", cutoff_hz=3000, q=1.2, gain_db=(5.0, 12.0)),
        "boomy": FlawRecipe(effect="low_shelf", cutoff_hz=150, q=0.7071, gain_db=(6.0, 14.0),
                            exclude_sounds=_HIGH),
        "thin": FlawRecipe(effect="low_shelf", cutoff_hz=150, q=0.7071, gain_db=(-18.0, -8.0),
                           exclude_sounds=_HIGH),
        "dull": FlawRecipe(effect="high_shelf", cutoff_hz=5000, q=0.7071, gain_db=(-18.0, -8.0)),
        "over-compressed": FlawRecipe(effect="compressor", threshold_db=(-40.0, -28.0),
                                      ratio=(6.0, 20.0)),
    }


DEFAULT_FLAWS = tuple(_default_flaws())


class GoldSourceConfig(_Model):
    """Where ``eno clarity init`` gets real gold audio (nothing here is synthetic)."""

    drumkits_dir: Path = Path("/usr/share/hydrogen/data/drumkits")
    """Debian ``hydrogen-drumkits``: recorded kick/snare/tom/hi-hat/cymbal samples."""
    drums_per_sound: int = 12
    """Samples per drum sound (kick, snare, tom, hihat, cymbal), spread over the kits."""
    midi_dir: Path = Field(default_factory=lambda: shared_path("data/percepiano/midi"))
    """MIDI files rendered into bass/guitar/keys/vocals stems (default: PercePiano in eno's example
    material, ``$ENO_SHARED_DIR/data/percepiano/midi``)."""
    stems_per_instrument: int = 12
    """Rendered files per melodic instrument."""
    soundfont: Path = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
    """General MIDI soundfont for FluidSynth (Debian ``fluid-soundfont-gm``)."""
    programs: dict[str, int] = Field(default_factory=lambda: {
        "bass": 33, "guitar": 25, "keys": 0, "vocals": 52})
    """GM program (0-based) per instrument: 33 fingered bass, 25 steel guitar, 0 grand piano,
    52 choir aahs (the vocal stand-in)."""
    transpose: dict[str, int] = Field(default_factory=lambda: {
        "bass": -24, "guitar": -12, "keys": 0, "vocals": 0})
    """Semitones added to every note per instrument (bass two octaves down)."""
    max_duration_s: float = 6.0
    """Rendered and drum files are cut to at most this long."""


class GenerateConfig(_Model):
    """Flawed variants generated from gold audio (``eno clarity generate``)."""

    seed: int = 12
    flaws_per_file: int = 3
    """Flaws drawn (without replacement) per gold file."""
    flaws: dict[str, FlawRecipe] = Field(default_factory=_default_flaws)
    """Flaw name (lowercase, hyphens, no underscore) -> recipe."""


class NormalizeConfig(_Model):
    """Loudness normalization (ITU-R BS.1770-4 via ``eno_hf.audio.conditioning``)."""

    target_lufs: float = -18.0
    peak_ceiling_dbfs: float = -1.0
    """Clip guard: the gain is lowered so the sample peak stays at or below this."""
    write_processed: bool = True
    """Write the normalized WAVs to ``processed/`` (mirrors ``raw/``)."""
    unmeasurable: Literal["skip", "assume"] = "assume"
    """Files whose loudness cannot be measured (shorter than ``min_measurable_s``, silent):
    ``skip`` them (reported) or normalize them as if they measured ``assumed_lufs``."""
    assumed_lufs: float = -30.0
    """Loudness assumed for unmeasurable files (the original tool used -30 LUFS)."""
    min_measurable_s: float = 0.4
    """Shorter files have no complete 400 ms BS.1770 gating block: unmeasurable."""
    silence_threshold_dbfs: float = -70.0
    verify_tolerance_lu: float = 0.5


class FeatureConfig(_Model):
    """Fingerprint extraction (``eno_hf.features.fingerprint``)."""

    pickle: bool = False
    """Also write ``features.pkl`` (pandas pickle; never load one you did not write)."""


class ModelsConfig(_Model):
    """Correction regressor + flaw classifier and their comparison."""

    n_estimators: int = 500
    max_depth: int = 8
    test_size: float = 0.2
    cv_folds: int = 5
    seed: int = 0
    bootstrap: int = 1000
    """Group-bootstrap resamples for the 95 % intervals."""
    compare: bool = True
    """Also fit gradient boosting and a linear baseline on the same splits."""
    n_jobs: int = 2
    model_name: str = "eno-clarity"
    clearml: bool = True
    clearml_project: str = "eno"


class ClarityConfig(_Model):
    """The mix-clarity workflow (``eno clarity run``)."""

    workdir: Path | None = None
    """Default ``{data_root}/clarity``: ``raw/``, ``processed/``, ``features/``, ``analysis/``,
    ``models/``."""
    raw_dir: Path | None = None
    """The gold/flawed tree (default ``{workdir}/raw``); point it at your own to skip ``init``."""
    sample_rate: int = 22_050
    """Analysis rate (Hz): files are decoded (soxr) to mono at this rate."""
    min_per_category: int = 3
    """Validation: fewer files than this in a subset x instrument x flaw cell is ``unbalanced``."""
    gold: GoldSourceConfig = Field(default_factory=GoldSourceConfig)
    generate: GenerateConfig = Field(default_factory=GenerateConfig)
    normalize: NormalizeConfig = Field(default_factory=NormalizeConfig)
    features: FeatureConfig = Field(default_factory=FeatureConfig)
    models: ModelsConfig = Field(default_factory=ModelsConfig)
