"""The ``eno`` command line: every stage of the main job, plus tagging and weight import.

Every command takes ``--config NAME_OR_FILE`` (a built-in config name such as ``small``, the
default, listed by ``eno config --list``, or a YAML file) and repeatable ``--set key.path=value``
overrides, e.g.::

    eno run --config small --set train.epochs=3 --json
    eno -q build --set dataset.limit=20
    eno tag ../shared/data/jamendo-lyrics-10 --model eno-tagger --json
    eno import-weights mtat-musicnn --out models/mtat-musicnn

Root options: ``--version``, ``-v/--verbose`` (DEBUG log lines), ``-q/--quiet`` (warnings only, no
progress bars); the default shows eno's INFO lines on stderr (``eno_hf.utils.logs``).

``--json``: every command that produces results ends stdout with one JSON object on one line
(``eno_hf.cli_common.print_json_last``). ``eno tag --json`` streams: one JSON record per input
first, then the summary object. Everything meant for people goes to stderr.

Importing this module is cheap: each command imports what it needs (torch, transformers,
datasets, Prefect) when it runs, so ``eno --help`` and ``eno config`` start in well under a second.
"""

from __future__ import annotations

import itertools
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

import eno_hf  # noqa: F401  (offline defaults before HF/Prefect/ClearML import)
from eno_hf.clarity.cli import app as clarity_app
from eno_hf.cli_common import ConfigOpt, JsonOpt, SetOpt, console, load_settings, print_json_last
from eno_hf.embeddings.cli import embed_command
from eno_hf.evaluation.cv_cli import cv_command
from eno_hf.init_cli import init_command
from eno_hf.workspace.cli import app as workspace_app

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="eno: turn a music collection into trained, served audio models.\n\n"
         "With --json a command ends stdout with one JSON object (the last line); `eno tag --json` "
         "streams a JSON line per input before it. Human-readable output goes to stderr.",
)
hub_app = typer.Typer(help="The local model hub.", no_args_is_help=True)
# command groups and commands defined in their own packages: one form each (add_typer / app.command)
app.add_typer(hub_app, name="hub")
app.add_typer(clarity_app, name="clarity")
app.add_typer(workspace_app, name="dataset")
app.command("embed")(embed_command)
app.command("cv")(cv_command)
app.command("init")(init_command)

out = Console()

DEFAULT_CONFIG = Path("small")  # a built-in config name (eno_hf/configs/small.yaml) or a file path
MODEL_CONFIG = Path("base")
"""Default of the commands that use a trained model but no dataset (tag, register, import-weights, hub
list): the base config, which names no example data, so they run anywhere without ENO_SHARED_DIR."""


def _version() -> str:
    """The installed distribution's version (``importlib.metadata``), else ``eno_hf.__version__``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("eno")
    except PackageNotFoundError:
        return eno_hf.__version__


def _print_version(value: bool) -> None:
    if value:
        print(f"eno {_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[Optional[bool], typer.Option("--version", callback=_print_version, is_eager=True,
                                                    help="Print `eno <version>` and exit.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at DEBUG (eno's own loggers).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors on stderr; no "
                                                              "progress bars.")] = False,
) -> None:
    """Root options, applied before any command: the log level of eno's loggers (INFO by default)."""
    from eno_hf.utils.logs import setup_logging  # lazy: keeps `eno --help` fast

    if verbose and quiet:
        raise typer.BadParameter("give -v/--verbose or -q/--quiet, not both")
    setup_logging("DEBUG" if verbose else "WARNING" if quiet else "INFO")


