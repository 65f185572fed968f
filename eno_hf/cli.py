"""The ``eno`` command line: every stage of the main job, plus tagging and weight import.

Every command takes ``--config FILE`` (default ``configs/small.yaml``) and repeatable
``--set key.path=value`` overrides, e.g.::

    eno run --config configs/small.yaml --set train.epochs=3 --json
    eno build --set dataset.limit=20
    eno tag ../shared/data/jamendo-lyrics-10 --model eno-tagger --json
    eno import-weights mtat-musicnn --out models/mtat-musicnn
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

import eno_hf  # noqa: F401  (offline defaults before HF/Prefect/ClearML import)
from eno_hf.config import ConfigError, Settings, load_config

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="eno: turn a music collection into trained, served audio models.",
)
hub_app = typer.Typer(help="The local model hub.", no_args_is_help=True)
app.add_typer(hub_app, name="hub")

console = Console(stderr=True)
out = Console()

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="YAML config (see configs/).")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", "-s", help="Override: key.path=value (repeatable).")]
DEFAULT_CONFIG = Path("configs/small.yaml")


def _settings(config: Path, sets: list[str] | None) -> Settings:
    try:
        return load_config(config, sets or [])
    except ConfigError as exc:
        console.print(f"[red]config error:[/red] {exc}")
        raise typer.Exit(2) from exc


_BULKY = {"per_tag", "per_class", "single_class_tags", "thresholds"}


def _compact(obj):
    """Drop per-tag tables from nested metrics (they are in the evaluation directory)."""
    if isinstance(obj, dict):
        return {k: _compact(v) for k, v in obj.items() if k not in _BULKY}
    return obj


def _print_json_last(obj) -> None:
    """Print one strict-JSON line (NaN → null) as the last stdout line."""
    from eno_hf.evaluation.report import to_jsonable

    sys.stdout.flush()
    print(json.dumps(to_jsonable(_compact(obj)), default=str, allow_nan=False), flush=True)


# ----------------------------------------------------------------------------- stages
@app.command()
def ingest(config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None,
           json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Read metadata into recordings (no audio decoding); print counts, label vocabularies, rejects."""
    from eno_hf.data.labels import clean_labels
    from eno_hf.data.sources import load_recordings

    s = _settings(config, set_)
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
        _print_json_last({"recordings": len(src.recordings), "rejected": src.rejected,
                          "vocab": labels.vocab})


