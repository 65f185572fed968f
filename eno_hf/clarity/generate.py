"""Flawed variants generated from gold audio with pedalboard, each with its exact correction vector.

For every gold file ``gold/{instrument}/{sound}_gold_{NNN}.wav`` the seeded generator draws
``flaws_per_file`` distinct flaws of the recipe (among those whose ``exclude_sounds`` does not name
the file's sound) (``ClarityConfig.generate.flaws``), draws each flaw's
parameters uniformly from its ranges (``numpy.random.default_rng([seed, crc32(file)])``: the same
file always gets the same flaws, whatever else is in the tree), applies the pedalboard effect
(Spotify ``pedalboard``: ``PeakFilter``, ``LowShelfFilter``, ``HighShelfFilter``, ``Compressor``,
``Distortion``, ``HighpassFilter``, ``LowpassFilter``) and writes ``flawed/{instrument}/{sound}_flawed_{flaw}_{NNN}.wav`` (32-bit float WAV,
so an EQ boost cannot clip before normalization). ``labels.json`` in the raw root records, per
generated file, its ``source`` gold file, the drawn ``params`` and the ``correction`` vector
(``FlawRecipe`` docstring), whose outputs are ``correction_names(cfg)``. Compressed and distorted
variants are gain-matched to the input RMS, so what remains is the change of dynamics/timbre.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from eno_hf.audio.io import load_audio
from eno_hf.clarity.config import ClarityConfig, FlawRecipe
from eno_hf.clarity.names import flawed_name, parse_name
from eno_hf.clarity.source import LABELS_FILE
from eno_hf.utils.io import atomic_path, atomic_write_json

__all__ = ["correction_names", "draw_params", "apply_flaw", "generate_flawed"]


def correction_names(cfg: ClarityConfig) -> list[str]:
    """Outputs of the correction vector, in recipe order (duplicates folded: ``boomy`` and ``thin``
    share ``low_shelf_150hz_gain_db`` with opposite signs)."""
    out: list[str] = []
    for recipe in cfg.generate.flaws.values():
        if recipe.output_name() not in out:
            out.append(recipe.output_name())
    return out


def draw_params(recipe: FlawRecipe, rng: np.random.Generator) -> dict[str, float]:
    """Draw one parameter set of ``recipe`` (uniform within each range)."""
    if recipe.effect in ("peak", "low_shelf", "high_shelf"):
        lo, hi = recipe.gain_db or (0.0, 0.0)
        return {"cutoff_hz": float(recipe.cutoff_hz or 0.0), "q": float(recipe.q),
                "gain_db": round(float(rng.uniform(lo, hi)), 3)}
    if recipe.effect == "compressor":
        return {"threshold_db": round(float(rng.uniform(*recipe.threshold_db)), 3),
                "ratio": round(float(rng.uniform(*recipe.ratio)), 3),
                "attack_ms": recipe.attack_ms, "release_ms": recipe.release_ms}
    if recipe.effect in ("highpass", "lowpass"):
        return {"cutoff_hz": round(float(rng.uniform(*recipe.cutoff_range_hz)), 1)}
    return {"drive_db": round(float(rng.uniform(*recipe.drive_db)), 3)}


def _correction(recipe: FlawRecipe, params: dict[str, float], names: list[str]) -> dict[str, float]:
    vec = {k: 0.0 for k in names}
    if recipe.effect in ("peak", "low_shelf", "high_shelf"):
        vec[recipe.output_name()] = -params["gain_db"]
    elif recipe.effect == "compressor":
        vec[recipe.output_name()] = round(params["ratio"] - 1.0, 3)
    elif recipe.effect in ("highpass", "lowpass"):
        vec[recipe.output_name()] = params["cutoff_hz"]
    else:
        vec[recipe.output_name()] = params["drive_db"]
    return vec


def apply_flaw(samples: np.ndarray, sample_rate: int, recipe: FlawRecipe,
               params: dict[str, float]) -> np.ndarray:
    """Apply one pedalboard effect to a mono ``(n,)`` float32 signal; returns ``(n,)`` float32."""
    import pedalboard as pb

    x = np.asarray(samples, dtype=np.float32)
    if recipe.effect == "peak":
        fx = pb.PeakFilter(cutoff_frequency_hz=params["cutoff_hz"], gain_db=params["gain_db"], q=params["q"])
    elif recipe.effect == "low_shelf":
        fx = pb.LowShelfFilter(cutoff_frequency_hz=params["cutoff_hz"], gain_db=params["gain_db"], q=params["q"])
    elif recipe.effect == "high_shelf":
        fx = pb.HighShelfFilter(cutoff_frequency_hz=params["cutoff_hz"], gain_db=params["gain_db"], q=params["q"])
    elif recipe.effect == "compressor":
        fx = pb.Compressor(threshold_db=params["threshold_db"], ratio=params["ratio"],
                           attack_ms=params["attack_ms"], release_ms=params["release_ms"])
    elif recipe.effect == "highpass":
        fx = pb.HighpassFilter(cutoff_frequency_hz=params["cutoff_hz"])
    elif recipe.effect == "lowpass":
        fx = pb.LowpassFilter(cutoff_frequency_hz=params["cutoff_hz"])
    else:
        fx = pb.Distortion(drive_db=params["drive_db"])
    y = pb.Pedalboard([fx])(x[None, :], sample_rate, reset=True)[0].astype(np.float32)
    if recipe.effect in ("compressor", "distortion"):
        rms_in = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
        rms_out = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
        if rms_out > 1e-9:
            y = (y * np.float32(rms_in / rms_out)).astype(np.float32)
    return y


def generate_flawed(cfg: ClarityConfig, raw_dir: str | Path, gold_files: list[str]) -> dict[str, Any]:
    """Write the flawed variants of ``gold_files`` (paths relative to ``raw_dir``) and ``labels.json``.

    Existing variants whose label record matches are kept (idempotent); variants of these gold
    files that the current recipe no longer plans are deleted (``removed``). A gold file that cannot
    be decoded is listed in ``failed`` and the run goes on.

    Returns:
        ``{"written", "kept", "failed": [{"file", "reason"}], "labels": path, "correction_names"}``.
    """
    root = Path(raw_dir)
    g = cfg.generate
    names = correction_names(cfg)
    flaw_names = list(g.flaws)
    labels_path = root / LABELS_FILE
    old = {r["file"]: r for r in json.loads(labels_path.read_text())} if labels_path.is_file() else {}
    records, written, kept, failed = [], 0, 0, []
    for rel in sorted(gold_files):
        parsed = parse_name(rel)
        rng = np.random.default_rng([g.seed, zlib.crc32(rel.encode())])
        allowed = [f for f in flaw_names if parsed.sound not in g.flaws[f].exclude_sounds]
        k = min(g.flaws_per_file, len(allowed))
        chosen = [allowed[i] for i in sorted(rng.choice(len(allowed), size=k, replace=False))]
        plans = [(f, draw_params(g.flaws[f], rng)) for f in chosen]
        samples = None
        for flaw, params in plans:
            out_rel = f"flawed/{parsed.instrument}/{flawed_name(parsed.sound, flaw, parsed.index)}"
            rec = {"file": out_rel, "source": rel, "flaw": flaw, "effect": g.flaws[flaw].effect,
                   "params": params, "correction": _correction(g.flaws[flaw], params, names)}
            target = root / out_rel
            if target.is_file() and old.get(out_rel) == rec:
                records.append(rec)
                kept += 1
                continue
            try:
                if samples is None:
                    samples, _ = load_audio(root / rel, sample_rate=cfg.sample_rate, mono=True)
                y = apply_flaw(samples, cfg.sample_rate, g.flaws[flaw], params)
            except Exception as exc:  # noqa: BLE001  (recorded; the run goes on)
                failed.append({"file": rel, "reason": f"{type(exc).__name__}: {exc}"})
                break
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(target, suffix=".wav") as tmp:
                sf.write(str(tmp), y, cfg.sample_rate, subtype="FLOAT")
            records.append(rec)
            written += 1
    planned = {x["file"] for x in records}
    removed = 0
    for f, r in old.items():  # variants of these gold files that the current recipe no longer makes
        if f not in planned and r.get("source") in gold_files and (root / f).is_file():
            (root / f).unlink()
            removed += 1
    hand_made = [r for f, r in old.items() if f not in planned
                 and r.get("source") not in gold_files and (root / f).is_file()]
    atomic_write_json(labels_path, sorted(records + hand_made, key=lambda r: r["file"]), indent=1)
    return {"written": written, "kept": kept, "removed": removed, "failed": failed, "labels": str(labels_path),
            "correction_names": names}
