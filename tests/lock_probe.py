"""Two processes contending for one lock, proven rather than trusted (used by the build-lock,
companion and hub tests).

``LOCK_PROBE`` is prepended to each child's script (a child cannot import a test module). argv:
probe folder, number of processes, seconds to hold a lock once taken, then the call's own
arguments. (1) A barrier: each child, its imports done, leaves a file in the probe folder and waits
until every child has left one, so the two calls start together (not one after the other, e.g.
when one child's imports are slower). (2) Every ``filelock.FileLock`` the call takes through the
patched name (``module.FileLock = ProbedLock``) records when it was asked for, acquired and about to
be released (CLOCK_MONOTONIC: one clock for every process on Linux) in ``holds.jsonl``.
"""

from __future__ import annotations

import json
from pathlib import Path

LOCK_PROBE = r"""
import json, os, sys, time
import filelock
PROBE, N_PROCS, HOLD_S, ARGS = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
_FileLock = filelock.FileLock


class ProbedLock:
    def __init__(self, lock_file, *args, **kwargs):
        self._lock, self._path = _FileLock(lock_file, *args, **kwargs), str(lock_file)

    def __enter__(self):
        asked = time.monotonic()
        self._lock.acquire()
        self._times = {"asked": asked, "acquired": time.monotonic()}
        time.sleep(HOLD_S)
        return self

    def __exit__(self, *exc):
        rec = dict(self._times, released=time.monotonic(), pid=os.getpid(), path=self._path)
        self._lock.release()
        with open(os.path.join(PROBE, "holds.jsonl"), "a") as f:
            f.write(json.dumps(rec) + "\n")


def barrier():
    open(os.path.join(PROBE, f"ready-{os.getpid()}"), "w").close()
    deadline = time.monotonic() + 600
    while sum(n.startswith("ready-") for n in os.listdir(PROBE)) < N_PROCS:
        if time.monotonic() > deadline:
            sys.exit("barrier: the other process never got there")
        time.sleep(0.005)
"""


def assert_contended(probe: Path, lock_dir: Path) -> None:
    """The holds of the lock files in ``lock_dir`` by the two processes never overlapped (the lock
    excluded them), and one process waited for the other: it asked before the other released and
    got the lock only after that release (without the lock both would have gone on at once)."""
    holds = [r for r in map(json.loads, (probe / "holds.jsonl").read_text().splitlines())
             if Path(r["path"]).resolve().parent == lock_dir.resolve()]
    assert len({h["pid"] for h in holds}) == 2, holds
    pairs = [(a, b) for a in holds for b in holds if a["pid"] != b["pid"]]
    assert all(a["released"] <= b["acquired"] or b["released"] <= a["acquired"] for a, b in pairs), holds
    assert any(b["asked"] < a["released"] <= b["acquired"] for a, b in pairs), holds
