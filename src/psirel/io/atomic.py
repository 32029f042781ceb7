"""Atomic output: write into a hidden temporary folder beside the target, then rename.

A reader never sees a half-written file: either the previous file (or none) or the complete new
one. Multi-file formats (a shapefile's .shp/.shx/.dbf/.prj) are moved file by file at the end.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: Path | str) -> Iterator[Path]:
    """Yield a temporary path with the target's name; on success move it (and its sidecars)
    onto ``target``; on error remove everything written."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        tmp = tmpdir / target.name
        yield tmp
        for f in sorted(tmpdir.iterdir()):
            # sidecars share the stem: points.shp, points.dbf, points.prj ...
            os.replace(f, target.parent / f.name)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


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
