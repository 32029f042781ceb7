"""The folder a resumable run owns: a manifest (format tag + the run's key), written atomically,
an exclusive lock, and clean-up of its own files only.

Both work folders build on :class:`Manifest`: :class:`~psirel.infer.workdir.WorkDir` (stage-1
chunks and stage-2 blocks of ``psirel predict``) and :class:`~psirel.infer.tile_work.TileWork`
(the tiles of ``psirel predict --dask``). Their rules are the same:

- the key (:func:`run_inputs_key`) names everything the folder's content depends on: the model
  card's hash, each input file's content fingerprint *and its sidecars* (a shapefile's
  ``.dbf`` holds the velocities), the psirel version, and what the driver adds;
- a manifest of the same format with another key is refused, naming what differs, unless
  ``restart`` (then only the files this run type writes are removed);
- a ``manifest`` file that is not ours (unreadable, another format) is never touched, even
  with ``restart``: the folder may be a user's;
- one run at a time: an exclusive ``fcntl`` lock on ``.psirel.lock`` is taken before the
  manifest is read and held until :meth:`Manifest.close` / :meth:`Manifest.remove` or the
  process ends (a killed run leaves no stale lock). It is a POSIX record lock, per process:
  it keeps other processes out, not a second object of the same process.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from pathlib import Path

from psirel.errors import WorkDirMismatch
from psirel.io.atomic import atomic_write_text, remove_if_empty, remove_stale_temporaries

LOCK = ".psirel.lock"
FULL_HASH_BYTES = 64 << 20       # files up to this size are hashed whole
SAMPLE_BYTES = 1 << 20           # larger ones: 16 evenly spaced 1 MiB samples + size + mtime
N_SAMPLES = 16
# Files that belong to an input though named apart from it: shapefile parts, GDAL's .csvt/.prj,
# raster overviews, masks, world files and PAM side cars.
SIDECAR_SUFFIXES = (".dbf", ".shx", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".csvt", ".vrt",
                    ".tfw", ".tifw", ".wld", ".jgw")
SIDECAR_APPENDED = (".aux.xml", ".ovr", ".msk", ".csvt", ".prj")


def sidecars(path: Path) -> list[Path]:
    """The existing side-car files of ``path`` (``x.dbf`` of ``x.shp``, ``x.tif.aux.xml``...)."""
    found = {path.with_suffix(s) for s in SIDECAR_SUFFIXES} | \
        {Path(str(path) + s) for s in SIDECAR_APPENDED}
    return sorted(p for p in found if p != path and p.is_file())


def content_fingerprint(path: Path) -> str:
    """SHA-256 of a file's bytes (whole up to :data:`FULL_HASH_BYTES`; else of its size, mtime
    and :data:`N_SAMPLES` spread samples, so a multi-GB raster costs 16 MiB of reading)."""
    h = hashlib.sha256()
    st = path.stat()
    with open(path, "rb") as f:
        if st.st_size <= FULL_HASH_BYTES:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        else:
            h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
            step = (st.st_size - SAMPLE_BYTES) // (N_SAMPLES - 1)
            for i in range(N_SAMPLES):
                f.seek(i * step)
                h.update(f.read(SAMPLE_BYTES))
    return h.hexdigest()


def file_identity(path: Path | str) -> dict:
    """An input file as a run key holds it: resolved path, size, content fingerprint, and the
    same for each side car (a changed ``.dbf`` or ``.csvt`` changes the key)."""
    p = Path(path).resolve()
    if p.is_dir():  # a folder dataset (e.g. partitioned GeoParquet): its files, in order
        files = sorted(f for f in p.rglob("*") if f.is_file())
        return {"path": str(p), "files": {str(f.relative_to(p)): content_fingerprint(f)
                                          for f in files}}
    out = {"path": str(p), "size": int(p.stat().st_size), "sha256": content_fingerprint(p)}
    side = sidecars(p)
    if side:
        out["sidecars"] = {s.name: content_fingerprint(s) for s in side}
    return out


def run_inputs_key(model_json: Path, points, rasters: dict[str, Path | str]) -> dict:
    """The part of every run key the drivers share: model card, inputs, psirel version."""
    from psirel import __version__

    return {"model": content_fingerprint(Path(model_json)), "points": file_identity(points),
            "rasters": {k: file_identity(p) for k, p in rasters.items()},
            "psirel": __version__}


class Manifest:
    """A run's folder: ``path / MANIFEST`` holds ``{"format": FORMAT, "key": key, ...}``.

    Subclasses set ``FORMAT``, ``MANIFEST``, ``LABELS`` (key entry → words for the mismatch
    message) and implement :meth:`fresh` (the state of a new run) and :meth:`own_files`.
    ``resumed_manifest`` says whether this run's manifest was already there."""

    FORMAT = ""
    MANIFEST = ""
    LABELS: dict[str, str] = {}

    def __init__(self, path: Path | str, key: dict, restart: bool = False):
        self.path = Path(path)
        self.key = json.loads(json.dumps(key))  # as it reads back from JSON
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = _lock(self.path)
        try:
            state = self.read(self.path)
            family = self.FORMAT.split("/")[0]
            if state is not None and str(state.get("format", "")).split("/")[0] != family:
                raise WorkDirMismatch(self.path / self.MANIFEST,
                                      f"is not a {family} manifest; left untouched",
                                      hint="give another --work-dir")
            if state is not None and (state.get("format") != self.FORMAT
                                      or state.get("key") != self.key):
                if not restart:
                    raise WorkDirMismatch(self.path, "work dir belongs to another run (differs "
                                          f"in: {self._differences(state.get('key'))})")
                state = None
            self.resumed_manifest = state is not None
            if state is None:
                self.clean()
                state = {"format": self.FORMAT, "key": self.key, **self.fresh()}
                self.write(state)
        except BaseException:
            self.close()
            raise
        self.state = state

    @classmethod
    def read(cls, path: Path) -> dict | None:
        """The manifest in ``path``: None when there is none, ``{}`` when it is unreadable."""
        mf = Path(path) / cls.MANIFEST
        if not mf.exists():
            return None
        try:
            state = json.loads(mf.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError, OSError):
            return {}
        return state if isinstance(state, dict) else {}

    def fresh(self) -> dict:
        raise NotImplementedError

    def own_files(self) -> list[Path]:
        """This run type's files in the folder, the manifest included."""
        raise NotImplementedError

    def write(self, state: dict | None = None) -> None:
        if state is not None:
            self.state = state
        atomic_write_text(self.path / self.MANIFEST, json.dumps(self.state) + "\n")

    def clean(self) -> None:
        """Remove this run type's files (never anything else a user put there)."""
        for f in self.own_files():
            f.unlink(missing_ok=True)
        remove_stale_temporaries(self.path / self.MANIFEST)  # of a run killed mid-write

    def close(self) -> None:
        """Release the lock (the files stay, to resume)."""
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def remove(self) -> None:
        """Remove the files, the lock and the folder itself when nothing else is left in it."""
        self.clean()
        (self.path / LOCK).unlink(missing_ok=True)
        self.close()
        remove_if_empty(self.path)

    def _differences(self, old: dict | None) -> str:
        if not isinstance(old, dict):
            return "unreadable manifest"
        diff = [self.LABELS.get(k, k) for k in self.key if old.get(k) != self.key[k]]
        return ", ".join(diff + [k for k in old if k not in self.key]) or "format"


def _lock(path: Path) -> int:
    """An exclusive, non-blocking lock on ``path / LOCK``; WorkDirMismatch when it is held."""
    fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise WorkDirMismatch(path, "is in use by another psirel run",
                              hint="wait for it to end or give another --work-dir") from None
    return fd
