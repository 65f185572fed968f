"""Built-in config names, the one relative-path rule, ``${VAR}`` expansion, and where weights are found."""

from __future__ import annotations

from pathlib import Path

import pytest

from eno_hf.config import ConfigError, builtin_configs, load_config, resolve_config_path
from eno_hf.locations import default_models_dir, shared_dir
from eno_hf.models.weights import WeightsNotFoundError, find_weight_file


def test_builtin_names_resolve_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    names = builtin_configs()
    assert {"small", "tagger", "base", "datasets/4q", "percepiano", "clarity", "workspace"} <= set(names)
    assert not any(n.startswith("accelerate/") for n in names)
    for spelling in ("small", "small.yaml", "configs/small.yaml"):
        assert resolve_config_path(spelling) == names["small"]
    with pytest.raises(ConfigError, match="not a built-in config.*small"):
        resolve_config_path("no-such-config")


def test_relative_paths_follow_the_file_that_writes_them(tmp_path, monkeypatch):
    (tmp_path / "proj" / "music").mkdir(parents=True)
    cfg = tmp_path / "proj" / "eno.yaml"
    cfg.write_text("defaults: [tagger]\n"
                   "paths: {data_root: out, models_dir: weights}\n"
                   "dataset: {name: mine, source: {kind: folders, audio_root: music}}\n"
                   "run: {tag_files: [music/a.mp3]}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    s = load_config(cfg, ["train.output_dir=runs"])
    proj = (tmp_path / "proj").resolve()
    assert s.paths.data_root == proj / "out"
    assert s.paths.models_dir == proj / "weights"
    assert s.dataset.source.audio_root == proj / "music"
    assert s.run.tag_files == [proj / "music" / "a.mp3"]
    assert s.train.output_dir == Path("runs")  # --set: relative to the current directory
    assert s.model.encoder == "tagger_ensemble"  # layered on the built-in recipe by name


def test_unset_variable_is_a_config_error_naming_file_and_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("ENO_TEST_UNSET", raising=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("dataset:\n  source:\n    kind: folders\n    audio_root: ${ENO_TEST_UNSET}/music\n")
    with pytest.raises(ConfigError, match=r"c\.yaml.*ENO_TEST_UNSET is not set"):
        load_config(cfg)
    monkeypatch.setenv("ENO_TEST_UNSET", str(tmp_path / "lib"))
    assert load_config(cfg).dataset.source.audio_root == tmp_path / "lib" / "music"


def test_bad_defaults_entry_lists_the_builtin_names(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("defaults: [smal]\n")
    with pytest.raises(ConfigError, match="'smal' is neither a file beside it nor a built-in config"):
        load_config(cfg)


def test_models_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ENO_MODELS_DIR", str(tmp_path / "w"))
    assert default_models_dir() == tmp_path / "w"
    assert load_config("base").paths.models_dir == tmp_path / "w"
    monkeypatch.delenv("ENO_MODELS_DIR")
    monkeypatch.setenv("ENO_SHARED_DIR", str(tmp_path / "shared"))
    assert shared_dir() == tmp_path / "shared"
    assert default_models_dir() == Path.home() / ".eno" / "models"  # no models/ there
    (tmp_path / "shared" / "models").mkdir(parents=True)
    assert default_models_dir() == tmp_path / "shared" / "models"


def test_missing_weight_names_every_place_looked(tmp_path):
    with pytest.raises(WeightsNotFoundError) as err:
        find_weight_file("msd-fcn.safetensors", "sota-music-tagging", tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and "msd-fcn.safetensors" in msg and "ENO_MODELS_DIR" in msg
    assert str(tmp_path / "sota-music-tagging" / "msd-fcn.safetensors") in msg
    assert str(tmp_path / "msd-fcn.safetensors") in msg
    (tmp_path / "msd-fcn.safetensors").write_bytes(b"x")  # a folder holding the files directly
    assert find_weight_file("msd-fcn.safetensors", "sota-music-tagging", tmp_path) == tmp_path / "msd-fcn.safetensors"


def test_tagger_loader_raises_the_one_line_error(tmp_path):
    from eno_hf.models.encoders.sota_taggers import load_sota_tagger

    with pytest.raises(WeightsNotFoundError, match="jamendo-fcn.safetensors"):
        load_sota_tagger("jamendo-fcn", tmp_path)
    with pytest.raises(WeightsNotFoundError, match="msd-musicnn.safetensors"):
        load_sota_tagger("msd-musicnn", tmp_path)


def test_resolve_safetensors_takes_a_path_or_a_name(tmp_path):
    from eno_hf.models.weights import resolve_safetensors

    given = tmp_path / "own.safetensors"
    with pytest.raises(WeightsNotFoundError, match="own.safetensors"):
        resolve_safetensors(given, "musicnn", tmp_path)
    given.write_bytes(b"x")
    assert resolve_safetensors(given, "musicnn", tmp_path / "elsewhere") == given
    (tmp_path / "musicnn").mkdir()
    (tmp_path / "musicnn" / "msd-vgg.safetensors").write_bytes(b"x")
    assert resolve_safetensors("msd-vgg", "musicnn", tmp_path) == tmp_path / "musicnn" / "msd-vgg.safetensors"
    with pytest.raises(WeightsNotFoundError, match="msd-fcn.safetensors"):
        resolve_safetensors("msd-fcn", "sota-music-tagging", tmp_path)
