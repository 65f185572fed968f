"""``models.weights.require_safetensors``: a saved model whose weights are only pickles is refused
before anything loads it; safetensors (or no weights at all) pass to the loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from eno_hf.models.weights import PickleWeightsError, require_safetensors


def test_pickle_only_folder_is_refused_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x04N.")
    with pytest.raises(PickleWeightsError, match="pytorch_model.bin") as err:
        require_safetensors(tmp_path)
    assert isinstance(err.value, OSError) and "\n" not in str(err.value)


def test_safetensors_beside_a_pickle_or_no_weights_pass(tmp_path: Path) -> None:
    (tmp_path / "model.pt").write_bytes(b"\x80\x04N.")
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert require_safetensors(str(tmp_path)) == tmp_path
    empty = tmp_path / "empty"
    empty.mkdir()
    assert require_safetensors(empty) == empty
    assert require_safetensors(tmp_path / "absent") == tmp_path / "absent"
