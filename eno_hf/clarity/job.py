"""The clarity workflow as idempotent steps, each cached by a content hash of its inputs.

Work dir (``ClarityConfig.workdir``, default ``{data_root}/clarity``)::

    raw/gold/{instrument}/...        gold audio (``init``: real sources) or your own tree
    raw/flawed/{instrument}/...      flawed variants (``generate``) and/or your own
    raw/labels.json                  parameters + correction vector of generated files
    processed/...                    normalized WAVs mirroring raw/ (``normalize``)
    reports/manifest.json            counts per subset x instrument x flaw, every entry
    reports/validation.json          missing categories, unbalanced cells, unreadable files
    reports/normalization_log.json   per-file LUFS before/after, gain, peak, clip guard, status
    reports/verify.json              re-measured processed files (+-0.5 LU), failures
    features/features.csv|.parquet   + feature_metadata.json (+ features.pkl if asked)
    analysis/analysis.json + *.png   NaN/Inf counts, effect sizes, distributions
    models/eno-clarity/              config.json, ONNX pair, README.md (card): what the hub gets
    models/eno-clarity-sklearn/      this run's scikit-learn pair (joblib pickles, never registered)
    reports/metrics.json             all families: hold-out + grouped CV with intervals
    .cache/{step}.json               {key, result, finished} of the last run of each step

A step whose key (SHA-256 over the step's config section, the content hashes of its input files
and the source of the code that defines its output) equals the cached one, and whose outputs still
exist, returns the cached result without recomputing (markers: ``eno_hf.jobs.read_marker`` /
``write_marker``).

The job (``CLARITY``, ``eno_hf.jobs``): the steps as ``Stage`` s over a ``ClarityState``, run in
order by ``eno_hf.jobs.run_stages`` through a runner (``run_directly``; the Prefect flow
``eno-clarity`` passes ``prefect_runner``: one task ``eno-clarity-{step}`` per step)::

    init → generate → scan → normalize → verify → extract → analyze → train → export
"""

from __future__ import annotations

import inspect
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from eno_hf.audio import conditioning as _conditioning
from eno_hf.audio.io import content_hash
from eno_hf.clarity import analyze as _analyze
from eno_hf.clarity import export as _export
from eno_hf.clarity import features as _features
from eno_hf.clarity import generate as _generate
from eno_hf.clarity import gold as _gold
from eno_hf.clarity import models as _models
from eno_hf.clarity import normalize as _normalize
from eno_hf.clarity.source import scan, manifest, validate
from eno_hf.config import Settings
from eno_hf.features import fingerprint as _fingerprint
from eno_hf.jobs import Job, Stage, StageRunner, read_marker, run_directly, run_stages, write_marker
from eno_hf.registry.register import register_model
from eno_hf.utils.io import atomic_write_json, json_hash

__all__ = ["CLARITY", "ClarityPaths", "ClarityState", "STEPS", "paths", "step_init", "step_generate", "step_scan",
           "step_normalize", "step_verify", "step_extract", "step_analyze", "step_train", "step_export",
           "clarity_summary", "run_clarity"]

log = logging.getLogger(__name__)


