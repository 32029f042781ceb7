"""The resumable state of one ``psirel predict`` run: a folder of memory-mapped arrays + a manifest.

``embeddings.f32.npy`` (``[N, D]`` float32, stage 1) and ``reliability.f32.npy`` (``[N]``
float32, stage 2) are filled chunk by chunk; ``manifest.json`` lists the finished chunk and block
ids and is rewritten atomically after each one, always *after* the chunk's rows were flushed, so
whatever the manifest says is done is on disk. A rerun skips what is listed.

The manifest also holds the run's *key*: the model (SHA-256 of ``model.json``, which holds the
SHA-256 of every artifact), the identity of the inputs (path, size, modification time), the
number of points and the chunking. Results of another model or input must never be mixed in, so a
different key is refused with :class:`~psirel.errors.WorkDirMismatch` unless ``restart`` clears
the folder (only the files this module writes are removed).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from psirel.errors import WorkDirMismatch
from psirel.io.atomic import atomic_write_text, remove_if_empty

FORMAT = "psirel-work/1"
MANIFEST = "manifest.json"
EMBEDDINGS = "embeddings.f32.npy"
RELIABILITY = "reliability.f32.npy"
OWN_FILES = (MANIFEST, EMBEDDINGS, RELIABILITY)
STAGES = ("stage1", "stage2")


def file_identity(path: Path | str) -> dict:
    """What identifies an input file cheaply: resolved path, size and modification time (ns)."""
    p = Path(path).resolve()
    st = p.stat()
    return {"path": str(p), "size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}


class WorkDir:
    """Open (create, resume or refuse) the work folder ``path`` for a run identified by ``key``.

    Attributes:
        done: ``{"stage1": set of chunk ids, "stage2": set of block ids}`` already finished.
        info: per-chunk facts recorded with :meth:`mark` (e.g. unknown land-cover counts).
        resumed: whether anything was already done when opened.
    """

    def __init__(self, path: Path | str, key: dict, restart: bool = False):
        self.path = Path(path)
        self.key = json.loads(json.dumps(key))  # as it reads back from JSON
        self.path.mkdir(parents=True, exist_ok=True)
        state = self._read()
        if state is not None and state.get("key") != self.key:
            if not restart:
                raise WorkDirMismatch(self.path, "work dir belongs to another run (differs in: "
                                      f"{_differences(state.get('key'), self.key)})")
            state = None
        if state is None:
            self.clean()
            state = {"format": FORMAT, "key": self.key, "stage1": {"done": [], "info": {}},
                     "stage2": {"done": []}}
            self._write(state)
        self._state = state
        self.done = {s: {int(i) for i in state[s]["done"]} for s in STAGES}
        self.resumed = any(self.done.values())

    # ------------------------------------------------------------------ manifest
    def _read(self) -> dict | None:
        mf = self.path / MANIFEST
        if not mf.exists():
            return None
        try:
            state = json.loads(mf.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError, OSError):
            return {"key": None}  # unreadable: treated as another run's
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            return {"key": None}
        return state

    def _write(self, state: dict) -> None:
        atomic_write_text(self.path / MANIFEST, json.dumps(state) + "\n")

    @property
    def info(self) -> dict[int, dict]:
        return {int(k): v for k, v in self._state["stage1"]["info"].items()}

    def mark(self, stage: str, item: int, **info) -> None:
        """Record chunk / block ``item`` of ``stage`` as finished (call after flushing it)."""
        self.done[stage].add(int(item))
        self._state[stage]["done"] = sorted(self.done[stage])
        if info:
            self._state[stage].setdefault("info", {})[str(int(item))] = info
        self._write(self._state)

    # ------------------------------------------------------------------ arrays
    def _array(self, name: str, shape: tuple[int, ...], stage: str) -> np.memmap:
        """Open the stage's memmap for writing; a missing or misshapen file restarts the stage
        (its manifest entries cannot be trusted without their data)."""
        path = self.path / name
        if path.exists() and self.done[stage]:
            try:
                arr = np.load(path, mmap_mode="r+")
                if arr.shape == shape and arr.dtype == np.float32:
                    return arr
            except (ValueError, OSError):
                pass
        if self.done[stage]:
            self.done[stage].clear()
            self._state[stage]["done"] = []
            self._state[stage]["info"] = {}
            if stage == "stage1":  # stage 2 read the embeddings being recomputed
                self.done["stage2"].clear()
                self._state["stage2"]["done"] = []
            self._write(self._state)
        return np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)

    def embeddings(self, n: int, d: int) -> np.memmap:
        return self._array(EMBEDDINGS, (n, d), "stage1")

    def reliabilities(self, n: int) -> np.memmap:
        return self._array(RELIABILITY, (n, 2), "stage2")  # reliability, its std

    def read_embeddings(self) -> np.memmap:
        return np.load(self.path / EMBEDDINGS, mmap_mode="r")

    # ------------------------------------------------------------------ cleanup
    def clean(self) -> None:
        """Remove this module's files (never anything else a user put there)."""
        for name in OWN_FILES:
            (self.path / name).unlink(missing_ok=True)

    def remove(self) -> None:
        """Remove the files and the folder itself when nothing else is left in it."""
        self.clean()
        remove_if_empty(self.path)


def _differences(old: dict | None, new: dict) -> str:
    if not isinstance(old, dict):
        return "unreadable manifest"
    names = {"model": "model", "points": "points file", "rasters": "rasters",
             "n_points": "number of points", "crs": "--crs", "schema": "--columns/--units",
             "backend": "backend/device",
             "chunking": "chunk sizes (--memory-gb)"}
    diff = [names.get(k, k) for k in new if old.get(k) != new[k]]
    diff += [k for k in old if k not in new]
    return ", ".join(diff) or "format"
