"""A tiny real clarity run (Hydrogen samples + rendered MIDI), shared by the slow tests."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from clarity_data import need_real_sources, tiny_settings


@pytest.fixture(scope="session")
def clarity_run(tmp_path_factory):
    """``run_clarity`` on a small real tree into which three bad inputs were planted first:
    a zero-byte WAV with a valid name, a file whose name breaks the pattern, and a silent gold file."""
    need_real_sources()
    from eno_hf.clarity.job import paths, run_clarity

    root = tmp_path_factory.mktemp("clarity")
    s = tiny_settings(root)
    raw = paths(s).raw
    (raw / "gold" / "drums").mkdir(parents=True)
    (raw / "gold" / "drums" / "broken_gold_001.wav").write_bytes(b"")
    sf.write(str(raw / "gold" / "drums" / "Kick Final (2).wav"), np.zeros(22050, np.float32), 22050)
    (raw / "gold" / "keys").mkdir(parents=True)
    sf.write(str(raw / "gold" / "keys" / "silence_gold_001.wav"), np.zeros(44100, np.float32), 22050)
    res = run_clarity(s)
    return s, res