class ClarityPaths:
    """Resolved locations of one clarity work dir (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        c = settings.clarity
        self.workdir = Path(c.workdir or Path(settings.paths.data_root) / "clarity").resolve()
        self.raw = Path(c.raw_dir).resolve() if c.raw_dir else self.workdir / "raw"
        self.reports = self.workdir / "reports"
        self.features = self.workdir / "features"
        self.analysis = self.workdir / "analysis"
        self.model_dir = self.workdir / "models" / c.models.model_name
        self.sklearn_dir = self.workdir / "models" / f"{c.models.model_name}-sklearn"
        """scikit-learn pickles of this run (never registered; see ``models.save_model``)."""
        self.cache = self.workdir / ".cache"
        self.hub = Path(settings.paths.hub()).resolve()


def paths(settings: Settings) -> ClarityPaths:
    return ClarityPaths(settings)


def _key(*parts: Any) -> str:
    return json_hash(list(parts))


def _code(*modules) -> str:
    return _key(*(inspect.getsource(m) for m in modules))


def _files_hash(root: Path, rels: list[str]) -> str:
    return _key([(r, content_hash(root / r)) for r in sorted(rels)])


def _cached(p: ClarityPaths, step: str, key: str, compute: Callable[[], dict[str, Any]],
            outputs: Callable[[dict[str, Any]], list[str]] = lambda r: []) -> dict[str, Any]:
    """Return the cached result of ``step`` when its key matches and its outputs exist, else compute."""
    marker = p.cache / f"{step}.json"
    old = read_marker(marker, key)
    if old is not None and all(Path(o).exists() for o in outputs(old["result"])):
        return {**old["result"], "cache_hit": True}
    t0 = time.perf_counter()
    result = compute()
    result["elapsed_s"] = round(time.perf_counter() - t0, 2)
    write_marker(marker, key, {"result": result}, indent=1)
    return {**result, "cache_hit": False}


def _write_json(path: Path, obj: Any) -> str:
    return str(atomic_write_json(path, obj, indent=1))


# ----------------------------------------------------------------------------- steps
def step_init(s: Settings) -> dict[str, Any]:
    """Write real gold audio into ``raw/gold`` (``eno_hf.clarity.gold``)."""
    p, c = paths(s), s.clarity
    key = _key("init", c.gold.model_dump(mode="json"), c.sample_rate, _code(_gold))

    def compute():
        res = _gold.write_gold(c, p.raw)
        res["sources_file"] = _write_json(p.reports / "gold_sources.json", res.pop("sources"))
        return res
    return _cached(p, "init", key, compute, lambda r: [r["sources_file"]])


def _gold_files(p: ClarityPaths) -> list[str]:
    return [e.file for e in scan(p.raw).entries if e.subset == "gold"]


def step_generate(s: Settings) -> dict[str, Any]:
    """Generate the flawed variants of every gold file (seeded pedalboard recipe)."""
    p, c = paths(s), s.clarity
    gold = _gold_files(p)
    key = _key("generate", c.generate.model_dump(mode="json"), c.sample_rate, _files_hash(p.raw, gold),
               _code(_generate))
    return _cached(p, "generate", key, lambda: _generate.generate_flawed(c, p.raw, gold),
                   lambda r: [r["labels"]])


def step_scan(s: Settings) -> dict[str, Any]:
    """Scan the tree; write ``manifest.json`` and ``validation.json`` (cheap: never cached)."""
    p, c = paths(s), s.clarity
    res = scan(p.raw, _generate.correction_names(c))
    man = manifest(res)
    val = validate(res, list(c.generate.flaws), c.min_per_category)
    return {"files": man["files"], "rejected": res.rejected, "counts": man["counts"],
            "validation_ok": val["ok"], "missing": val["missing"], "unbalanced": len(val["unbalanced"]),
            "manifest": _write_json(p.reports / "manifest.json", man),
            "validation": _write_json(p.reports / "validation.json", val), "_entries": res.entries}


def step_normalize(s: Settings, entries=None) -> dict[str, Any]:
    """Normalize every scanned file to the target loudness; write ``normalization_log.json``."""
    p, c = paths(s), s.clarity
    entries = entries if entries is not None else step_scan(s)["_entries"]
    files = [e.file for e in entries]
    key = _key("normalize", c.normalize.model_dump(mode="json", exclude={"verify_tolerance_lu"}),
               c.sample_rate, _files_hash(p.raw, files), _code(_normalize, _conditioning))

    def compute():
        log_ = _normalize.normalize_tree(c, p.raw, p.workdir, files)
        return {"normalization_log": _write_json(p.reports / "normalization_log.json", log_),
                "counts": log_["counts"]}
    return _cached(p, "normalize", key, compute, lambda r: [r["normalization_log"]])


def _read(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def step_verify(s: Settings, norm: dict[str, Any] | None = None) -> dict[str, Any]:
    """Re-measure the written ``processed/`` files (tolerance ``normalize.verify_tolerance_lu``)."""
    p, c = paths(s), s.clarity
    norm = norm or step_normalize(s)
    log_path = Path(norm["normalization_log"])
    written = [r["processed"] for r in _read(log_path)["files"] if r.get("processed")]
    key = _key("verify", c.normalize.verify_tolerance_lu, content_hash(log_path),
               _files_hash(p.workdir, written), _code(_normalize, _conditioning))

    def compute():
        rep = _normalize.verify_tree(_read(log_path), p.workdir, c.normalize.verify_tolerance_lu)
        rep["report"] = _write_json(p.reports / "verify.json", rep)
        return rep
    return _cached(p, "verify", key, compute, lambda r: [r["report"]])


def step_extract(s: Settings, entries=None, norm: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fingerprint every normalized file; write features CSV/Parquet/metadata."""
    p, c = paths(s), s.clarity
    entries = entries if entries is not None else step_scan(s)["_entries"]
    norm = norm or step_normalize(s, entries)
    log_path = Path(norm["normalization_log"])
    log_ = _read(log_path)
    written = [r["processed"] for r in log_["files"] if r.get("processed")]
    labels = p.raw / "labels.json"
    key = _key("extract", c.features.model_dump(mode="json"), c.sample_rate, content_hash(log_path),
               content_hash(labels) if labels.is_file() else None, _files_hash(p.workdir, written),
               [e.file for e in entries], _code(_features, _fingerprint, _conditioning))
    names = _generate.correction_names(c)

    def compute():
        frame, rejected, timing = _features.extract_features(c, entries, log_, p.raw, p.workdir, names)
        out = _features.write_features(frame, p.features, c)
        return {**out, "rows": int(len(frame)), "rejected": rejected, "timing": timing,
                "feature_columns": list(_fingerprint.FINGERPRINT_NAMES),
                "target_columns": _features.target_columns(names)}
    return _cached(p, "extract", key, compute, lambda r: [r["features_csv"], r["features_parquet"]])


