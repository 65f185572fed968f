"""Published tagger weights load with their subnormal floats flushed to zero (35x slower
convolutions on x86 otherwise; see ``eno_hf.models.encoders.base.flush_subnormals``)."""

from __future__ import annotations

import pytest
import torch

from eno_hf.models.encoders.base import flush_subnormals

TINY = torch.finfo(torch.float32).tiny


def _subnormal(t: torch.Tensor) -> int:
    return int(((t != 0) & (t.abs() < torch.finfo(t.dtype).tiny)).sum()) if t.is_floating_point() else 0


def test_flush_subnormals_zeroes_only_subnormals() -> None:
    w = torch.tensor([0.0, TINY / 4, -TINY / 2, TINY, -1.5, 3e-30])
    idx = torch.tensor([1, 2, 3])
    out = flush_subnormals({"w": w, "idx": idx, "half": torch.tensor([1e-6, 1.0], dtype=torch.float16)})
    assert out["w"].tolist() == [0.0, 0.0, 0.0, TINY, -1.5, pytest.approx(3e-30)]
    assert out["idx"] is idx                                       # non-float: untouched
    assert out["half"][0] == 0 and out["half"][1] == 1             # float16 subnormal (< 6.1e-5) too
    assert _subnormal(w) == 2                                      # the input is not modified


@pytest.mark.parametrize("name", ["msd-fcn", "jamendo-musicnn", "mtat-musicnn", "msd-musicnn"])
def test_loaded_taggers_hold_no_subnormal_weights(name: str, sota_models_dir) -> None:
    from safetensors.torch import load_file

    from eno_hf.models.encoders.sota_taggers import load_sota_tagger

    enc = load_sota_tagger(name)
    assert sum(_subnormal(t) for t in [*enc.parameters(), *enc.buffers()]) == 0
    if name in ("msd-fcn", "jamendo-musicnn"):                    # these files do hold them
        raw = load_file(str(sota_models_dir / f"{name}.safetensors"))
        assert sum(_subnormal(t) for t in raw.values()) > 10_000
