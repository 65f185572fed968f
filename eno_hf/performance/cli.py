"""CLI glue of the performance job: ``eno run`` dispatches here for ``job: performance`` (or a
``performance`` section without ``job``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from eno_hf.cli_common import print_json_last

if TYPE_CHECKING:
    from eno_hf.config import Settings

console = Console(stderr=True)


def print_report(report: dict[str, Any]) -> None:
    """Mean R² (95 % interval), Pearson r, MAE, pairwise accuracy per protocol, model vs baselines
    (and, for a protocol with a set-aside test set, the folds' models' mean R² on it)."""
    for protocol, res in report.get("protocols", {}).items():
        name = f"{protocol}-grouped" if protocol in ("piece", "performer") else protocol
        held = (f", {res['n_evaluated']} held out, {res['set_aside']} set aside" if res.get("set_aside") else "")
        t = Table(title=f"{report.get('dataset')} — {name} CV ({res['folds']} folds, n={res['n']}{held})")
        for col in ("system", "mean R² [95% CI]", "mean r", "MAE", "pairwise acc"):
            t.add_column(col)
        from eno_hf.performance.job import REPORT_SYSTEMS

        for label, key in REPORT_SYSTEMS:
            m = res.get(key)
            if not m:
                continue
            ci = m.get("interval")
            r2 = f"{m['mean_r2']:.3f}" + (f" [{ci['low']:.3f}, {ci['high']:.3f}]" if ci else "")
            t.add_row(label, r2, f"{m['mean_pearson']:.3f}", f"{m['mean_mae']:.4f}", f"{m['mean_pairwise_accuracy']:.3f}")
        console.print(t)
        if "set_aside_test" in res:
            st = res["set_aside_test"]
            console.print(f"  set-aside test ({st['n']}): mean R² {st['mean_r2']:.3f}, ridge on MIDI statistics "
                          f"{st['ridge_midi_mean_r2']:.3f} (means over the {res['folds']} folds' models)")
        counts = (res.get("selection") or {}).get("counts")
        if counts:  # nested: chosen inside each outer fold from its training side
            console.print(f"  chosen per fold: embedder {counts['embedder']}; folds keeping "
                          f"t2/t3/t4: {counts['t2']}/{counts['t3']}/{counts['t4']} of {res['folds']}")
        for tier in ("t2", "t3", "t4"):
            if tier in res:
                console.print(f"  {tier}: " + ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                                                       for k, v in res[tier].items()))
            elif f"{tier}_not_scored" in res:
                console.print(f"  {tier}: not scored ({res[f'{tier}_not_scored']})")
    console.print(f"published mean R²: {report.get('published_mean_r2')}")


def run_performance_command(settings: Settings, json_out: bool = False, prefect: bool = False) -> None:
    """Run the performance job (``eno_hf.performance.job.run_performance``; with ``prefect``
    the flow ``eno-performance`` on an ephemeral server), print the report, optionally a JSON line."""
    import json

    if prefect:
        from eno_hf.flows.performance import performance_flow  # up to the flows: --prefect only (Prefect is optional)

        d = performance_flow(settings=settings)
    else:
        from eno_hf.performance.job import run_performance

        d = run_performance(settings).to_dict()
    print_report(d["metrics"])
    console.print(f"model {d['model']}\nregistered {d['registered']}")
    for rec in d["tags"] or []:
        console.print(json.dumps(rec)[:300])
    if json_out:
        for p in d["metrics"].get("protocols", {}).values():
            p.get("model", {}).pop("per_dimension", None)
            p.get("baseline_ridge_midi", {}).pop("per_dimension", None)
        print_json_last(d, drop_bulky=False)
