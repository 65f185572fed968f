"""Real sources and a tiny config for the clarity tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from eno_hf.config import load_config

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DRUMKITS = Path("/usr/share/hydrogen/data/drumkits")
MIDI = PROJECT_ROOT.parent / "shared" / "data" / "percepiano" / "midi"
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")


def need_real_sources() -> None:
    for p, what in ((DRUMKITS, "Debian hydrogen-drumkits"), (MIDI, "../shared/data/percepiano/midi"),
                    (SOUNDFONT, "Debian fluid-soundfont-gm")):
        if not p.exists():
            pytest.skip(f"real data not available: {p} ({what}) is absent")
    if shutil.which("fluidsynth") is None:
        pytest.skip("fluidsynth not installed (apt-get install fluidsynth)")


def tiny_settings(root: Path, extra: list[str] | None = None):
    return load_config(PROJECT_ROOT / "configs" / "clarity.yaml", [
        f"paths.data_root={root}", "clarity.gold.drums_per_sound=2", "clarity.gold.stems_per_instrument=2",
        "clarity.gold.max_duration_s=3.0", "clarity.models.n_estimators=40", "clarity.models.cv_folds=3",
        "clarity.models.bootstrap=50", "clarity.models.clearml=false", *(extra or [])])
