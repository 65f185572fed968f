"""Workspace files validated with pydantic: ``config.json`` and ``manifest.json``.

``manifest.json`` holds one ``ManifestEntry`` per sample and the inputs that were rejected
(with their reasons); ``Workspace.save`` writes it atomically (``eno_hf.utils.io.atomic_write_json``:
a temporary in the same folder, ``fsync``, ``os.replace``), so a crash never leaves a half-written manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

SCHEMA_VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Annotations(_Model):
    """Labels of one sample (None = unknown). Valence/arousal in [−1, 1] (Russell circumplex);
    ``mode`` ``major``/``minor``; ``key`` ``"C major"`` (music21 spelling, ``B-`` = B♭);
    ``swing_ratio`` the off-beat position in its beat (0.5 straight, 0.667 triplet swing);
    ``quality_score`` in [0, 1]."""

    emotion: str | None = None
    valence: float | None = Field(default=None, ge=-1.0, le=1.0)
    arousal: float | None = Field(default=None, ge=-1.0, le=1.0)
    key: str | None = None
    mode: Literal["major", "minor"] | None = None
    tempo_bpm: float | None = Field(default=None, gt=0)
    groove_type: Literal["straight", "swing", "shuffle", "laid-back", "rushed"] | None = None
    swing_ratio: float | None = Field(default=None, gt=0, lt=1)
    articulation: Literal["staccato", "detached", "legato"] | None = None
    chord_progression: str | None = None
    quality_score: float | None = Field(default=None, ge=0.0, le=1.0)
    is_verified: bool = False
    notes: str = ""


class Provenance(_Model):
    """Where an augmented sample came from: source sample, operations with parameters, seed."""

    source_sample_id: str
    operations: list[dict[str, Any]]
    seed: int


class ManifestEntry(_Model):
    """One sample. ``file_path`` is relative to the workspace folder (``raw/...``/``processed/...``)."""

    sample_id: str
    file_path: str
    kind: Literal["midi", "audio"]
    origin: Literal["imported", "augmented", "synthetic"] = "imported"
    source: str = ""
    """Collection it came from (``4q-dev``, ``percepiano``, ``synthetic``)."""
    original_path: str | None = None
    group: str
    """Split group: files of one group (and every augmented copy of them) stay in one split."""
    performer: str | None = None
    annotations: Annotations = Field(default_factory=Annotations)
    provenance: Provenance | None = None
    features_path: str | None = None
    """``processed/features/{sample_id}.json`` once extracted (with ``.npz`` curves beside it)."""

    @field_validator("file_path", "features_path")
    @classmethod
    def _relative(cls, v: str | None) -> str | None:
        if v is not None and (Path(v).is_absolute() or ".." in Path(v).parts):
            raise ValueError(f"{v!r}: must be a path inside the workspace")
        return v


class Rejection(_Model):
    """An input that is not (or no longer) a usable sample, with its reason (``RejectedInput``)."""

    path: str
    reason: str
    detail: str = ""
    stage: str
    sample_id: str | None = None


class Manifest(_Model):
    """``manifest.json``."""

    schema_version: int = SCHEMA_VERSION
    dataset_id: str
    samples: list[ManifestEntry] = Field(default_factory=list)
    rejected: list[Rejection] = Field(default_factory=list)

    @field_validator("samples")
    @classmethod
    def _unique(cls, v: list[ManifestEntry]) -> list[ManifestEntry]:
        seen: set[str] = set()
        for e in v:
            if e.sample_id in seen:
                raise ValueError(f"duplicate sample_id {e.sample_id!r}")
            seen.add(e.sample_id)
        return v

    def by_id(self) -> dict[str, ManifestEntry]:
        return {e.sample_id: e for e in self.samples}


class WorkspaceInfo(_Model):
    """``config.json``: what the workspace is for."""

    schema_version: int = SCHEMA_VERSION
    dataset_id: str
    target_model: str
    categories: list[str]
    target_per_category: int = Field(ge=1)
    created_utc: str
