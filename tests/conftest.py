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


def pytest_configure(config: pytest.Config) -> None:
    """Compile librosa's numba kernels once, before pytest-xdist starts its workers: two workers
    compiling them at once can corrupt numba's on-disk cache and segfault (numba#10128)."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        from eno_hf.features.numba_cache import warm_numba_cache

        warm_numba_cache()


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


@pytest.fixture
def run_concurrently():
    """``run(script, args, n=2, timeout=900) -> [json of each process's last stdout line]``: start
    ``n`` copies of ``python -c script *args`` at once (cwd = project root, one torch thread each)."""
    import json
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]

    def run(script: str, args: list[str], n: int = 2, timeout: float = 900) -> list[dict]:
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                   PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        procs = [subprocess.Popen([sys.executable, "-c", script, *args], cwd=root, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(n)]
        outs = []
        for p in procs:
            so, se = p.communicate(timeout=timeout)
            assert p.returncode == 0, se[-3000:]
            outs.append(json.loads(so.strip().splitlines()[-1]))
        return outs

    return run
