"""Per-format point tables: read a file into ``{name: ndarray}`` plus coordinates, and write one.

- GeoPackage, shapefile, FlatGeobuf: GDAL through :mod:`pyogrio.raw` (numpy, no pandas).
- CSV: numpy. ``np.loadtxt`` parses 1 M rows × 70 columns in about 4 s where GDAL's CSV driver
  takes ~20 s; files it cannot parse (empty fields) fall back to GDAL's driver. Written as
  ``x, y`` + attributes with two sidecars: ``.prj`` (CRS as WKT, our convention) and ``.csvt``
  (GDAL's column-type sidecar, so dtypes survive a round trip and QGIS reads the types).
- GeoParquet: pyarrow (optional extra ``parquet``), WKB geometry + the ``geo`` metadata.

Readers return a :class:`RawTable`; roles, validation and reprojection live in
:mod:`psirel.io.points`.
"""

from __future__ import annotations

import csv
import json
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyogrio
import pyogrio.raw
import shapely
from pyproj import CRS

from psirel.errors import (
    InvalidColumn,
    MissingExtra,
    NotPoints,
    UnreadableFile,
    UnsupportedFormat,
)
from psirel.io.columns import shapefile_names

# extension → format name; GDAL driver names where GDAL does the work.
FORMATS = {
    ".gpkg": "GPKG",
    ".shp": "ESRI Shapefile",
    ".fgb": "FlatGeobuf",
    ".csv": "CSV",
    ".parquet": "GeoParquet",
    ".geoparquet": "GeoParquet",
}
OGR_DRIVERS = ("GPKG", "ESRI Shapefile", "FlatGeobuf")
CSV_SNIFF_ROWS = 2000  # rows read to guess each CSV column's type


def format_of(path: Path) -> str:
    """The format name for a path's extension, or :class:`UnsupportedFormat`."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UnsupportedFormat(path, sorted(FORMATS))
    return fmt


@dataclass
class RawTable:
    """A file's content before roles are assigned.

    ``x``/``y`` are the geometry's coordinates (float64, NaN for a null geometry) or None when
    the file has no geometry (CSV, plain Parquet): then coordinates are columns. ``crs`` is what
    the file declares (geometry CRS or a ``.prj`` sidecar), None if nothing.
    """

    columns: dict[str, np.ndarray]
    x: np.ndarray | None
    y: np.ndarray | None
    crs: CRS | None
    bbox_applied: bool = False
    layers: tuple[str, ...] = ()


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def read_sidecar_crs(path: Path) -> CRS | None:
    """CRS from a ``.prj`` beside ``path`` (WKT1, ESRI WKT or WKT2), None when there is none."""
    prj = path.with_suffix(".prj")
    if not prj.exists():
        return None
    try:
        return CRS.from_user_input(prj.read_text(errors="replace").strip())
    except Exception as exc:  # pyproj.exceptions.CRSError and friends
        raise UnreadableFile(prj, f"not a CRS: {_reason(exc)}") from None


def read_table(path: Path, bbox=None, layer: str | None = None) -> RawTable:
    """Read every column and the coordinates of a point file (format from the extension)."""
    fmt = format_of(path)
    if fmt in OGR_DRIVERS:
        return _read_ogr(path, bbox, layer)
    if fmt == "CSV":
        return RawTable(read_csv_columns(path), None, None, read_sidecar_crs(path))
    return _read_parquet(path)


# ---------------------------------------------------------------------------- geometry
def point_coordinates(path: Path, wkb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x, y of WKB points (NaN for null or empty ones); single-part multipoints are accepted.

    Anything else is :class:`NotPoints`, naming the geometry type found.
    """
    try:
        geoms = shapely.from_wkb(wkb)
    except Exception as exc:  # shapely.errors.GEOSException on corrupt WKB
        raise UnreadableFile(path, f"bad geometry: {_reason(exc)}") from None
    kind = shapely.get_type_id(geoms)
    multi = kind == shapely.GeometryType.MULTIPOINT
    if multi.any():
        parts = shapely.get_num_geometries(geoms[multi])
        if (parts > 1).any():
            raise NotPoints(path, f"{int((parts > 1).sum())} multipoints with several points")
        geoms = geoms.copy()
        geoms[multi] = shapely.get_geometry(geoms[multi], 0)
        kind = shapely.get_type_id(geoms)
    bad = (kind != shapely.GeometryType.POINT) & (kind != shapely.GeometryType.MISSING)
    if bad.any():
        name = shapely.GeometryType(int(kind[bad][0])).name.title().replace("string", "String")
        raise NotPoints(path, f"{int(bad.sum())} of type {name}")
    return shapely.get_x(geoms).astype(np.float64), shapely.get_y(geoms).astype(np.float64)


