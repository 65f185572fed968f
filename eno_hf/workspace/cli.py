"""``eno dataset ...``: dataset workspaces (registered in ``eno_hf/cli.py`` as one ``add_typer``).

Every command takes ``--config`` (default: the built-in ``workspace``) and ``--set key=value``
overrides (e.g. ``--set workspace.dataset_id=demo``); ``--json`` prints one JSON line last.
``validate`` and ``all`` exit with status 1 when a score is below its threshold.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.console import Console

from eno_hf.cli_common import ConfigOpt, JsonOpt, SetOpt, print_json_last
from eno_hf.cli_common import load_settings as _settings

if TYPE_CHECKING:  # annotations only: the CLI loads eno_hf.config when a command runs (fast --help)
    from eno_hf.config import Settings

app = typer.Typer(help="Dataset workspaces for MIDI and audio (create, import, annotate, extract, augment, "
                       "synthesize, validate, split, all).", no_args_is_help=True)
console = Console(stderr=True)

DEFAULT = Path("workspace")  # the built-in config (eno_hf/configs/workspace.yaml) or a file path


def _emit(obj: Any, json_out: bool) -> None:
    if json_out:
        print_json_last(obj, drop_bulky=False)


def _progress(desc: str):
    from eno_hf.utils.progress import track  # lazy: keeps `eno --help` fast

    def wrap(it, total):
        return track(it, total=total, description=desc, unit="file", enabled=total >= 2)
    return wrap


def _guard(fn, *args, **kwargs):
    from eno_hf.errors import RejectedInput  # lazy: keeps `eno --help` fast
    from eno_hf.workspace.layout import WorkspaceError

    try:
        return fn(*args, **kwargs)
    except (WorkspaceError, RejectedInput) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc


def _cpu_s() -> float:
    """User + system CPU seconds of this process and its reaped children (worker pools)."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _timed(timings: dict[str, Any], name: str, fn, *args):
    """``_guard(fn, *args)``, recording ``{"wall_s", "cpu_s"}`` of the step into ``timings[name]``."""
    import time

    t0, c0 = time.perf_counter(), _cpu_s()
    out = _guard(fn, *args)
    timings[name] = {"wall_s": round(time.perf_counter() - t0, 2), "cpu_s": round(_cpu_s() - c0, 2)}
    return out


def _report_rejects(rows: list[dict], what: str) -> None:
    for r in rows[:20]:
        console.print(f"  [yellow]{what}[/yellow] {r.get('path') or r.get('sample_id')}: {r.get('reason')} "
                      f"{r.get('detail', '')}")
    if len(rows) > 20:
        console.print(f"  ... and {len(rows) - 20} more (see manifest.json 'rejected')")


@app.command()
def create(config: ConfigOpt = DEFAULT, set_: SetOpt = None, json_out: JsonOpt = False) -> None:
    """Create the workspace folder, config.json and an empty manifest (idempotent)."""
    from eno_hf.workspace.steps import step_create

    out = _guard(step_create, _settings(config, set_))
    console.print(f"workspace: [bold]{out['workspace']}[/bold] ({out['samples']} samples)")
    _emit(out, json_out)


@app.command("import")
def import_(folders: Annotated[Optional[list[Path]], typer.Argument(help="Folders (default: workspace.sources).")] = None,
            copy_files: Annotated[bool, typer.Option("--copy", help="Copy instead of linking.")] = False,
            config: ConfigOpt = DEFAULT, set_: SetOpt = None, json_out: JsonOpt = False) -> None:
    """Import MIDI and audio files (content hash = sample id; duplicates reported)."""
    from eno_hf.workspace.steps import step_import

    out = _guard(step_import, _settings(config, set_), folders, copy_files)
    for s in out["sources"]:
        console.print(f"{s['path']}: {s['imported']} imported, {s['already_present']} already present, "
                      f"{len(s['duplicates'])} duplicates, {len(s['rejected'])} rejected")
        for d in s["duplicates"][:20]:
            console.print(f"  [yellow]duplicate[/yellow] {d['path']} = {d['duplicate_of']}")
        _report_rejects(s["rejected"], "rejected")
    _emit(out, json_out)


