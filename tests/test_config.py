"""Typed settings: YAML layering, overrides, path resolution, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from eno_hf.config import CONFIG_DIR, ConfigError, Settings, apply_overrides, load_config


def test_small_config_layers_base_and_dataset() -> None:
    s = load_config("configs/small.yaml")
    assert isinstance(s, Settings)
    assert s.dataset.name == "4q"
    assert s.dataset.source.id_column == "Song"
    assert {h.name for h in s.model.heads} == {"quadrant", "descriptors", "genres"}
    # paths inside YAML are relative to the file that names them
    assert s.dataset.source.metadata is not None and s.dataset.source.metadata.is_absolute()
    assert s.dataset.source.metadata.name == "panda_dataset_taffc_metadata.csv"


def test_overrides_parse_yaml_values() -> None:
    s = load_config("configs/small.yaml", ["train.epochs=3", "dataset.limit=12",
                                           "dataset.audio.target_lufs=null", "model.encoder=mel_cnn"])
    assert s.train.epochs == 3
    assert s.dataset.limit == 12
    assert s.dataset.audio.target_lufs is None
    assert s.model.encoder == "mel_cnn"


def test_unknown_key_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="train.epochz"):
        load_config("configs/small.yaml", ["train.epochz=3"])


def test_bad_value_names_the_key() -> None:
    with pytest.raises(ConfigError, match="model.encoder"):
        load_config("configs/small.yaml", ["model.encoder=nope"])


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_override_without_equals() -> None:
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["train.epochs"])


def test_every_shipped_config_validates() -> None:
    for path in sorted(CONFIG_DIR.rglob("*.yaml")):
        if path.parent.name == "datasets":
            continue
        if path.parent.name == "cv":  # `eno cv` candidates (eno_hf.evaluation.cv.candidates), not eno settings
            from eno_hf.evaluation.cv.candidates import load_candidate

            assert load_candidate(path.stem).name == path.stem, path
            continue
        if path.parent.name == "accelerate":  # `accelerate launch --config_file` files, not eno settings
            import yaml

            assert "distributed_type" in yaml.safe_load(path.read_text()), path
            continue
        load_config(path)


def test_hub_defaults_under_data_root(tmp_path: Path) -> None:
    s = load_config("configs/base.yaml", [f"paths.data_root={tmp_path}"])
    assert s.paths.hub() == tmp_path / "hub"
