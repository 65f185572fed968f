"""File-name pattern and layout parsing of the gold/flawed tree."""

from __future__ import annotations

import pytest

from eno_hf.clarity.names import flawed_name, gold_name, parse_name


def test_parses_gold_and_flawed_names():
    g = parse_name("raw/gold/drums/kick_gold_001.wav")
    assert (g.subset, g.instrument, g.sound, g.flaw, g.index) == ("gold", "drums", "kick", "none", "001")
    f = parse_name("flawed/drums/kick_flawed_muddy_001.wav")
    assert (f.subset, f.flaw, f.group) == ("flawed", "muddy", "drums/kick_001")
    assert f.group == g.group  # a variant and its source share the group
    h = parse_name("flawed/vocals/lead-vox_flawed_over-compressed_0042.FLAC")
    assert (h.sound, h.flaw, h.index) == ("lead-vox", "over-compressed", "0042")


def test_builders_round_trip():
    assert parse_name(f"gold/bass/{gold_name('bass', 7)}").index == "007"
    assert parse_name(f"flawed/keys/{flawed_name('keys', 'harsh', '012')}").flaw == "harsh"


@pytest.mark.parametrize("path, message", [
    ("gold/drums/kick_001.wav", "does not match"),
    ("gold/drums/kick_gold_1.wav", "does not match"),
    ("gold/drums/kick_gold_001.mp3", "does not match"),
    ("gold/drums/kick_flawed_muddy_001.wav", "under 'gold'"),
    ("flawed/drums/kick_gold_001.wav", "under 'flawed'"),
    ("flawed/drums/kick_flawed_001.wav", "must name its flaw"),
    ("gold/piano/keys_gold_001.wav", "instrument folder"),
    ("other/drums/kick_gold_001.wav", "neither 'gold' nor 'flawed'"),
    ("kick_gold_001.wav", "expected"),
    ("flawed/drums/kick_flawed_over_compressed_001.wav", "does not match"),
])
def test_rejects_bad_names_with_the_reason(path, message):
    with pytest.raises(ValueError, match=message) as exc:
        parse_name(path)
    assert path.split("/")[-1] in str(exc.value) or "expected" in message