def step_analyze(s: Settings, ext: dict[str, Any] | None = None) -> dict[str, Any]:
    """NaN/Inf counts, effect sizes, PNG plots of ``features.parquet``."""
    import pandas as pd

    p = paths(s)
    ext = ext or step_extract(s)
    key = _key("analyze", content_hash(ext["features_parquet"]), _code(_analyze))

    def compute():
        rep = _analyze.analyze_features(pd.read_parquet(ext["features_parquet"]), p.analysis)
        return {"report": str(p.analysis / "analysis.json"), "plots": rep["plots"],
                "nonfinite_total": rep["nonfinite_total"], "top_effect_sizes": rep["effect_sizes"][:5]}
    return _cached(p, "analyze", key, compute, lambda r: [r["report"], *r["plots"].values()])


def step_train(s: Settings, ext: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fit and compare the families (hold-out + grouped CV); save the random-forest pair."""
    import pandas as pd

    p, c = paths(s), s.clarity
    ext = ext or step_extract(s)
    key = _key("train", c.models.model_dump(mode="json", exclude={"clearml", "clearml_project"}),
               content_hash(ext["features_parquet"]), _code(_models))

    def compute():
        frame = pd.read_parquet(ext["features_parquet"])
        res = _models.train_and_compare(frame, ext["target_columns"], c.models)
        metrics = {"families": res["families"], "split": res["split"]}
        clf, reg = res["model"]
        test_index = [int(i) for i in res["test_index"]]
        _models.save_model(p.model_dir, p.sklearn_dir, clf, reg, res["classes"], res["outputs"],
                           {k: v["test"] for k, v in res["families"].items()},
                           {"sample_rate": c.sample_rate, "target_lufs": c.normalize.target_lufs,
                            "features_parquet": ext["features_parquet"], "test_index": test_index})
        return {"metrics": _write_json(p.reports / "metrics.json", metrics), "model_dir": str(p.model_dir),
                "classes": res["classes"], "outputs": res["outputs"], "split": res["split"]}
    return _cached(p, "train", key, compute,
                   lambda r: [r["metrics"], str(p.sklearn_dir / "classifier.joblib")])


def step_export(s: Settings, tr: dict[str, Any] | None = None) -> dict[str, Any]:
    """ONNX export + parity on the hold-out, model card, registration (hub + ClearML offline)."""
    import joblib
    import numpy as np
    import pandas as pd

    p, c = paths(s), s.clarity
    tr = tr or step_train(s)
    model_dir = Path(tr["model_dir"])
    key = _key("export", content_hash(p.sklearn_dir / "classifier.joblib"),
               content_hash(p.sklearn_dir / "regressor.joblib"),
               content_hash(tr["metrics"]), c.models.clearml, c.models.model_name, _code(_export))

    def compute():
        # our own files, written by this run's train step (see models.save_model)
        clf = joblib.load(p.sklearn_dir / "classifier.joblib")
        reg = joblib.load(p.sklearn_dir / "regressor.joblib")
        cfg_json = _read(model_dir / "config.json")
        frame = pd.read_parquet(cfg_json["features_parquet"])
        X = frame[cfg_json["feature_columns"]].to_numpy(dtype=np.float32)[cfg_json["test_index"]]
        onnx_paths = _export.export_onnx(clf, reg, model_dir)
        parity = _export.check_parity(clf, reg, onnx_paths, X)
        metrics = _read(tr["metrics"])
        cfg_json["onnx"] = {k: Path(v).name for k, v in onnx_paths.items()}
        cfg_json["onnx_parity"] = parity
        atomic_write_json(model_dir / "config.json", cfg_json, indent=1)
        _models.write_card(model_dir, metrics, {
            "target_lufs": c.normalize.target_lufs, "sample_rate": c.sample_rate, "classes": tr["classes"],
            "outputs": tr["outputs"], "onnx": f"{cfg_json['onnx']} parity {parity}",
            "data": f"{metrics['split']['train_files'] + metrics['split']['test_files']} files under "
                    f"{p.raw} (Hydrogen drum samples + GM-rendered PercePiano MIDI and their "
                    "pedalboard variants, see reports/manifest.json)"})
        reg_settings = s.model_copy(update={"registry": s.registry.model_copy(update={
            "model_name": c.models.model_name, "clearml": c.models.clearml,
            "clearml_project": c.models.clearml_project})})
        test_metrics = {**{fam: m["test"] for fam, m in metrics["families"].items()}, "onnx_parity": parity}
        registration = register_model(reg_settings, model_dir, name=c.models.model_name, metrics=test_metrics,
                                      metadata={"metrics": test_metrics})
        hub_dir, clearml_path = Path(registration.version_dir).resolve(), registration.clearml_session
        return {"onnx": {k: str(hub_dir / Path(v).name) for k, v in onnx_paths.items()},
                "parity": parity, "hub_dir": str(hub_dir), "clearml": clearml_path,
                "model_card": str(hub_dir / "README.md")}
    return _cached(p, "export", key, compute, lambda r: [r["hub_dir"], *r["onnx"].values()])


def _summary_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for fam, m in metrics["families"].items():
        out[fam] = {"test": {k: round(v, 4) for k, v in m["test"].items() if isinstance(v, float)},
                    "cv_mean": m["cv"]["mean"], "cv_ci95": m["cv"]["ci95"]}
    return out


STEPS = ("init", "generate", "scan", "normalize", "verify", "extract", "analyze", "train", "export")
"""The clarity job's steps, in order."""


@dataclass
class ClarityState:
    """What the clarity steps returned so far.

    Attributes:
        progress: ``progress(step, result)`` called as each step's result arrives (run option).
        results: step name -> its result dict (``elapsed_s``, ``cache_hit`` and the step's fields).
        entries: the scanned ``source.ScanEntry`` list (``scan``; read by normalize and extract).
        steps: step name -> ``{elapsed_s, cache_hit}`` (the summary's ``steps``).
    """

    progress: Callable[[str, dict[str, Any]], None] | None = None
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    entries: list[Any] | None = None
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)

    def update(self, changes: dict[str, Any]) -> None:
        """Record a step's returned ``{step: result}`` (and ``entries``), then report it to ``progress``.

        Raises:
            KeyError: a key that is neither a step name nor ``entries``.
        """
        for name, res in changes.items():
            if name == "entries":
                self.entries = res
                continue
            if name not in STEPS:
                raise KeyError(f"clarity stage returned unknown field {name!r}")
            self.results[name] = res
            self.steps[name] = {"elapsed_s": res.get("elapsed_s"), "cache_hit": res.get("cache_hit")}
            if self.progress is not None:
                self.progress(name, res)

    def result(self, name: str) -> dict[str, Any]:
        """The result of step ``name``.

        Raises:
            RuntimeError: that step has not run.
        """
        if name not in self.results:
            raise RuntimeError(f"clarity state has no {name!r} result: run that step first")
        return self.results[name]


