"""Points onto a display grid: a large cloud is drawn as one image, never point by point.

A screen shows at most a couple of thousand pixels a side, so a million markers cost seconds of
rendering for nothing; binning them onto a grid of at most ``max_cells`` a side with
``np.bincount`` costs tens of milliseconds, and the image shows the same thing.

The grid's cells are square on the ground: in a geographic CRS a cell is ``cell_m`` metres on
both sides, so narrower in latitude than in longitude degrees (``cos(latitude)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from affine import Affine

METRES_PER_DEGREE = 111_320.0  # along a meridian (≈); along a parallel times cos(latitude)
PAD_FRACTION = 0.03  # blank margin around the points, a fraction of the larger span
MIN_SPAN_M = 100.0  # the extent of a single point, or of points on a line
STATS = ("min", "mean")


@dataclass(frozen=True)
class MapGrid:
    """A north-up grid: cell (row, col) covers ``x`` in ``[left + col·cell_x, + cell_x)`` and
    ``y`` in ``(top - (row + 1)·cell_y, top - row·cell_y]``, in CRS units; ``cell_m`` is the cell
    size on the ground in metres (the hillshade's pixel size)."""

    left: float
    top: float
    cell_x: float
    cell_y: float
    width: int
    height: int
    cell_m: float

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width

    @property
    def transform(self) -> Affine:
        return Affine(self.cell_x, 0.0, self.left, 0.0, -self.cell_y, self.top)

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """``(left, right, bottom, top)``, matplotlib's ``imshow`` order."""
        return (self.left, self.left + self.width * self.cell_x,
                self.top - self.height * self.cell_y, self.top)

    def with_max_cells(self, max_cells: int) -> MapGrid:
        """The same extent (to within a cell) with at most ``max_cells`` cells a side."""
        k = max(1, math.ceil(max(self.width, self.height) / max_cells))
        return MapGrid(self.left, self.top, self.cell_x * k, self.cell_y * k,
                       math.ceil(self.width / k), math.ceil(self.height / k), self.cell_m * k)


def map_grid(x: np.ndarray, y: np.ndarray, max_cells: int, *, geographic: bool = False,
             m_per_unit: float = 1.0) -> MapGrid:
    """The grid over the finite points of ``x``, ``y`` plus a margin, at most ``max_cells`` a
    side.

    Args:
        x, y: [N] coordinates in CRS units (degrees when ``geographic``).
        max_cells: the longer side of the grid, in cells.
        geographic: longitude/latitude in degrees; a degree of longitude is then
            ``METRES_PER_DEGREE · cos(mid-latitude)`` metres.
        m_per_unit: metres per CRS unit of a projected CRS (1 for metres, 0.3048 for feet).
    """
    if max_cells < 1:
        raise ValueError(f"max_cells must be at least 1, got {max_cells}")
    x = np.asarray(x, np.float64).reshape(-1)
    y = np.asarray(y, np.float64).reshape(-1)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.any():
        x0, x1 = float(x[ok].min()), float(x[ok].max())
        y0, y1 = float(y[ok].min()), float(y[ok].max())
    else:  # nothing to place: a unit square, so that a figure can still say so
        x0 = x1 = y0 = y1 = 0.0
    if geographic:
        mx = METRES_PER_DEGREE * max(math.cos(math.radians(0.5 * (y0 + y1))), 1e-6)
        my = METRES_PER_DEGREE
    else:
        mx = my = float(m_per_unit)
    span_m = max((x1 - x0) * mx, (y1 - y0) * my, MIN_SPAN_M)
    pad_m = PAD_FRACTION * span_m
    # each side at least MIN_SPAN_M, centred on the points
    wx_m = max((x1 - x0) * mx, MIN_SPAN_M) + 2 * pad_m
    wy_m = max((y1 - y0) * my, MIN_SPAN_M) + 2 * pad_m
    cell_m = max(wx_m, wy_m) / max_cells
    width = max(1, min(max_cells, math.ceil(wx_m / cell_m - 1e-9)))
    height = max(1, min(max_cells, math.ceil(wy_m / cell_m - 1e-9)))
    cx, cy = 0.5 * (x0 + x1), 0.5 * (y0 + y1)
    cell_x, cell_y = cell_m / mx, cell_m / my
    return MapGrid(left=cx - 0.5 * width * cell_x, top=cy + 0.5 * height * cell_y,
                   cell_x=cell_x, cell_y=cell_y, width=width, height=height, cell_m=cell_m)


def bin_points(grid: MapGrid, x: np.ndarray, y: np.ndarray, values: np.ndarray,
               stat: str = "min") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Aggregate point values per cell of ``grid``.

    Args:
        grid: the display grid; points outside it are clamped into its edge cells, points with
            non-finite coordinates are left out.
        x, y: [N] coordinates in the grid's CRS.
        values: [N] values (reliability); NaN counts as "no score".
        stat: ``"min"`` (a cell shows its least reliable point, so one flagged point is never
            averaged away by reliable neighbours) or ``"mean"``.

    Returns:
        ``(value, n_scored, n_unscored)``, each [height, width]: the statistic of the cell's
        scored points (NaN where none), and the number of scored and of unscored points.
    """
    if stat not in STATS:
        raise ValueError(f"stat must be one of {STATS}, got {stat!r}")
    x = np.asarray(x, np.float64).reshape(-1)
    y = np.asarray(y, np.float64).reshape(-1)
    v = np.asarray(values, np.float64).reshape(-1)
    if not (x.size == y.size == v.size):
        raise ValueError(f"x, y, values sizes differ: {x.size}, {y.size}, {v.size}")
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.all():
        x, y, v = x[ok], y[ok], v[ok]
    col = np.clip(np.floor((x - grid.left) / grid.cell_x), 0, grid.width - 1).astype(np.intp)
    row = np.clip(np.floor((grid.top - y) / grid.cell_y), 0, grid.height - 1).astype(np.intp)
    flat = row * grid.width + col
    size = grid.width * grid.height
    scored = ~np.isnan(v)
    f_s, v_s = flat[scored], v[scored]
    n_scored = np.bincount(f_s, minlength=size)
    n_unscored = np.bincount(flat[~scored], minlength=size)
    if stat == "mean":
        total = np.bincount(f_s, weights=v_s, minlength=size)
        with np.errstate(invalid="ignore", divide="ignore"):
            value = np.where(n_scored > 0, total / n_scored, np.nan)
    else:
        value = np.full(size, np.inf)
        np.minimum.at(value, f_s, v_s)
        value[n_scored == 0] = np.nan
    shape = grid.shape
    return value.reshape(shape), n_scored.reshape(shape), n_unscored.reshape(shape)


def splat(value: np.ndarray, n_scored: np.ndarray, n_unscored: np.ndarray,
          size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Widen every occupied cell of :func:`bin_points`'s output to ``size`` × ``size`` cells,
    the least reliable value winning where blocks overlap, so that a sparse cloud on a fine grid
    stays visible when the image is shown smaller than its pixels. Counts become "occupied"
    flags (0/1), no longer numbers of points. ``size`` 1 returns the input unchanged."""
    if size <= 1:
        return value, n_scored, n_unscored
    from scipy.ndimage import maximum_filter, minimum_filter

    v = minimum_filter(np.where(np.isnan(value), np.inf, value), size=size, mode="constant",
                       cval=np.inf)
    scored = maximum_filter((n_scored > 0).astype(np.uint8), size=size, mode="constant")
    unscored = maximum_filter((n_unscored > 0).astype(np.uint8), size=size, mode="constant")
    return np.where(np.isinf(v), np.nan, v), scored, unscored
