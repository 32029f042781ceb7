"""The model's grid: the projected pixel grid on which every raster layer is sampled.

Patches are ``patch_px`` pixels of the *model's* pixel size wide, so rasters are resampled onto a
grid chosen here instead of being refused when their resolution differs. The CRS of the grid is

1. ``crs`` when given and projected in metres (the points' CRS, say);
2. else the DEM's CRS when it is projected in metres;
3. else the WGS 84 / UTM zone (EPSG:326zz north, 327zz south) of the centre of ``bbox`` when
   given, else of the DEM's footprint: a geographic DEM (global DEMs come in EPSG:4326) or one in
   feet gets a local metric grid.

The extent is the DEM's footprint in that CRS, cut to ``bbox`` plus a margin, with its edges
snapped outwards to multiples of the pixel size. Because the lattice is global, two grids of the
same CRS and pixel size (tiles of one run, a training and a prediction scene) share pixels
exactly: a point falls on the same pixel whichever tile reads it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from pyproj import CRS as ProjCRS
from rasterio import warp
from rasterio.crs import CRS
from rasterio.transform import Affine
from rasterio.warp import transform_bounds

from psirel.errors import RasterMismatch
from psirel.io.raster_file import open_raster

METRES_PER_DEGREE = 111_320.0  # along a meridian (≈); along a parallel times cos(latitude)
# Around a bbox: half an 80 px patch plus headroom for the resampling kernels at its edge.
DEFAULT_MARGIN_PX = 64
_MAX_SIDE_PX = 2**31 - 1  # GDAL's int dimensions


@dataclass(frozen=True)
class Grid:
    """A north-up pixel grid: ``transform`` maps (col, row) to ``crs`` coordinates (metres).

    ``crs_source`` says why this CRS: ``"given"`` (the ``crs`` argument), ``"dem"`` (the DEM's
    own), ``"utm"`` (UTM zone chosen because the DEM is geographic) or ``"legacy"`` (the DEM's
    own grid, unsnapped: :class:`~psirel.io.rasters.RasterStack` without ``pixel_m``). It takes
    no part in equality: two grids are equal when they have the same pixels.
    """

    crs: CRS
    transform: Affine
    width: int
    height: int
    crs_source: str = field(default="dem", compare=False)

    @property
    def pixel_m(self) -> float:
        """Pixel size in metres (square pixels)."""
        return float(abs(self.transform.a))

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols)."""
        return self.height, self.width

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in CRS metres."""
        t = self.transform
        return (t.c, t.f + t.e * self.height, t.c + t.a * self.width, t.f)

    def describe(self) -> str:
        """E.g. ``EPSG:32633, 10 m pixels, 120 x 100 (UTM zone of a geographic DEM)``."""
        why = {"given": "the given CRS", "dem": "the DEM's CRS", "legacy": "the DEM's own grid",
               "utm": f"{utm_zone_name(self.crs)} chosen for a geographic DEM"
               }.get(self.crs_source, self.crs_source)
        return (f"{crs_name(self.crs)}, {self.pixel_m:g} m pixels, {self.width} x {self.height} "
                f"({why})")


def crs_name(crs) -> str:
    """``EPSG:xxxx`` when the CRS has an authority code, else its name."""
    p = ProjCRS.from_user_input(crs.to_wkt() if hasattr(crs, "to_wkt") else crs)
    auth = p.to_authority()
    return f"{auth[0]}:{auth[1]}" if auth else p.name


def is_metric_projected(crs) -> bool:
    """True for a projected CRS whose axes are in metres."""
    if crs is None:
        return False
    p = ProjCRS.from_user_input(crs.to_wkt() if hasattr(crs, "to_wkt") else crs)
    if p.is_compound:
        p = p.sub_crs_list[0]
    if not p.is_projected:
        return False
    return all(abs(a.unit_conversion_factor - 1.0) < 1e-12 for a in p.axis_info[:2])


def utm_crs(lon: float, lat: float) -> CRS:
    """WGS 84 / UTM zone of a point (EPSG:326zz north of the equator, 327zz south)."""
    zone = min(max(int(math.floor((lon + 180.0) / 6.0)) + 1, 1), 60)
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def utm_zone_name(crs) -> str:
    """``UTM zone 33N`` for EPSG:32633 (``UTM`` for a CRS that is not a WGS 84 UTM zone)."""
    epsg = crs.to_epsg() if hasattr(crs, "to_epsg") else None
    if epsg and 32601 <= epsg <= 32660:
        return f"UTM zone {epsg - 32600}N"
    if epsg and 32701 <= epsg <= 32760:
        return f"UTM zone {epsg - 32700}S"
    return "UTM"


def approx_pixel_m(src) -> tuple[float, float]:
    """Approximate pixel size (x, y) in metres of an open dataset, at its centre for a
    geographic CRS (degrees times :data:`METRES_PER_DEGREE`, x times cos(latitude))."""
    t = src.transform
    rx, ry = math.hypot(t.a, t.d), math.hypot(t.b, t.e)
    p = ProjCRS.from_user_input(src.crs.to_wkt())
    if p.is_compound:
        p = p.sub_crs_list[0]
    factor = p.axis_info[0].unit_conversion_factor if p.axis_info else 1.0
    if p.is_geographic:  # factor: radians per unit
        deg = math.degrees(factor)
        lat = _centre_lonlat(src.crs, src.bounds)[1]
        return (rx * deg * METRES_PER_DEGREE * math.cos(math.radians(lat)),
                ry * deg * METRES_PER_DEGREE)
    return rx * factor, ry * factor


def native_pixel_m(src) -> float:
    """Pixel size for a grid at a DEM's own resolution, in metres.

    A DEM projected in metres with square, north-up pixels: its pixel size. Otherwise
    (geographic, in feet, non-square): the square root of its pixel area in metres, rounded to a
    multiple of 5 m (10 m and more), 1 m (2–10 m) or 0.1 m — a 1" DEM (SRTM, Copernicus GLO-30)
    gives 30 m at the equator and 25 m at 45° (30.9 m × 21.9 m), a 3" one 90 m at the equator.
    """
    t = src.transform
    if is_metric_projected(src.crs) and t.b == 0 and t.d == 0 \
            and abs(abs(t.e) - abs(t.a)) <= 1e-6 * abs(t.a):
        return float(abs(t.a))
    x, y = approx_pixel_m(src)
    m = math.sqrt(x * y)
    step = 5.0 if m >= 10 else (1.0 if m >= 2 else 0.1)
    return max(step, round(m / step) * step)


def model_grid(dem, pixel_m: float, crs=None, bbox=None, *, bbox_crs=None,
               margin_px: float = DEFAULT_MARGIN_PX) -> Grid:
    """Choose the grid that patches are sampled on (see the module docstring for the rule).

    Args:
        dem: the DEM, as a path or an open rasterio dataset (only its CRS and footprint are used).
        pixel_m: the model's pixel size in metres (> 0).
        crs: preferred CRS (anything pyproj reads); used when projected in metres.
        bbox: ``(left, bottom, right, top)`` of the area needed, in ``bbox_crs``; the grid covers
            it plus ``margin_px`` pixels, within the DEM's footprint.
        bbox_crs: CRS of ``bbox``; default ``crs`` when given, else the DEM's CRS — which is
            the grid's CRS whenever that one is projected.
        margin_px: margin around ``bbox`` in grid pixels.

    Returns:
        A :class:`Grid` whose edges are multiples of ``pixel_m`` in its CRS.
    """
    if not (pixel_m > 0 and math.isfinite(pixel_m)):
        raise ValueError(f"pixel_m must be a positive number of metres, got {pixel_m!r}")
    if isinstance(dem, (str, Path)):
        with open_raster(dem, "dem") as src:
            return model_grid(src, pixel_m, crs, bbox, bbox_crs=bbox_crs, margin_px=margin_px)
    src = dem
    given = CRS.from_user_input(_wkt(crs)) if crs is not None else None
    box_crs = CRS.from_user_input(_wkt(bbox_crs)) if bbox_crs is not None else (given or src.crs)
    if given is not None and is_metric_projected(given):
        grid_crs, why = given, "given"
    elif is_metric_projected(src.crs):
        grid_crs, why = src.crs, "dem"
    else:
        lon, lat = (_centre_lonlat(box_crs, bbox) if bbox is not None
                    else _centre_lonlat(src.crs, src.bounds))
        grid_crs, why = utm_crs(lon, lat), "utm"

    if grid_crs == src.crs:
        left, bottom, right, top = src.bounds
    else:
        left, bottom, right, top = transform_bounds(src.crs, grid_crs, *src.bounds,
                                                    densify_pts=21)
    if bbox is not None:
        b = bbox if box_crs == grid_crs else transform_bounds(box_crs, grid_crs, *bbox,
                                                              densify_pts=21)
        m = margin_px * pixel_m
        left, bottom = max(left, b[0] - m), max(bottom, b[1] - m)
        right, top = min(right, b[2] + m), min(top, b[3] + m)
    path = getattr(src, "name", "DEM")
    if not (right > left and top > bottom):
        raise RasterMismatch(path, "the area asked for (bbox) does not overlap the DEM")
    # Snap outwards to the global lattice; the tolerance keeps an edge already on it in place.
    eps = 1e-9
    c0, c1 = math.floor(left / pixel_m + eps), math.ceil(right / pixel_m - eps)
    r0, r1 = math.floor(bottom / pixel_m + eps), math.ceil(top / pixel_m - eps)
    width, height = max(c1 - c0, 1), max(r1 - r0, 1)
    if width > _MAX_SIDE_PX or height > _MAX_SIDE_PX:
        raise RasterMismatch(path, f"a {pixel_m:g} m grid over the DEM would have {width} x "
                                   f"{height} pixels; restrict it to the points (bbox)")
    transform = Affine(pixel_m, 0.0, c0 * pixel_m, 0.0, -pixel_m, r1 * pixel_m)
    return Grid(crs=grid_crs, transform=transform, width=width, height=height, crs_source=why)


def _wkt(crs) -> str:
    if hasattr(crs, "to_wkt"):
        return crs.to_wkt()
    return ProjCRS.from_user_input(crs).to_wkt()


def _centre_lonlat(crs, bounds) -> tuple[float, float]:
    """(lon, lat) of the centre of ``bounds`` given in ``crs``."""
    cx, cy = (bounds[0] + bounds[2]) / 2.0, (bounds[1] + bounds[3]) / 2.0
    lon, lat = warp.transform(crs, "EPSG:4326", [cx], [cy])
    return float(lon[0]), float(lat[0])