def _stage_scan(s: Settings, st: ClarityState) -> dict[str, Any]:
    res = step_scan(s)
    return {"scan": res, "entries": res.pop("_entries")}


_STAGE_FNS: dict[str, Callable[[Settings, ClarityState], dict[str, Any]]] = {
    "init": lambda s, st: {"init": step_init(s)},
    "generate": lambda s, st: {"generate": step_generate(s)},
    "scan": _stage_scan,
    "normalize": lambda s, st: {"normalize": step_normalize(s, st.entries)},
    "verify": lambda s, st: {"verify": step_verify(s, st.result("normalize"))},
    "extract": lambda s, st: {"extract": step_extract(s, st.entries, st.result("normalize"))},
    "analyze": lambda s, st: {"analyze": step_analyze(s, st.result("extract"))},
    "train": lambda s, st: {"train": step_train(s, st.result("extract"))},
    "export": lambda s, st: {"export": step_export(s, st.result("train"))},
}


def clarity_summary(s: Settings, st: ClarityState) -> dict[str, Any]:
    """The summary of a full run (``run_clarity``'s return value, see there)."""
    sc, norm, ver, ext = st.result("scan"), st.result("normalize"), st.result("verify"), st.result("extract")
    ana, tr, exp = st.result("analyze"), st.result("train"), st.result("export")
    metrics = _read(tr["metrics"])
    rejected = [{"stage": "scan", **r} for r in sc["rejected"]] + \
               [{"stage": "extract", **r} for r in ext["rejected"]]
    return {
        "workdir": str(paths(s).workdir), "files": sc["files"], "counts": sc["counts"],
        "manifest": sc["manifest"], "validation": sc["validation"], "validation_ok": sc["validation_ok"],
        "normalization_log": norm["normalization_log"], "normalization_counts": norm["counts"],
        "verify": {k: ver[k] for k in ("report", "checked", "passed", "max_abs_error_lu")}
        | {"failures": len(ver["failures"]), "unverifiable": len(ver["unverifiable"])},
        "features_csv": ext["features_csv"], "features_parquet": ext["features_parquet"],
        "feature_columns": ext["feature_columns"], "target_columns": ext["target_columns"],
        "feature_metadata": ext["feature_metadata"], "rows": ext["rows"],
        "analysis": ana["report"], "plots": ana["plots"], "nonfinite_total": ana["nonfinite_total"],
        "model": exp["hub_dir"], "model_card": exp["model_card"], "clearml": exp["clearml"],
        "onnx": exp["onnx"], "parity": exp["parity"],
        "metrics": _summary_metrics(metrics), "metrics_file": tr["metrics"],
        "rejected": rejected, "steps": dict(st.steps),
    }


