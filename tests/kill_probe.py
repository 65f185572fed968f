"""``kill -9`` of a main process alone (what the OOM killer does), then proof that its worker
processes died with it (used by the dataset-build and two-process embedding tests)."""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Any


def kill_main_and_assert_workers_die(proc: subprocess.Popen, workers: list[Any], timeout_s: float = 10.0) -> None:
    """SIGKILL ``proc`` only (not its process group), then assert every ``psutil.Process`` in
    ``workers`` ends within ``timeout_s`` seconds."""
    import psutil

    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    _, alive = psutil.wait_procs(workers, timeout=timeout_s)
    assert not alive, f"workers alive {timeout_s:.0f} s after the main process was killed: {alive}"


def kill_group(proc: subprocess.Popen) -> None:
    """Clean-up: SIGKILL ``proc``'s process group (started with ``start_new_session=True``) and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