@app.command()
def build(config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None,
          json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Build (or reuse) the versioned dataset: condition, segment, featurize, split, QC report."""
    from eno_hf.data.build import build_dataset
    from eno_hf.data.qc import print_qc_table

    s = _settings(config, set_)
    res = build_dataset(s, progress=True)
    print_qc_table(res.report)
    console.print(f"dataset: [bold]{res.path}[/bold] (version {res.version}"
                  f"{', cache hit' if res.cache_hit else ''})")
    if json_out:
        _print_json_last({"dataset": str(res.path), "version": res.version, "cache_hit": res.cache_hit})


@app.command()
def train(config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None,
          json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Build the dataset if needed, then train the configured model (resumable)."""
    from eno_hf.pipeline import run_id, stage_dataset, stage_train

    s = _settings(config, set_)
    built = stage_dataset(s)
    run_dir = Path(s.paths.data_root).resolve() / "runs" / run_id(s, built.version)
    model_dir, cached = stage_train(s, built.dataset, run_dir)
    console.print(f"model: [bold]{model_dir}[/bold]{' (cached)' if cached else ''}")
    if json_out:
        _print_json_last({"dataset": str(built.path), "model": str(model_dir)})


@app.command()
def evaluate(model: Annotated[str, typer.Option("--model", "-m", help="Model dir, name or name@version.")],
             config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None,
             out_dir: Annotated[Optional[Path], typer.Option("--out")] = None,
             json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Evaluate a model on the dataset's test split: metrics.json, per-tag CSV, PNG plots."""
    from eno_hf.evaluation.run import evaluate_model
    from eno_hf.pipeline import stage_dataset
    from eno_hf.registry.hub import resolve

    s = _settings(config, set_)
    model_dir = resolve(model, s.paths.hub())
    built = stage_dataset(s)
    target = out_dir or (model_dir.parent / f"eval-{built.version}")
    metrics = evaluate_model(model_dir, built.dataset, target, s)
    console.print(f"evaluation written to [bold]{target}[/bold]")
    if json_out:
        _print_json_last({"metrics": metrics, "eval_dir": str(target)})


@app.command()
def register(model: Annotated[Path, typer.Option("--model", "-m", help="Trained model directory.")],
             config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None,
             name: Annotated[Optional[str], typer.Option("--name")] = None) -> None:
    """Copy a model directory into the local hub (and ClearML)."""
    from eno_hf.registry.hub import register as hub_register

    s = _settings(config, set_)
    metrics_file = model / "metrics.json"
    meta = {"metrics": json.loads(metrics_file.read_text())} if metrics_file.is_file() else {}
    dest = hub_register(model, s.paths.hub(), name or s.registry.model_name, meta)
    console.print(f"registered: [bold]{dest}[/bold]")


@app.command()
def tag(paths: Annotated[list[Path], typer.Argument(help="Audio files or folders.")],
        model: Annotated[str, typer.Option("--model", "-m", help="Model dir, name or name@version.")] = "eno-tagger",
        config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None,
        top_k: Annotated[int, typer.Option("--top-k")] = 5,
        json_out: Annotated[bool, typer.Option("--json", help="One JSON line per file on stdout.")] = False,
        out_file: Annotated[Optional[Path], typer.Option("--out", help="Write JSONL here.")] = None) -> None:
    """Tag audio files with every head of a model. A folder is tagged recursively (JSONL)."""
    from eno_hf.inference.tag import tag_paths
    from eno_hf.registry.hub import resolve

    s = _settings(config, set_)
    model_dir = resolve(model, s.paths.hub())
    sink = out_file.open("w", encoding="utf-8") if out_file else None
    n = n_err = 0
    try:
        for rec in tag_paths(paths, model_dir, top_k=top_k):
            n += 1
            n_err += bool(rec.get("error"))
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
    console.print(f"tagged {n - n_err} file(s), {n_err} error(s)" + (f" → {out_file}" if out_file else ""))


def _print_tags(rec: dict) -> None:
    if rec.get("error"):
        console.print(f"[red]{rec['path']}[/red]: {rec['error']}")
        return
    table = Table(title=str(rec["path"]), show_header=True)
    table.add_column("head")
    table.add_column("top labels (score)")
    for head, scores in rec.get("heads", {}).items():
        top = sorted(scores.items(), key=lambda kv: -kv[1])[:5]
        table.add_row(head, ", ".join(f"{k} ({v:.2f})" for k, v in top))
    out.print(table)


@app.command("import-weights")
def import_weights(name: Annotated[str, typer.Argument(help="e.g. mtat-musicnn, msd-fcn, jamendo-crnn")],
                   out_dir: Annotated[Path, typer.Option("--out", help="Model directory to write.")]) -> None:
    """Turn a pretrained tagger from ../shared/models into a model directory pipeline() loads."""
    from eno_hf.models.import_weights import import_tagger

    dest = import_tagger(name, out_dir)
    console.print(f"wrote [bold]{dest}[/bold]")


from eno_hf.evaluation.cv_cli import cv_command  # noqa: E402

app.command("cv")(cv_command)


@app.command()
def run(config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None,
        json_out: Annotated[bool, typer.Option("--json", help="Last stdout line: one JSON object.")] = False,
        prefect: Annotated[bool, typer.Option("--prefect/--no-prefect",
                                              help="Run as the Prefect flow eno-pipeline (ephemeral server).")] = True) -> None:
    """The main job: ingest → condition → dataset → baselines → train → evaluate → register → tag."""
    s = _settings(config, set_)
    if prefect:
        from flows.pipeline import eno_pipeline

        result = eno_pipeline(config=str(config), overrides=list(set_ or []))
    else:
        from eno_hf.pipeline import run_pipeline

        result = run_pipeline(s).to_dict()
    _print_run(result)
    if json_out:
        _print_json_last(result)


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
def show_config(config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None) -> None:
    """Print the resolved configuration as YAML."""
    import yaml

    s = _settings(config, set_)
    print(yaml.safe_dump(s.model_dump(mode="json"), sort_keys=False))


@hub_app.command("list")
def hub_list(config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None) -> None:
    """List registered models and versions."""
    from eno_hf.registry.hub import list_models

    s = _settings(config, set_)
    for row in list_models(s.paths.hub()):
        out.print(row)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
