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

    from eno_hf.features.midi import MIDI_STATISTICS, midi_statistics

    rows = [r for r in percepiano_rows if r.rated and r.piece.startswith("Beethoven")]
    per_row = [midi_statistics(r.midi) for r in rows]  # one parse per file
    stats = np.nan_to_num(np.array([[s[k] for k in MIDI_STATISTICS] for s in per_row]))
    return rows, stats