def points_wkb(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """WKB point geometries (object array of bytes) for pyogrio / GeoParquet."""
    return shapely.to_wkb(shapely.points(np.asarray(x, float), np.asarray(y, float)))


# ---------------------------------------------------------------------------- GDAL formats
def _read_ogr(path: Path, bbox, layer: str | None) -> RawTable:
    try:
        layers = tuple(str(n) for n in pyogrio.list_layers(path)[:, 0])
        if not layers:
            raise UnreadableFile(path, "no layer")
        if layer is not None and layer not in layers:
            raise UnreadableFile(path, f"no layer '{layer}' (layers: {', '.join(layers)})")
        meta, _, geom, fields = pyogrio.raw.read(
            path, layer=layer or layers[0], bbox=tuple(bbox) if bbox is not None else None)
    except UnreadableFile:
        raise
    except Exception as exc:  # pyogrio.errors.DataSourceError, DataLayerError, ...
        raise UnreadableFile(path, _reason(exc)) from None
    columns = {str(n): v for n, v in zip(meta["fields"], fields, strict=True)}
    crs = CRS.from_user_input(meta["crs"]) if meta.get("crs") else None
    if geom is None:  # an attribute table without geometry: coordinates must be columns
        return RawTable(columns, None, None, crs, bbox is not None, layers)
    x, y = point_coordinates(path, geom)
    return RawTable(columns, x, y, crs, bbox is not None, layers)


# ---------------------------------------------------------------------------- CSV
# GDAL's .csvt types ↔ numpy dtypes
_CSVT_TO_DTYPE = {
    "integer(boolean)": np.dtype(bool), "integer(int16)": np.dtype(np.int16),
    "integer": np.dtype(np.int32), "integer64": np.dtype(np.int64),
    "real(float32)": np.dtype(np.float32), "real": np.dtype(np.float64),
    "string": np.dtype(object), "date": np.dtype("datetime64[D]"),
    "datetime": np.dtype("datetime64[ms]"),
}


def _csvt_type(dtype: np.dtype) -> str:
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


def _read_csvt(path: Path, ncols: int) -> list[np.dtype | None] | None:
    csvt = path.with_suffix(".csvt")
    if not csvt.exists():
        return None
    names = next(csv.reader([csvt.read_text().strip()]), [])
    if len(names) != ncols:
        return None  # stale sidecar: ignore it rather than mis-type the columns
    out = []
    for t in names:
        t = re.sub(r"\(\d+(\.\d+)?\)", "", t.strip().strip('"').lower())  # drop (width.prec)
        out.append(_CSVT_TO_DTYPE.get(t))
    return out


def _sniff(values: list[str]) -> tuple[str, bool]:
    """``('int' | 'float' | 'str', has_empty)`` for the sample values of one column."""
    vals = [v.strip() for v in values]
    full = [v for v in vals if v]
    if not full:
        return "str", True
    empty = len(full) < len(vals)
    if all(v.lstrip("+-").isdigit() for v in full):
        return "int", empty
    try:
        for v in full:
            float(v)
    except ValueError:
        return "str", empty
    return "float", empty


def read_csv_columns(path: Path) -> dict[str, np.ndarray]:
    """Every column of a delimited text file, typed (int64/float64/str, or as the ``.csvt``
    sidecar says). Delimiter: ``,`` ``;`` tab or ``|``, whichever the header uses most."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            header = f.readline()
            sample = [ln for ln in (f.readline() for _ in range(CSV_SNIFF_ROWS)) if ln.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise UnreadableFile(path, _reason(exc)) from None
    if not header.strip():
        return {}
    delim = max(",;\t|", key=header.count)
    names = [n.strip() for n in next(csv.reader([header], delimiter=delim))]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise InvalidColumn(path, sorted(dup)[0], "appears twice in the header")
    rows = list(csv.reader(sample, delimiter=delim))
    for i, r in enumerate(rows):
        if len(r) != len(names):
            raise UnreadableFile(path, f"row {i + 1} has {len(r)} fields, the header {len(names)}")
    if not rows:
        return {n: np.empty(0, dtype=np.float64) for n in names}
    declared = _read_csvt(path, len(names)) or [None] * len(names)
    sniffed = [_sniff([r[j] for r in rows]) for j in range(len(names))]
    kinds = []
    for j, dt in enumerate(declared):
        kind, empty = sniffed[j]
        if dt is not None:
            kinds.append("str" if dt.kind in "OM" else "num")
        elif kind != "str" and empty:
            return _read_csv_gdal(path)  # loadtxt cannot take empty numeric fields
        else:
            big = kind == "int" and any(abs(int(r[j])) >= 2**53 for r in rows)
            kinds.append("str" if kind == "str" or big else "num")
    num = [j for j, k in enumerate(kinds) if k == "num"]
    txt = [j for j, k in enumerate(kinds) if k == "str"]
    opts = dict(delimiter=delim, skiprows=1, comments=None, quotechar='"', ndmin=2,
                encoding="utf-8-sig")
    try:
        numbers = np.loadtxt(path, usecols=num, dtype=np.float64, **opts) if num else None
        texts = np.loadtxt(path, usecols=txt, dtype=str, **opts) if txt else None
    except ValueError as exc:
        if "convert" in str(exc):  # an empty field or a word in a numeric column: GDAL copes
            return _read_csv_gdal(path)
        raise UnreadableFile(path, _reason(exc).split(";")[0]) from None
    out: dict[str, np.ndarray] = {}
    for j, name in enumerate(names):
        dt = declared[j]
        if kinds[j] == "num":
            a = np.ascontiguousarray(numbers[:, num.index(j)])
            if dt is not None:
                out[name] = a.astype(dt) if dt.kind != "b" else a != 0
            elif sniffed[j][0] == "int" and _integral(a):
                out[name] = a.astype(np.int64)
            else:
                out[name] = a
        else:
            s = texts[:, txt.index(j)]
            if dt is not None and dt.kind == "M":
                out[name] = np.where(s == "", "NaT", s).astype(dt)
            elif dt is None and sniffed[j][0] == "int":  # ints beyond 2**53
                out[name] = s.astype(np.int64)
            else:
                out[name] = s.astype(object)
    return out


def _integral(a: np.ndarray) -> bool:
    return bool(np.isfinite(a).all() and (np.abs(a) < 2**53).all() and (a == np.round(a)).all())


def _read_csv_gdal(path: Path) -> dict[str, np.ndarray]:
    """Slow but forgiving: GDAL's CSV driver (empty fields become NaN / None)."""
    try:
        meta, _, _, fields = pyogrio.raw.read(
            path, read_geometry=False, HEADERS="YES", AUTODETECT_TYPE="YES",
            AUTODETECT_SIZE_LIMIT="0", EMPTY_STRING_AS_NULL="YES", KEEP_GEOM_COLUMNS="YES")
    except Exception as exc:
        raise UnreadableFile(path, _reason(exc)) from None
    return {str(n): v for n, v in zip(meta["fields"], fields, strict=True)}


# ---------------------------------------------------------------------------- GeoParquet
def import_pyarrow():
    """``(pyarrow, pyarrow.parquet)`` or :class:`MissingExtra` for the ``parquet`` extra."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise MissingExtra("GeoParquet", "parquet") from None
    return pyarrow, pyarrow.parquet


def _arrow_to_numpy(col) -> np.ndarray:
    pa, _ = import_pyarrow()
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        return np.asarray(col.to_numpy(zero_copy_only=False), dtype=object)
    return np.asarray(col.to_numpy())


def _read_parquet(path: Path) -> RawTable:
    pa, pq = import_pyarrow()
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow.lib.ArrowInvalid on a non-Parquet file
        raise UnreadableFile(path, _reason(exc)) from None
    meta = table.schema.metadata or {}
    geo = json.loads(meta[b"geo"]) if b"geo" in meta else None
    if geo is None:  # plain Parquet: coordinates are columns, CRS from a .prj or the caller
        cols = {n: _arrow_to_numpy(table.column(n)) for n in table.column_names}
        return RawTable(cols, None, None, read_sidecar_crs(path))
    gname = geo.get("primary_column", "geometry")
    gmeta = geo.get("columns", {}).get(gname, {})
    if "crs" not in gmeta:  # GeoParquet spec: a missing crs means OGC:CRS84
        crs = CRS.from_user_input("OGC:CRS84")
    elif gmeta["crs"] is None:  # explicitly unknown
        crs = None
    else:
        crs = CRS.from_user_input(gmeta["crs"])
    encoding = str(gmeta.get("encoding", "WKB")).lower()
    gcol = table.column(gname)
    if encoding == "wkb":
        x, y = point_coordinates(path, np.asarray(gcol.to_numpy(zero_copy_only=False),
                                                  dtype=object))
    elif encoding == "point":  # GeoArrow native point: struct<x, y[, z]>
        flat = gcol.combine_chunks()
        x = np.asarray(flat.field("x").to_numpy(zero_copy_only=False), dtype=np.float64)
        y = np.asarray(flat.field("y").to_numpy(zero_copy_only=False), dtype=np.float64)
    else:
        raise NotPoints(path, f"GeoParquet encoding '{encoding}'")
    cols = {n: _arrow_to_numpy(table.column(n)) for n in table.column_names if n != gname}
    return RawTable(cols, x, y, crs)


def geoparquet_metadata(crs: CRS) -> bytes:
    """The ``geo`` key of a GeoParquet 1.0.0 file with one WKB point column ``geometry``."""
    return json.dumps({
        "version": "1.0.0",
        "primary_column": "geometry",
        "columns": {"geometry": {"encoding": "WKB", "geometry_types": ["Point"],
                                 "crs": crs.to_json_dict()}},
    }).encode()


# ---------------------------------------------------------------------------- writers
def check_columns(x: np.ndarray, y: np.ndarray, columns: Mapping[str, np.ndarray]
                  ) -> dict[str, np.ndarray]:
    """1-D arrays of one length; strings as object arrays (what pyogrio expects)."""
    n = len(x)
    if len(y) != n:
        raise ValueError(f"x has {n} values, y {len(y)}")
    out = {}
    for name, v in columns.items():
        a = np.asarray(v)
        if a.ndim != 1 or len(a) != n:
            raise ValueError(f"column '{name}' has shape {a.shape}, expected ({n},)")
        out[str(name)] = a.astype(object) if a.dtype.kind in "US" else a
    return out


class Sink:
    """Writes chunks of points into one temporary path; ``close`` finishes the file."""

    def __init__(self, tmp: Path, crs: CRS, layer: str):
        self.tmp, self.crs, self.layer = tmp, crs, layer
        self.names: list[str] | None = None
        self.dtypes: list[np.dtype] | None = None

    def check_schema(self, columns: dict[str, np.ndarray]) -> bool:
        """True on the first chunk; later chunks must carry the same columns."""
        names = list(columns)
        if self.names is None:
            self.names, self.dtypes = names, [a.dtype for a in columns.values()]
            return True
        if names != self.names:
            raise ValueError(f"chunk columns {names} differ from the first chunk's {self.names}")
        return False

    def write(self, x, y, columns: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Finish the file. Called once, also when no chunk was written (empty file)."""

    def abort(self) -> None:
        """Release open handles; the temporary folder is removed by the caller."""


class OgrSink(Sink):
    """GPKG and shapefile, appended chunk by chunk through pyogrio."""

    def __init__(self, tmp: Path, crs: CRS, layer: str, driver: str):
        super().__init__(tmp, crs, layer)
        self.driver = driver
        self.rename = driver == "ESRI Shapefile"
        if self.rename:  # a shapefile's one layer is named after the file
            self.layer = tmp.stem
        self.started = False

    def write(self, x, y, columns):
        first = self.check_schema(columns)
        names = shapefile_names(list(columns)) if self.rename else list(columns)
        if first and self.rename:
            self.field_names = dict(zip(columns, names, strict=True))
        opts = {"encoding": "UTF-8"} if self.rename else {}
        with warnings.catch_warnings():
            # GDAL warns when a value does not fit a shapefile's fixed-width field; the
            # format's limits are documented, not repeated once per chunk.
            warnings.simplefilter("ignore", RuntimeWarning)
            pyogrio.raw.write(self.tmp, points_wkb(x, y), list(columns.values()), names,
                              layer=self.layer, driver=self.driver, geometry_type="Point",
                              crs=self.crs.to_wkt(), append=self.started, **opts)
        self.started = True

    def close(self):
        if not self.started:
            self.write(np.empty(0), np.empty(0), {})


class BufferedSink(Sink):
    """FlatGeobuf: GDAL cannot append to it, so chunks are kept in memory and written once at
    close, without the spatial index (which would reorder the features: row order is part of
    our contract, predictions line up with the input rows)."""

    def __init__(self, tmp: Path, crs: CRS, layer: str, driver: str = "FlatGeobuf"):
        super().__init__(tmp, crs, layer)
        self.driver = driver
        self.chunks: list[tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]] = []

    def write(self, x, y, columns):
        self.check_schema(columns)
        self.chunks.append((np.asarray(x, float), np.asarray(y, float), columns))

    def close(self):
        chunks, self.chunks = self.chunks, []
        x = np.concatenate([c[0] for c in chunks]) if chunks else np.empty(0)
        y = np.concatenate([c[1] for c in chunks]) if chunks else np.empty(0)
        names = self.names or []
        values = [np.concatenate([c[2][n] for c in chunks]) for n in names]
        pyogrio.raw.write(self.tmp, points_wkb(x, y), values, names, layer=self.layer,
                          driver=self.driver, geometry_type="Point", crs=self.crs.to_wkt(),
                          layer_options={"SPATIAL_INDEX": "NO"})

    def abort(self):
        self.chunks = []


