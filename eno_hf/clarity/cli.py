"""``eno clarity ...``: the mix-clarity workflow's steps and ``run`` (typer sub-app).

    eno clarity run --json                          # every step on the embedded real sources
    eno clarity init | generate | scan | normalize | verify | extract | analyze | train | export
    eno clarity run --set clarity.raw_dir=/my/tree --skip-init --skip-generate

Every command takes ``--config`` (default: the built-in ``clarity``) and ``--set key=value``; with
``--json`` the last stdout line is one JSON object. Steps are cached (``eno_hf.clarity.job``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from eno_hf.cli_common import ConfigOpt, JsonOpt, SetOpt, print_json_last
from eno_hf.cli_common import load_settings as _s

if TYPE_CHECKING:  # annotations only: the CLI loads eno_hf.config when a command runs (fast --help)
    from eno_hf.config import Settings

app = typer.Typer(help="Mix-clarity models: gold/flawed stems -> -18 LUFS -> fingerprints -> "
                       "flaw + correction models -> ONNX.", no_args_is_help=True)

DEFAULT = Path("clarity")  # the built-in config (eno_hf/configs/clarity.yaml) or a file path


def _emit(res: dict[str, Any], json_out: bool, title: str) -> None:
    from rich.console import Console

    res = {k: v for k, v in res.items() if not k.startswith("_")}
    con = Console(stderr=True)
    con.print(f"[bold]{title}[/bold]" + (" (cached)" if res.get("cache_hit") else ""))
    for k, v in res.items():
        if isinstance(v, (str, int, float, bool)) or v is None:
            con.print(f"  {k}: {v}")
        elif isinstance(v, (list, dict)) and len(str(v)) < 300:
            con.print(f"  {k}: {v}")
        elif isinstance(v, (list, dict)):
            con.print(f"  {k}: ({len(v)} items)")
    if json_out:
        print_json_last(res)


_STEPS = {
    "init": "Write real gold audio: Hydrogen drum samples + MIDI rendered with FluidSynth.",
    "generate": "Generate flawed variants with pedalboard (seeded recipe); labels.json with corrections.",
    "scan": "Scan the gold/flawed tree: manifest.json (counts) + validation.json.",
    "normalize": "Normalize every file to the target LUFS (clip guard); normalization_log.json, processed/.",
    "verify": "Re-measure the processed/ files (+-0.5 LU); exit 1 when any fails.",
    "extract": "64-d fingerprints: features.csv/.parquet + feature_metadata.json.",
    "analyze": "NaN/Inf counts, effect sizes, PNG plots.",
    "train": "Random forest (+ gradient boosting, linear) with grouped hold-out and grouped CV.",
    "export": "ONNX export + onnxruntime parity, model card, hub + ClearML registration.",
}


def _step_command(name: str, help_text: str) -> None:
    def command(config: ConfigOpt = DEFAULT, set_: SetOpt = None, json_out: JsonOpt = False) -> None:
        from eno_hf.clarity import job

        res = getattr(job, f"step_{name}")(_s(config, set_))
        _emit(res, json_out, name)
        if name == "verify" and res["failures"]:
            raise typer.Exit(1)

    command.__doc__ = help_text
    app.command(name)(command)


for _name, _help in _STEPS.items():
    _step_command(_name, _help)


@app.command()
def run(config: ConfigOpt = DEFAULT, set_: SetOpt = None, json_out: JsonOpt = False,
        skip_init: Annotated[bool, typer.Option("--skip-init", help="Use the gold files already in raw/.")] = False,
        skip_generate: Annotated[bool, typer.Option("--skip-generate", help="No generated variants.")] = False
        ) -> None:
    """All steps: init, generate, scan, normalize, verify, extract, analyze, train, export."""
    run_clarity_command(_s(config, set_), json_out, skip_init=skip_init, skip_generate=skip_generate)


def run_clarity_command(settings: Settings, json_out: bool = False, prefect: bool = False, skip_init: bool = False,
                        skip_generate: bool = False) -> None:
    """Run the clarity job (``run_clarity``, each step's time as it ends; with ``prefect`` the flow
    ``eno-clarity`` on an ephemeral server, whose log shows them), print where everything went,
    optionally a JSON line (``eno clarity run``, and ``eno run`` for ``job: clarity``)."""
    from rich.console import Console

    con = Console(stderr=True)
    if prefect:
        from eno_hf.flows.clarity import clarity_flow  # up to flows: --prefect only (Prefect is optional)

        res = clarity_flow(settings=settings, skip_init=skip_init, skip_generate=skip_generate)
    else:
        from eno_hf.clarity.job import run_clarity

        def progress(name: str, res: dict[str, Any]) -> None:
            con.print(f"[bold]{name}[/bold]: {res.get('elapsed_s', 0) or 0:.1f} s"
                      + (" (cached)" if res.get("cache_hit") else ""))

        res = run_clarity(settings, skip_init=skip_init, skip_generate=skip_generate, progress=progress)
    for key in ("features_csv", "feature_metadata", "normalization_log", "verify", "analysis", "plots",
                "model", "model_card", "onnx", "parity"):
        con.print(f"  {key}: {res[key]}")
    for fam, m in res["metrics"].items():
        con.print(f"  {fam}: test {m['test']}  CV mean {m['cv_mean']}  95% CI {m['cv_ci95']}")
    if res["rejected"]:
        con.print(f"  {len(res['rejected'])} inputs left out (reasons in the reports)")
    if json_out:
        print_json_last(res)
