"""ONNX export of the clarity models (skl2onnx) and their parity check with onnxruntime.

Two graphs, both with one input ``fingerprint`` ``float32 [N, 64]`` (columns ``FINGERPRINT_NAMES``):

- ``flaw_classifier.onnx``: outputs ``label`` (string ``[N]``) and ``probabilities``
  (``float32 [N, n_classes]``, class order = ``config.json`` ``classes``; ZipMap disabled);
- ``correction_regressor.onnx``: output ``variable`` (``float32 [N, n_outputs]``, order
  ``correction_outputs``).

Parity: both run with onnxruntime (CPU, 1 thread) on the hold-out fingerprints and are compared
with scikit-learn: label agreement, max |Δ probability|, max |Δ correction|. Trees are evaluated in
float32 by ONNX (thresholds cast from float64), so tiny differences at split thresholds are
expected; the numbers are reported, not assumed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from eno_hf.features.fingerprint import FINGERPRINT_DIM

__all__ = ["export_onnx", "onnx_session", "check_parity"]

CLASSIFIER_FILE = "flaw_classifier.onnx"
REGRESSOR_FILE = "correction_regressor.onnx"


def export_onnx(clf, reg, out_dir: Path) -> dict[str, str]:
    """Convert the fitted pair with skl2onnx; returns ``{"flaw_classifier", "correction_regressor"}`` paths."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    out_dir.mkdir(parents=True, exist_ok=True)
    types = [("fingerprint", FloatTensorType([None, FINGERPRINT_DIM]))]
    onx_c = convert_sklearn(clf, initial_types=types, options={id(clf): {"zipmap": False}})
    n_out = int(getattr(reg, "n_outputs_", 1))
    onx_r = convert_sklearn(reg, initial_types=types,
                            final_types=[("variable", FloatTensorType([None, n_out]))])
    paths = {"flaw_classifier": out_dir / CLASSIFIER_FILE, "correction_regressor": out_dir / REGRESSOR_FILE}
    paths["flaw_classifier"].write_bytes(onx_c.SerializeToString())
    paths["correction_regressor"].write_bytes(onx_r.SerializeToString())
    return {k: str(v) for k, v in paths.items()}


def onnx_session(path: str | Path, threads: int = 1):
    """An onnxruntime CPU ``InferenceSession`` with ``threads`` intra/inter-op threads."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = threads
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])


def check_parity(clf, reg, paths: dict[str, str], X: np.ndarray) -> dict[str, Any]:
    """Compare onnxruntime with scikit-learn on ``X`` (``(n, 64)`` float32).

    Returns:
        ``{"n", "label_agreement", "max_abs_diff_probabilities", "max_abs_diff_correction"}``.
    """
    X = np.ascontiguousarray(X, dtype=np.float32)
    sc, sr = onnx_session(paths["flaw_classifier"]), onnx_session(paths["correction_regressor"])
    labels, proba = sc.run(None, {"fingerprint": X})
    corr = sr.run(None, {"fingerprint": X})[0]
    ref_p = clf.predict_proba(X)
    ref_r = np.asarray(reg.predict(X)).reshape(corr.shape)
    return {"n": int(X.shape[0]),
            "label_agreement": float(np.mean(np.asarray(labels).astype(str) == clf.predict(X).astype(str))),
            "max_abs_diff_probabilities": float(np.max(np.abs(proba - ref_p))) if X.size else 0.0,
            "max_abs_diff_correction": float(np.max(np.abs(corr - ref_r))) if X.size else 0.0}