class CsvSink(Sink):
    """CSV written with Python's C-level ``%`` formatting (about 13 s per million rows of 64
    columns; GDAL's writer takes 33 s and rounds float64 to 15 digits).

    Floats are written so they read back bit-identical: float64 as ``repr`` (shortest round
    trip), float32 with 9 significant digits. The coordinates come first as ``x, y`` (or the
    names in ``xy_columns``), unless ``xy_columns`` names two of the columns: then those hold
    the coordinates already (a CSV read earlier, written back) and nothing is added.
    """

    BLOCK = 50_000

    def __init__(self, tmp: Path, crs: CRS, layer: str,
                 xy_columns: tuple[str, str] | None = None):
        super().__init__(tmp, crs, layer)
        self.xy_columns = xy_columns
        self.file = None

    def _start(self, columns):
        names = list(columns)
        xn, yn = self.xy_columns or ("x", "y")
        present = [c for c in (xn, yn) if c in columns]
        if len(present) == 1:
            raise ValueError(f"xy_columns ({xn}, {yn}): only {present[0]} is a column")
        self.add_xy = not present
        if self.add_xy:
            clash = [c for c in names if c.lower() in (xn.lower(), yn.lower())]
            if clash:
                raise ValueError(f"columns {clash} clash with the CSV coordinate columns")
            names = [xn, yn, *names]
        self.file = open(self.tmp, "w", encoding="utf-8", newline="")
        self.file.write(",".join(_csv_quote(n) for n in names) + "\n")
        types = ["Real", "Real"] if self.add_xy else []
        types += [_csvt_type(a.dtype) for a in columns.values()]
        self.tmp.with_suffix(".csvt").write_text(",".join(types) + "\n")
        self.tmp.with_suffix(".prj").write_text(self.crs.to_wkt())
        fmts = ["%r", "%r"] if self.add_xy else []
        fmts += [_csv_fmt(a.dtype) for a in columns.values()]
        self.fmt = ",".join(fmts)

    def write(self, x, y, columns):
        if self.check_schema(columns):
            self._start(columns)
        values = ([np.asarray(x, np.float64), np.asarray(y, np.float64)] if self.add_xy
                  else []) + list(columns.values())
        for s in range(0, len(x), self.BLOCK):
            block = [_csv_values(v[s:s + self.BLOCK]) for v in values]
            fmt = self.fmt
            self.file.write("".join([fmt % row + "\n" for row in zip(*block, strict=True)]))

    def close(self):
        if self.file is None:
            self._start({})
        self.file.close()

    def abort(self):
        if self.file is not None:
            self.file.close()


