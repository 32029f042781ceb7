"""The resumable state of one ``psirel predict`` run: a folder of memory-mapped arrays + a manifest.

``embeddings.f32.npy`` (``[N, D]`` float32, stage 1) and ``reliability.f32.npy`` (``[N]``
float32, stage 2) are filled chunk by chunk; ``manifest.json`` lists the finished chunk and block
ids and is rewritten atomically after each one, always *after* the chunk's rows were flushed, so
whatever the manifest says is done is on disk. A rerun skips what is listed.

The manifest also holds the run's *key* (:func:`psirel.infer.manifest.run_inputs_key` plus
the run's CRS, column map, number of points, backend and chunking); the folder's rules (lock,
refusal of another key unless ``restart``, clean-up of its own files only) are
:class:`~psirel.infer.manifest.Manifest`'s.
"""

from __future__ import annotations

import mmap
from pathlib import Path

import numpy as np

from psirel.infer.manifest import Manifest, file_identity  # noqa: F401  (re-exported)

FORMAT = "psirel-work/2"
MANIFEST = "manifest.json"
EMBEDDINGS = "embeddings.f32.npy"
RELIABILITY = "reliability.f32.npy"
OWN_FILES = (MANIFEST, EMBEDDINGS, RELIABILITY)
STAGES = ("stage1", "stage2")


def release(arr: np.memmap) -> None:
    """Drop a memory map's pages from this process's resident set (``madvise(MADV_DONTNEED)``,
    Linux); the data stays in the file and the page cache, and the next access faults it back in
    from there. Call it after ``flush()`` on a map being written.

    Touched pages of a map count in the process's RSS until unmapped: the 1,000,000 × 192
    embeddings of a 3-member model (768 MB) were a quarter of ``psirel predict``'s peak memory
    at 1M points, held only because stage 1 had written and stage 2 had read them."""
    mm = getattr(arr, "_mmap", None)
    if mm is not None and hasattr(mm, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        mm.madvise(mmap.MADV_DONTNEED)


class WorkDir(Manifest):
    """Open (create, resume or refuse) the work folder ``path`` for a run identified by ``key``.

    Attributes:
        done: ``{"stage1": set of chunk ids, "stage2": set of block ids}`` already finished.
        info: per-chunk facts recorded with :meth:`mark` (e.g. unknown land-cover counts).
        resumed: whether anything was already done when opened.
    """

    FORMAT, MANIFEST = FORMAT, MANIFEST
    LABELS = {"model": "model", "points": "points file", "rasters": "rasters",
              "n_points": "number of points", "crs": "--crs", "schema": "--columns/--units",
              "backend": "backend/device", "psirel": "psirel version",
              "chunking": "chunk sizes (--memory-gb)"}

    def __init__(self, path: Path | str, key: dict, restart: bool = False):
        super().__init__(path, key, restart)
        self._state = self.state
        self.done = {s: {int(i) for i in self.state[s]["done"]} for s in STAGES}
        self.resumed = any(self.done.values())

    def fresh(self) -> dict:
        return {"stage1": {"done": [], "info": {}}, "stage2": {"done": []}}

    def own_files(self) -> list[Path]:
        return [self.path / name for name in OWN_FILES]

    # ------------------------------------------------------------------ manifest
    def _write(self, state: dict) -> None:
        self.write(state)

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
