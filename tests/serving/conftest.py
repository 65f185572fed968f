"""The serving tests use the tiny saved model of ``tests/inference/conftest.py`` (random mel_cnn,
2-s windows, heads quadrant / moods / valence, moods thresholds [0, 1, 0]) under the name
``serve_model_dir``; loaded by path because test folders are not packages."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "eno_tests_inference_conftest", Path(__file__).resolve().parents[1] / "inference" / "conftest.py")
_inference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_inference)
tiny_model_dir = _inference.tiny_model_dir


@pytest.fixture(scope="session")
def serve_model_dir(tiny_model_dir: Path) -> Path:
    return tiny_model_dir
