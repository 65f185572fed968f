"""MIDI bytes are written once, under their content hash, by the one atomic writer."""

from __future__ import annotations

import hashlib
from pathlib import Path

from eno_hf.performance.render import midi_bytes_to_file


def test_midi_bytes_written_once_under_their_hash(tmp_path: Path) -> None:
    data = b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x00\x60"
    path = midi_bytes_to_file(data, tmp_path)
    assert path == tmp_path / "midi" / f"{hashlib.sha256(data).hexdigest()[:32]}.mid"
    assert path.read_bytes() == data
    before = path.stat().st_mtime_ns
    assert midi_bytes_to_file(data, tmp_path) == path
    assert path.stat().st_mtime_ns == before  # an existing file is kept, not rewritten
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary left behind
    other = midi_bytes_to_file(data + b"\x00", tmp_path)
    assert other != path and other.read_bytes() == data + b"\x00"
