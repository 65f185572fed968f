"""``data.workers.hash_files`` with a cache file: unchanged files are not read again; a rewritten,
replaced or chmod-ed file is hashed again; a broken cache file counts as empty."""

from __future__ import annotations

import hashlib
import json
import os

from eno_hf.data import workers


def test_unchanged_files_come_from_the_cache(tmp_path, monkeypatch):
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    a.write_bytes(b"RIFF-a"), b.write_bytes(b"RIFF-b")
    cache = tmp_path / "cache" / "content-hashes.json"
    paths = [str(a), str(b), str(tmp_path / "missing.wav")]
    first = workers.hash_files(paths, 2, cache_file=cache)
    assert first[str(a)] == hashlib.sha256(b"RIFF-a").hexdigest()
    assert not isinstance(first[str(tmp_path / "missing.wav")], str)  # a missing file: an error, not cached
    assert sorted(json.loads(cache.read_text())) == [str(a), str(b)]

    read: list[str] = []
    real = workers.content_hash
    monkeypatch.setattr(workers, "content_hash", lambda p: read.append(str(p)) or real(p))
    again = workers.hash_files(paths, 2, cache_file=cache)
    assert again[str(a)] == first[str(a)] and again[str(b)] == first[str(b)]
    assert read == [str(tmp_path / "missing.wav")]

    b.write_bytes(b"RIFF-b2")  # rewritten (size and mtime change)
    os.chmod(a, 0o600)  # ctime changes
    read.clear()
    third = workers.hash_files(paths, 1, cache_file=cache)
    assert sorted(read) == sorted([str(a), str(b), str(tmp_path / "missing.wav")])
    assert third[str(b)] == hashlib.sha256(b"RIFF-b2").hexdigest()

    cache.write_text("{not json", encoding="utf-8")
    assert workers.hash_files(paths[:2], 1, cache_file=cache)[str(b)] == third[str(b)]
    assert json.loads(cache.read_text())[str(b)][4] == third[str(b)]
