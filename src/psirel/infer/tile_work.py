"""The resumable state of a tiled run (``psirel predict --dask``): ``tiles.json`` holds the
run's key and the finished tiles, ``tiles/tile-NNNNNN.npz`` their results. A manifest with
another key is refused with :class:`~psirel.errors.WorkDirMismatch`, naming what differs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from psirel.errors import WorkDirMismatch
from psirel.infer.tiling import TileResult
from psirel.io.atomic import atomic_path, atomic_write_text, remove_if_empty


class TileWork:
    """The resumable state of a tiled run: ``tiles.json`` (key + finished tiles) and the tiles'
    results ``tiles/tile-NNNNNN.npz`` (``rows`` int64, ``reliability`` float32 ``[c, 2]``:
    P(reliable) and its std).

    A manifest with another key is refused with :class:`~psirel.errors.WorkDirMismatch` unless
    ``restart`` clears it (only files this class writes are removed)."""

    FORMAT = "psirel-tiles/1"
    MANIFEST = "tiles.json"
    RESULTS = "tiles"

    def __init__(self, path: Path | str, key: dict, restart: bool = False):
        self.path = Path(path)
        self.key = json.loads(json.dumps(key))
        self.path.mkdir(parents=True, exist_ok=True)
        state = read_tile_manifest(self.path)
        if state is not None and state.get("key") != self.key:
            if not restart:
                raise WorkDirMismatch(self.path, "work dir belongs to another run (differs in: "
                                      f"{_differences(state.get('key'), self.key)})")
            state = None
        self.resumed = state is not None  # this run's manifest was there (maybe no tile yet)
        if state is None:
            self.clean()
            state = {"format": self.FORMAT, "key": self.key, "done": {}}
            self._write(state)
        self._state = state
        self.done: dict[int, dict] = {int(k): v for k, v in state["done"].items()}

    def _write(self, state: dict) -> None:
        atomic_write_text(self.path / self.MANIFEST, json.dumps(state) + "\n")

    def result_path(self, tile: int) -> Path:
        return self.path / self.RESULTS / f"tile-{tile:06d}.npz"

    def record(self, res: TileResult) -> None:
        """Save a finished tile's result (unless its task wrote a part), then mark it done."""
        if res.reliability is not None:
            with atomic_path(self.result_path(res.tile)) as tmp:
                np.savez(tmp, rows=res.rows, reliability=res.reliability)
        self.done[res.tile] = {"rows": len(res.rows), "n_reliable": res.n_reliable,
                               "unknown_lulc": res.unknown_lulc, "part": res.part}
        self._state["done"] = {str(k): v for k, v in sorted(self.done.items())}
        self._write(self._state)

    def load(self, tile: int) -> tuple[np.ndarray, np.ndarray] | None:
        """``(rows, reliability)`` of a finished tile, None when its file is gone or broken."""
        try:
            with np.load(self.result_path(tile)) as z:
                return z["rows"], z["reliability"]
        except (OSError, ValueError, KeyError):
            return None

    def clean(self) -> None:
        (self.path / self.MANIFEST).unlink(missing_ok=True)
        results = self.path / self.RESULTS
        if results.is_dir():
            for f in results.glob("tile-*.npz"):
                f.unlink()
            remove_if_empty(results)

    def remove(self) -> None:
        self.clean()
        remove_if_empty(self.path)


def read_tile_manifest(path: Path) -> dict | None:
    """The manifest in ``path``: None when there is none, ``{"key": None}`` when unreadable."""
    mf = Path(path) / TileWork.MANIFEST
    if not mf.exists():
        return None
    try:
        state = json.loads(mf.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return {"key": None}
    if not isinstance(state, dict) or state.get("format") != TileWork.FORMAT:
        return {"key": None}
    return state


def _differences(old: dict | None, new: dict) -> str:
    if not isinstance(old, dict):
        return "unreadable manifest"
    names = {"model": "model", "points": "points file", "rasters": "rasters", "crs": "--crs",
             "schema": "--columns/--units",
             "n_points": "number of points", "backend": "device", "tiling": "tiles (--tile-m)",
             "chunking": "chunk sizes (--memory-gb)", "output": "output"}
    diff = [names.get(k, k) for k in new if old.get(k) != new[k]]
    return ", ".join(diff + [k for k in old if k not in new]) or "format"
