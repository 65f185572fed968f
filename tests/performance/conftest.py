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


@pytest.fixture(scope="session")
def beethoven_midi_statistics(percepiano_rows):
    """The rated Beethoven performances (186) and their ``(n, len(MIDI_STATISTICS))`` MIDI statistics
    (NaN -> 0), computed once for the session (~1 s)."""
    import numpy as np

    from eno_hf.features.midi import midi_statistics_matrix

    rows = [r for r in percepiano_rows if r.rated and r.piece.startswith("Beethoven")]
    stats, rejected = midi_statistics_matrix([r.midi for r in rows])  # one parse per file
    assert not rejected, rejected
    return rows, np.nan_to_num(stats)
