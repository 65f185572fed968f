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
    .cache/{step}.json               {key, result} of the last run of each step

A step whose key (SHA-256 over the step's config section, the content hashes of its input files
and the source of the code that defines its output) equals the cached one, and whose outputs still
exist, returns the cached result without recomputing.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import time
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

__all__ = ["ClarityPaths", "paths", "step_init", "step_generate", "step_scan", "step_normalize",
           "step_verify", "step_extract", "step_analyze", "step_train", "step_export", "run_clarity"]

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
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _code(*modules) -> str:
    return _key(*(inspect.getsource(m) for m in modules))


def _files_hash(root: Path, rels: list[str]) -> str:
    return _key([(r, content_hash(root / r)) for r in sorted(rels)])


def _cached(p: ClarityPaths, step: str, key: str, compute: Callable[[], dict[str, Any]],
            outputs: Callable[[dict[str, Any]], list[str]] = lambda r: []) -> dict[str, Any]:
    """Return the cached result of ``step`` when its key matches and its outputs exist, else compute."""
    marker = p.cache / f"{step}.json"
    if marker.is_file():
        old = json.loads(marker.read_text(encoding="utf-8"))
        if old.get("key") == key and all(Path(o).exists() for o in outputs(old["result"])):
            return {**old["result"], "cache_hit": True}
    t0 = time.perf_counter()
    result = compute()
    result["elapsed_s"] = round(time.perf_counter() - t0, 2)
    p.cache.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps({"key": key, "result": result}, indent=1, default=str), encoding="utf-8")
    tmp.replace(marker)
    return {**result, "cache_hit": False}


def _write_json(path: Path, obj: Any) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str, allow_nan=True), encoding="utf-8")
    tmp.replace(path)
    return str(path)


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
        (model_dir / "config.json").write_text(json.dumps(cfg_json, indent=1), encoding="utf-8")
        _models.write_card(model_dir, metrics, {
            "target_lufs": c.normalize.target_lufs, "sample_rate": c.sample_rate, "classes": tr["classes"],
            "outputs": tr["outputs"], "onnx": f"{cfg_json['onnx']} parity {parity}",
            "data": f"{metrics['split']['train_files'] + metrics['split']['test_files']} files under "
                    f"{p.raw} (Hydrogen drum samples + GM-rendered PercePiano MIDI and their "
                    "pedalboard variants, see reports/manifest.json)"})
        from eno_hf.registry.hub import register

        summary = {f"{fam}/{k}": v for fam, m in metrics["families"].items() for k, v in m["test"].items()
                   if isinstance(v, float)}
        hub_dir = register(model_dir, p.hub, c.models.model_name, {"metrics": summary, "onnx_parity": parity})
        clearml_path = None
        if c.models.clearml:
            from eno_hf.registry.clearml import Tracker

            with Tracker(c.models.clearml_project, c.models.model_name, offline=True) as tracker:
                tracker.log_params(s.clarity.model_dump(mode="json"), name="clarity")
                tracker.log_scalars(0, {**summary, **{f"onnx/{k}": v for k, v in parity.items()}})
                tracker.register_model(hub_dir)
                clearml_path = str(getattr(tracker, "offline_session_path", None) or "") or None
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


def run_clarity(s: Settings, skip_init: bool = False, skip_generate: bool = False,
                progress: Callable[[str, dict[str, Any]], None] | None = None,
                call: Callable[..., dict[str, Any]] | None = None) -> dict[str, Any]:
    """Every step in order; returns the summary (``eno clarity run --json``'s last line).

    Keys: ``workdir``, ``manifest``, ``validation``, ``normalization_log``, ``verify``,
    ``features_csv``, ``features_parquet``, ``feature_columns``, ``feature_metadata``, ``analysis``,
    ``plots``, ``model``, ``onnx``, ``parity``, ``metrics`` (per family: hold-out + CV mean + 95 % CI),
    ``metrics_file``, ``rejected`` (every input left out, with its reason), ``steps`` (elapsed,
    cache hits).

    ``call(name, step_fn, *args)`` runs each step (default: ``step_fn(*args)``); the Prefect flow
    passes one that runs it as a task.
    """
    call = call or (lambda name, fn, *args: fn(*args))
    say = progress or (lambda name, res: None)
    steps: dict[str, Any] = {}

    def note(name, res):
        steps[name] = {"elapsed_s": res.get("elapsed_s"), "cache_hit": res.get("cache_hit")}
        say(name, res)
        return res

    if not skip_init:
        note("init", call("init", step_init, s))
    if not skip_generate:
        note("generate", call("generate", step_generate, s))
    sc = note("scan", call("scan", step_scan, s))
    entries = sc.pop("_entries")
    norm = note("normalize", call("normalize", step_normalize, s, entries))
    ver = note("verify", call("verify", step_verify, s, norm))
    ext = note("extract", call("extract", step_extract, s, entries, norm))
    ana = note("analyze", call("analyze", step_analyze, s, ext))
    tr = note("train", call("train", step_train, s, ext))
    exp = note("export", call("export", step_export, s, tr))
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
        "rejected": rejected, "steps": steps,
    }
