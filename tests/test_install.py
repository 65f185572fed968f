"""eno as a user gets it: the wheel installed into a fresh virtualenv, run from a folder of their own.

The wheel is built from a copy of the checkout and installed with ``--no-deps`` into a new virtualenv
in a temporary folder; the dependencies come from the development environment through a ``.pth``
path line (a path entry, not a site folder: its editable-install hook for the checkout is not run),
so no checkout is on ``sys.path`` and nothing is downloaded. HOME is a new empty folder. The user
copies 12 real 4Q clips into one folder per quadrant, runs ``eno init`` there, then ``eno run`` with
a tiny training to a registered model, and tags two clips with it; the registered model card
parses with ``huggingface_hub.ModelCard.load`` and its ``model-index`` holds the run's metrics.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED = PROJECT_ROOT.parent / "shared"
FOURQ = SHARED / "data" / "4q-dev"

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

_IGNORE = shutil.ignore_patterns(".venv", ".git", "eno-data", "build", "*.egg-info", "__pycache__", "tests",
                                 "notebooks", "benchmarks", ".pytest_cache")
# State derived from this process's HOME or checkout: dropped so the child sees a new user's machine.
_DROP = ("PREFECT_HOME", "CLEARML_CACHE_DIR", "CLEARML_CONFIG_FILE", "HF_HOME", "HF_DATASETS_CACHE",
         "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "MPLCONFIGDIR", "PYTHONPATH", "ENO_SHARED_DIR",
         "ENO_MODELS_DIR", "VIRTUAL_ENV")


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess:
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _last_json(stdout: str) -> dict:
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    assert lines, "no stdout"
    return json.loads(lines[-1])


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """A fresh virtualenv holding the built wheel; returns its ``eno``, ``python`` and an environment."""
    if not FOURQ.is_dir() or not (SHARED / "models" / "sota-music-tagging").is_dir():
        pytest.skip(f"real data or weights not available under {SHARED}")
    root = tmp_path_factory.mktemp("install")
    src = root / "src"
    shutil.copytree(PROJECT_ROOT, src, symlinks=True, ignore=_IGNORE)
    wheels = root / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            str(src), "-w", str(wheels)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = wheels.glob("eno-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "eno-dev-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    inst = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q",
                           str(wheel)], capture_output=True, text=True, timeout=600)
    assert inst.returncode == 0, inst.stderr[-3000:]
    home = root / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in _DROP}
    env.update(HOME=str(home), PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
               ENO_MODELS_DIR=str(SHARED / "models"))
    return {"root": root, "eno": str(venv / "bin" / "eno"), "python": str(py), "env": env, "site": site}


def test_wheel_is_the_package_and_ships_its_configs(installed):
    """No checkout on sys.path: eno_hf, its flows and its built-in configs come from the venv."""
    probe = ("import eno_hf, eno_hf.flows, sys; from eno_hf.config import builtin_configs; "
             "import json; print(json.dumps({'eno_hf': eno_hf.__file__, 'flows': eno_hf.flows.__file__, "
             "'configs': sorted(builtin_configs()), 'top_flows': __import__('importlib.util').util.find_spec('flows') is not None}))")
    proc = _run([installed["python"], "-c", probe], cwd=installed["root"], env=installed["env"], timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["eno_hf"].startswith(str(installed["site"])), info
    assert info["flows"].startswith(str(installed["site"])), info
    assert {"small", "tagger", "base", "datasets/4q", "percepiano"} <= set(info["configs"])
    assert not info["top_flows"], "the wheel must not install a generic top-level 'flows' package"


def test_own_collection_from_any_folder(installed):
    """``eno init`` on a folder of real clips, ``eno run`` to a registered model, ``eno tag`` two clips."""
    work = installed["root"] / "work"
    music = work / "music"
    clips = []
    for q in ("Q1", "Q2", "Q3", "Q4"):
        (music / q).mkdir(parents=True)
        for clip in sorted((FOURQ / q).glob("*.mp3"))[:3]:
            shutil.copy(clip, music / q / clip.name)
            clips.append(music / q / clip.name)
    assert len(clips) == 12
    env, eno = installed["env"], installed["eno"]

    init = _run([eno, "init", "music", "--json"], cwd=work, env=env, timeout=600)
    assert init.returncode == 0, init.stdout[-2000:] + init.stderr[-3000:]
    found = _last_json(init.stdout)
    assert (music / "eno.yaml").is_file() or (work / "eno.yaml").is_file(), found
    config = music / "eno.yaml" if (music / "eno.yaml").is_file() else work / "eno.yaml"

    sets = ["train.epochs=2", "train.batch_size=4", "run.baselines=false", "run.tag_files=[]",
            "dataset.num_workers=1", f"paths.data_root={work / 'eno-data'}"]
    args = [eno, "run", "--config", str(config), "--json"]
    for s in sets:
        args += ["--set", s]
    run = _run(args, cwd=work, env=env, timeout=1500)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    result = _last_json(run.stdout)
    registered = Path(result["registered"])
    assert registered.is_dir() and str(registered).startswith(str(work)), result

    tag = _run([eno, "tag", str(clips[0]), str(clips[5]), "--model", str(registered), "--config", str(config),
                "--json"], cwd=work, env=env, timeout=600)
    assert tag.returncode == 0, tag.stdout[-2000:] + tag.stderr[-3000:]
    records = [json.loads(ln) for ln in tag.stdout.splitlines() if ln.startswith("{")]
    tagged = [r for r in records if r.get("path") and not r.get("error")]
    assert len(tagged) == 2 and all(r.get("heads") for r in tagged), records

    from huggingface_hub import ModelCard

    card = ModelCard.load(registered / "README.md")
    metrics = json.loads((Path(result["eval_dir"]) / "metrics.json").read_text())
    results = card.data.eval_results or []
    assert results, "the model card has no model-index metrics"
    checked = 0
    for r in results:
        node = metrics
        for key in str(r.metric_name).split("/"):  # "{head}/{metric}" or "score"
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, (int, float)) and not (isinstance(node, float) and math.isnan(node)):
            assert math.isclose(float(r.metric_value), float(node), rel_tol=1e-6, abs_tol=1e-9), (r, node)
            checked += 1
    assert checked == len(results), (checked, [(r.metric_type, r.metric_value) for r in results])
