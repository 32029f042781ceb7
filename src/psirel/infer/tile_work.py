"""The resumable state of a tiled run (``psirel predict --dask``): ``tiles.json`` holds the
run's key and the finished tiles, ``tiles/tile-NNNNNN.npz`` their results. The folder's rules
(lock, refusal of another key unless ``restart``, clean-up of its own files only) are
:class:`~psirel.infer.manifest.Manifest`'s.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from psirel.infer.manifest import Manifest
from psirel.infer.tiling import TileResult
from psirel.io.atomic import atomic_path, remove_if_empty, remove_stale_temporaries


class TileWork(Manifest):
    """The resumable state of a tiled run: ``tiles.json`` (key + finished tiles) and the tiles'
    results ``tiles/tile-NNNNNN.npz`` (``rows`` int64, ``reliability`` float32 ``[c, 2]``:
    P(reliable) and its std).

    A manifest with another key is refused with :class:`~psirel.errors.WorkDirMismatch`
    unless ``restart`` clears it (only files this class writes are removed)."""

    FORMAT = "psirel-tiles/2"
    MANIFEST = "tiles.json"
    RESULTS = "tiles"
    LABELS = {"model": "model", "points": "points file", "rasters": "rasters", "crs": "--crs",
              "schema": "--columns/--units", "psirel": "psirel version",
              "n_points": "number of points", "backend": "device", "tiling": "tiles (--tile-m)",
              "chunking": "chunk sizes (--memory-gb)", "output": "output"}

    def __init__(self, path: Path | str, key: dict, restart: bool = False):
        super().__init__(path, key, restart)
        self.resumed = self.resumed_manifest  # this run's manifest was there (maybe no tile)
        self._state = self.state
        self.done: dict[int, dict] = {int(k): v for k, v in self.state["done"].items()}

    def fresh(self) -> dict:
        return {"done": {}}

    def own_files(self) -> list[Path]:
        results = self.path / self.RESULTS
        tiles = sorted(results.glob("tile-*.npz")) if results.is_dir() else []
        return [self.path / self.MANIFEST, *tiles]

    def _write(self, state: dict) -> None:
        self.write(state)

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
        super().clean()
        results = self.path / self.RESULTS
        if results.is_dir():  # results of tiles killed mid-write
            names = {d.name.split(".")[1] for d in results.glob(".tile-*.npz.*.tmp")}
            for name in names:
                remove_stale_temporaries(results / f"{name}.npz")
        remove_if_empty(results)


def read_tile_manifest(path: Path) -> dict | None:
    """The tiled run's manifest in ``path``: None when there is none, ``{}`` when unreadable."""
    return TileWork.read(Path(path))
