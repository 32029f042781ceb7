"""Point clouds: read PSI exports (GPKG, SHP, FlatGeobuf, GeoParquet, CSV, EGMS), write results.

:func:`read_points` turns any supported file into a :class:`PointCloud`: coordinates (reprojected
on request), the columns PSI processing needs, found by alias (:mod:`psirel.io.columns`), and
every input column untouched for the output. Every user mistake ends in one exception from
:mod:`psirel.errors` whose one-line message names the file, the column and the first ids.

:class:`PointWriter` streams chunks into GPKG / SHP / FGB / CSV / GeoParquet; the file appears
only when the writer closes without error. :func:`write_predictions` writes the input attributes
plus the model's columns, in the input's CRS.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
from pyproj import CRS, Transformer

from psirel.errors import (
    EmptyCloud,
    InputFileNotFound,
    InvalidColumn,
    InvalidValues,
    MissingColumn,
    MissingCRS,
    UnreadableFile,
)
from psirel.io.atomic import atomic_path
from psirel.io.columns import (
    ROLE_ALIASES,
    XY_PAIRS,
    date_columns,
    match_column,
    match_role,
    match_xy,
)
from psirel.io.formats import (
    OGR_DRIVERS,
    check_columns,
    format_of,
    make_sink,
    points_wkb,
    read_table,
)

__all__ = ["PointCloud", "PointWriter", "read_points", "write_points", "write_predictions",
           "points_wkb", "SENTINEL1_WAVELENGTH_MM"]

SENTINEL1_WAVELENGTH_MM = 55.465763  # C band; every EGMS product is Sentinel-1
EGMS_CRS = "EPSG:3035"  # EGMS easting/northing: ETRS89-extended / LAEA Europe
# Plausibility thresholds (DESIGN §3): a series in metres has all |d| < 0.5; a velocity in
# m/yr has 99 % of |v| below 0.05 (50 mm/yr), which no real mm/yr cloud does (noise alone is
# ~1 mm/yr).
SERIES_METRES_MAX = 0.5
VELOCITY_M_YR_P99 = 0.05


@dataclass
class PointCloud:
    """A PSI point cloud, validated.

    ``x``/``y`` (float64, metres or degrees of ``crs``) are reprojected when ``read_points`` got
    ``target_crs``; ``source_xy`` keeps the file's own coordinates in ``source_crs`` so results
    go back out in the input's CRS. ``attributes`` holds every input column in input order,
    unchanged (coordinate columns of a CSV included). ``roles`` maps a role (``velocity``,
    ``coherence``, ``height``, ``id``, ``label``, ``x``, ``y``) to the column it was read from.
    ``ids`` come from a ``pid``/``id``/``point_id``/``code`` column, else they are the row
    numbers among the rows read (0-based). ``height_m`` is None when the file has none (use the
    DEM); it may hold NaN where a point has no height. ``labels`` is 1 reliable / 0 unreliable,
    or None. ``series_mm[:, j]`` is the displacement at ``dates[j]`` (sorted) from column
    ``series_columns[j]``. Without reprojection ``x`` is ``source_xy[0]`` (the same array).
    """

    path: Path
    x: np.ndarray
    y: np.ndarray
    crs: CRS
    source_crs: CRS
    ids: np.ndarray
    velocity_mm_yr: np.ndarray
    coherence: np.ndarray
    dates: np.ndarray
    series_mm: np.ndarray
    height_m: np.ndarray | None
    labels: np.ndarray | None
    attributes: dict[str, np.ndarray]
    source_xy: tuple[np.ndarray, np.ndarray]
    roles: dict[str, str]
    warnings: list[str] = field(default_factory=list)
    series_columns: tuple[str, ...] = ()
    crs_origin: str = "file"  # where source_crs came from: file, .prj, argument, convention

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, index: np.ndarray | Sequence[int] | slice) -> PointCloud:
        """The points selected by a boolean mask, integer indices or a slice (a copy)."""
        if not isinstance(index, slice):
            index = np.asarray(index)
            if index.dtype.kind == "b" and len(index) != len(self):
                raise ValueError(f"mask has {len(index)} values for {len(self)} points")
        per_point = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in ("path", "crs", "source_crs", "dates", "roles", "warnings",
                          "series_columns", "crs_origin") or v is None:
                continue
            if f.name == "attributes":
                per_point[f.name] = {k: a[index] for k, a in v.items()}
            elif f.name == "source_xy":
                per_point[f.name] = (v[0][index], v[1][index])
            else:
                per_point[f.name] = v[index]
        return replace(self, **per_point, roles=dict(self.roles), warnings=list(self.warnings))


# ---------------------------------------------------------------------------- reading
def read_points(path: Path | str, *, crs=None, label: str | None = None, target_crs=None,
                bbox: tuple[float, float, float, float] | None = None,
                layer: str | None = None) -> PointCloud:
    """Read and validate a PSI point file.

    Args:
        path: ``.gpkg``, ``.shp``, ``.fgb``, ``.parquet``/``.geoparquet`` or ``.csv``.
        crs: CRS of the file's coordinates (anything pyproj understands, e.g. ``"EPSG:32633"``
            or ``32633``). Needed for a CSV without ``.prj`` sidecar unless EGMS conventions
            apply (``latitude``/``longitude`` → EPSG:4326; ``easting``/``northing`` with a
            ``pid`` column → EPSG:3035). It overrides a CRS the file declares (with a warning).
        label: name of the training-label column; by default a ``reliable`` column if present.
        target_crs: reproject ``x``/``y`` into this CRS (``source_xy`` keeps the originals).
        bbox: ``(xmin, ymin, xmax, ymax)`` in the file's CRS; only points inside are read
            (GDAL's spatial filter for GPKG/SHP/FGB, a mask after reading for CSV/Parquet).
        layer: layer of a multi-layer file (default: the first).

    Returns:
        a :class:`PointCloud`. Raises the :mod:`psirel.errors` type of each user mistake.
    """
    path = Path(path)
    if not path.exists():
        raise InputFileNotFound(path, "points file")
    if path.is_dir():
        raise UnreadableFile(path, "is a directory")
    fmt = format_of(path)
    if bbox is not None and not (len(bbox) == 4 and bbox[0] <= bbox[2] and bbox[1] <= bbox[3]):
        raise ValueError(f"bbox must be (xmin, ymin, xmax, ymax), got {bbox}")
    table = read_table(path, bbox=bbox if fmt in OGR_DRIVERS else None, layer=layer)
    cols = table.columns
    names = list(cols)
    warnings: list[str] = []
    roles: dict[str, str] = {}
    if len(table.layers) > 1:
        warnings.append(f"{len(table.layers)} layers; read '{layer or table.layers[0]}'")

    if (len(table.x) if table.x is not None else len(next(iter(cols.values()), ()))) == 0:
        raise EmptyCloud(path, "inside the bbox" if bbox is not None else "")

    # -- coordinates and their CRS
    geographic = False
    if table.x is None:
        pair = match_xy(names)
        if pair is None:
            raise MissingColumn(path, "coordinate", ["/".join(p) for p in XY_PAIRS], names)
        xc, yc, geographic = pair
        roles["x"], roles["y"] = xc, yc
        sx, sy = _numeric(path, xc, cols[xc]), _numeric(path, yc, cols[yc])
    else:
        sx, sy = table.x, table.y
    source_crs, origin = _source_crs(path, table.crs, crs, roles, names, geographic, warnings)

    if bbox is not None and not table.bbox_applied:
        keep = (sx >= bbox[0]) & (sx <= bbox[2]) & (sy >= bbox[1]) & (sy <= bbox[3])
        if not keep.all():
            cols = {k: v[keep] for k, v in cols.items()}
            sx, sy = sx[keep], sy[keep]
        if len(sx) == 0:
            raise EmptyCloud(path, "inside the bbox")
    n = len(sx)

    idc = match_role(names, "id")
    if idc is not None:
        roles["id"] = idc
    ids = cols[idc] if idc is not None else np.arange(n, dtype=np.int64)
    bad = ~(np.isfinite(sx) & np.isfinite(sy))
    if bad.any():
        where = f"{roles['x']}/{roles['y']}" if "x" in roles else "geometry"
        raise InvalidValues(path, where, int(bad.sum()), "missing or non-finite coordinates",
                            ids[bad])

    # -- the columns PSI processing needs
    vc = _require(path, names, "velocity")
    roles["velocity"] = vc
    velocity = _finite(path, vc, _numeric(path, vc, cols[vc]), ids).astype(np.float32)
    coherence, coh_col = _coherence(path, names, cols, ids, warnings)
    roles["coherence"] = coh_col

    hc = match_role(names, "height")
    height = None
    if hc is None:
        warnings.append("no height column (looked for " + ", ".join(ROLE_ALIASES["height"])
                        + "); the DEM height will be used")
    else:
        roles["height"] = hc
        height = _numeric(path, hc, cols[hc]).astype(np.float32)
        nbad = int((~np.isfinite(height)).sum())
        if nbad:
            warnings.append(f"column '{hc}' has {nbad} missing heights; the DEM height will "
                            "be used there")

    dated = date_columns(names, path)
    dates = np.array([d for _, d in dated], dtype="datetime64[D]")
    series = np.empty((n, len(dated)), dtype=np.float32)
    for j, (c, _) in enumerate(dated):
        series[:, j] = _numeric(path, c, cols[c])
    if dated:
        bad_pt = ~np.isfinite(series).all(axis=1)
        if bad_pt.any():
            first = dated[int(np.argmax(~np.isfinite(series[bad_pt][0])))][0]
            raise InvalidValues(path, first, int(bad_pt.sum()),
                                "points with NaN or infinite time-series values",
                                ids[bad_pt])
    else:
        warnings.append("no time-series columns (DYYYYMMDD or YYYYMMDD)")

    labels = None
    lc = (match_column(names, (label.strip().lower(),)) if label is not None
          else match_role(names, "label"))
    if label is not None and lc is None:
        raise MissingColumn(path, "label", [label], names)
    if lc is not None:
        roles["label"] = lc
        labels = _labels(path, lc, cols[lc], ids)

    warnings += _unit_warnings(velocity, vc, series, dated)

    # -- reprojection
    x, y, out_crs = sx, sy, source_crs
    if target_crs is not None:
        out_crs = _crs(path, target_crs)
        if not out_crs.equals(source_crs):
            tr = Transformer.from_crs(source_crs, out_crs, always_xy=True)
            x, y = tr.transform(sx, sy)
            x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
            bad = ~(np.isfinite(x) & np.isfinite(y))
            if bad.any():
                raise InvalidValues(path, "geometry", int(bad.sum()),
                                    f"points that cannot be transformed to {_name(out_crs)}",
                                    ids[bad])

    return PointCloud(
        path=path, x=x, y=y, crs=out_crs, source_crs=source_crs, ids=ids,
        velocity_mm_yr=velocity, coherence=coherence, dates=dates, series_mm=series,
        height_m=height, labels=labels, attributes=cols, source_xy=(sx, sy), roles=roles,
        warnings=warnings, series_columns=tuple(c for c, _ in dated), crs_origin=origin)


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


def _source_crs(path, declared, given, roles, names, geographic, warnings) -> tuple[CRS, str]:
    """The CRS of the file's coordinates, and where it came from."""
    if given is not None:
        crs = _crs(path, given)
        if declared is not None and not declared.equals(crs):
            warnings.append(f"file declares {_name(declared)}; using {_name(crs)} as given")
        return crs, "argument"
    if declared is not None:
        return declared, "file" if "x" not in roles else ".prj sidecar"
    if geographic:
        return CRS.from_epsg(4326), f"{roles['x']}/{roles['y']} read as EPSG:4326"
    if roles.get("x", "").lower() == "easting" and match_column(names, ("pid",)) is not None:
        return CRS.from_user_input(EGMS_CRS), f"EGMS convention: easting/northing → {EGMS_CRS}"
    raise MissingCRS(path, "pass crs= (--crs EPSG:…) or add a .prj sidecar")


def _require(path: Path, names: list[str], role: str) -> str:
    c = match_role(names, role)
    if c is None:
        raise MissingColumn(path, role, ROLE_ALIASES[role], names)
    return c


def _numeric(path: Path, name: str, a: np.ndarray) -> np.ndarray:
    """float64 copy of a column; None → NaN; words are an error naming the column."""
    if a.dtype.kind in "fiub":
        return a.astype(np.float64)
    if a.dtype.kind == "O":
        b = np.where(np.equal(a, None), np.nan, a)
        try:
            return b.astype(np.float64)
        except (TypeError, ValueError):
            for v in b:
                try:
                    float(v)
                except (TypeError, ValueError):
                    raise InvalidColumn(path, name, f"is not numeric (found '{v}')") from None
    raise InvalidColumn(path, name, f"is not numeric (type {a.dtype})")


def _finite(path: Path, name: str, v: np.ndarray, ids: np.ndarray) -> np.ndarray:
    bad = ~np.isfinite(v)
    if bad.any():
        raise InvalidValues(path, name, int(bad.sum()), "NaN or infinite values", ids[bad])
    return v


def _coherence(path, names, cols, ids, warnings) -> tuple[np.ndarray, str]:
    """Temporal coherence in [0, 1]: from its column, or derived from EGMS ``rmse``.

    The EGMS L3 / ortho export has no coherence but an ``rmse`` (mm) of the residuals w.r.t.
    the fitted motion model. Temporal coherence is |mean(exp(jφ_res))|, and for Gaussian phase
    residuals of standard deviation σ = 4π·rmse/λ that is exp(−σ²/2): the same quantity,
    computed from the producer's own residuals.
    """
    c = match_role(names, "coherence")
    if c is not None:
        coh = _finite(path, c, _numeric(path, c, cols[c]), ids)
        bad = (coh < 0) | (coh > 1)
        if bad.any():
            hint = " (percent? divide by 100)" if coh.max() <= 100 else ""
            raise InvalidValues(path, c, int(bad.sum()), f"values outside 0..1{hint}", ids[bad])
        return coh.astype(np.float32), c
    r = match_role(names, "rmse")
    if r is None:
        raise MissingColumn(path, "coherence", ROLE_ALIASES["coherence"] + ("rmse",), names)
    rmse = _finite(path, r, _numeric(path, r, cols[r]), ids)
    if (rmse < 0).any():
        raise InvalidValues(path, r, int((rmse < 0).sum()), "negative values", ids[rmse < 0])
    sigma = 4 * math.pi * rmse / SENTINEL1_WAVELENGTH_MM
    warnings.append(f"no coherence column; coherence derived from '{r}' (mm) as "
                    f"exp(-(4π·rmse/λ)²/2), λ = {SENTINEL1_WAVELENGTH_MM} mm (Sentinel-1)")
    return np.exp(-0.5 * sigma**2).astype(np.float32), r


def _labels(path: Path, name: str, a: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """int8 labels, 1 reliable / 0 unreliable; anything else is an error."""
    if a.dtype.kind == "b":
        return a.astype(np.int8)
    if a.dtype.kind in "OU":
        words = {"1": 1, "true": 1, "0": 0, "false": 0}
        v = np.array([words.get(str(s).strip().lower(), -1) for s in a], dtype=np.int8)
        bad = v < 0
    else:
        v = np.asarray(a, dtype=np.float64)
        bad = ~((v == 0) | (v == 1))
    if bad.any():
        raise InvalidValues(path, name, int(bad.sum()), "labels other than 0 and 1", ids[bad])
    return v.astype(np.int8)


def _unit_warnings(velocity, vc, series, dated) -> list[str]:
    out = []
    av = np.abs(velocity)
    if len(av) and av.max() > 0 and np.quantile(av, 0.99) < VELOCITY_M_YR_P99:
        out.append(f"column '{vc}' looks like m/yr (99 % of |v| < {VELOCITY_M_YR_P99}); "
                   "expected mm/yr")
    if dated:
        m = max(float(series.max()), -float(series.min()))  # max |d| without a copy
        if 0 < m < SERIES_METRES_MAX:
            out.append(f"time series ({dated[0][0]} … {dated[-1][0]}) look like metres "
                       f"(all |d| < {SERIES_METRES_MAX}); expected mm")
    return out


# ---------------------------------------------------------------------------- writing
class PointWriter:
    """Stream points into one file, chunk by chunk; the file appears only when the writer closes
    without error (atomic: written in a hidden folder beside the target, then renamed).

    Format from the extension: ``.gpkg``, ``.shp``, ``.fgb``, ``.csv``, ``.parquet``. Every
    chunk must carry the same columns. Format limits: a shapefile keeps 10-character field
    names (laundered as in :func:`psirel.io.columns.shapefile_names`; see ``field_names``) and
    stores floats as float64 with 15 decimals; a CSV stores ``x, y`` first (or the columns
    named by ``xy_columns``) with ``.prj`` and ``.csvt`` sidecars; FlatGeobuf is buffered in
    memory and written at close.

    Usage::

        with PointWriter("out.gpkg", "EPSG:32633") as w:
            for chunk in chunks:
                w.write(chunk.x, chunk.y, {"velocity": chunk.v, ...})
    """

    def __init__(self, path: Path | str, crs: CRS | str, layer: str = "psi", *,
                 xy_columns: tuple[str, str] | None = None):
        self.path, self.layer = Path(path), layer
        format_of(self.path)  # unsupported extension: fail before anything is written
        self.crs = CRS.from_user_input(crs)
        self.xy_columns = xy_columns
        self.count = 0
        self._ctx = None
        self._sink = None

    @property
    def field_names(self) -> dict[str, str]:
        """Column name → name in the file (differs only for shapefiles)."""
        names = self._sink.names if self._sink is not None and self._sink.names else []
        return getattr(self._sink, "field_names", None) or {n: n for n in names}

    def __enter__(self) -> PointWriter:
        self._ctx = atomic_path(self.path)
        tmp = self._ctx.__enter__()
        try:
            self._sink = make_sink(self.path, tmp, self.crs, self.layer, self.xy_columns)
        except BaseException as exc:
            self._ctx.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def write(self, x: np.ndarray, y: np.ndarray, columns: Mapping[str, np.ndarray]) -> None:
        """Append one chunk: coordinates in the writer's CRS and one array per column."""
        if self._sink is None:
            raise RuntimeError("use PointWriter as a context manager")
        cols = check_columns(np.asarray(x), np.asarray(y), columns)
        self._sink.write(np.asarray(x, np.float64), np.asarray(y, np.float64), cols)
        self.count += len(x)

    def __exit__(self, exc_type, exc, tb) -> None:
        sink, ctx = self._sink, self._ctx
        self._sink = self._ctx = None
        if exc_type is None:
            try:
                sink.close()
            except BaseException as err:
                sink.abort()
                ctx.__exit__(type(err), err, err.__traceback__)
                raise
            ctx.__exit__(None, None, None)
        else:
            sink.abort()
            ctx.__exit__(exc_type, exc, tb)


def write_points(path: Path | str, x: np.ndarray, y: np.ndarray, crs: CRS | str,
                 columns: Mapping[str, np.ndarray], layer: str = "psi", *,
                 xy_columns: tuple[str, str] | None = None) -> Path:
    """Write points with attribute columns atomically (format from the extension, see
    :class:`PointWriter`). Returns the path."""
    with PointWriter(path, crs, layer, xy_columns=xy_columns) as w:
        w.write(x, y, columns)
    return Path(path)


def write_predictions(cloud: PointCloud, out_path: Path | str,
                      extra: Mapping[str, np.ndarray], layer: str = "psi") -> Path:
    """Write every input attribute unchanged plus ``extra`` columns, in the input's CRS.

    ``reliability`` and ``reliability_std`` are stored as float32 and ``reliable_pred`` as
    bool. A column of ``extra``
    that the input already has (a cloud that was itself an output) replaces it. A CSV output
    of a CSV input keeps the input's coordinate columns instead of adding ``x, y``.
    """
    out_path = Path(out_path)
    extra = dict(extra)
    for name in ("reliability", "reliability_std"):
        if name in extra:
            extra[name] = np.asarray(extra[name], dtype=np.float32)
    if "reliable_pred" in extra:
        extra["reliable_pred"] = np.asarray(extra["reliable_pred"]).astype(bool)
    lower = {k.lower() for k in extra}
    columns = {k: v for k, v in cloud.attributes.items() if k.lower() not in lower}
    columns.update(extra)
    xy_columns = None
    if format_of(out_path) == "CSV":
        rx, ry = cloud.roles.get("x"), cloud.roles.get("y")
        if rx in columns and ry in columns:
            xy_columns = (rx, ry)
        else:
            taken, i = {k.lower() for k in columns}, 0
            xy_columns = ("x", "y")
            while xy_columns[0] in taken or xy_columns[1] in taken:
                i += 1
                xy_columns = (f"x_{i}", f"y_{i}")
    sx, sy = cloud.source_xy
    return write_points(out_path, sx, sy, cloud.source_crs, columns, layer,
                        xy_columns=xy_columns)
