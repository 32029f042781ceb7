"""Opening one raster file, with a one-line error for every way it can fail.

Its own module so that :mod:`psirel.io.grid` (which opens a DEM given by path) and
:mod:`psirel.io.raster_sources` (which needs the grid's pixel sizes) do not import each other.
"""

from __future__ import annotations

from pathlib import Path

import rasterio
from rasterio.errors import RasterioIOError

from psirel.errors import InputFileNotFound, MissingCRS, UnreadableFile, first_line


def open_raster(path: Path | str, name: str) -> rasterio.DatasetReader:
    """Open one raster with a one-line error for every way it can fail."""
    path = Path(path)
    if not path.exists():
        raise InputFileNotFound(path, f"{name} raster")
    try:
        src = rasterio.open(path)
    except (RasterioIOError, rasterio.errors.RasterioError) as exc:
        raise UnreadableFile(path, first_line(exc)) from None
    if not src.crs:
        src.close()
        raise MissingCRS(path, "assign one, e.g. gdal_edit.py -a_srs EPSG:32633")
    if src.count < 1:
        src.close()
        raise UnreadableFile(path, "no band")
    return src