@app.command()
def annotate(interactive: Annotated[bool, typer.Option("--interactive", "-i", help="Ask with rich prompts.")] = False,
             all_: Annotated[bool, typer.Option("--all", help="Interactive: also samples that have an emotion.")] = False,
             limit: Annotated[Optional[int], typer.Option(help="Interactive: at most N samples.")] = None,
             overwrite: Annotated[bool, typer.Option(help="Replace unverified labels from folders/tables.")] = False,
             config: ConfigOpt = DEFAULT, set_: SetOpt = None, json_out: JsonOpt = False) -> None:
    """Label samples from folder names / metadata tables, or interactively."""
    from eno_hf.workspace.steps import _open, step_annotate

    s = _settings(config, set_)
    if interactive:
        from eno_hf.workspace.ingest import annotate_interactive

        ws, manifest = _guard(_open, s)
        done = annotate_interactive(ws, manifest, s.workspace, console=Console(), only_missing=not all_,
                                    limit=limit)
        console.print(f"{len(done)} samples annotated")
        _emit({"annotated": done}, json_out)
        return
    out = _guard(step_annotate, s, overwrite)
    console.print(f"labelled from folders: {out['folders']}, from tables: {out['table']}, "
                  f"still unlabelled: {out['unlabelled']}")
    _emit(out, json_out)


@app.command()
def extract(force: Annotated[bool, typer.Option(help="Recompute existing features.")] = False,
            config: ConfigOpt = DEFAULT, set_: SetOpt = None, json_out: JsonOpt = False) -> None:
    """Audio features (eno's path) and MIDI features (pretty_midi + music21) per sample."""
    from eno_hf.workspace.steps import step_extract

    out = _guard(step_extract, _settings(config, set_), force, _progress("extract"))
    console.print(f"{out['extracted']} extracted, {out['cached']} already done, {len(out['rejected'])} rejected")
    _report_rejects(out["rejected"], "rejected")
    _emit(out, json_out)


@app.command()
def augment(copies_midi: Annotated[Optional[int], typer.Option(help="Copies per MIDI sample.")] = None,
            copies_audio: Annotated[Optional[int], typer.Option(help="Copies per audio sample.")] = None,
            config: ConfigOpt = DEFAULT, set_: SetOpt = None, json_out: JsonOpt = False) -> None:
    """Seeded augmented copies with provenance and transformed labels."""
    from eno_hf.workspace.steps import step_augment

    out = _guard(step_augment, _settings(config, set_), copies_midi, copies_audio, _progress("augment"))
    console.print(f"{out['created']} copies created ({out['existing']} existed), {len(out['rejected'])} failed")
    _report_rejects(out["rejected"], "failed")
    _emit(out, json_out)


@app.command()
def synthesize(n: Annotated[Optional[int], typer.Option("--n", help="Samples per category.")] = None,
               config: ConfigOpt = DEFAULT, set_: SetOpt = None, json_out: JsonOpt = False) -> None:
    """Rule-based MIDI per emotion (rendered by FluidSynth when extracted / split)."""
    from eno_hf.workspace.steps import step_synthesize

    out = _guard(step_synthesize, _settings(config, set_), n)
    console.print(f"{out['created']} synthetic samples")
    _emit(out, json_out)


def _validate(s: Settings, json_out: bool, extra: dict | None = None, rep: Any = None) -> None:
    """Print (and with ``json_out`` emit) the validation report ``rep`` (default: validate now);
    exit 1 below the thresholds."""
    from eno_hf.workspace.steps import step_validate
    from eno_hf.workspace.validate import _jsonable, print_report

    rep = rep if rep is not None else _guard(step_validate, s)
    print_report(rep, Console())
    body = _jsonable({k: v for k, v in rep.to_dict().items() if k != "rejected"})
    _emit({"steps": extra, "validation": body} if extra is not None else body, json_out)
    if not rep.passed:
        console.print(f"[red]below threshold:[/red] {', '.join(rep.failing)}")
        raise typer.Exit(1)


