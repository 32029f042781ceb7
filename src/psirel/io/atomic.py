"""Atomic output: write into a hidden temporary folder beside the target, then rename.

A reader never sees a half-written file: either the previous file (or none) or the complete new
one. Multi-file formats (a shapefile's .shp/.shx/.dbf/.prj) are moved file by file at the end.

A writer holds a lock on ``WRITER_LOCK`` in its temporary folder for as long as it lives; a
writer killed mid-write (``kill -9``, out of memory) leaves its folder behind unlocked, and the
next write of the same target removes it (:func:`remove_stale_temporaries`).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: killed writers' folders stay
    fcntl = None

WRITER_LOCK = ".psirel-writer.lock"
UNLOCKED_STALE_S = 60.0  # a folder without its lock this old: its writer died before locking


@contextlib.contextmanager
def atomic_path(target: Path | str) -> Iterator[Path]:
    """Yield a temporary path with the target's name; on success move it (and its sidecars)
    onto ``target``; on error remove everything written."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    lock = None
    try:
        lock = _hold_writer_lock(tmpdir)
        tmp = tmpdir / target.name
        yield tmp
        for f in sorted(tmpdir.iterdir()):
            if f.name == WRITER_LOCK:
                continue
            # sidecars share the stem: points.shp, points.dbf, points.prj ...
            os.replace(f, target.parent / f.name)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
        if lock is not None:  # released after the folder is gone: no sweeper can take it
            os.close(lock)


def _hold_writer_lock(tmpdir: Path) -> int | None:
    """Lock ``tmpdir / WRITER_LOCK`` for this writer's lifetime (None without ``fcntl``). The
    file is locked under another name and renamed, so a sweeper never finds it unlocked."""
    if fcntl is None:
        return None
    partial = tmpdir / (WRITER_LOCK + ".partial")
    fd = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # per open file: also excludes this process's sweepers
    os.rename(partial, tmpdir / WRITER_LOCK)
    return fd


def remove_stale_temporaries(target: Path | str) -> None:
    """Remove the temporary folders of :func:`atomic_path` that writers of ``target`` killed
    mid-write left beside it: those whose writer lock nobody holds, and those without a lock
    older than :data:`UNLOCKED_STALE_S` (a writer locks its folder right after creating it). A
    live writer's folder is left alone."""
    if fcntl is None:
        return
    target = Path(target)
    for d in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        try:
            fd = os.open(d / WRITER_LOCK, os.O_RDONLY)
        except FileNotFoundError:  # killed in the microseconds before its lock, or older
            with contextlib.suppress(OSError):
                if time.time() - d.stat().st_mtime > UNLOCKED_STALE_S:
                    shutil.rmtree(d, ignore_errors=True)
            continue
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            pass  # its writer is alive
        else:
            shutil.rmtree(d, ignore_errors=True)
        finally:
            os.close(fd)


def remove_if_empty(folder: Path | str) -> None:
    """Remove ``folder`` when nothing is left in it (a user's file there keeps it)."""
    with contextlib.suppress(OSError):
        Path(folder).rmdir()


def check_writable(target: Path | str) -> None:
    """Raise :class:`~psirel.errors.UnwritableOutput` unless ``target``'s folder exists (or can
    be created) and takes new files: called before a long run, so that a read-only or missing
    location is one line at the start, not a traceback at the end."""
    from psirel.errors import UnwritableOutput

    parent = Path(target).absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".psirel-probe-", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UnwritableOutput(target, exc.strerror or type(exc).__name__) from None


def atomic_write_text(target: Path | str, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text)
