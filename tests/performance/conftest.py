"""PercePiano fixtures (skip with a reason when ../shared/data/percepiano is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

PERCEPIANO = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "percepiano"


@pytest.fixture(scope="session")
def percepiano_dir() -> Path:
    if not (PERCEPIANO / "labels.csv").is_file():
        pytest.skip(f"real data not available: {PERCEPIANO} is absent (see ../shared/data/README.md)")
    return PERCEPIANO


@pytest.fixture(scope="session")
def percepiano_rows(percepiano_dir: Path):
    from eno_hf.performance.percepiano import load_percepiano

    return load_percepiano(percepiano_dir)