@contextmanager
def _input_errors():
    """A metadata file unusable as a whole, or no usable input: one line, exit 2."""
    from rich.markup import escape

    from eno_hf.errors import MetadataError, NoUsableInput  # lazy: keeps `eno --help` fast

    try:
        yield
    except (MetadataError, NoUsableInput) as exc:
        console.print(f"[red]input error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from exc


@contextmanager
def _file_errors():
    """A missing file the command needs (pretrained weights: ``WeightsNotFoundError``, which names
    every place looked; a model or data file): one line on stderr, exit 2."""
    try:
        yield
    except FileNotFoundError as exc:
        from eno_hf.models.weights import WeightsNotFoundError  # lazy: keeps `eno --help` fast

        what = "weights error" if isinstance(exc, WeightsNotFoundError) else "file not found"
        console.print(f"{what}: {_one_line(exc)}", markup=False, soft_wrap=True)
        raise typer.Exit(2) from exc


def _one_line(exc: BaseException) -> str:
    """``str(exc)`` on one line (an ``OSError`` without a message gets its file name)."""
    text = str(exc) or f"{type(exc).__name__}: {getattr(exc, 'filename', '')}"
    return " ".join(text.split())




# ----------------------------------------------------------------------------- stages
@app.command()
def ingest(config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None,
           json_out: JsonOpt = False) -> None:
    """Read metadata into recordings (no audio decoding); print counts, label vocabularies, rejects."""
    from eno_hf.data.labels import clean_labels
    from eno_hf.data.sources import load_recordings

    s = load_settings(config, set_)
    with _input_errors():
        src = load_recordings(s.dataset.source)
    labels = clean_labels(src.recordings, s.dataset.labels)
    table = Table(title=f"ingest: {s.dataset.name}")
    table.add_column("task")
    table.add_column("labels", justify="right")
    for task, vocab in labels.vocab.items():
        table.add_row(task, str(len(vocab)))
    console.print(table)
    console.print(f"{len(src.recordings)} recordings, {len(src.rejected)} rejected")
    for r in src.rejected[:20]:
        console.print(f"  [yellow]rejected[/yellow] {r.get('path')}: {r.get('reason')} {r.get('detail', '')}")
    if json_out:
        print_json_last({"recordings": len(src.recordings), "rejected": src.rejected,
                          "vocab": labels.vocab})


@app.command()
def build(config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None,
          json_out: JsonOpt = False) -> None:
    """Build (or reuse) the versioned dataset: condition, segment, featurize, split, QC report.

    Exit codes: 0 every input written; 1 the dataset was written but some inputs were rejected (each
    with its reason in qc_report.json, as ``eno tag`` exits 1 when some inputs failed); 2 nothing
    usable (bad config, unusable metadata, too few groups).
    """
    from eno_hf.data.qc import print_qc_table
    from eno_hf.tagging import run_stages

    s = load_settings(config, set_)
    with _input_errors():
        st = run_stages(s, ["dataset"])
    print_qc_table(st.qc_report)
    hit = st.cached["dataset"]
    console.print(f"dataset: [bold]{st.dataset_path}[/bold] (version {st.dataset_version}"
                  f"{', cache hit' if hit else ''})")
    n_rejected = len(st.qc_report.get("rejected") or [])
    if n_rejected:
        console.print(f"[yellow]{n_rejected} input(s) rejected[/yellow], each with its reason in "
                      f"{st.dataset_path / 'qc_report.json'}; the dataset holds the others (exit 1)")
    if json_out:
        print_json_last({"dataset": str(st.dataset_path), "version": st.dataset_version, "cache_hit": hit,
                         "n_rejected": n_rejected})
    if n_rejected:
        raise typer.Exit(1)


@app.command()
def download(config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None,
             json_out: JsonOpt = False) -> None:
    """Fetch audio listed by URL in the metadata (dataset.download.url_column) into the data root.

    Retries with backoff, resumable partial downloads, checksums in manifest.json, failures with a
    reason in download_report.json. Exits 1 when any URL failed.
    """
    from eno_hf.data.download import download_dataset_audio

    s = load_settings(config, set_)
    try:
        res = download_dataset_audio(s, progress=True)
    except (ValueError, OSError) as exc:
        console.print(f"[red]download error:[/red] {exc}")
        raise typer.Exit(2) from exc
    reused = sum(bool(e["reused"]) for e in res.downloaded)
    console.print(f"downloaded {len(res.downloaded) - reused}, reused {reused}, failed {len(res.failed)}"
                  f"  manifest: {res.manifest_path}  report: {res.report_path}")
    if json_out:
        print_json_last({"manifest": str(res.manifest_path), "report": str(res.report_path),
                          "downloaded": len(res.downloaded), "failed": len(res.failed)})
    if res.failed:
        raise typer.Exit(1)


@app.command()
def train(config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None,
          json_out: JsonOpt = False,
          remote: Annotated[Optional[str], typer.Option(
              "--remote", help="Enqueue this training on a ClearML agent queue (needs a ClearML server).")] = None,
          dataset: Annotated[Optional[str], typer.Option(
              "--dataset", help="Train on this built dataset NAME[@VERSION] under the data root (e.g. a "
                                "workspace's, from `eno dataset split`) instead of building one.")] = None
          ) -> None:
    """Build the dataset if needed (or open --dataset), then train the configured model (resumable)."""
    from eno_hf.tagging import PipelineState, run_id, run_stages

    s = load_settings(config, set_)
    if remote:
        from eno_hf.registry.clearml import enqueue_training

        try:  # exits this process once the task is enqueued; on the agent it returns and trains
            enqueue_training(s.model_dump(mode="json"), remote, project=s.registry.clearml_project,
                             task_name=f"train-{s.registry.model_name}")
        except RuntimeError as exc:
            console.print(f"[red]remote training:[/red] {exc}")
            raise typer.Exit(2) from exc
    if dataset:
        from eno_hf.data.build import open_dataset
        from eno_hf.data.version import resolve_version, version_dir

        name, _, ver = dataset.partition("@")
        ver = resolve_version(s.paths.data_root, name, ver or "latest")
        st = PipelineState(dataset_path=version_dir(s.paths.data_root, name, ver).resolve(), dataset_version=ver,
                           dataset=open_dataset(s.paths.data_root, name, ver),
                           run_dir=Path(s.paths.data_root).resolve() / "runs" / run_id(s, ver))
    with _input_errors(), _file_errors():
        st = run_stages(s, ["train"] if dataset else ["dataset", "train"], state=st if dataset else None)
    console.print(f"model: [bold]{st.model_dir}[/bold]{' (cached)' if st.cached['train'] else ''}")
    if json_out:
        print_json_last({"dataset": str(st.dataset_path), "model": str(st.model_dir)})


@app.command()
def evaluate(model: Annotated[str, typer.Option("--model", "-m", help="Model dir, name or name@version.")],
             config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None,
             out_dir: Annotated[Optional[Path], typer.Option("--out")] = None,
             json_out: JsonOpt = False) -> None:
    """Evaluate a model on the dataset's test split: metrics.json, per-tag CSV, PNG plots."""
    from eno_hf.tagging import run_stages
    from eno_hf.registry.hub import resolve

    s = load_settings(config, set_)
    st = run_stages(s, ["dataset"])
    st.model_dir = resolve(model, s.paths.hub()).resolve()
    st.eval_dir = out_dir or (st.model_dir.parent / f"eval-{st.dataset_version}")
    st = run_stages(s, ["evaluate"], state=st)
    console.print(f"evaluation written to [bold]{st.eval_dir}[/bold]{' (cached)' if st.cached['evaluate'] else ''}")
    if json_out:
        print_json_last({"metrics": st.metrics, "eval_dir": str(st.eval_dir)})


@app.command()
def register(model: Annotated[Path, typer.Option("--model", "-m", help="Trained model directory.")],
             config: ConfigOpt = MODEL_CONFIG, set_: SetOpt = None,
             name: Annotated[Optional[str], typer.Option("--name")] = None,
             dataset: Annotated[Optional[Path], typer.Option(
                 "--dataset", help="The saved training dataset (default: the one an earlier registration of "
                                   "this model recorded).")] = None,
             json_out: JsonOpt = False) -> None:
    """Copy a model directory into the local hub (and ClearML, when ``registry.clearml`` is on).

    A model trained by ``eno run`` (``{run}/model``) gets its card rewritten from the run's test
    metrics and baselines, with the dataset version's ``eno cv`` report when there is one.
    """
    from eno_hf.registry.register import recorded_run_outputs, register_model

    s = load_settings(config, set_)
    try:
        found = recorded_run_outputs(model, s.paths.hub(), dataset)
    except FileNotFoundError as exc:
        console.print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from exc
    if found["metrics"] is None or found["dataset_info"] is None:
        console.print("the model card is copied as it is (no run metrics or no training dataset found; "
                      "--dataset names the dataset)")
    reg = register_model(s, model, name=name, **found)
    console.print(f"registered: [bold]{reg.version_dir}[/bold]"
                  + (f" (ClearML session {reg.clearml_session})" if reg.clearml_session else ""))
    if json_out:
        print_json_last({"registered": str(reg.version_dir), "name": reg.name,
                         "version": reg.version_dir.name, "clearml_session": reg.clearml_session,
                         "card_from_run": found["metrics"] is not None and found["dataset_info"] is not None})


@app.command()
def tag(paths: Annotated[list[Path], typer.Argument(help="Audio files or folders.")],
        model: Annotated[str, typer.Option("--model", "-m", help="Model dir, name or name@version.")] = "eno-tagger",
        config: ConfigOpt = MODEL_CONFIG, set_: SetOpt = None,
        top_k: Annotated[int, typer.Option("--top-k")] = 5,
        json_out: Annotated[bool, typer.Option("--json", help="Stream one JSON line per input on stdout, "
                                                        "then one summary object (the last line).")] = False,
        out_file: Annotated[Optional[Path], typer.Option("--out", help="Write JSONL here.")] = None,
        transcribe: Annotated[Optional[bool], typer.Option(
            "--transcribe/--no-transcribe",
            help="Performance models: transcribe recordings and feed the transcription's MIDI statistics "
                 "to the model. Default: when the model has a map fitted on transcriptions "
                 "(ridge_transcription); --transcribe also for a model with only a MIDI map (measured "
                 "worse than audio only; docs/performance.md); --no-transcribe: audio only.")] = None) -> None:
    """Tag audio files with every head of a model. A folder is tagged recursively (JSONL).

    Every input gets a record (errors: ``{"path", "error": {"reason", "detail"}}``, the reason
    codes of docs/errors.md); exits 1 when any input failed, 2 when the model cannot be read.
    With --json (streaming): the records, then ``{"inputs", "tagged", "failed", "reasons", "out"}``.
    A performance model's record says which input it used, ``"input_branch"``: ``"midi"`` (a MIDI
    file), ``"audio+transcription"`` (a recording transcribed to MIDI: by default for a model with a
    transcription map, with --transcribe for any model that reads MIDI statistics; needs the
    ``transcription`` extra) or ``"audio"`` (embeddings only).
    """
    from eno_hf.inference.tag import tag_paths
    from eno_hf.registry.hub import resolve

    s = load_settings(config, set_)
    try:
        model_dir = resolve(model, s.paths.hub())
        from eno_hf.inference.performance import is_performance_model, tag_performance_paths

        records = (tag_performance_paths(paths, model_dir, audio_cfg=s.dataset.audio, transcribe_audio=transcribe)
                   if is_performance_model(model_dir)
                   else tag_paths(paths, model_dir, top_k=top_k, audio_cfg=s.dataset.audio,
                                  allowed_roots=s.dataset.source.allowed_roots))
        first = next(records, None)  # loads the model: fail here, before any output
    except OSError as exc:
        from eno_hf.models.weights import WeightsNotFoundError  # lazy: keeps `eno --help` fast

        if isinstance(exc, WeightsNotFoundError):
            console.print(f"weights error: {_one_line(exc)}", markup=False, soft_wrap=True)
        else:
            console.print(f"model error: {type(exc).__name__}: {_one_line(exc)}", markup=False,
                          soft_wrap=True)
        raise typer.Exit(2) from exc
    sink = out_file.open("w", encoding="utf-8") if out_file else None
    n, reasons = 0, {}
    try:
        for rec in itertools.chain([first] if first is not None else [], records):
            n += 1
            if rec.get("error"):
                reasons[rec["error"]["reason"]] = reasons.get(rec["error"]["reason"], 0) + 1
            line = json.dumps(rec, ensure_ascii=False, default=str)
            if sink:
                sink.write(line + "\n")
            if json_out:
                print(line, flush=True)
            elif not sink:
                _print_tags(rec)
    finally:
        if sink:
            sink.close()
    n_err = sum(reasons.values())
    why = f" ({', '.join(f'{k}: {v}' for k, v in sorted(reasons.items()))})" if reasons else ""
    console.print(f"tag: {n} input(s), {n - n_err} tagged, {n_err} failed{why}"
                  + (f" → {out_file}" if out_file else ""))
    if json_out:
        print_json_last({"inputs": n, "tagged": n - n_err, "failed": n_err, "reasons": reasons,
                         "out": str(out_file) if out_file else None})
    if n_err:
        raise typer.Exit(1)


def _print_tags(rec: dict) -> None:
    if rec.get("error"):
        console.print(f"[red]{rec['path']}[/red]: {rec['error']}")
        return
    table = Table(title=str(rec["path"]), show_header=True)
    table.add_column("head")
    table.add_column("top labels (score)")
    for head, scores in rec.get("heads", {}).items():
        if not isinstance(scores, dict):  # ranking score / projection of a performance model
            table.add_row(head, str(scores)[:80])
            continue
        top = sorted(scores.items(), key=lambda kv: -kv[1])[:5]
        table.add_row(head, ", ".join(f"{k} ({v:.2f})" for k, v in top))
    out.print(table)


@app.command("import-weights")
def import_weights(name: Annotated[str, typer.Argument(help="e.g. mtat-musicnn, msd-fcn, jamendo-crnn")],
                   out_dir: Annotated[Path, typer.Option("--out", help="Model directory to write.")],
                   config: ConfigOpt = MODEL_CONFIG, set_: SetOpt = None,
                   json_out: JsonOpt = False) -> None:
    """Turn a pretrained tagger (from paths.models_dir, env ENO_MODELS_DIR) into a model directory
    pipeline() loads. A missing weight file: one line naming every place looked, exit 2."""
    from eno_hf.models.import_weights import import_tagger

    s = load_settings(config, set_)
    with _file_errors():
        try:
            dest = import_tagger(name, out_dir, models_dir=s.paths.models_dir)
        except ValueError as exc:  # unknown tagger name
            console.print(f"error: {_one_line(exc)}", markup=False, soft_wrap=True)
            raise typer.Exit(2) from exc
    console.print(f"wrote [bold]{dest}[/bold]")
    if json_out:
        print_json_last({"name": name, "model": str(Path(dest).resolve())})



@app.command()
def run(config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None,
        json_out: JsonOpt = False,
        prefect: Annotated[bool, typer.Option("--prefect/--no-prefect",
                                              help="Run as the job's Prefect flow (eno-pipeline, eno-performance, "
                                                   "eno-clarity, eno-dataset-workspace; ephemeral server).")] = True
        ) -> None:
    """Run the config's job (`job:`; eno_hf.jobs): tagging (dataset → baselines → train → evaluate →
    register → tag), performance, clarity or workspace."""
    from eno_hf.jobs import job_name

    s = load_settings(config, set_)
    job = job_name(s)
    if job == "performance":  # eno_hf.performance.job.PERFORMANCE
        from eno_hf.performance.cli import run_performance_command  # lazy: `eno --help` fast; tests patch it

        return run_performance_command(s, json_out, prefect=prefect)
    if job == "clarity":  # eno_hf.clarity.job.CLARITY
        from eno_hf.clarity.cli import run_clarity_command  # looked up at call time (tests patch it)

        return run_clarity_command(s, json_out, prefect=prefect)
    if job == "workspace":  # eno_hf.workspace.steps.WORKSPACE
        from eno_hf.workspace.cli import run_workspace_command  # looked up at call time (tests patch it)

        return run_workspace_command(s, json_out, prefect=prefect)
    with _input_errors(), _file_errors():  # the tagging job, eno_hf.tagging.TAGGING
        if prefect:  # the only place the CLI touches Prefect, and only when asked to
            from eno_hf.flows.tagging import eno_pipeline

            result = eno_pipeline(settings=s)
        else:
            from eno_hf.tagging import run_pipeline

            result = run_pipeline(s).to_dict()
    _print_run(result)
    if json_out:
        print_json_last(result)


def _print_run(r: dict) -> None:
    from eno_hf.evaluation.report import print_summary

    try:
        print_summary(r["metrics"], r.get("baselines") or None)
    except Exception as exc:  # the summary is a convenience; never fail the run on it
        console.print(f"[yellow]could not print the summary table: {exc}[/yellow]")
    cached = ", ".join(k for k, v in (r.get("cached") or {}).items() if v)
    console.print("\n[bold]eno run finished[/bold]" + (f" (reused: {cached})" if cached else ""))
    for key in ("dataset", "model", "registered", "eval_dir", "tags", "clearml"):
        if r.get(key):
            console.print(f"  {key:<10} {r[key]}")


@app.command("config")
def show_config(config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None,
                list_: Annotated[bool, typer.Option("--list", help="List the built-in configs (name and "
                                                                   "what each is for) instead.")] = False,
                json_out: JsonOpt = False) -> None:
    """Print the resolved configuration as YAML (with --json: one JSON object instead)."""
    if list_:
        return _list_configs(json_out)
    s = load_settings(config, set_)
    settings = s.model_dump(mode="json")
    if json_out:
        from eno_hf.config import resolve_config_path

        print_json_last({"config": str(resolve_config_path(config).absolute()), "settings": settings},
                        drop_bulky=False)
        return
    import yaml

    print(yaml.safe_dump(settings, sort_keys=False))


def _config_summary(path: Path) -> str:
    """The first non-empty comment line of a YAML file, without the ``#``."""
    try:
        for line in path.read_text(encoding="utf-8").splitlines():
            text = line.strip()
            if text.startswith("#") and text.lstrip("#").strip():
                return text.lstrip("#").strip()
            if text and not text.startswith("#"):
                break
    except OSError:
        pass
    return ""


def _list_configs(json_out: bool) -> None:
    from rich.markup import escape

    from eno_hf.config import builtin_configs

    rows = [{"name": name, "path": str(path), "description": _config_summary(path)}
            for name, path in builtin_configs().items()]
    if json_out:
        print_json_last({"configs": rows})
        return
    table = Table(title="built-in configs (--config NAME; or a YAML file path)", title_justify="left")
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("description")
    for r in rows:
        table.add_row(escape(r["name"]), escape(r["description"]))
    out.print(table)


@hub_app.command("list")
def hub_list(config: ConfigOpt = MODEL_CONFIG, set_: SetOpt = None, json_out: JsonOpt = False) -> None:
    """List registered models and versions (--json: ``{"hub", "models": [...]}``)."""
    from eno_hf.registry.hub import list_models

    s = load_settings(config, set_)
    rows = list_models(s.paths.hub())
    if json_out:
        print_json_last({"hub": str(s.paths.hub()), "models": rows}, drop_bulky=False)
        return
    if not rows:
        console.print(f"no registered models in {s.paths.hub()}")
    for row in rows:
        out.print(row)


from eno_hf.serving.cli import register as _register_serving  # noqa: E402  (serve, export-onnx)

_register_serving(app)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
