"""Loudness normalization of the raw tree to -18 LUFS, its log, and the verify step.

Measurement and gain are ``eno_hf.audio.conditioning`` (ITU-R BS.1770-4 integrated loudness via
pyloudnorm; the clip guard of ``normalization_gain`` lowers the gain so the sample peak stays at or
below ``peak_ceiling_dbfs``). Files are decoded to mono at ``ClarityConfig.sample_rate`` (soxr) and
measured there; normalized files are written as 24-bit WAV to ``processed/`` mirroring ``raw/``
(``.wav`` suffix).

Unmeasurable files: shorter than ``min_measurable_s`` (no complete 400 ms gating block) or silent
(RMS under ``silence_threshold_dbfs`` / every block under the -70 LUFS gate). With
``unmeasurable="assume"`` a too-short file is normalized as if it measured ``assumed_lufs`` (status
``assumed``); otherwise, and always for silent files, it is ``skipped`` with the reason. Undecodable
files are ``rejected``. Every file appears in ``normalization_log.json`` with one of these statuses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from eno_hf.audio.conditioning import (condition, integrated_loudness, normalization_gain, peak_dbfs,
                                       rms_dbfs)
from eno_hf.audio.io import load_audio
from eno_hf.clarity.config import ClarityConfig
from eno_hf.config import AudioConfig
from eno_hf.errors import RejectedInput

__all__ = ["normalize_signal", "normalize_file", "normalize_tree", "verify_tree", "processed_path"]


def _audio_cfg(cfg: ClarityConfig) -> AudioConfig:
    n = cfg.normalize
    return AudioConfig(sample_rate=cfg.sample_rate, target_lufs=n.target_lufs,
                       peak_ceiling_dbfs=n.peak_ceiling_dbfs, min_duration_s=n.min_measurable_s,
                       silence_threshold_dbfs=n.silence_threshold_dbfs)


def processed_path(rel: str) -> str:
    """``processed/`` path (relative to the work dir) of a raw file given relative to ``raw/``."""
    return (Path("processed") / Path(rel).with_suffix(".wav")).as_posix()


def normalize_signal(samples: np.ndarray, cfg: ClarityConfig, path: str | Path | None = None
                     ) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Normalize one mono signal at ``cfg.sample_rate``; never raises for bad audio.

    Returns:
        ``(normalized (n,) float32 or None when skipped/rejected, log record)``; the record has
        ``status`` (``normalized``/``assumed``/``skipped``/``rejected``), ``reason``, ``lufs_before``,
        ``lufs_after`` (measured on the output; for ``assumed`` files ``assumed_lufs + gain``),
        ``lufs_after_predicted`` (``lufs_before + gain_db``), ``gain_db``, ``peak_before_dbfs``,
        ``peak_after_dbfs``, ``clip_guard`` (the peak ceiling lowered the gain: the file ends below
        the target), ``duration_s``.
    """
    n = cfg.normalize
    sr = cfg.sample_rate
    x = np.asarray(samples, dtype=np.float32)
    rec: dict[str, Any] = {"status": "normalized", "reason": None, "duration_s": round(x.size / sr, 4),
                           "lufs_before": None, "lufs_after": None, "gain_db": None,
                           "peak_before_dbfs": None, "peak_after_dbfs": None, "clip_guard": False}
    try:
        out, stats = condition(x, sr, _audio_cfg(cfg), path=path)
    except RejectedInput as exc:
        rec["reason"] = f"{exc.reason}: {exc.detail}"
        if exc.reason == "too_short" and n.unmeasurable == "assume" and x.size and np.all(np.isfinite(x)) \
                and rms_dbfs(x) >= n.silence_threshold_dbfs:
            peak = peak_dbfs(x)
            gain, guard = normalization_gain(n.assumed_lufs, peak, n.target_lufs, n.peak_ceiling_dbfs)
            out = (x * np.float32(10.0 ** (gain / 20.0))).astype(np.float32)
            rec.update(status="assumed", lufs_before=n.assumed_lufs, lufs_after=n.assumed_lufs + gain,
                       gain_db=gain, peak_before_dbfs=peak, peak_after_dbfs=peak_dbfs(out),
                       clip_guard=guard)
            return out, _round(rec)
        rec["status"] = "skipped" if exc.reason in ("too_short", "silent") else "rejected"
        return None, rec
    # lufs_before + gain is exact for BS.1770 except at the -70 LUFS absolute gate: a strongly
    # attenuated (clip-guarded) one-shot's decaying tail drops under it, so measure the output too
    rec.update(lufs_before=stats.lufs_before, lufs_after=integrated_loudness(out, sr),
               lufs_after_predicted=stats.lufs_after, gain_db=stats.gain_db,
               peak_before_dbfs=stats.peak_before_dbfs, peak_after_dbfs=stats.peak_after_dbfs,
               clip_guard=stats.clipping_prevented)
    return out, _round(rec)


