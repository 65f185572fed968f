"""Prefect flow ``eno-clarity``: one real flow run on a very small real tree (subprocess, own PREFECT_HOME)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT_ROOT / "tests" / "clarity"))

SCRIPT = r"""
import json, sys
from eno_hf.flows.clarity import clarity_flow
root = sys.argv[1]
ov = [f"paths.data_root={root}", "clarity.gold.drums_per_sound=1", "clarity.gold.stems_per_instrument=1",
      "clarity.gold.max_duration_s=2.0", "clarity.generate.flaws_per_file=2", "clarity.models.n_estimators=20",
      "clarity.models.cv_folds=2", "clarity.models.bootstrap=20", "clarity.models.compare=false",
      "clarity.models.clearml=false"]
res = clarity_flow("configs/clarity.yaml", ov)
print(json.dumps(res, default=str))
"""


@pytest.mark.slow
@pytest.mark.flow
def test_real_clarity_flow_run(tmp_path: Path, prefect_api_url: str) -> None:
    sys.path.insert(0, str(PROJECT_ROOT / "tests" / "clarity"))  # the clarity tests' data helpers
    from clarity_data import need_real_sources

    need_real_sources()
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_LOGGING_LEVEL": "WARNING",
           "PYTHONPATH": str(PROJECT_ROOT), "PREFECT_API_URL": prefect_api_url}  # the session's server
    (tmp_path / "prefect-home").mkdir()
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "data")], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("features_csv", "feature_columns", "feature_metadata", "normalization_log", "model", "onnx",
                "metrics"):
        assert key in out
    assert len(out["feature_columns"]) == 64 and Path(out["features_csv"]).is_file()
    assert out["parity"]["label_agreement"] == 1.0
    assert set(out["steps"]) == {"init", "generate", "scan", "normalize", "verify", "extract", "analyze",
                                 "train", "export"}
