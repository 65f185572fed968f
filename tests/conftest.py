"""Shared fixtures: offline env, paths to ../shared data (skip with a reason when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import eno_hf  # noqa: F401  (applies offline defaults before HF libraries load)

os.environ["CLEARML_OFFLINE_MODE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED = PROJECT_ROOT.parent / "shared"
DATA = SHARED / "data"
MODELS = SHARED / "models" / "sota-music-tagging"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not available: {path} is absent (see ../shared/data/README.md)")
    return path


@pytest.fixture(scope="session")
def fourq_dir() -> Path:
    """``../shared/data/4q-dev`` (360 labelled clips)."""
    return _need(DATA / "4q-dev")


@pytest.fixture(scope="session")
def jamendo_dir() -> Path:
    return _need(DATA / "jamendo-lyrics-10")


@pytest.fixture(scope="session")
def longform_dir() -> Path:
    return _need(DATA / "long-form")


@pytest.fixture(scope="session")
def sota_models_dir() -> Path:
    return _need(MODELS)


@pytest.fixture(scope="session")
def fourq_clips(fourq_dir: Path) -> list[Path]:
    """A few real 4Q clips, one or two per quadrant, sorted for determinism."""
    clips = []
    for q in ("Q1", "Q2", "Q3", "Q4"):
        clips += sorted((fourq_dir / q).glob("*.mp3"))[:2]
    return clips
