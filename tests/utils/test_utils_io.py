"""eno_hf.utils.io: atomic writes leave no partial file, pointers, canonical JSON hash, sanitising."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from eno_hf.utils.io import (
    atomic_path, atomic_write, atomic_write_json, file_digest, file_sha256, json_hash, read_pointer, to_jsonable,
    write_pointer,
)


def test_atomic_write_replaces_and_cleans_up_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "f.bin"
    atomic_write(target, lambda fh: fh.write(b"old"))
    assert target.read_bytes() == b"old"

    def boom(fh):
        fh.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, boom)
    assert target.read_bytes() == b"old"  # the old content survives a failed write
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.bin"]  # no temp file left


def test_atomic_write_json_is_strict(tmp_path: Path) -> None:
    p = atomic_write_json(tmp_path / "m.json", {"a": float("nan"), "b": np.float32(0.5),
                                                "c": np.arange(3), "d": tmp_path, "e": {2, 1}})
    data = json.loads(p.read_text())  # strict parser would fail on NaN
    assert data == {"a": None, "b": 0.5, "c": [0, 1, 2], "d": str(tmp_path), "e": [1, 2]}


def test_atomic_write_json_unsanitized_refuses_nan_and_keeps_the_old_file(tmp_path: Path) -> None:
    p = atomic_write_json(tmp_path / "m.json", {"a": 1}, indent=1, sanitize=False, fsync=True)
    assert p.read_text() == '{\n "a": 1\n}\n'
    with pytest.raises(ValueError, match="not JSON compliant: nan"):
        atomic_write_json(p, {"a": float("nan")}, sanitize=False)
    assert json.loads(p.read_text()) == {"a": 1}
    assert [x.name for x in tmp_path.iterdir()] == ["m.json"]


def test_atomic_path_for_writers_that_want_a_path(tmp_path: Path) -> None:
    target = tmp_path / "out.wav"
    with atomic_path(target, prefix=".render-1-", suffix=".wav") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".render-1-") and tmp.suffix == ".wav"
        tmp.write_bytes(b"RIFF")
        assert not target.exists()  # nothing in place before the body ends
    assert target.read_bytes() == b"RIFF" and not tmp.exists()
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("writer failed")
    assert target.read_bytes() == b"RIFF"
    assert [x.name for x in tmp_path.iterdir()] == ["out.wav"]


def test_file_sha256_streams_the_bytes(tmp_path: Path) -> None:
    import hashlib

    p = tmp_path / "f.bin"
    p.write_bytes(b"ab" * 300_000)  # more than one read block
    assert file_sha256(p) == hashlib.sha256(b"ab" * 300_000).hexdigest()
    h = file_digest(p)
    h.update(b"more")
    assert h.hexdigest() == hashlib.sha256(b"ab" * 300_000 + b"more").hexdigest()
    with pytest.raises(FileNotFoundError):
        file_sha256(tmp_path / "missing")


def test_pointer_roundtrip(tmp_path: Path) -> None:
    assert read_pointer(tmp_path / "LATEST") is None
    write_pointer(tmp_path / "LATEST", "v3")
    assert (tmp_path / "LATEST").read_text() == "v3\n"
    assert read_pointer(tmp_path / "LATEST") == "v3"
    (tmp_path / "empty").write_text("\n")
    assert read_pointer(tmp_path / "empty") is None


def test_json_hash_is_canonical() -> None:
    a = json_hash({"x": 1, "y": [1, 2]})
    assert a == json_hash({"y": [1, 2], "x": 1}) and len(a) == 64
    assert json_hash({"x": 1, "y": [2, 1]}) != a
    assert json_hash({"x": 1}, 10) == json_hash({"x": 1})[:10]


def test_to_jsonable_nested() -> None:
    out = to_jsonable({1: (np.int64(3), np.bool_(True), [math.inf, -math.inf]), "o": object})
    assert out["1"][:2] == [3, True] and out["1"][2] == [None, None]
    assert isinstance(out["o"], str)
    json.dumps(out, allow_nan=False)
