"""``eno serve`` and ``eno export-onnx`` (registered on the main typer app by ``register``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from eno_hf.cli_common import ConfigOpt, JsonOpt, SetOpt, print_json_last
from eno_hf.cli_common import load_settings as _settings

console = Console(stderr=True)

DEFAULT_CONFIG = Path("base")  # serving needs a model, not a dataset: the config naming no example data


def serve(model: Annotated[str, typer.Option("--model", "-m", help="Model dir, name or name@version.")] = "eno-tagger",
          host: Annotated[Optional[str], typer.Option(help="Bind address (default serve.host, 127.0.0.1).")] = None,
          port: Annotated[Optional[int], typer.Option(help="Port (default serve.port, 8000).")] = None,
          onnx: Annotated[Optional[Path], typer.Option("--onnx", help="Serve this `eno export-onnx` directory "
                                                        "with ONNX Runtime instead of PyTorch.")] = None,
          api_key_file: Annotated[Optional[Path], typer.Option(
              "--api-key-file", envvar="ENO_API_KEY_FILE",
              help="Require the key on this file's first line (Authorization: Bearer <key> or X-API-Key) "
                   "on every route but /health (default serve.api_key_file; env ENO_API_KEY_FILE).")] = None,
          config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None) -> None:
    """Serve a model over HTTP: POST /predict, POST /predict/batch, GET /health, GET /model, /openapi.json.

    Put it behind a reverse proxy (TLS, rate and body limits) for anything beyond 127.0.0.1: see docs/serving.md.
    Runs until stopped (no --json: it produces no result object)."""
    from eno_hf.registry.hub import resolve
    from eno_hf.serving import server
    from eno_hf.serving.app import create_app, docs_assets, load_api_key
    from eno_hf.serving.predictor import load_predictor

    s = _settings(config, set_)
    update = {k: v for k, v in {"host": host, "port": port, "api_key_file": api_key_file}.items() if v is not None}
    cfg = s.serve.model_copy(update=update)
    try:  # refuse a bad key file or missing docs assets before loading the model
        if cfg.api_key_file is not None:
            load_api_key(cfg.api_key_file)
        if cfg.docs:
            docs_assets(cfg)
    except ValueError as exc:
        console.print(f"[red]config error:[/red] {exc}")
        raise typer.Exit(2) from exc
    model_dir = None if onnx is not None else resolve(model, s.paths.hub())
    predictor = load_predictor(model_dir, onnx)
    info = predictor.info()
    console.print(f"serving [bold]{info['name']}[/bold] {info.get('version') or ''} ({predictor.backend}) "
                  f"on http://{cfg.host}:{cfg.port}" + (" (API key required)" if cfg.api_key_file else "")
                  + (" (docs: /docs)" if cfg.docs else ""))
    if cfg.host not in ("127.0.0.1", "localhost", "::1"):
        console.print(f"[yellow]bound to {cfg.host}:[/yellow] put a reverse proxy (TLS, limits) in front "
                      "of it; see docs/serving.md")
    server.run(create_app(predictor, cfg), cfg)


def export_onnx(model: Annotated[str, typer.Argument(help="Model dir, name or name@version.")],
                out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")],
                clips: Annotated[Optional[list[Path]], typer.Option("--clip", help="Audio files to verify "
                                                                    "ONNX Runtime against PyTorch on.")] = None,
                opset: Annotated[int, typer.Option(help="ONNX opset.")] = 18,
                config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None, json_out: JsonOpt = False) -> None:
    """Export a model to ONNX (model.onnx + config + feature extractor) and verify it with ONNX Runtime.

    The verification report is written to OUT/onnx.json; --json prints it as the last stdout line."""
    from eno_hf.inference.onnx_export import export_onnx as do_export
    from eno_hf.registry.hub import resolve

    s = _settings(config, set_)
    report = do_export(resolve(model, s.paths.hub()), out, verify_clips=clips or [], opset=opset)
    console.print(f"exported → [bold]{out}[/bold]; max |onnx - torch| = {report['max_abs_diff']:.2e}")
    if json_out:
        print_json_last({"out": str(out), **report}, drop_bulky=False)


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``export-onnx`` to the ``eno`` typer app."""
    app.command("serve")(serve)
    app.command("export-onnx")(export_onnx)
