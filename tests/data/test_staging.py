"""data.staging: temporaries of killed builds are removed, those of live processes are kept."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from eno_hf.data import staging
from eno_hf.data.staging import (LOCK_NAME, cache_temp_prefix, make_staging_dir,
                                 release_staging_dir, remove_stale)


def test_own_staging_dir_is_kept_then_released(tmp_path: Path) -> None:
    tmp = make_staging_dir(tmp_path, "v1")
    assert tmp.name.startswith(".v1.tmp-") and (tmp / LOCK_NAME).is_file()
    (tmp / "part.arrow").write_bytes(b"x")
    assert remove_stale(tmp_path) == [] and tmp.is_dir()
    release_staging_dir(tmp)
    assert not tmp.exists()


def test_orphaned_staging_dirs_removed_live_ones_kept(tmp_path: Path) -> None:
    # orphan: lock file present, nobody holds it (its process was killed)
    orphan = tmp_path / ".v1.tmp-dead"
    orphan.mkdir()
    (orphan / LOCK_NAME).write_text('{"pid": 1}')
    (orphan / "dataset").mkdir()
    # live: another process holds the lock
    live = tmp_path / ".v2.tmp-live"
    live.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(live / LOCK_NAME)!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('locked', flush=True)\n"
        "time.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        # young folder without a lock file: maybe being created right now
        young = tmp_path / ".v3.tmp-young"
        young.mkdir()
        old = tmp_path / ".v4.tmp-old"
        old.mkdir()
        past = time.time() - 2 * staging.UNLOCKED_GRACE_S
        os.utime(old, (past, past))
        removed = remove_stale(tmp_path)
        assert sorted(p.name for p in removed) == [".v1.tmp-dead", ".v4.tmp-old"]
        assert live.is_dir() and young.is_dir() and not orphan.exists() and not old.exists()
    finally:
        holder.kill()
        holder.wait()
    assert remove_stale(tmp_path) == [live]  # its owner is gone now


def test_cache_temporaries_of_dead_pids_only(tmp_path: Path) -> None:
    final = tmp_path / "abc.arrow"
    mine = tmp_path / (cache_temp_prefix(final) + "x1")
    mine.write_bytes(b"x")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    host = cache_temp_prefix(final).rsplit(".", 2)[1].rpartition("-")[0]
    orphan = tmp_path / f".abc.arrow.{host}-{dead}.x2"
    orphan.write_bytes(b"x")
    other_host = tmp_path / f".abc.arrow.elsewhere-{dead}.x3"
    other_host.write_bytes(b"x")
    unrelated = tmp_path / ".keep"
    unrelated.write_bytes(b"x")
    assert remove_stale(cache_dir=tmp_path) == [orphan]
    assert mine.exists() and other_host.exists() and unrelated.exists()


def test_cache_temporaries_in_the_sub_folders(tmp_path: Path) -> None:
    """Per-file results live in ``{content_hash[:2]}/`` sub-folders: their temporaries are found there."""
    from eno_hf.config import load_config
    from eno_hf.data.file_cache import cache_path_for
    from eno_hf.data.recording import Recording
    from eno_hf.data.version import segment_cache_dir

    cfg = load_config("configs/base.yaml").dataset
    final = cache_path_for(tmp_path, Recording("r", tmp_path / "r.wav"), "ab" + "0" * 62, cfg)
    cache = segment_cache_dir(tmp_path)
    assert final.parent == cache / "ab"
    final.parent.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    host = cache_temp_prefix(final).rsplit(".", 2)[1].rpartition("-")[0]
    orphan = final.parent / f".{final.name}.{host}-{dead}.x1"
    orphan.write_bytes(b"x")
    mine = final.parent / (cache_temp_prefix(final) + "x2")
    mine.write_bytes(b"x")
    flat_orphan = cache / f".{final.name}.{host}-{dead}.x3"  # a temporary of the flat layout
    flat_orphan.write_bytes(b"x")
    final.write_bytes(b"x")
    assert sorted(remove_stale(cache_dir=cache)) == sorted([orphan, flat_orphan])
    assert mine.exists() and final.exists()
