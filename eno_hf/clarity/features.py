"""Fingerprint extraction of the normalized tree: ``features.csv``/``.parquet`` + ``feature_metadata.json``.

Each usable file (normalized or assumed in the normalization log) is reduced to eno's 64-d
fingerprint (``eno_hf.features.fingerprint.fingerprint``, names ``FINGERPRINT_NAMES``) computed on
the normalized mono signal at the analysis rate, from its ``processed/`` WAV when written, else
normalized again in memory from ``raw/`` (same function). Loudness fields are measured on that
signal itself (no ``stats``), exactly what a plug-in would compute from normalized audio.

Columns of ``features.csv`` / ``features.parquet``, in order: ``file, subset, instrument, flaw``,
the 64 fingerprint columns, then ``group`` (source recording, for grouped splits), ``duration_s``
and one ``target_{output}`` column per correction output (empty when a file has no known
correction). ``features.pkl`` (pandas pickle) only when ``features.pickle`` is set: never load a
pickle you did not write.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import soundfile as sf

from eno_hf.clarity.config import ClarityConfig
from eno_hf.clarity.normalize import normalize_file
from eno_hf.clarity.source import Entry
from eno_hf.features.fingerprint import FINGERPRINT_NAMES, HOP_LENGTH, N_FFT, fingerprint

__all__ = ["ID_COLUMNS", "feature_metadata", "extract_features", "target_columns"]

ID_COLUMNS = ("file", "subset", "instrument", "flaw")

_LIB = "librosa 0.11"


def _describe(name: str) -> tuple[str, str, str]:
    """(unit, definition, source) of one fingerprint column."""
    stat = "standard deviation" if "_std" in name else "mean"
    frames = f"over STFT frames (n_fft={N_FFT}, hop_length={HOP_LENGTH}, Hann, centred)"
    if name.startswith("spectral_centroid"):
        return "Hz", f"{stat} {frames} of the spectral centroid", f"{_LIB} feature.spectral_centroid"
    if name.startswith("spectral_flatness"):
        return "ratio 0-1", f"{stat} {frames} of the spectral flatness (Wiener entropy)", \
            f"{_LIB} feature.spectral_flatness"
    if name.startswith("spectral_bandwidth"):
        return "Hz", f"{stat} {frames} of the order-2 spectral bandwidth", f"{_LIB} feature.spectral_bandwidth"
    if name.startswith("spectral_rolloff"):
        return "Hz", f"{stat} {frames} of the 85 % spectral roll-off frequency", f"{_LIB} feature.spectral_rolloff"
    if name.startswith("spectral_contrast"):
        band = name.split("_")[2]
        return "dB", f"mean {frames} of the spectral contrast of octave band {band[1:]} (b6 = rest)", \
            f"{_LIB} feature.spectral_contrast (n_bands=6)"
    if name.startswith("mfcc"):
        k = int(name.split("_")[1])
        return "dB (cepstral)", f"{stat} {frames} of MFCC {k} (128 mel bands, dB, DCT-II)", f"{_LIB} feature.mfcc"
    if name.startswith("chroma"):
        pc = name.split("_")[1].upper()
        return "ratio 0-1", f"mean {frames} of the {pc} chroma energy (tuning=0, A440)", \
            f"{_LIB} feature.chroma_stft"
    if name.startswith("zero_crossing"):
        return "crossings/sample", f"{stat} over 2048-sample frames of the zero-crossing rate", \
            f"{_LIB} feature.zero_crossing_rate"
    if name.startswith("onset_strength"):
        return "dB flux", f"{stat} of the onset-strength envelope (spectral flux of mel dB)", \
            f"{_LIB} onset.onset_strength"
    table = {
        "crest_factor": ("ratio", "whole-signal sample peak / RMS (linear)", "numpy"),
        "rms_dbfs": ("dBFS", "whole-signal RMS level", "numpy"),
        "rms_std_db": ("dB", "std of frame RMS in dB (2048-sample frames every 512)", "numpy + librosa.util.frame"),
        "peak_to_average_ratio_db": ("dB", "mean over frames of 20*log10(frame peak / frame RMS)",
                                     "numpy + librosa.util.frame"),
        "integrated_lufs": ("LUFS", "integrated loudness (K-weighted, gated)", "ITU-R BS.1770-4 via pyloudnorm"),
        "loudness_range_lu": ("LU", "loudness range (0 when shorter than one 3 s block)", "EBU Tech 3342 via pyloudnorm"),
        "tempo_bpm": ("BPM", "global tempo estimate from the onset envelope", f"{_LIB} feature.tempo"),
        "onset_rate_per_s": ("onsets/s", "number of detected onsets / duration", f"{_LIB} onset.onset_detect"),
    }
    return table[name]


def feature_metadata(cfg: ClarityConfig) -> dict[str, Any]:
    """``feature_metadata.json`` content: name, unit, definition, source of each of the 64 columns."""
    cols = []
    for i, name in enumerate(FINGERPRINT_NAMES):
        unit, definition, source = _describe(name)
        cols.append({"index": i, "name": name, "unit": unit, "definition": definition, "source": source})
    return {"module": "eno_hf.features.fingerprint", "dimension": len(cols),
            "sample_rate": cfg.sample_rate, "input": f"mono, normalized to {cfg.normalize.target_lufs} LUFS",
            "columns": cols}


def target_columns(correction_names: list[str]) -> list[str]:
    """``target_{name}`` per correction output."""
    return [f"target_{n}" for n in correction_names]


def extract_features(cfg: ClarityConfig, entries: list[Entry], norm_log: dict[str, Any], raw_dir: Path,
                     workdir: Path, correction_names: list[str]) -> tuple[pd.DataFrame, list[dict], dict]:
    """Fingerprint every entry the normalization log kept.

    Returns:
        ``(frame, rejected [{"file", "reason"}], timing {"audio_s", "extract_s"})``; the frame's
        columns are described in the module docstring. Files skipped/rejected by normalization or
        failing here are in ``rejected`` with the reason; the others are all in the frame.
    """
    by_file = {r["file"]: r for r in norm_log["files"]}
    rows, rejected = [], []
    audio_s = extract_s = 0.0
    tcols = target_columns(correction_names)
    for e in entries:
        rec = by_file.get(e.file)
        if rec is None or rec["status"] not in ("normalized", "assumed"):
            rejected.append({"file": e.file, "reason": (rec or {}).get("reason") or "not normalized",
                             "status": (rec or {}).get("status", "missing")})
            continue
        try:
            if rec.get("processed") and (workdir / rec["processed"]).is_file():
                y, sr = sf.read(str(workdir / rec["processed"]), dtype="float32")
            else:
                y, _ = normalize_file(raw_dir, e.file, cfg)
                sr = cfg.sample_rate
                if y is None:
                    raise ValueError("normalization failed on re-read")
            t0 = time.perf_counter()
            fp = fingerprint(y, sr)
            extract_s += time.perf_counter() - t0
            audio_s += y.shape[0] / sr
        except (ValueError, OSError, RuntimeError) as exc:
            rejected.append({"file": e.file, "reason": f"{type(exc).__name__}: {exc}", "status": "extract_failed"})
            continue
        row: dict[str, Any] = {"file": e.file, "subset": e.subset, "instrument": e.instrument, "flaw": e.flaw}
        row.update({n: float(v) for n, v in zip(FINGERPRINT_NAMES, fp)})
        row["group"] = e.group
        row["duration_s"] = e.duration_s
        for name, col in zip(correction_names, tcols):
            row[col] = (e.correction or {}).get(name, np.nan) if e.correction is not None else np.nan
        rows.append(row)
    cols = [*ID_COLUMNS, *FINGERPRINT_NAMES, "group", "duration_s", *tcols]
    frame = pd.DataFrame(rows, columns=cols)
    return frame, rejected, {"audio_s": round(audio_s, 3), "extract_s": round(extract_s, 3)}


def write_features(frame: pd.DataFrame, out_dir: Path, cfg: ClarityConfig) -> dict[str, str]:
    """Write ``features.csv``, ``features.parquet`` (+ ``.pkl`` if asked) and ``feature_metadata.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"features_csv": out_dir / "features.csv", "features_parquet": out_dir / "features.parquet",
             "feature_metadata": out_dir / "feature_metadata.json"}
    frame.to_csv(paths["features_csv"], index=False, float_format="%.7g")
    frame.to_parquet(paths["features_parquet"], index=False)
    paths["feature_metadata"].write_text(json.dumps(feature_metadata(cfg), indent=1), encoding="utf-8")
    if cfg.features.pickle:
        paths["features_pkl"] = out_dir / "features.pkl"
        frame.to_pickle(paths["features_pkl"])
    return {k: str(v) for k, v in paths.items()}
