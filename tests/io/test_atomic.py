"""Atomic writes: a reader sees the old file or the new one, and a writer killed mid-write
leaves nothing that the next write of the same target does not sweep."""

from __future__ import annotations

import os
import time

import pytest

from psirel.io.atomic import (
    UNLOCKED_STALE_S,
    WRITER_LOCK,
    atomic_path,
    atomic_write_text,
    remove_stale_temporaries,
)


def test_the_target_appears_whole_with_its_side_cars(tmp_path):
    target = tmp_path / "out" / "pred.shp"
    with atomic_path(target) as tmp:
        tmp.write_text("shp")
        tmp.with_suffix(".dbf").write_text("dbf")
        assert not target.exists()
    assert target.read_text() == "shp" and (tmp_path / "out" / "pred.dbf").read_text() == "dbf"
    assert sorted(p.name for p in target.parent.iterdir()) == ["pred.dbf", "pred.shp"]


def test_a_failed_write_leaves_the_old_file(tmp_path):
    target = tmp_path / "a.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_killed_writers_folders_are_swept_live_ones_kept(tmp_path):
    target = tmp_path / "a.txt"
    dead = tmp_path / ".a.txt.dead.tmp"         # a writer killed: its lock file, unlocked
    dead.mkdir()
    (dead / WRITER_LOCK).touch()
    early = tmp_path / ".a.txt.early.tmp"       # killed before it locked, long ago
    early.mkdir()
    old = time.time() - 2 * UNLOCKED_STALE_S
    os.utime(early, (old, old))
    fresh = tmp_path / ".a.txt.fresh.tmp"       # just created by a live writer, not yet locked
    fresh.mkdir()
    other = tmp_path / ".b.txt.x.tmp"           # another target's
    other.mkdir()
    with atomic_path(target) as tmp:            # a live writer: its own folder survives a sweep
        tmp.write_text("new")
        remove_stale_temporaries(target)
        assert tmp.parent.exists()
    assert not dead.exists() and not early.exists()
    assert fresh.exists() and other.exists() and target.read_text() == "new"
