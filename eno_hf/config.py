"""Typed configuration for eno, loaded from YAML with ``--set key=value`` overrides.

One place decides each default: the pydantic models below. YAML files only override them.

A config is a file path or the name of a built-in config (``eno_hf/configs/*.yaml``, the
repository's ``configs/`` folder: ``small``, ``percepiano``, ``datasets/4q``...; ``eno config
--list``). A config file may name others to start from with a top-level ``defaults`` list (files
relative to it, or built-in names), merged in order, then the file itself, then ``--set``
overrides::

    # eno.yaml
    defaults: [tagger]                  # the built-in recipe
    dataset: {name: my-music, source: {kind: folders, audio_root: music}}
    train: {epochs: 10}

Relative paths, one rule: a relative path written in a YAML file is relative to that file's folder
(``paths.*``, ``dataset.source.metadata/audio_root/allowed_roots``, ``model.encoder_path``,
``train.output_dir``, ``run.tag_files``...); a relative path given with ``--set`` or left at its
default is relative to the current directory. ``~`` and ``${VAR}`` are expanded in path values;
the built-in configs name eno's example material as ``${ENO_SHARED_DIR}/data/...``.

Example:
    >>> cfg = load_config("small", ["train.epochs=3", "dataset.segment.segment_s=5"])
    >>> cfg.train.epochs
    3

Errors:
    ``ConfigError`` (a ``ValueError``) naming the file or override and the reason.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

# Each package owns its config model; Settings composes them. Those modules import pydantic and
# eno_hf.locations only (performance.config: also its augmentation steps, numpy), never eno_hf.config.
from eno_hf.clarity.config import ClarityConfig  # the package's own section; Settings composes it
from eno_hf.embeddings.config import EmbedConfig  # the package's own section; Settings composes it
from eno_hf.locations import default_models_dir, shared_dir
from eno_hf.performance.config import PerformanceConfig  # the package's own section; Settings composes it
from eno_hf.serving.config import ServeConfig  # the package's own section; Settings composes it
from eno_hf.utils.io import json_hash
from eno_hf.workspace.config import WorkspaceConfig  # the package's own section; Settings composes it

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""Root of the source checkout (or the site-packages folder of an installed wheel)."""

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
"""The built-in configs, installed as package data (in a checkout: a link to ``configs/``)."""


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names it and the reason."""


class _Model(BaseModel):
    # allow_inf_nan=False: every float must be finite (.inf epochs or NaN rates are refused at load)
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


# ----------------------------------------------------------------------------- paths
class PathsConfig(_Model):
    """Where eno reads and writes (relative paths: see the module docstring's rule)."""

    data_root: Path = Path("eno-data")
    """Root of datasets, caches, reports, runs (a local folder by default; an NFS mount in prod)."""
    hub_dir: Path | None = None
    """Local model hub; default ``{data_root}/hub``."""
    models_dir: Path = Field(default_factory=default_models_dir)
    """Pretrained weights (``{models_dir}/sota-music-tagging``, ``{models_dir}/musicnn``; see
    ``eno_hf.models.weights``). Default: ``$ENO_MODELS_DIR``, else ``$ENO_SHARED_DIR/models``
    (the ``shared/`` folder beside a source checkout), else ``~/.eno/models``."""

    def hub(self) -> Path:
        return Path(self.hub_dir) if self.hub_dir is not None else Path(self.data_root) / "hub"


# ----------------------------------------------------------------------------- dataset
class MultiLabelColumn(_Model):
    """A metadata column holding several labels in one string, e.g. ``"Gloomy; Somber"``."""

    column: str
    separator: str = ";"


class SourceConfig(_Model):
    """Where recordings and their metadata come from (see ``eno_hf.data.sources``)."""

    kind: Literal["csv", "json_dump", "jsonl_segments", "folders"] = "csv"
    metadata: Path | None = None
    """Metadata file (CSV/TSV, JSON dump or JSONL). Not used by ``folders``."""
    audio_root: Path | None = None
    """Folder the audio paths are relative to; default: the metadata file's folder. Every path
    from metadata, a template or the folder walk must resolve (after symlinks) inside it or inside
    one of ``allowed_roots``, else the row is rejected as ``outside_root``."""
    allowed_roots: list[Path] = Field(default_factory=list)
    """Further folders audio paths (absolute paths, symlink targets) may resolve into; nothing
    outside ``audio_root`` + these is ever opened."""
    id_column: str | None = None
    path_column: str | None = None
    """Column holding a path relative to ``audio_root`` (or absolute)."""
    path_template: str | None = None
    """Python format string over the row, e.g. ``"{Quadrant}/{Song}.mp3"``."""
    stem_lookup: bool = True
    """If no path column/template resolves, find a file whose stem equals the id under audio_root."""
    delimiter: str | None = None
    """CSV delimiter; default: sniffed (``,`` or tab)."""
    multilabel: dict[str, MultiLabelColumn] = Field(default_factory=dict)
    """Task name -> multi-label column, e.g. ``descriptors: {column: MoodsStrSplit, separator: ";"}``."""
    singlelabel: dict[str, str] = Field(default_factory=dict)
    """Task name -> column with one class per row, e.g. ``quadrant: Quadrant``."""
    numeric: dict[str, str] = Field(default_factory=dict)
    """Task name -> numeric column (regression targets)."""
    group_column: str | None = None
    """Column whose value must not cross splits (artist/album/recording)."""
    extensions: list[str] = Field(
        default_factory=lambda: [".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aiff", ".aif",
                                 ".mid", ".midi"]
    )
    """Accepted suffixes; MIDI files are rendered with FluidSynth (``audio.midi``)."""
    folder_task: str = "label"
    """For ``folders``: the task name the directory labels go to."""
    folder_mode: Literal["singlelabel", "multilabel"] = "singlelabel"
    """For ``folders``: the top directory is the one class (``singlelabel``), or every directory
    level below audio_root is a tag (``multilabel``: ``rock/live/x.wav`` -> ``[rock, live]``)."""
    folder_group: Literal["stem", "parent", "none"] = "stem"
    """For ``folders``: split group = file stem, the file's parent folder path, or none (own group)."""


class LabelsConfig(_Model):
    """Label cleaning applied to every label task (see ``eno_hf.data.labels``)."""

    lowercase: bool = True
    aliases: dict[str, dict[str, str | list[str]]] = Field(default_factory=dict)
    """Per task: raw label -> canonical label, or a list to split it, or "" to delete it (keys and
    values are trimmed/case-folded like the labels)."""
    min_count: dict[str, int] = Field(default_factory=dict)
    """Per task: drop tags seen fewer times than this over the whole dataset."""
    default_min_count: int = 1


class MidiRenderConfig(_Model):
    """How MIDI inputs become audio (FluidSynth + a General MIDI soundfont, ``eno_hf.audio.midi``)."""

    soundfont: str = "fluidr3"
    """Alias (``fluidr3``, ``musescore-lite``, ``timgm6mb``) or a path to an .sf2/.sf3 file."""
    gain: float = 0.5
    """FluidSynth master gain (loudness is normalized afterwards; this only avoids synth clipping)."""
    reverb: bool = False
    chorus: bool = False
    max_duration_s: float = Field(1800.0, gt=0.0, allow_inf_nan=False)
    """Longest MIDI file rendered, in seconds of playing time (read from the file with mido, tempo
    map applied, before FluidSynth runs); longer: ``too_long`` and nothing is rendered."""
    max_notes: int = Field(200_000, ge=1)
    """Most notes (note_on with velocity > 0) in one MIDI file; more: ``too_long``, not rendered."""
    cache_max_mb: float = Field(2048.0, gt=0.0, allow_inf_nan=False)
    """Size cap of the rendering cache (``~/.eno/cache/midi-render``); least recently used
    renderings are removed beyond it."""


class AudioConfig(_Model):
    """Conditioning: decode, mono mix-down, resample (soxr), loudness-normalize (pyloudnorm)."""

    sample_rate: int = Field(16_000, ge=1000, le=768_000)
    target_lufs: float | None = Field(-18.0, le=0.0)
    """Integrated loudness target (ITU-R BS.1770-4); None disables normalization."""
    peak_ceiling_dbfs: float = Field(-1.0, le=0.0)
    """Sample-peak ceiling after gain; gain is reduced to respect it (no clipping)."""
    min_duration_s: float = Field(1.0, ge=0.0)
    silence_threshold_dbfs: float = Field(-60.0, le=0.0)
    """A recording whose RMS is below this is rejected as silent."""
    resample_quality: Literal["HQ", "VHQ", "MQ", "LQ", "QQ"] = "HQ"
    block_s: float = Field(30.0, ge=0.5, le=3600.0)
    """Decode block length for streaming long files in bounded memory."""
    max_duration_s: float = Field(10_800.0, gt=0.0, allow_inf_nan=False)
    """Longest accepted input in seconds, measured while decoding (never from the header alone:
    an MP3 header can understate its length); decoding stops there and the input is ``too_long``."""
    midi: MidiRenderConfig = Field(default_factory=MidiRenderConfig)
    """Rendering of MIDI inputs (accepted wherever audio is)."""


MAX_SEGMENTS_PER_POINT = 20
"""``segment.hop_s`` is at least ``segment_s / 20``: no instant of audio lies in more than 20
segments (a tiny hop would multiply every file's size; ``hop_s=1e-9`` once wrote 3 GB in 16 s)."""


class SegmentConfig(_Model):
    """Fixed-window segmentation; ids are ``{recording_id}_seg{n:03d}``.

    Bounds: ``segment_s`` from 0.1 s to 1 h; ``hop_s`` at least ``segment_s / 20``
    (``MAX_SEGMENTS_PER_POINT``) and at least one feature frame (checked in ``DatasetConfig``).
    """

    segment_s: float = Field(10.0, ge=0.1, le=3600.0)
    hop_s: float = Field(10.0, gt=0.0, le=3600.0)
    min_last_ratio: float = Field(0.5, ge=0.0, le=1.0)
    """Keep a shorter last segment only if it is at least this fraction of ``segment_s``."""

    @model_validator(mode="after")
    def _hop_not_tiny(self) -> "SegmentConfig":
        if self.hop_s < self.segment_s / MAX_SEGMENTS_PER_POINT:
            raise ValueError(f"hop_s ({self.hop_s:g} s) must be at least segment_s / {MAX_SEGMENTS_PER_POINT} "
                             f"({self.segment_s / MAX_SEGMENTS_PER_POINT:g} s)")
        return self


class FeaturesConfig(_Model):
    """Per-segment features stored in the dataset; each can be switched off."""

    waveform: bool = True
    """Store the conditioned mono waveform (float16 at ``audio.sample_rate``) for encoders."""
    log_mel: bool = True
    n_mels: int = Field(128, ge=1)
    n_fft: int = Field(512, ge=16)
    hop_length: int = Field(256, ge=1)
    f_min: float = Field(0.0, ge=0.0)
    f_max: float | None = Field(8000.0, gt=0.0)
    mfcc: bool = True
    n_mfcc: int = Field(20, ge=1)
    fingerprint: bool = True

    @model_validator(mode="after")
    def _mel_band(self) -> "FeaturesConfig":
        if self.f_max is not None and self.f_max <= self.f_min:
            raise ValueError(f"f_max ({self.f_max}) must be above f_min ({self.f_min})")
        return self


class SplitConfig(_Model):
    """Grouped multi-label iterative stratification (Sechidis et al. 2011; iterative-stratification)."""

    train: float = Field(0.8, ge=0.0, le=1.0)
    validation: float = Field(0.1, ge=0.0, le=1.0)
    test: float = Field(0.1, ge=0.0, le=1.0)
    seed: int = 42
    stratify_on: list[str] | None = None
    """Label tasks to stratify on; default: all label tasks."""
    k_folds: int = Field(0, ge=0)
    """If > 1, add a ``fold`` column (0..k-1) over train+validation, grouped and stratified."""

    @model_validator(mode="after")
    def _fractions_sum_to_one(self) -> "SplitConfig":
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + validation + test must sum to 1, got {total:g}")
        return self


class DownloadConfig(_Model):
    """``eno download``: fetch audio listed by URL in the metadata (``eno_hf.data.download``).

    Never used by the main job; files land in ``dest`` (default
    ``{paths.data_root}/downloads/{dataset.name}``), named by the id column.
    """

    url_column: str | None = None
    """Metadata column with the URL (e.g. the 4Q CSV's ``SampleURL``)."""
    dest: Path | None = None
    concurrency: int = Field(4, ge=1, le=64)
    retries: int = Field(3, ge=0, le=20)
    backoff_s: float = Field(0.5, ge=0.0)
    timeout_s: float = Field(30.0, gt=0.0)
    max_bytes: int = Field(200 * 2**20, gt=0)
    content_types: list[str] = Field(default_factory=lambda: ["audio/", "application/octet-stream"])


class DatasetConfig(_Model):
    """Everything that decides a dataset version."""

    name: str = "dataset"
    source: SourceConfig = Field(default_factory=SourceConfig)
    labels: LabelsConfig = Field(default_factory=LabelsConfig)
    limit: int | None = Field(None, ge=1)
    """Use only the first N recordings (after sorting by id) — for quick runs and tests."""
    audio: AudioConfig = Field(default_factory=AudioConfig)
    segment: SegmentConfig = Field(default_factory=SegmentConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    audio_column: bool = True
    """Add a path-based ``datasets.Audio`` column (original file) so notebooks can listen."""
    num_workers: int = Field(2, ge=0)
    download: DownloadConfig = Field(default_factory=DownloadConfig)
    """Only for ``eno download`` (does not change the dataset version)."""

    @model_validator(mode="after")
    def _hop_at_least_one_frame(self) -> "DatasetConfig":
        frame_s = self.features.hop_length / self.audio.sample_rate
        if self.segment.hop_s < frame_s:
            raise ValueError(f"segment.hop_s ({self.segment.hop_s:g} s) is shorter than one feature frame "
                             f"(features.hop_length / audio.sample_rate = {frame_s:g} s)")
        return self


# ----------------------------------------------------------------------------- model
class HeadConfig(_Model):
    """One output head. ``column`` defaults to ``name``."""

    name: str
    kind: Literal["multilabel", "singlelabel", "regression", "projection"]
    column: str | None = None
    weight: float = Field(1.0, ge=0.0)
    pos_weight: bool = False
    """Multi-label: weight positives by (negatives/positives) per tag in BCE."""
    dim: int = Field(128, ge=1)
    """Projection heads: embedding size."""


class ModelConfig(_Model):
    """Encoder + heads (see ``eno_hf.models``)."""

    encoder: Literal["mel_cnn", "sota_tagger", "tagger_ensemble", "hf_audio", "muq", "embeddings"] = "sota_tagger"
    encoder_path: Path | None = None
    """hf_audio/muq: local checkpoint directory. sota_tagger: the safetensors file or its folder."""
    tagger: str = "mtat-musicnn"
    """sota_tagger: ``{msd,mtat,jamendo}-{fcn,crnn}`` or ``{mtat,jamendo}-musicnn`` (file stem in shared/models)."""
    taggers: list[str] = Field(default_factory=lambda: ["jamendo-fcn", "msd-fcn", "jamendo-musicnn"])
    """tagger_ensemble: sota tagger names (file stems in shared/models) whose mean+max-pooled window
    embeddings are concatenated (``eno_hf.models.encoders.tagger_ensemble``); use with ``finetune: frozen``."""
    pooling: Literal["mean", "attention", "weighted_layers"] = "mean"
    layer: int | None = None
    embedding_columns: list[str] = Field(default_factory=list)
    """encoder=embeddings: dataset columns concatenated as input."""
    embedding_dim: int | None = None
    """encoder=embeddings: size of the concatenated input vector (default: known column sizes,
    ``fingerprint`` = 64)."""
    chunk_s: float | None = Field(None, ge=0.1, le=3600.0)
    """Inference window in seconds; default: the encoder's native input length."""
    hidden_dim: int = Field(256, ge=1)
    dropout: float = Field(0.2, ge=0.0, lt=1.0)
    heads: list[HeadConfig] = Field(default_factory=list)
    finetune: Literal["lora", "frozen", "full"] = "lora"
    lora_rank: int = Field(8, ge=1)
    lora_alpha: int = Field(16, ge=1)
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0)
    lora_target_modules: list[str] | None = None
    """Default per encoder family (``eno_hf.models.lora.DEFAULT_TARGETS``)."""
    crop_s: float | None = Field(None, ge=0.1, le=3600.0)
    """Training crop length; default: the encoder's native input length (e.g. 3 s Musicnn)."""
    mel_cnn_channels: int = Field(32, ge=1)
    """mel_cnn width: 32 (the reference uses 128; 32 reaches >= 200x real time on one CPU core, see
    benchmarks/inference.py)."""
    mel_cnn_blocks: int = Field(7, ge=1)


class TrainConfig(_Model):
    """Trainer settings (``eno_hf.training``)."""

    output_dir: Path | None = None
    """Default ``{data_root}/runs/{model_name}``."""
    epochs: float = Field(10, gt=0.0, le=100_000)
    max_steps: int = Field(-1, ge=-1, le=100_000_000)
    """-1: train for ``epochs``; else the number of optimizer steps."""
    batch_size: int = Field(16, ge=1, le=65_536)
    eval_batch_size: int = Field(32, ge=1, le=65_536)
    learning_rate: float = Field(1e-3, gt=0.0)
    encoder_learning_rate: float | None = Field(None, gt=0.0)
    weight_decay: float = Field(0.01, ge=0.0)
    warmup_ratio: float = Field(0.05, ge=0.0, le=1.0)
    seed: int = 42
    early_stopping_patience: int = Field(5, ge=0)
    metric_for_best_model: str = "eval_score"
    augment: bool = True
    num_workers: int = Field(0, ge=0)
    resume: bool = True


class EvaluateConfig(_Model):
    """Evaluation settings (``eno_hf.evaluation``)."""

    split: str = "test"
    tune_thresholds_on: str = "validation"
    plots: bool = True
    batch_size: int | None = Field(None, ge=1, le=65_536)
    """Segments per forward pass when predicting; default ``train.eval_batch_size``."""
    pr_top_k: int = Field(8, ge=1)
    """Number of most frequent tags drawn in the precision-recall plot."""
    save_thresholds: bool = True
    """Write the tuned per-tag thresholds into the model's ``config.json`` (``thresholds``)."""


class RegistryConfig(_Model):
    """Local hub + ClearML (``eno_hf.registry``)."""

    model_name: str = "eno-tagger"
    clearml: bool = True
    clearml_project: str = "eno"
    clearml_offline: bool = True
    clearml_datasets: bool = False
    """Register every newly built dataset version as a ClearML Dataset (subprocess, timeout;
    ``eno_hf.registry.clearml_dataset``). Off by default: ~85 s per version here."""


class RunConfig(_Model):
    """The main job (``eno run``)."""

    tag_files: list[Path] = Field(default_factory=list)
    """Files/folders tagged at the end with the registered model (never seen in training)."""
    baselines: bool = True
    task_runner: Literal["threads", "dask"] = "threads"
    """Prefect task runner for per-file/per-shard work: a thread pool, or Dask (prefect-dask)."""
    dask_address: str | None = None
    """Dask scheduler address (``tcp://host:8786``); None = a LocalCluster of ``dask_workers``."""
    dask_workers: int = Field(2, ge=1)
    """Worker processes of the LocalCluster (one thread each) when no address is given."""
    files_per_task: int | None = Field(None, ge=1)
    """Files per Prefect task ``eno-process-files`` in a flow's dataset build. None = about four
    tasks per worker (fewer scheduler round trips; a retry re-runs one chunk, whose finished files
    are per-file cache hits)."""



class Settings(_Model):
    """Root configuration: one section per concern; ``eno_hf.jobs.JOBS`` reads the sections its job needs."""

    paths: PathsConfig = Field(default_factory=PathsConfig)
    """Where eno reads and writes: data root, local hub, pretrained weights."""
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    """The dataset build (``eno build``): source, labels, audio conditioning, segments, features, splits."""
    model: ModelConfig = Field(default_factory=ModelConfig)
    """The tagging model: encoder and heads."""
    train: TrainConfig = Field(default_factory=TrainConfig)
    """Training the tagging model (``eno train``)."""
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    """Evaluating it (``eno evaluate``): thresholds, baselines, plots."""
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    """Registering it: the local hub and ClearML."""
    run: RunConfig = Field(default_factory=RunConfig)
    """The main job as a whole (``eno run``): files tagged at the end, Prefect task runner, Dask."""
    serve: ServeConfig = Field(default_factory=ServeConfig)
    """Serving models over HTTP (``eno serve``) and through ClearML Serving."""
    clarity: ClarityConfig = Field(default_factory=ClarityConfig)
    """The mix-clarity job: gold stems, flawed renders, fingerprints, correction models."""
    workspace: WorkspaceConfig = Field(default_factory=WorkspaceConfig)
    """The dataset workspace job: a validated folder of MIDI and audio per dataset."""
    embed: EmbedConfig = Field(default_factory=EmbedConfig)
    """Frame embeddings of audio/MIDI (``eno embed``), their store and dataset companions."""
    performance: PerformanceConfig | None = None
    """The performance job (piano recordings and MIDI, PercePiano ratings); when set and ``job`` is
    unset, ``eno run`` runs it."""
    job: Literal["tagging", "performance", "clarity", "workspace"] | None = None
    """The job ``eno run`` runs (``eno_hf.jobs.JOBS``); unset: ``performance`` when ``performance`` is
    set, else ``tagging`` (``eno_hf.jobs.job_of``)."""


# ----------------------------------------------------------------------------- loading
def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` updated recursively by ``override`` (dicts merge, everything else replaces)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    path = Path(path).resolve()
    if path in _seen:
        raise ConfigError(f"{path}: circular 'defaults'")
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    merged: dict[str, Any] = {}
    for parent in data.pop("defaults", []) or []:
        beside = path.parent / str(parent)
        parent_path = beside if beside.is_file() else _builtin_path(str(parent))
        if parent_path is None:
            raise ConfigError(f"{path}: defaults entry {parent!r} is neither a file beside it nor a built-in "
                              f"config ({', '.join(builtin_configs())})")
        merged = deep_merge(merged, _read_yaml(parent_path, (*_seen, path)))
    _resolve_paths(data, path.parent, path)
    return deep_merge(merged, data)


def builtin_configs() -> dict[str, Path]:
    """The built-in eno configs: name (``"small"``, ``"datasets/4q"``) -> file, sorted by name
    (``configs/accelerate/`` holds ``accelerate launch`` files, ``configs/cv/`` ``eno cv`` candidates: not eno configs)."""
    if not CONFIG_DIR.is_dir():
        return {}
    return {p.relative_to(CONFIG_DIR).with_suffix("").as_posix(): p
            for p in sorted(CONFIG_DIR.rglob("*.yaml")) if p.parent.name not in ("accelerate", "cv")}


def _builtin_path(name: str) -> Path | None:
    """A built-in config by name (``small``, ``small.yaml``, ``configs/small.yaml``), or None."""
    stem = name[len("configs/"):] if name.startswith("configs/") else name
    stem = stem[:-len(".yaml")] if stem.endswith(".yaml") else stem
    return builtin_configs().get(stem)


def resolve_config_path(config: str | Path) -> Path:
    """A config argument -> its file: an existing file path, else a built-in config name.

    Raises:
        ConfigError: neither (the message lists the built-in names).
    """
    p = Path(config).expanduser()
    if p.is_file():
        return p
    builtin = None if p.is_absolute() else _builtin_path(str(config))
    if builtin is None:
        raise ConfigError(f"{config}: config file not found, and not a built-in config "
                          f"(built-in: {', '.join(builtin_configs()) or 'none'})")
    return builtin


# Keys holding paths (or lists of paths) that YAML files give relative to the file that names them.
_FILE_RELATIVE = {("paths", "data_root"), ("paths", "hub_dir"), ("paths", "models_dir"),
                  ("dataset", "source", "metadata"), ("dataset", "source", "audio_root"),
                  ("dataset", "source", "allowed_roots"), ("dataset", "download", "dest"),
                  ("model", "encoder_path"), ("train", "output_dir"), ("run", "tag_files"),
                  ("performance", "source"), ("performance", "tag_files"), ("embed", "encoder_path"),
                  ("clarity", "gold", "midi_dir"), ("clarity", "gold", "drumkits_dir"),
                  ("clarity", "gold", "soundfont"), ("clarity", "workdir"), ("clarity", "raw_dir"),
                  ("workspace", "root")}
_VAR = re.compile(r"\$(\w+|\{[^}]*\})")


def expand_path(value: str, base: Path | None, where: str = "") -> str:
    """One config path value: ``~`` and ``${VAR}`` expanded, then made absolute against ``base``
    (the folder of the YAML file that wrote it; None leaves a relative path relative).

    Raises:
        ConfigError: a ``${VAR}`` that is not set (``ENO_SHARED_DIR`` has a default beside a
            source checkout; elsewhere set it to the folder holding eno's example data/ and models/).
    """
    if "$" in value:
        env = dict(os.environ)
        shared = shared_dir()
        if "ENO_SHARED_DIR" not in env and shared is not None:
            env["ENO_SHARED_DIR"] = str(shared)
        missing = [m.strip("${}") for m in _VAR.findall(value) if m.strip("${}") not in env]
        if missing:
            raise ConfigError(f"{where}{value}: environment variable {missing[0]} is not set"
                              + (" (the folder holding eno's example data/ and models/)"
                                 if missing[0] == "ENO_SHARED_DIR" else ""))
        value = _VAR.sub(lambda m: env[m.group(1).strip("{}")], value)
    p = Path(value).expanduser()
    return str(p if p.is_absolute() or base is None else (base / p).resolve())


def _resolve_paths(data: dict[str, Any], base: Path, file: Path | None = None) -> None:
    where = f"{file}: " if file is not None else ""
    for keys in _FILE_RELATIVE:
        node: Any = data
        for key in keys[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue
        value = node.get(keys[-1])
        if isinstance(value, str):
            node[keys[-1]] = expand_path(value, base, where)
        elif isinstance(value, list):
            node[keys[-1]] = [expand_path(v, base, where) if isinstance(v, str) else v for v in value]
    ws = data.get("workspace")
    for src in ((ws.get("sources") or {}).values() if isinstance(ws, dict) and isinstance(ws.get("sources"), dict) else ()):
        for node in (src, src.get("csv")) if isinstance(src, dict) else ():
            if isinstance(node, dict) and isinstance(node.get("path"), str):
                node["path"] = expand_path(node["path"], base, where)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``a.b.c=value`` into (["a","b","c"], value); the value is parsed as YAML.

    Raises:
        ConfigError: no ``=`` or an empty key.
    """
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected key=value")
    key, raw = text.split("=", 1)
    keys = [k for k in key.strip().split(".") if k]
    if not keys:
        raise ConfigError(f"override {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return keys, value


def apply_overrides(data: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Apply ``--set`` overrides (``key.path=value``) to a raw config dict."""
    out = dict(data)
    for text in overrides or []:
        keys, value = parse_override(text)
        patch: dict[str, Any] = {keys[-1]: value}
        for k in reversed(keys[:-1]):
            patch = {k: patch}
        out = deep_merge(out, patch)
    return out


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Settings:
    """Load ``Settings`` from a YAML file or built-in config name (default ``base``) plus overrides.

    Args:
        path: a YAML file, or a built-in config name (``small``; ``resolve_config_path``).
        overrides: ``["train.epochs=3", ...]``; values are parsed as YAML (path values: ``~`` and
            ``${VAR}`` expanded, relative to the current directory).

    Raises:
        ConfigError: missing/invalid file, bad override, or a value that fails validation
            (the message lists each offending key).
    """
    p = resolve_config_path("base" if path is None else path)
    data = _read_yaml(p)
    if overrides:
        over = apply_overrides({}, overrides)
        _resolve_paths(over, None)  # ~ and ${VAR}; relative paths stay relative to the current directory
        data = deep_merge(data, over)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        lines = [f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError(f"{p}: invalid configuration:\n  " + "\n  ".join(lines)) from exc


def config_hash(model: BaseModel, length: int = 12) -> str:
    """Stable short SHA-256 of a config section (JSON with sorted keys)."""
    return json_hash(model.model_dump(mode="json"), length)