def _csv_fmt(dtype: np.dtype) -> str:
    if dtype.kind == "f":
        return "%.9g" if dtype.itemsize <= 4 else "%r"
    if dtype.kind in "biu":
        return "%d"
    return "%s"


def _csv_quote(s) -> str:
    if s is None:
        return ""
    s = str(s)
    if any(c in s for c in ',"\n\r') or s != s.strip():
        return '"' + s.replace('"', '""') + '"'
    return s


def _csv_values(a: np.ndarray) -> list:
    if a.dtype.kind in "fbiu":
        return a.tolist()
    if a.dtype.kind == "M":
        s = a.astype(str)
        return np.where(np.isnat(a), "", s).tolist()
    return [_csv_quote(v) for v in a.tolist()]


class ParquetSink(Sink):
    """GeoParquet 1.0.0 through ``pyarrow.parquet.ParquetWriter``: one row group per chunk."""

    def __init__(self, tmp: Path, crs: CRS, layer: str):
        super().__init__(tmp, crs, layer)
        self.pa, self.pq = import_pyarrow()
        self.writer = None

    def _table(self, x, y, columns):
        pa = self.pa
        arrays = [pa.array(v, from_pandas=True) if v.dtype.kind == "O" else pa.array(v)
                  for v in columns.values()]
        arrays.append(pa.array(points_wkb(x, y), type=pa.binary()))
        table = pa.Table.from_arrays(arrays, names=[*columns, "geometry"])
        if self.writer is None:
            schema = table.schema.with_metadata({b"geo": geoparquet_metadata(self.crs)})
            self.writer = self.pq.ParquetWriter(self.tmp, schema, compression="zstd")
        return table.cast(self.writer.schema)  # later chunks take the first chunk's types

    def write(self, x, y, columns):
        self.check_schema(columns)
        table = self._table(x, y, columns)
        self.writer.write_table(table)

    def close(self):
        if self.writer is None:
            self._table(np.empty(0), np.empty(0), {})
        self.writer.close()

    def abort(self):
        if self.writer is not None:
            self.writer.close()


def make_sink(path: Path, tmp: Path, crs: CRS, layer: str,
              xy_columns: tuple[str, str] | None = None) -> Sink:
    fmt = format_of(path)
    if fmt in ("GPKG", "ESRI Shapefile"):
        return OgrSink(tmp, crs, layer, fmt)
    if fmt == "FlatGeobuf":
        return BufferedSink(tmp, crs, layer)
    if fmt == "CSV":
        return CsvSink(tmp, crs, layer, xy_columns)
    return ParquetSink(tmp, crs, layer)
