"""The point formats psirel reads and writes, and what their readers and writers share.

- :mod:`psirel.io.tables` reads a file into a :class:`~psirel.io.tables.RawTable`
  (``{name: ndarray}`` plus coordinates): GeoPackage, shapefile and FlatGeobuf through GDAL,
  GeoParquet through pyarrow; delimited text (CSV, also inside a ``.zip`` as EGMS delivers it)
  through :mod:`psirel.io.delimited`.
- :mod:`psirel.io.sinks` writes chunks of points into one file of each format.

Roles, validation and reprojection live in :mod:`psirel.io.points`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from psirel.errors import MissingExtra, UnsupportedFormat

# extension → format name; GDAL driver names where GDAL does the work.
FORMATS = {
    ".gpkg": "GPKG",
    ".shp": "ESRI Shapefile",
    ".fgb": "FlatGeobuf",
    ".csv": "CSV",
    ".parquet": "GeoParquet",
    ".geoparquet": "GeoParquet",
}
# Read, never written: a zip archive holding one CSV (an EGMS download as it comes).
READ_ONLY_FORMATS = {".zip": "CSV"}
OGR_DRIVERS = ("GPKG", "ESRI Shapefile", "FlatGeobuf")


def format_of(path: Path) -> str:
    """The format a path's extension writes, or :class:`UnsupportedFormat`."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UnsupportedFormat(path, sorted(FORMATS))
    return fmt


def read_format_of(path: Path) -> str:
    """The format a path's extension reads (``.zip``: the CSV inside), or
    :class:`UnsupportedFormat`."""
    fmt = FORMATS.get(path.suffix.lower()) or READ_ONLY_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UnsupportedFormat(path, sorted({**FORMATS, **READ_ONLY_FORMATS}))
    return fmt


def optional_pyarrow():
    """pyarrow when installed (any extra brings it), else None: GDAL formats are then read and
    written through ``pyogrio.raw``, the same content more slowly."""
    try:
        import pyarrow
    except ImportError:
        return None
    return pyarrow


def import_pyarrow():
    """``(pyarrow, pyarrow.parquet)`` or :class:`MissingExtra` for the ``parquet`` extra."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise MissingExtra("GeoParquet", "parquet") from None
    return pyarrow, pyarrow.parquet


# ---------------------------------------------------------------------------- .csvt types
# GDAL's column-type sidecar of a CSV, so dtypes survive a round trip and QGIS reads the types.
CSVT_TO_DTYPE = {
    "integer(boolean)": np.dtype(bool), "integer(int16)": np.dtype(np.int16),
    "integer": np.dtype(np.int32), "integer64": np.dtype(np.int64),
    "real(float32)": np.dtype(np.float32), "real": np.dtype(np.float64),
    "string": np.dtype(object), "date": np.dtype("datetime64[D]"),
    "datetime": np.dtype("datetime64[ms]"),
}


def csvt_type(dtype: np.dtype) -> str:
    """The ``.csvt`` type name of a numpy dtype."""
    if dtype.kind == "b":
        return "Integer(Boolean)"
    if dtype.kind in "iu":
        if dtype.itemsize == 1 or dtype == np.int16:
            return "Integer(Int16)"
        if dtype == np.int32 or dtype == np.uint16:
            return "Integer"
        return "Integer64"
    if dtype.kind == "f":
        return "Real(Float32)" if dtype.itemsize <= 4 else "Real"
    if dtype.kind == "M":
        return "Date" if np.datetime_data(dtype)[0] in ("D", "W", "M", "Y") else "DateTime"
    return "String"
