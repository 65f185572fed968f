"""Config values that would blow up a run are refused at load, naming the key (exit 2 in the CLI)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from eno_hf.config import ConfigError, load_config

ABSURD = [
    ("dataset.segment.hop_s=1e-9", "dataset.segment"),        # 3 GB in 16 s before
    ("dataset.segment.segment_s=0.01", "dataset.segment.segment_s"),
    ("dataset.audio.block_s=1e-9", "dataset.audio.block_s"),
    ("train.epochs=.inf", "train.epochs"),
    ("train.learning_rate=.nan", "train.learning_rate"),
    ("train.batch_size=1000000000000", "train.batch_size"),
    ("model.chunk_s=1e-9", "model.chunk_s"),
    ("model.crop_s=.inf", "model.crop_s"),
]


@pytest.mark.parametrize("override,key", ABSURD)
def test_absurd_value_is_a_config_error_naming_the_key(override, key):
    with pytest.raises(ConfigError) as err:
        load_config("small", [override])
    assert key in str(err.value)


def test_hop_shorter_than_one_feature_frame_is_refused():
    # segment 0.1 s allows a 5 ms hop by overlap, but one log-mel frame is 256 / 16000 = 16 ms
    with pytest.raises(ConfigError, match="shorter than one feature frame"):
        load_config("small", ["dataset.segment.segment_s=0.1", "dataset.segment.hop_s=0.005"])


def test_builtin_configs_stay_within_bounds():
    from eno_hf.config import builtin_configs

    for name in builtin_configs():
        load_config(name)


def test_cli_exit_2_names_the_key():
    from eno_hf.cli import app

    res = CliRunner().invoke(app, ["config", "--set", "train.epochs=.inf"])
    assert res.exit_code == 2
    assert "train.epochs" in res.output
