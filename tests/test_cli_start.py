"""Start-up cost of the CLI, checked structurally: ``eno --help`` / ``eno config`` import no heavy
library, and ``import eno_hf`` (torch-free) still makes transformers' Auto classes load eno models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("torch", "transformers", "datasets", "prefect", "clearml", "peft", "accelerate", "librosa",
         "sklearn", "pandas")


def _python(code: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                          cwd=Path(__file__).resolve().parent.parent)


def test_cli_help_and_config_import_no_heavy_library() -> None:
    code = f"""
import json, sys
import eno_hf.cli
from eno_hf.cli import app
after_import = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))
for args in (["--help"], ["config"], ["config", "--list"], ["config", "--json"], ["hub", "--help"],
             ["dataset", "--help"], ["clarity", "--help"], ["tag", "--help"], ["run", "--help"]):
    try:
        app(args, prog_name="eno")
    except SystemExit as exc:
        assert exc.code in (0, None), (args, exc.code)
after_commands = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))
print(json.dumps({{"import": after_import, "commands": after_commands}}))
"""
    res = _python(code)
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got == {"import": [], "commands": []}, got


def test_import_eno_hf_is_light_and_registers_for_pipeline(tmp_path: Path) -> None:
    import torch

    from eno_hf.models import EnoFeatureExtractor, EnoForAudioTagging, EnoModelConfig

    torch.manual_seed(0)
    cfg = EnoModelConfig(encoder_type="mel_cnn", encoder_kwargs={"n_mels": 16, "channels": 2, "n_blocks": 1},
                         chunk_s=1.0, hidden_dim=4, heads=[{"name": "m", "kind": "multilabel", "labels": ["a", "b"]}])
    EnoForAudioTagging(cfg).save_pretrained(tmp_path)
    EnoFeatureExtractor(sampling_rate=16_000).save_pretrained(tmp_path)
    # the documented use: import eno_hf (no torch yet), then transformers' pipeline() on an eno model dir
    code = f"""
import sys
import eno_hf
assert "torch" not in sys.modules and "transformers" not in sys.modules, "import eno_hf is not light"
import numpy as np
from transformers import pipeline
pipe = pipeline("audio-classification", model={str(tmp_path)!r})
out = pipe({{"raw": np.zeros(16000, dtype=np.float32), "sampling_rate": 16000}}, top_k=None)
print(type(pipe.model).__name__, type(pipe.feature_extractor).__name__, sorted(o["label"] for o in out))
"""
    res = _python(code)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip().splitlines()[-1] == "EnoForAudioTagging EnoFeatureExtractor ['m/a', 'm/b']"
    # transformers' Auto classes imported before eno_hf: registered at import
    code = f"""
from transformers import AutoModelForAudioClassification, AutoFeatureExtractor
import eno_hf
m = AutoModelForAudioClassification.from_pretrained({str(tmp_path)!r})
f = AutoFeatureExtractor.from_pretrained({str(tmp_path)!r})
print(type(m).__name__, type(f).__name__)
"""
    res = _python(code)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip().splitlines()[-1] == "EnoForAudioTagging EnoFeatureExtractor"