CLARITY = Job("clarity", tuple(Stage(name, _STAGE_FNS[name], "cpu", task_name=f"eno-clarity-{name}", retries=1)
                               for name in STEPS), ClarityState, clarity_summary)
"""The clarity job (``eno_hf.jobs.JOBS["clarity"]``): every step a ``cpu`` stage (task
``eno-clarity-{step}``, retried once by the Prefect runner); its result is ``clarity_summary``."""


def clarity_stage_names(skip_init: bool = False, skip_generate: bool = False) -> list[str]:
    """``STEPS`` without ``init`` / ``generate`` when skipped (gold / flawed files already in raw/)."""
    return [n for n in STEPS if not (n == "init" and skip_init) and not (n == "generate" and skip_generate)]


def run_clarity(s: Settings, skip_init: bool = False, skip_generate: bool = False,
                progress: Callable[[str, dict[str, Any]], None] | None = None,
                runner: StageRunner = run_directly, names: Sequence[str] | None = None) -> dict[str, Any]:
    """Every step in order (``CLARITY`` through ``runner``); returns the summary (``eno clarity
    run --json``'s last line).

    Keys: ``workdir``, ``manifest``, ``validation``, ``normalization_log``, ``verify``,
    ``features_csv``, ``features_parquet``, ``feature_columns``, ``feature_metadata``, ``analysis``,
    ``plots``, ``model``, ``onnx``, ``parity``, ``metrics`` (per family: hold-out + CV mean + 95 % CI),
    ``metrics_file``, ``rejected`` (every input left out, with its reason), ``steps`` (elapsed,
    cache hits).

    Args:
        progress: ``progress(step, result)`` after each step.
        runner: ``eno_hf.jobs.run_directly`` (default) or ``eno_hf.flows.runner.prefect_runner``
            (the flow ``eno-clarity``).
        names: the steps to run (default: ``clarity_stage_names(skip_init, skip_generate)``); a
            summary needs scan through export.
    """
    names = list(names) if names is not None else clarity_stage_names(skip_init, skip_generate)
    state = run_stages(CLARITY, s, names, ClarityState(progress=progress), runner)
    return clarity_summary(s, state)
