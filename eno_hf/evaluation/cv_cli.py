"""``eno cv``: repeated cross-validation of the model candidates (``evaluation.cv``, candidates in
``configs/cv/*.yaml``), artist-grouped (``--protocol artist``, default) or the published random
protocol (``--protocol random --folds 10 --repeats 20``: stratified 10-fold x 20 over the clips)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from eno_hf.cli_common import ConfigOpt, SetOpt, console, load_settings as _settings, print_json_last


def cv_command(
    config: ConfigOpt = Path("small"),
    set_: SetOpt = None,
    candidates: Annotated[Optional[str], typer.Option("--candidates", help="Comma-separated names (default: all; "
                                                      "one configs/cv/{name}.yaml each).")] = None,
    protocol: Annotated[str, typer.Option("--protocol", help="artist: artist-grouped stratified folds; random: "
                                          "stratified folds over the clips, no grouping (Panda et al. 2018 "
                                          "on 4Q: --folds 10 --repeats 20).")] = "artist",
    folds: Annotated[int, typer.Option("--folds", help="Outer folds per repeat.")] = 5,
    repeats: Annotated[int, typer.Option("--repeats", help="Repeats with different fold seeds.")] = 3,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the first repeat's folds.")] = 0,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Report folder (default {data_root}/cv/...).")] = None,
    dataset: Annotated[Optional[Path], typer.Option("--dataset", help="A saved dataset to use as is "
                                                    "(default: build or reuse the config's).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object on the last "
                                                          "stdout line (instead of the markdown).")] = False,
) -> None:
    """Cross-validate the model candidates and baselines on fixed saved folds; write cv_report.json/.md."""
    from eno_hf.evaluation.cv import cross_validate
    from eno_hf.evaluation.cv.folds import PROTOCOLS

    if protocol not in PROTOCOLS:
        console.print(f"[red]--protocol {protocol!r}: one of {', '.join(PROTOCOLS)}[/red]")
        raise typer.Exit(2)

    settings = _settings(config, set_)
    names = [c.strip() for c in candidates.split(",") if c.strip()] if candidates else None
    try:
        report = cross_validate(settings, names, n_folds=folds, n_repeats=repeats, seed=seed, out_dir=out_dir,
                                dataset_path=dataset, protocol=protocol)
    except KeyError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    if not json_out:
        print(Path(report["markdown"]).read_text())
    console.print(f"wrote [bold]{report['json']}[/bold] and {report['markdown']}")
    if json_out:
        print_json_last(report)