@app.command()
def validate(config: ConfigOpt = DEFAULT, set_: SetOpt = None, json_out: JsonOpt = False) -> None:
    """Balance, diversity, quality, structure: table + JSON; exit 1 below the thresholds."""
    _validate(_settings(config, set_), json_out)


@app.command()
def split(config: ConfigOpt = DEFAULT, set_: SetOpt = None, json_out: JsonOpt = False) -> None:
    """Grouped splits (splits/*.txt) and the versioned Hugging Face DatasetDict."""
    from eno_hf.workspace.steps import step_split

    out = _guard(step_split, _settings(config, set_))
    console.print(f"dataset: [bold]{out['dataset']}[/bold] (version {out['version']}"
                  f"{', cache hit' if out['cache_hit'] else ''}); splits {out['splits']}")
    _report_rejects(out["rejected"], "not in dataset")
    _emit(out, json_out)


@app.command("all")
def all_(config: ConfigOpt = DEFAULT, set_: SetOpt = None, json_out: JsonOpt = False) -> None:
    """create → import → annotate → extract → augment → synthesize → extract → split → validate."""
    run_workspace_command(_settings(config, set_), json_out)


def run_workspace_command(s: Settings, json_out: bool = False, prefect: bool = False) -> None:
    """Run the workspace job (``eno dataset all``, and ``eno run`` for ``job: workspace``): each
    step's outcome as it ends, step times, the validation report; exit 1 below the thresholds.
    With ``prefect``: the flow ``eno-dataset-workspace`` on an ephemeral server (no step times)."""
    if prefect:
        return _run_workspace_flow(s, json_out)
    from eno_hf.jobs import run_directly, run_stages
    from eno_hf.workspace.steps import WORKSPACE, WorkspaceState

    t: dict[str, Any] = {}

    def runner(stage, settings, state):  # the job's stages in this process: guarded, timed, reported
        if stage.name == "validate":
            return _guard(run_directly, stage, settings, state)
        out = _timed(t, stage.name, run_directly, stage, settings, state)
        _report_stage(stage.name, out[stage.name], state.summary)
        return out

    state = run_stages(WORKSPACE, s, state=WorkspaceState(progress=_progress), runner=runner)
    summary: dict[str, Any] = dict(state.summary)
    summary["timings"] = t
    console.print("step times (wall / CPU s): " + ", ".join(f"{k} {v['wall_s']:.0f}/{v['cpu_s']:.0f}"
                                                            for k, v in t.items()))
    _validate(s, json_out, extra=summary, rep=state.validation)


def _run_workspace_flow(s: Settings, json_out: bool) -> None:
    from eno_hf.flows.workspace import workspace_flow  # up to flows: --prefect only (Prefect is optional)
    from eno_hf.workspace.validate import _jsonable

    out = _guard(workspace_flow, settings=s)
    validation = out.pop("validate")
    for name, summary in out.items():
        _report_stage(name, summary, out)
    _emit({"steps": out, "validation": _jsonable({k: v for k, v in validation.items() if k != "rejected"})}, json_out)
    if not validation["passed"]:
        console.print(f"[red]below threshold:[/red] {', '.join(validation.get('failing') or [])}")
        raise typer.Exit(1)


def _report_stage(name: str, out: dict[str, Any], summary: dict[str, Any]) -> None:
    """What ``eno dataset all`` prints once stage ``name`` returned ``out`` (``summary``: the
    earlier stages')."""
    if name == "create":
        console.print(f"workspace: [bold]{out['workspace']}[/bold]")
    elif name == "import":
        for src in out["sources"]:
            console.print(f"import {src['path']}: {src['imported']} new, {len(src['duplicates'])} duplicates, "
                          f"{len(src['rejected'])} rejected")
    elif name == "annotate":
        console.print(f"annotate: {out}")
    elif name == "extract":
        _report_rejects(out["rejected"], "rejected")
    elif name == "extract_new":
        _report_rejects(out["rejected"], "rejected")
        console.print(f"augment: {summary['augment']['created']} copies; synthesize: "
                      f"{summary['synthesize']['created']} samples")
    elif name == "split":
        console.print(f"dataset: [bold]{out['dataset']}[/bold] splits {out['splits']}")
