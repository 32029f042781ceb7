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