def _round(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: (round(float(v), 4) if isinstance(v, (float, np.floating)) else v) for k, v in rec.items()}


def normalize_file(raw_dir: Path, rel: str, cfg: ClarityConfig) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Decode ``raw_dir/rel`` (mono, ``cfg.sample_rate``) and ``normalize_signal`` it.

    Returns:
        ``(normalized or None, record with "file": rel)``; undecodable files give status
        ``rejected`` and the decoder's reason.
    """
    try:
        x, _ = load_audio(raw_dir / rel, sample_rate=cfg.sample_rate, mono=True)
    except RejectedInput as exc:
        return None, {"file": rel, "status": "rejected", "reason": f"{exc.reason}: {exc.detail}"}
    y, rec = normalize_signal(x, cfg, path=raw_dir / rel)
    return y, {"file": rel, **rec}


def normalize_tree(cfg: ClarityConfig, raw_dir: Path, workdir: Path, files: list[str]) -> dict[str, Any]:
    """Normalize ``files`` (relative to ``raw_dir``); write ``processed/`` WAVs if configured.

    Returns:
        The log: ``{"target_lufs", "peak_ceiling_dbfs", "sample_rate", "unmeasurable",
        "assumed_lufs", "counts": {status: n}, "files": [record, ...]}``; each record also has
        ``processed`` (path relative to ``workdir``, or None).
    """
    n = cfg.normalize
    records = []
    for rel in sorted(files):
        y, rec = normalize_file(raw_dir, rel, cfg)
        rec["processed"] = None
        if y is not None and n.write_processed:
            out = workdir / processed_path(rel)
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_suffix(".tmp.wav")
            sf.write(str(tmp), y, cfg.sample_rate, subtype="PCM_24")
            tmp.replace(out)
            rec["processed"] = processed_path(rel)
        records.append(rec)
    counts: dict[str, int] = {}
    for r in records:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return {"target_lufs": n.target_lufs, "peak_ceiling_dbfs": n.peak_ceiling_dbfs,
            "sample_rate": cfg.sample_rate, "unmeasurable": n.unmeasurable,
            "assumed_lufs": n.assumed_lufs, "standard": "ITU-R BS.1770-4 (pyloudnorm)",
            "counts": counts, "files": records}


def verify_tree(log: dict[str, Any], workdir: Path, tolerance_lu: float = 0.5) -> dict[str, Any]:
    """Re-measure every written ``processed/`` file against its log record.

    A measured file passes when its integrated loudness is within ``tolerance_lu`` of the target
    (or, when the clip guard acted, of the log's ``lufs_after``: such files end below the target by
    design and are counted in ``clip_guarded``) and its sample peak does not exceed the ceiling
    (+0.01 dB for 24-bit rounding). ``assumed`` files are re-measured too but
    only reported (``unverifiable``: too short for a gated measurement).

    Returns:
        ``{"checked", "passed", "failures": [{"file", "lufs_measured", "lufs_expected", "reason"}],
        "unverifiable": [...], "clip_guarded": n, "max_abs_error_lu"}``.
    """
    failures, unverifiable, errors, checked, guarded = [], [], [], 0, 0
    ceiling = float(log["peak_ceiling_dbfs"])
    for rec in log["files"]:
        if not rec.get("processed"):
            continue
        path = workdir / rec["processed"]
        try:
            y, sr = sf.read(str(path), dtype="float32")
        except (OSError, RuntimeError, sf.LibsndfileError) as exc:
            checked += 1
            failures.append({"file": rec["file"], "reason": f"unreadable: {exc}"})
            continue
        measured = integrated_loudness(y, sr)
        peak = peak_dbfs(y)
        if rec["status"] == "assumed":
            unverifiable.append({"file": rec["file"], "lufs_measured": round(measured, 3),
                                 "reason": "too short for a gated BS.1770 measurement"})
            continue
        checked += 1
        guarded += bool(rec.get("clip_guard"))
        expected = float(rec["lufs_after"]) if rec.get("clip_guard") else float(log["target_lufs"])
        err = abs(measured - expected) if np.isfinite(measured) else float("inf")
        errors.append(err)
        reason = None
        if err > tolerance_lu:
            reason = f"loudness off by {err:.2f} LU (> {tolerance_lu})"
        elif peak > ceiling + 0.01:
            reason = f"peak {peak:.2f} dBFS above the ceiling {ceiling}"
        if reason:
            failures.append({"file": rec["file"], "lufs_measured": round(measured, 3),
                             "lufs_expected": round(expected, 4), "peak_dbfs": round(peak, 3),
                             "reason": reason})
    return {"tolerance_lu": tolerance_lu, "checked": checked, "passed": checked - len(failures),
            "failures": failures, "unverifiable": unverifiable, "clip_guarded": guarded,
            "max_abs_error_lu": round(max(errors), 4) if errors else None}
