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


HEAVY_FIRST = ("e2e", "flow", "slow")
"""Markers whose test files start first, in this order (then every other file, in collection order)."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Start the longest test files first: files holding an ``e2e`` test, then ``flow``, then
    ``slow``, then the rest, each group in collection order (a stable sort of whole files).

    With ``-n 2 --dist loadfile --no-loadscope-reorder`` (``make test``) pytest-xdist hands out
    files in this order, so the few multi-minute real runs overlap the many short tests instead
    of one of them running alone at the end (xdist's own reorder, by number of tests per file, put
    the single-test end-to-end files last)."""
    rank: dict[str, int] = {}
    for item in items:
        marks = {m.name for m in item.iter_markers()}
        r = next((i for i, name in enumerate(HEAVY_FIRST) if name in marks), len(HEAVY_FIRST))
        rank[item.location[0]] = min(rank.get(item.location[0], r), r)
    items.sort(key=lambda item: rank[item.location[0]])


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


@pytest.fixture(scope="session")
def prefect_api_url(tmp_path_factory: pytest.TempPathFactory):
    """One real Prefect API server (``prefect server start``, SQLite under a temporary
    ``PREFECT_HOME``) for the flow tests of this test process: each test's subprocess talks to it
    through ``PREFECT_API_URL`` instead of starting an ephemeral server of its own (~15-60 s each on
    the 2-core machine). Yields ``http://127.0.0.1:{port}/api``; the server stops at the end of the
    session. Skips with the server's output when it does not answer within 300 s."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    home = tmp_path_factory.mktemp("prefect-server-home")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_LOGGING_LEVEL": "WARNING",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_SERVER_UI_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    log = home / "server.log"
    with open(log, "w") as fh:
        server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                                   "--port", str(port)], env=env, stdout=fh, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.skip(f"prefect server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
