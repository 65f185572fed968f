"""``eno dataset validate``: balance, diversity, quality and structure scores of a workspace.

Definitions (each score in [0, 1]; also in ``docs/workspaces.md``):

- **balance** = mean over the workspace's categories c of ``min(1, n_c / target_per_category)``,
  n_c = samples whose emotion is c (augmented and synthetic samples count). 1 = every category
  reached its target.
- **diversity** = mean of four normalized Gini–Simpson indices ``(1 − Σ p_i²) / (1 − 1/K)``:
  keys (K = 24), modes (K = 2), tempi in 8 bins of 20 bpm over 40–200 bpm (K = 8; outside →
  the end bins), and sources/performers (``{source}:{performer or group}``, K = number of
  distinct values, 0 when only one). 1 = evenly spread over all possible values.
- **quality** = mean over inputs of a per-sample quality: samples rejected as undecodable or
  unusable count 0 (duplicates are not counted); a sample scores the mean of (a) decodable =
  its features were extracted, (b) annotation completeness = fraction of the required fields
  present (emotion, valence, arousal, key, mode, tempo_bpm; MIDI also groove_type, articulation),
  (c) finite features = 1 − (NaN/Inf values in its features / its numeric values). The
  per-sample value is written to ``annotations.quality_score``.
- **structure** = fraction of structure checks passed: config and manifest valid, every file
  and features file present, every sample's annotation file present, augmented copies' sources
  present, sample ids unique, splits disjoint, and augmented copies in their source's split.

``validate_workspace`` returns a ``ValidationReport`` (``.scores``, ``.checks``, ``.counts``,
``.passed`` against ``workspace.thresholds``); it is also written to ``reports/validation.json``.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from eno_hf.config import Settings
from eno_hf.utils.io import atomic_write_json
from eno_hf.workspace.extract import load_features
from eno_hf.workspace.ingest import updated
from eno_hf.workspace.layout import Workspace
from eno_hf.workspace.schema import Manifest

REQUIRED = ("emotion", "valence", "arousal", "key", "mode", "tempo_bpm")
REQUIRED_MIDI = ("groove_type", "articulation")
UNUSABLE = {"undecodable", "empty", "too_short", "silent", "nan_inf", "missing_file", "io_error"}


@dataclass
class ValidationReport:
    scores: dict[str, float]
    thresholds: dict[str, float]
    passed: bool
    failing: list[str]
    counts: dict[str, Any]
    checks: list[dict[str, Any]]
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def gini_simpson(values: list[Any], k: int | None = None) -> float:
    """Normalized Gini–Simpson index ``(1 − Σ p²) / (1 − 1/K)`` of ``values`` (K = ``k`` or the
    number of distinct values); 0 for no values or K ≤ 1."""
    if not values:
        return 0.0
    counts = Counter(values)
    k = k or len(counts)
    if k <= 1:
        return 0.0
    n = len(values)
    return min(1.0, (1.0 - sum((c / n) ** 2 for c in counts.values())) / (1.0 - 1.0 / k))


def _tempo_bin(t: float) -> int:
    return int(min(7, max(0, (t - 40.0) // 20.0)))


def sample_quality(entry, feats: dict[str, Any]) -> float:
    """Per-sample quality (see the module docstring)."""
    ann = entry.annotations
    fields = REQUIRED + (REQUIRED_MIDI if entry.kind == "midi" else ())
    complete = sum(getattr(ann, f) is not None for f in fields) / len(fields)
    decodable = 1.0 if feats else 0.0
    n_num = feats.get("n_numeric", 0) or 0
    finite = 1.0 - min(1.0, (feats.get("n_nonfinite", 0) or 0) / n_num) if n_num else 0.0
    return (decodable + complete + finite) / 3.0


def _check(name: str, ok: bool, detail: str = "") -> dict[str, Any]:
    return {"check": name, "passed": bool(ok), "detail": detail}


def structure_checks(ws, manifest) -> list[dict[str, Any]]:
    """The structure checks (list of ``{check, passed, detail}``)."""
    checks = []
    try:
        ws.info()
        checks.append(_check("config.json valid", True))
    except Exception as exc:  # noqa: BLE001
        checks.append(_check("config.json valid", False, str(exc)[:200]))
    ids = [e.sample_id for e in manifest.samples]
    checks.append(_check("sample ids unique", len(ids) == len(set(ids))))
    missing = [e.sample_id for e in manifest.samples if not ws.abs(e.file_path).exists()]
    checks.append(_check("sample files present", not missing, f"{len(missing)} missing: {missing[:5]}"))
    nofeat = [e.sample_id for e in manifest.samples
              if not (e.features_path and ws.abs(e.features_path).is_file())]
    checks.append(_check("features extracted", not nofeat, f"{len(nofeat)} without features: {nofeat[:5]}"))
    noann = [e.sample_id for e in manifest.samples if not ws.abs(f"annotations/{e.sample_id}.json").is_file()]
    checks.append(_check("annotation files present", not noann, f"{len(noann)} missing"))
    by_id = manifest.by_id()
    orphans = [e.sample_id for e in manifest.samples if e.provenance and e.provenance.source_sample_id not in by_id]
    checks.append(_check("augmented sources present", not orphans, f"{len(orphans)} orphans: {orphans[:5]}"))
    split_of: dict[str, str] = {}
    overlap = []
    for name in ("train", "val", "test"):
        p = ws.abs(f"splits/{name}.txt")
        if p.is_file():
            for sid in p.read_text(encoding="utf-8").split():
                if sid in split_of:
                    overlap.append(sid)
                split_of[sid] = name
    if split_of:
        checks.append(_check("splits disjoint", not overlap, f"{len(overlap)} in two splits"))
        strays = [e.sample_id for e in manifest.samples if e.provenance and e.sample_id in split_of
                  and split_of.get(e.provenance.source_sample_id) not in (None, split_of[e.sample_id])]
        checks.append(_check("augmented copies follow their source", not strays, f"{len(strays)} strays"))
    return checks


def validate_workspace(ws: Workspace, manifest: Manifest, settings: Settings, write_back: bool = True) -> ValidationReport:
    """Score the workspace (see the module docstring); saves quality scores and the report."""
    wcfg = settings.workspace
    info = ws.info()
    emotions = Counter(e.annotations.emotion for e in manifest.samples if e.annotations.emotion)
    balance = sum(min(1.0, emotions.get(c, 0) / info.target_per_category) for c in info.categories) / max(
        1, len(info.categories))
    anns = [e.annotations for e in manifest.samples]
    keys = [a.key for a in anns if a.key]
    modes = [a.mode for a in anns if a.mode]
    tempi = [_tempo_bin(a.tempo_bpm) for a in anns if a.tempo_bpm]
    sources = [f"{e.source}:{e.performer or e.group}" for e in manifest.samples]
    div_parts = {"keys": gini_simpson(keys, 24), "modes": gini_simpson(modes, 2),
                 "tempi": gini_simpson(tempi, 8), "sources": gini_simpson(sources)}
    diversity = sum(div_parts.values()) / len(div_parts)
    q = []
    for e in manifest.samples:
        s = sample_quality(e, load_features(ws, e))
        q.append(s)
        if write_back and e.annotations.quality_score != round(s, 4):
            e.annotations = updated(e.annotations, quality_score=round(s, 4))
    bad = [r for r in manifest.rejected if r.reason in UNUSABLE]
    quality = sum(q) / (len(q) + len(bad)) if (q or bad) else 0.0
    checks = structure_checks(ws, manifest)
    structure = sum(c["passed"] for c in checks) / len(checks)
    scores = {"balance": balance, "diversity": diversity, "quality": quality, "structure": structure}
    thr = wcfg.thresholds.model_dump()
    failing = [k for k, v in scores.items() if v < thr[k] - 1e-12]
    counts = {
        "samples": len(manifest.samples),
        "by_origin": dict(Counter(e.origin for e in manifest.samples)),
        "by_kind": dict(Counter(e.kind for e in manifest.samples)),
        "by_emotion": {c: emotions.get(c, 0) for c in info.categories},
        "unlabelled": sum(1 for e in manifest.samples if not e.annotations.emotion),
        "rejected": dict(Counter(r.reason for r in manifest.rejected)),
        "distinct_keys": len(set(keys)), "distinct_sources": len(set(sources)),
        "diversity_parts": div_parts,
    }
    report = ValidationReport(scores=scores, thresholds=thr, passed=not failing, failing=failing,
                              counts=counts, checks=checks,
                              rejected=[r.model_dump() for r in manifest.rejected])
    if write_back:
        ws.save(manifest)
    atomic_write_json(ws.abs("reports/validation.json"), _jsonable(report.to_dict()), indent=1, sanitize=False)
    return report


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def print_report(report: ValidationReport, console: Any) -> None:
    """The validation table (rich)."""
    from rich.table import Table

    t = Table(title="workspace validation")
    t.add_column("score")
    t.add_column("value", justify="right")
    t.add_column("threshold", justify="right")
    t.add_column("")
    for k, v in report.scores.items():
        ok = k not in report.failing
        t.add_row(k, f"{v:.3f}", f"{report.thresholds[k]:.2f}", "[green]ok[/green]" if ok else "[red]below[/red]")
    console.print(t)
    c = report.counts
    console.print(f"{c['samples']} samples {c['by_origin']} {c['by_kind']}; emotions {c['by_emotion']}; "
                  f"unlabelled {c['unlabelled']}; rejected {c['rejected']}")
    for chk in report.checks:
        if not chk["passed"]:
            console.print(f"  [red]check failed[/red] {chk['check']}: {chk['detail']}")
