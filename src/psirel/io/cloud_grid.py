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

from psirel.errors import NoRasterData, PointsOutsideRasters
from psirel.io.points import PointCloud, read_points, reproject_cloud
from psirel.io.rasters import LAYERS, RasterStack
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
        check_raster_data(cloud, stack, warn)
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


DATA_SAMPLE = 10_000      # points sampled per layer to check the rasters hold data under them
NODATA_LIMIT = 0.5        # above this fraction of nodata under the points: refuse


def sample_rows(n: int, most: int = DATA_SAMPLE) -> np.ndarray:
    """At most ``most`` rows of ``n``, evenly spread (deterministic)."""
    return np.arange(n) if n <= most else np.linspace(0, n - 1, most).astype(np.int64)


def judge_nodata(path: Path, layer: str, n_bad: int, n: int,
                 warn: Callable[[str], None] | None) -> None:
    """Refuse a layer with nodata under every sampled point or more than
    :data:`NODATA_LIMIT` of them (its patches would be mostly masked: output that looks
    plausible and is not); warn, with the count, when there is some."""
    if n == 0 or n_bad == 0:
        return
    share = f"{n_bad} of {n} {'sampled ' if n == DATA_SAMPLE else ''}points"
    if n_bad == n:
        raise NoRasterData(path, f"the {layer} has no data (nodata) under any of the points "
                                 f"({share})")
    if n_bad > NODATA_LIMIT * n:
        raise NoRasterData(path, f"the {layer} has no data under {share} "
                                 f"(> {NODATA_LIMIT:.0%}); check its nodata value and extent")
    if warn is not None:
        warn(f"{Path(path).name}: the {layer} has no data under {share}; their patches are "
             "masked there")


def check_raster_data(cloud: PointCloud, stack: RasterStack,
                      warn: Callable[[str], None] | None = None) -> None:
    """Read every layer under (a sample of) the points before trusting it: a read error is a
    one-line error naming the file, and nodata is judged by :func:`judge_nodata`."""
    rows = sample_rows(len(cloud))
    for layer in LAYERS:
        v = stack.sample(cloud.x[rows], cloud.y[rows], layer)
        judge_nodata(stack.paths[layer], layer, int((~np.isfinite(v)).sum()), len(rows), warn)


def point_heights(cloud: PointCloud, stack: RasterStack,
                  fallbacks: dict[str, int] | None = None,
                  warn: Callable[[str], None] | None = None) -> np.ndarray:
    """``[N]`` float32 heights, never NaN: the points' own where finite, else the DEM's at the
    point, else (a DEM void under a point without a height) the DEM's median height.

    ``fallbacks`` gets the counts: ``height_from_dem`` (points with a height column whose
    value was not finite) and ``height_from_dem_median``; ``warn`` is told of the latter."""
    height = cloud.height_m
    own = np.zeros(len(cloud), bool) if height is None else np.isfinite(height)
    out = np.asarray(height if height is not None else np.full(len(cloud), np.nan), np.float64)
    if not own.all():
        rows = np.flatnonzero(~own)
        out[rows] = stack.sample(cloud.x[rows], cloud.y[rows], "dem")
    void = ~np.isfinite(out)
    if void.any():
        median = stack.dem_median_m()
        if not np.isfinite(median):
            raise NoRasterData(stack.paths["dem"], "the DEM has no valid pixel (every pixel "
                                                   "is nodata)")
        out[void] = median
        if warn is not None:
            warn(f"{int(void.sum())} points have no height of their own and a DEM void under "
                 f"them ({stack.paths['dem'].name}): they get the DEM's median height, "
                 f"{median:.1f} m")
    if fallbacks is not None:
        fallbacks["height_from_dem"] = int(((~own) & ~void).sum()) if height is not None else 0
        fallbacks["height_from_dem_median"] = int(void.sum())
    return out.astype(np.float32)
