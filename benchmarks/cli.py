"""CLI start-up benchmark: wall time of the commands people type most, each in a fresh process.

    .venv/bin/python benchmarks/cli.py            # table on stdout
    .venv/bin/python benchmarks/cli.py --json     # + one JSON object as the last stdout line

Prints (never asserts), for each command, the median, min and max wall-clock seconds of
``--repeat`` runs (default 5) and the median CPU seconds (user + system of the child process):

1. ``eno --help``                          (target < 1.5 s on the 2-core machine)
2. ``eno config``                          (the resolved built-in ``small`` config as YAML)
3. ``python -c "import eno_hf"``           (target < 4 s)
4. ``eno tag CLIP --model DIR --json``     one 4q-dev clip with the ``msd-fcn`` tagger imported by
   ``eno import-weights msd-fcn --out DIR`` into a temporary folder (untimed set-up)

Every command runs from a temporary folder (not the checkout), with the ``eno`` script beside
this Python (the installed entry point). One untimed run of each command first fills the page
cache and the bytecode caches, so the figures are warm starts. The 1-minute load average is
printed with them: on a shared machine the CPU column is the load-independent figure.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {"eno --help": 1.5, "import eno_hf": 4.0}


def _eno() -> list[str]:
    """The ``eno`` entry point of this interpreter's environment (else ``python -m eno_hf.cli``)."""
    script = Path(sys.executable).parent / "eno"
    if script.is_file():
        return [str(script)]
    found = shutil.which("eno")
    return [found] if found else [sys.executable, "-m", "eno_hf.cli"]


def _default_clip() -> Path | None:
    from eno_hf.locations import shared_path

    clips = sorted((shared_path("data") / "4q-dev" / "Q1").glob("*.mp3"))
    return clips[0] if clips else None


def _run_once(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """(wall s, CPU s) of one run; a non-zero exit stops the benchmark with the command's stderr."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"benchmark command failed (exit {proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(name: str, cmd: list[str], cwd: Path, repeat: int) -> dict:
    """One warm-up run, then ``repeat`` timed runs of ``cmd``: median/min/max wall, median CPU (s)."""
    _run_once(cmd, cwd)
    walls, cpus = zip(*(_run_once(cmd, cwd) for _ in range(repeat)))
    return {"command": name, "argv": cmd, "runs": repeat,
            "wall_median_s": round(statistics.median(walls), 3), "wall_min_s": round(min(walls), 3),
            "wall_max_s": round(max(walls), 3), "cpu_median_s": round(statistics.median(cpus), 3),
            "target_s": TARGETS.get(name)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per command (default 5)")
    ap.add_argument("--clip", type=Path, default=None, help="audio file for `eno tag` (default: the "
                                                             "first 4q-dev Q1 clip of the shared data)")
    ap.add_argument("--tagger", default="msd-fcn", help="pretrained tagger for `eno import-weights`")
    ap.add_argument("--skip-tag", action="store_true", help="leave out `eno tag` (no weights/clip needed)")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object last")
    args = ap.parse_args()

    eno = _eno()
    results = []
    with tempfile.TemporaryDirectory(prefix="eno-cli-bench-") as tmp:
        work = Path(tmp)
        jobs = [("eno --help", [*eno, "--help"]),
                ("eno config", [*eno, "config"]),
                ("import eno_hf", [sys.executable, "-c", "import eno_hf"])]
        if not args.skip_tag:
            clip = args.clip or _default_clip()
            if clip is None or not clip.is_file():
                sys.exit("no clip for `eno tag`: pass --clip FILE (or --skip-tag); the 4q-dev clips are "
                         "looked for under $ENO_SHARED_DIR/data/4q-dev")
            model = work / args.tagger
            proc = subprocess.run([*eno, "-q", "import-weights", args.tagger, "--out", str(model)], cwd=work,
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                sys.exit(f"eno import-weights {args.tagger} failed (exit {proc.returncode}): "
                         f"{proc.stderr.strip()[-2000:]}")
            jobs.append((f"eno tag (1 clip, {args.tagger})",
                         [*eno, "tag", str(clip.resolve()), "--model", str(model), "--json"]))
        for name, cmd in jobs:
            print(f"timing {name} ...", file=sys.stderr, flush=True)
            results.append(measure(name, cmd, work, args.repeat))

    load1 = os.getloadavg()[0]
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"eno CLI wall time, {args.repeat} warm runs each ({os.cpu_count()} CPUs, "
                        f"load average {load1:.2f})", title_justify="left")
    for col in ("command", "median s", "min s", "max s", "CPU s (median)", "target s"):
        table.add_column(col, justify="left" if col == "command" else "right")
    for r in results:
        table.add_row(r["command"], f"{r['wall_median_s']:.2f}", f"{r['wall_min_s']:.2f}",
                      f"{r['wall_max_s']:.2f}", f"{r['cpu_median_s']:.2f}",
                      f"< {r['target_s']}" if r["target_s"] else "")
    Console(width=120).print(table)
    if args.json:
        print(json.dumps({"python": sys.version.split()[0], "cpus": os.cpu_count(), "load1": round(load1, 2),
                          "results": results}), flush=True)


if __name__ == "__main__":
    main()
