"""Point clouds: read PSI exports (GPKG, SHP, FlatGeobuf, GeoParquet, CSV incl. EGMS), write results.

(Skeleton: the reader and the other formats are being written; see the brief in the issue.)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pyogrio.raw
import shapely
from pyproj import CRS

from psirel.io.atomic import atomic_path


def points_wkb(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """WKB point geometries (object array of bytes) for pyogrio."""
    return shapely.to_wkb(shapely.points(np.asarray(x, float), np.asarray(y, float)))


def write_points(path: Path | str, x: np.ndarray, y: np.ndarray, crs: CRS | str,
                 columns: Mapping[str, np.ndarray], layer: str = "psi") -> Path:
    """Write points with attribute columns atomically (GPKG only in this skeleton)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        pyogrio.raw.write(tmp, points_wkb(x, y), [np.asarray(v) for v in columns.values()],
                          list(columns), layer=layer, driver="GPKG", geometry_type="Point",
                          crs=CRS.from_user_input(crs).to_wkt())
    return path


class PointWriter:
    """Stream points to one file chunk by chunk; the file appears only when the writer closes
    without error (atomic). Use as a context manager: ``with PointWriter(p, crs) as w: w.write(...)``.
    (Skeleton: GPKG only.)"""

    def __init__(self, path: Path | str, crs: CRS | str, layer: str = "psi"):
        self.path, self.layer = Path(path), layer
        self.crs_wkt = CRS.from_user_input(crs).to_wkt()
        self._ctx = atomic_path(self.path)
        self._tmp: Path | None = None
        self._started = False

    def __enter__(self) -> PointWriter:
        self._tmp = self._ctx.__enter__()
        return self

    def write(self, x: np.ndarray, y: np.ndarray, columns: Mapping[str, np.ndarray]) -> None:
        pyogrio.raw.write(self._tmp, points_wkb(x, y), [np.asarray(v) for v in columns.values()],
                          list(columns), layer=self.layer, driver="GPKG", geometry_type="Point",
                          crs=self.crs_wkt, append=self._started)
        self._started = True

    def __exit__(self, *exc) -> None:
        self._ctx.__exit__(*exc)
