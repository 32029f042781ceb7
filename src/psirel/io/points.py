"""Point clouds: read PSI exports (GPKG, SHP, FlatGeobuf, GeoParquet, CSV, an EGMS zip) into a
validated :class:`PointCloud`; write results (:mod:`psirel.io.point_writer`, re-exported here).

:func:`read_points` runs a few steps over one file: read its table (:mod:`psirel.io.tables`),
resolve which column holds which role (:mod:`psirel.io.resolve`: the user's
:class:`~psirel.io.schema.PointSchema`, then a recognised export's profile, then aliases), the
coordinates and their CRS, the bbox, the ids, the role values and their units
(:mod:`psirel.io.values`), the reprojection. Every input column stays untouched for the
output. Every user mistake ends in one exception from :mod:`psirel.errors` whose one-line
message names the file, the column and the first ids.

:class:`PointWriter` streams chunks into GPKG / SHP / FGB / CSV / GeoParquet; the file appears
only when the writer closes without error. :func:`write_predictions` writes the input
attributes plus the model's columns, in the input's CRS.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
from pyproj import CRS, Transformer

from psirel.errors import (
    EmptyCloud,
    InputFileNotFound,
    InvalidValues,
    MissingColumn,
    MissingCRS,
    UnreadableFile,
    first_line,
)
from psirel.io.columns import ROLE_ALIASES, XY_PAIRS, match_column
from psirel.io.formats import OGR_DRIVERS, read_format_of
from psirel.io.point_writer import PointWriter, write_points, write_predictions
from psirel.io.resolve import ColumnResolution, resolve_columns
from psirel.io.schema import METRES_TO_MM, PointSchema
from psirel.io.tables import RawTable, points_wkb, read_table
from psirel.io.values import (
    SENTINEL1_WAVELENGTH_MM,
    coherence,
    coherence_from_rmse,
    detect_units,
    finite,
    labels,
    numeric,
    series,
    to_float32,
    unit_warnings,
)

__all__ = ["PointCloud", "PointWriter", "read_points", "reproject_cloud", "write_points",
           "write_predictions", "points_wkb", "SENTINEL1_WAVELENGTH_MM"]

EGMS_CRS = "EPSG:3035"  # EGMS easting/northing: ETRS89-extended / LAEA Europe


def _per_point():
    """A :class:`PointCloud` field holding one value per point: :meth:`PointCloud.subset`
    selects from it (arrays, dicts and tuples of arrays, or None)."""
    return field(metadata={"per_point": True})


def _take(value, index):
    if value is None:
        return None
    if isinstance(value, dict):
        return {k: a[index] for k, a in value.items()}
    if isinstance(value, tuple):
        return tuple(a[index] for a in value)
    return value[index]


@dataclass
class PointCloud:
    """A PSI point cloud, validated.

    ``x``/``y`` (float64, metres or degrees of ``crs``) are reprojected when ``read_points`` got
    ``target_crs``; ``source_xy`` keeps the file's own coordinates in ``source_crs`` so results
    go back out in the input's CRS. ``attributes`` holds every input column in input order,
    unchanged (coordinate columns of a CSV included, values in the file's units). ``roles``
    maps a role (``velocity``, ``coherence``, ``height``, ``id``, ``label``, ``x``, ``y``) to the
    column it was read from. ``ids`` come from the id column (``pid``/``id``/``point_id``/
    ``code`` or as mapped), else they are the row numbers among the rows read (0-based).
    ``height_m`` is None when the file has none (use the DEM); it may hold NaN where a point
    has no height. ``labels`` is 1 reliable / 0 unreliable, or None. ``series_mm[:, j]`` is the
    displacement at ``dates[j]`` (sorted) from column ``series_columns[j]``. Without
    reprojection ``x`` is ``source_xy[0]`` (the same array). ``profile`` names the recognised
    export (:mod:`psirel.io.profiles`) or is None; ``units`` is what the file's velocity and
    series were read as (``"mm"`` or ``"m"``, converted to mm), ``units_origin`` why.
    """

    path: Path
    x: np.ndarray = _per_point()
    y: np.ndarray = _per_point()
    crs: CRS
    source_crs: CRS
    ids: np.ndarray = _per_point()
    velocity_mm_yr: np.ndarray = _per_point()
    coherence: np.ndarray = _per_point()
    dates: np.ndarray
    series_mm: np.ndarray = _per_point()
    height_m: np.ndarray | None = _per_point()
    labels: np.ndarray | None = _per_point()
    attributes: dict[str, np.ndarray] = _per_point()
    source_xy: tuple[np.ndarray, np.ndarray] = _per_point()
    roles: dict[str, str]
    warnings: list[str] = field(default_factory=list)
    series_columns: tuple[str, ...] = ()
    crs_origin: str = "file"  # where source_crs came from: file, .prj, argument, convention
    profile: str | None = None
    units: str = "mm"
    units_origin: str = "default"  # default, detected, --units, or "<profile title> profile"

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, index: np.ndarray | Sequence[int] | slice) -> PointCloud:
        """The points selected by a boolean mask, integer indices or a slice (a copy)."""
        if not isinstance(index, slice):
            index = np.asarray(index)
            if index.dtype.kind == "b" and len(index) != len(self):
                raise ValueError(f"mask has {len(index)} values for {len(self)} points")
        per_point = {f.name: _take(getattr(self, f.name), index)
                     for f in fields(self) if f.metadata.get("per_point")}
        return replace(self, **per_point, roles=dict(self.roles), warnings=list(self.warnings))


# ---------------------------------------------------------------------------- reading
def read_points(path: Path | str, *, crs=None, label: str | None = None, target_crs=None,
                bbox: tuple[float, float, float, float] | None = None,
                layer: str | None = None, schema: PointSchema | None = None) -> PointCloud:
    """Read and validate a PSI point file.

    Args:
        path: ``.gpkg``, ``.shp``, ``.fgb``, ``.parquet``/``.geoparquet``, ``.csv``, or a
            ``.zip`` holding one CSV (an EGMS download, read without extracting).
        crs: CRS of the file's coordinates (anything pyproj understands, e.g. ``"EPSG:32633"``
            or ``32633``). Needed for a CSV without ``.prj`` sidecar unless a convention
            applies (longitude/latitude columns → EPSG:4326; a recognised export's CRS, e.g.
            EGMS ``easting``/``northing`` → EPSG:3035). It overrides a CRS the file declares
            (with a warning).
        label: name of the training-label column; by default a ``reliable`` column if present.
        target_crs: reproject ``x``/``y`` into this CRS (``source_xy`` keeps the originals).
        bbox: ``(xmin, ymin, xmax, ymax)`` in the file's CRS; only points inside are read
            (GDAL's spatial filter for GPKG/SHP/FGB, a mask after reading for CSV/Parquet).
        layer: layer of a multi-layer file (default: the first), or the CSV inside a zip.
        schema: which column holds which role and the units (``--columns``, ``--units``);
            None: profiles and aliases decide, units detected.

    Returns:
        a :class:`PointCloud`. Raises the :mod:`psirel.errors` type of each user mistake.
    """
    path = _existing(path)
    if bbox is not None and not (len(bbox) == 4 and bbox[0] <= bbox[2] and bbox[1] <= bbox[3]):
        raise ValueError(f"bbox must be (xmin, ymin, xmax, ymax), got {bbox}")
    table = read_table(path, bbox=bbox if read_format_of(path) in OGR_DRIVERS else None,
                       layer=layer)
    warnings: list[str] = []
    if len(table.layers) > 1:
        warnings.append(f"{len(table.layers)} layers; read '{layer or table.layers[0]}'")
    if table.n_rows == 0:
        raise EmptyCloud(path, "inside the bbox" if bbox is not None else "")
    res = resolve_columns(path, table, schema, label)
    sx, sy = _coordinates(path, table, res)
    source_crs, origin = _source_crs(path, table, crs, res, warnings)
    cols, sx, sy = _inside(path, table, sx, sy, bbox)
    ids = _ids(path, cols, res, sx, sy)
    v = _values(path, cols, res, ids, warnings)
    x, y, out_crs = _reproject(path, sx, sy, source_crs, target_crs, ids)
    roles = {k: c for k, c in res.roles.items() if k != "rmse"}
    roles["coherence"] = v["coherence_column"]
    return PointCloud(
        path=path, x=x, y=y, crs=out_crs, source_crs=source_crs, ids=ids,
        velocity_mm_yr=v["velocity"], coherence=v["coherence"], dates=v["dates"],
        series_mm=v["series"], height_m=v["height"], labels=v["labels"], attributes=cols,
        source_xy=(sx, sy), roles=roles, warnings=warnings,
        series_columns=tuple(c for c, _ in res.series), crs_origin=origin,
        profile=res.profile.name if res.profile is not None else None, units=v["units"],
        units_origin=v["units_origin"])


def reproject_cloud(cloud: PointCloud, crs) -> PointCloud:
    """The cloud with ``x``/``y`` transformed from its source coordinates into ``crs`` (the
    same object when it is already there)."""
    if cloud.crs.equals(_crs(cloud.path, crs)):
        return cloud
    x, y, out = _reproject(cloud.path, *cloud.source_xy, cloud.source_crs, crs, cloud.ids)
    return replace(cloud, x=x, y=y, crs=out)


def _existing(path: Path | str) -> Path:
    path = Path(path)
    if not path.exists():
        raise InputFileNotFound(path, "points file")
    if path.is_dir():
        raise UnreadableFile(path, "is a directory")
    return path


def _coordinates(path: Path, table: RawTable, res: ColumnResolution
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The file's coordinates: its point geometry, else its x/y columns (float64)."""
    if table.x is not None:
        return table.x, table.y
    if "x" not in res.roles:
        raise MissingColumn(path, "coordinate", ["/".join(p) for p in XY_PAIRS],
                            list(table.columns))
    xc, yc = res.roles["x"], res.roles["y"]
    return numeric(path, xc, table.columns[xc]), numeric(path, yc, table.columns[yc])


def _name(crs: CRS) -> str:
    auth = crs.to_authority()
    return f"{auth[0]}:{auth[1]}" if auth else crs.name


def _crs(path: Path, value) -> CRS:
    if isinstance(value, CRS):
        return value
    try:
        return CRS.from_user_input(value)
    except Exception:  # pyproj.exceptions.CRSError
        raise MissingCRS(path, f"'{value}' is not a coordinate reference system") from None


def _source_crs(path: Path, table: RawTable, given, res: ColumnResolution,
                warnings: list[str]) -> tuple[CRS, str]:
    """The CRS of the file's coordinates, and where it came from: the argument, the file, a
    longitude/latitude pair, the recognised export's convention, EGMS' easting/northing."""
    declared, roles = table.crs, res.roles
    if given is not None:
        crs = _crs(path, given)
        if declared is not None and not declared.equals(crs):
            warnings.append(f"file declares {_name(declared)}; using {_name(crs)} as given")
        return crs, "argument"
    if declared is not None:
        return declared, "file" if "x" not in roles else ".prj sidecar"
    if res.geographic:
        return CRS.from_epsg(4326), f"{roles['x']}/{roles['y']} read as EPSG:4326"
    if res.crs_convention is not None:
        return CRS.from_user_input(res.crs_convention[0]), res.crs_convention[1]
    if roles.get("x", "").lower() == "easting" and \
            match_column(list(table.columns), ("pid",)) is not None:
        return CRS.from_user_input(EGMS_CRS), f"EGMS convention: easting/northing → {EGMS_CRS}"
    raise MissingCRS(path, "pass crs= (--crs EPSG:…) or add a .prj sidecar")


def _inside(path: Path, table: RawTable, sx: np.ndarray, sy: np.ndarray, bbox
            ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """The columns and coordinates of the points inside ``bbox`` (when the reader did not
    filter already)."""
    cols = table.columns
    if bbox is not None and not table.bbox_applied:
        keep = (sx >= bbox[0]) & (sx <= bbox[2]) & (sy >= bbox[1]) & (sy <= bbox[3])
        if not keep.all():
            cols = {k: v[keep] for k, v in cols.items()}
            sx, sy = sx[keep], sy[keep]
        if len(sx) == 0:
            raise EmptyCloud(path, "inside the bbox")
    return cols, sx, sy


def _ids(path: Path, cols: dict[str, np.ndarray], res: ColumnResolution, sx: np.ndarray,
         sy: np.ndarray) -> np.ndarray:
    """Point ids (the id column, else row numbers); non-finite coordinates are an error."""
    idc = res.roles.get("id")
    ids = cols[idc] if idc is not None else np.arange(len(sx), dtype=np.int64)
    bad = ~(np.isfinite(sx) & np.isfinite(sy))
    if bad.any():
        where = f"{res.roles['x']}/{res.roles['y']}" if "x" in res.roles else "geometry"
        raise InvalidValues(path, where, int(bad.sum()), "missing or non-finite coordinates",
                            ids[bad])
    return ids


def _values(path: Path, cols: dict[str, np.ndarray], res: ColumnResolution, ids: np.ndarray,
            warnings: list[str]) -> dict:
    """Velocity (mm/yr), coherence, height, series (mm), labels and the units they were read
    in; warnings for what is missing or converted."""
    names = list(cols)
    vc = res.roles.get("velocity")
    if vc is None:
        raise MissingColumn(path, "velocity", ROLE_ALIASES["velocity"], names)
    velocity = finite(path, vc, numeric(path, vc, cols[vc]), ids)
    cc = res.roles.get("coherence")
    if cc is not None:
        coh = coherence(path, cc, cols[cc], ids)
    elif "rmse" in res.roles:
        cc = res.roles["rmse"]
        coh, w = coherence_from_rmse(path, cc, cols[cc], ids)
        warnings.append(w)
    else:
        raise MissingColumn(path, "coherence", ROLE_ALIASES["coherence"] + ("rmse",), names)

    hc, height = res.roles.get("height"), None
    if hc is None:
        warnings.append("no height column (looked for " + ", ".join(ROLE_ALIASES["height"])
                        + "); the DEM height will be used")
    else:
        height = numeric(path, hc, cols[hc]).astype(np.float32)
        nbad = int((~np.isfinite(height)).sum())
        if nbad:
            warnings.append(f"column '{hc}' has {nbad} missing heights; the DEM height will "
                            "be used there")

    scale = METRES_TO_MM if res.units == "m" else 1.0
    ser = series(path, cols, res.series, ids, scale)
    if not res.series:
        warnings.append(f"no time-series columns ({res.series_rule})")
    lc = res.roles.get("label")
    lab = labels(path, lc, cols[lc], ids) if lc is not None else None

    units, units_origin = res.units, res.units_origin
    if units is None:  # nobody said: mm unless the values look like metres
        units, found = detect_units(velocity, vc, ser, res.series)
        warnings += found
        units_origin = "detected" if units == "m" else "default"
        if units == "m":
            ser = series(path, cols, res.series, ids, METRES_TO_MM)
    elif units == "mm":
        warnings += unit_warnings(velocity, vc, ser, res.series)
    if units == "m":
        velocity = velocity * METRES_TO_MM
    return {"velocity": to_float32(path, vc, velocity, ids), "coherence": coh,
            "coherence_column": cc, "height": height, "series": ser, "labels": lab,
            "dates": np.array([d for _, d in res.series], dtype="datetime64[D]"),
            "units": units, "units_origin": units_origin}


def _reproject(path: Path, sx: np.ndarray, sy: np.ndarray, source_crs: CRS, target_crs,
               ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, CRS]:
    """``x, y`` and their CRS: the source coordinates, or transformed into ``target_crs``."""
    if target_crs is None:
        return sx, sy, source_crs
    out_crs = _crs(path, target_crs)
    if out_crs.equals(source_crs):
        return sx, sy, out_crs
    try:
        tr = Transformer.from_crs(source_crs, out_crs, always_xy=True)
    except Exception as exc:  # pyproj.exceptions.ProjError: e.g. from a local (LOCAL_CS) CRS
        raise InvalidValues(path, "geometry", len(sx), f"points that cannot be transformed "
                            f"from {_name(source_crs)} to {_name(out_crs)} ({first_line(exc)})",
                            ids) from None
    x, y = tr.transform(sx, sy)
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    bad = ~(np.isfinite(x) & np.isfinite(y))
    if bad.any():
        raise InvalidValues(path, "geometry", int(bad.sum()),
                            f"points that cannot be transformed to {_name(out_crs)}", ids[bad])
    return x, y, out_crs
