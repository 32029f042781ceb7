"""A point cloud and its rasters on one grid: the model's grid in the points' CRS.

DESIGN §4: patches are sampled on a projected grid at the model's pixel size whose CRS is the
points' own when it is projected in metres, else the DEM's when projected, else the UTM zone of
the cloud (:func:`psirel.io.grid.model_grid`). The points' CRS is only known once they are read,
so :func:`open_cloud` reads them first, opens the rasters on that grid, then reprojects the
points onto it. Every driver (``prepare``, the Dask driver, training, ``evaluate``) opens its
inputs here, so they all sample the grid ``inspect`` reports.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from pyproj import CRS, Transformer

from psirel.errors import PointsOutsideRasters
from psirel.io.points import PointCloud, read_points, reproject_cloud
from psirel.io.rasters import RasterStack
from psirel.io.schema import PointSchema


def open_cloud(points: Path | str, dem: Path | str, lulc: Path | str, amplitude: Path | str,
               raster_options: dict | None = None, *, crs=None, label: str | None = None,
               schema: PointSchema | None = None,
               warn: Callable[[str], None] | None = None) -> tuple[PointCloud, RasterStack]:
    """The points (``crs``, ``label``, ``schema`` as :func:`~psirel.io.points.read_points`
    takes them) and the rasters opened on the points' grid, the points reprojected onto it and
    checked to lie on it; reading warnings go to ``warn``. ``raster_options`` are
    :class:`~psirel.io.rasters.RasterStack` keywords (pixel size, legend; a ``crs`` there wins
    over the points', as tiles of one run pass the run's grid CRS)."""
    cloud = read_points(points, crs=crs, label=label, schema=schema)
    stack = RasterStack(dem, lulc, amplitude,
                        **{"crs": cloud.source_crs.to_wkt(), **(raster_options or {})})
    try:
        cloud = reproject_cloud(cloud, CRS.from_user_input(stack.crs.to_wkt()))
        for w in cloud.warnings:
            if warn is not None:
                warn(w)
        check_points_inside(cloud, stack)
    except Exception:
        stack.close()
        raise
    return cloud, stack


def check_points_inside(cloud: PointCloud, stack: RasterStack) -> None:
    """Raise :class:`PointsOutsideRasters` when points lie off the stack's DEM grid.

    Every layer is read on that grid, so such a point has no data at all. Points near the edge
    are fine (their patches get padding and a validity mask). The cloud is reprojected from its
    source coordinates when its CRS is not the stack's.
    """
    x, y = cloud.x, cloud.y
    scrs = CRS.from_user_input(stack.crs.to_wkt())
    if not cloud.crs.equals(scrs):
        x, y = Transformer.from_crs(cloud.source_crs, scrs, always_xy=True).transform(
            *cloud.source_xy)
    out = ~stack.inside(x, y)
    if out.any():
        raise PointsOutsideRasters(cloud.path, int(out.sum()), len(cloud), cloud.ids[out],
                                   f"the DEM grid ({stack.paths['dem'].name})")


def point_heights(cloud: PointCloud, stack: RasterStack) -> np.ndarray:
    """``[N]`` float32 heights: the points' own, the DEM's where they have none (or NaN)."""
    height = cloud.height_m
    if height is None or np.isnan(height).any():
        dem_h = stack.sample(cloud.x, cloud.y, "dem")
        height = dem_h if height is None else np.where(np.isnan(height), dem_h, height)
    return np.asarray(height, np.float32)
