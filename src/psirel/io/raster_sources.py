"""One raster file on its own: opening it, the unit of a DEM's heights, how it is resampled onto
a grid, and the class codes of a land-cover raster.

:class:`psirel.io.rasters.RasterStack` aligns three such files on one grid; :mod:`psirel.inspect`
and the trainer use these helpers on single files, before any stack exists.

DEM heights are converted to metres from the band unit (``ft``, ``us-ft``, ``cm``, …) or the
vertical axis of a compound CRS; a DEM that names no length unit is taken to be in metres.
"""

from __future__ import annotations

import math

import numpy as np
import rasterio
from pyproj import CRS as ProjCRS
from rasterio.enums import Resampling
from rasterio.warp import transform_bounds
from rasterio.windows import Window, from_bounds

from psirel.errors import UnreadableFile, first_line
from psirel.io.grid import approx_pixel_m
from psirel.io.raster_file import open_raster  # noqa: F401  (re-exported)

# A source this many times finer than the grid is averaged (bilinear would sample 4 of its
# pixels per grid pixel and alias the others away).
AVERAGE_RATIO = 1.5
# Land-cover legend detection reads the raster decimated to at most this many pixels a side.
DETECT_MAX_SIDE_PX = 1024
# Band units of a DEM → metres per unit (spaces, '_', '-' and '.' removed, lower case).
_METRES = {"": 1.0, "m": 1.0, "metre": 1.0, "meter": 1.0, "metres": 1.0, "meters": 1.0}
_FEET = {"ft": 0.3048, "foot": 0.3048, "feet": 0.3048, "internationalfoot": 0.3048,
         "intlft": 0.3048, "usft": 1200 / 3937, "ftus": 1200 / 3937, "footus": 1200 / 3937,
         "ussurveyfoot": 1200 / 3937, "surveyfoot": 1200 / 3937, "ussurveyfeet": 1200 / 3937,
         "usfoot": 1200 / 3937, "usfeet": 1200 / 3937}
_OTHER = {"cm": 0.01, "centimetre": 0.01, "centimeter": 0.01, "mm": 0.001, "millimetre": 0.001,
          "millimeter": 0.001, "km": 1000.0, "kilometre": 1000.0, "kilometer": 1000.0}


def unit_name(name: str | None) -> str:
    """A CRS's linear unit as :class:`LayerInfo` reports it: ``"m"`` for any spelling of metre
    (or none), the name as it is otherwise."""
    return "m" if not name or name.lower() in ("metre", "meter", "metres", "meters") else name


def choose_resampling(name: str, src, grid_pixel_m: float) -> Resampling:
    """Nearest for land cover; average for a DEM or amplitude more than :data:`AVERAGE_RATIO`
    times finer than the grid; bilinear otherwise (upsampling or similar pixel sizes)."""
    if name == "lulc":
        return Resampling.nearest
    sx, sy = approx_pixel_m(src)
    return Resampling.average if grid_pixel_m > AVERAGE_RATIO * math.sqrt(sx * sy) \
        else Resampling.bilinear


def dem_scale_m(src) -> float:
    """Metres per unit of a DEM's values: from its band unit (``src.units``: ``m``, ``ft``,
    ``us-ft``, ``cm``, …), else from the vertical axis of a compound CRS, else 1 (metres, as for
    most DEMs, which state no unit; so is a label that names no length, e.g. "elevation")."""
    unit = (src.units[0] if src.units else "") or ""
    key = "".join(ch for ch in unit.strip().lower() if ch not in " _-.")
    if key:
        return {**_METRES, **_FEET, **_OTHER}.get(key, 1.0)
    try:
        p = ProjCRS.from_user_input(src.crs.to_wkt())
    except Exception:  # noqa: BLE001 - a CRS pyproj cannot read has no vertical unit to tell
        return 1.0
    if p.is_compound and len(p.sub_crs_list) > 1 and p.sub_crs_list[1].axis_info:
        return float(p.sub_crs_list[1].axis_info[0].unit_conversion_factor)
    return 1.0


def overview_codes(src, bounds=None, bounds_crs=None,
                   max_side_px: int = DETECT_MAX_SIDE_PX) -> list[int]:
    """Distinct integer values of a class raster's valid pixels, from a read decimated to at most
    ``max_side_px`` pixels a side (GDAL takes it from overviews when the file has them), over
    ``bounds`` (in ``bounds_crs``) when given. Rare classes may be missed: enough to tell a
    legend, not to build a vocabulary."""
    win = Window(0, 0, src.width, src.height)
    if bounds is not None:
        b = bounds if bounds_crs is None or bounds_crs == src.crs else \
            transform_bounds(bounds_crs, src.crs, *bounds, densify_pts=21)
        f = from_bounds(*b, transform=src.transform)
        c0, r0 = math.floor(f.col_off), math.floor(f.row_off)
        win = Window(c0, r0, math.ceil(f.col_off + f.width) - c0,
                     math.ceil(f.row_off + f.height) - r0)
        try:
            win = win.intersection(Window(0, 0, src.width, src.height))
        except rasterio.errors.WindowError:  # no overlap
            return []
    if win.width <= 0 or win.height <= 0:
        return []
    scale = max(win.width, win.height) / max_side_px
    shape = (max(1, round(win.height / scale)), max(1, round(win.width / scale))) \
        if scale > 1 else (int(win.height), int(win.width))
    try:
        a = src.read(1, window=win, out_shape=shape, resampling=Resampling.nearest, masked=True)
    except rasterio.errors.RasterioError as exc:
        raise UnreadableFile(src.name, first_line(exc)) from None
    v = np.asarray(a.compressed(), dtype=np.float64)
    v = v[np.isfinite(v)]
    return [int(c) for c in np.unique(np.trunc(v))]


def crs_wkt(crs) -> str:
    """WKT of a CRS given as a rasterio/pyproj CRS or anything pyproj reads (``"EPSG:32633"``)."""
    return crs.to_wkt() if hasattr(crs, "to_wkt") else ProjCRS.from_user_input(crs).to_wkt()
