"""``psirel inspect``: what psirel makes of a point file and its rasters, before any model runs.

:func:`inspect_inputs` reads the points (all validation of :func:`psirel.io.points.read_points`
applies) and opens each raster given, and collects the facts in an :class:`InspectReport`;
:func:`format_report` renders them as plain text (no square brackets, so a rich console prints
it verbatim).

Patches are sampled on one grid (:func:`psirel.io.rasters.stack_grid`: the DEM's own, or the
model's grid in the points' CRS, the DEM's or a UTM zone for a geographic DEM), reported as
``grid``, together with the land-cover legend detected from the LULC raster. Every layer is
resampled onto that grid, which covers the DEM, so a point outside the DEM grid has no data in
any layer: such points are an error
(:class:`~psirel.errors.PointsOutsideRasters`), here and in train/predict through
:func:`check_points_inside`. Without a DEM, inspect reports points outside every raster given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import rasterio
from pyproj import CRS, Transformer

from psirel.errors import InvalidValues, PointsOutsideRasters, UnreadableFile, first_line
from psirel.io import legends
from psirel.io.cloud_grid import (  # check_points_inside re-exported
    check_points_inside,  # noqa: F401
    judge_nodata,
    sample_rows,
)
from psirel.io.grid import Grid, utm_zone_name
from psirel.io.points import PointCloud, read_points
from psirel.io.profiles import profile_named
from psirel.io.raster_sources import open_raster, overview_codes
from psirel.io.rasters import stack_grid
from psirel.io.schema import PointSchema

HALF_PATCH_PX = 40  # half of an 80 px patch: closer to an edge, a patch needs padding
METRES_PER_DEGREE = 111_320.0  # along a meridian; along a parallel times cos(latitude)


@dataclass
class RasterReport:
    """One raster, in its own CRS, and how the points sit on it."""

    name: str
    path: Path
    crs: str
    res: tuple[float, float]  # pixel size (x, y) in ``units``
    units: str
    bounds: tuple[float, float, float, float]  # left, bottom, right, top in ``units``
    shape: tuple[int, int]  # rows, cols
    dtype: str
    nodata: float | None
    outside: int  # points whose position is off the raster
    near_edge: int  # inside, but closer to the edge than half a patch
    margin_px: float  # that half patch in this raster's pixels


@dataclass
class GridReport:
    """The grid patches are sampled on (see :func:`psirel.io.rasters.stack_grid`)."""

    crs: str
    pixel_m: float
    shape: tuple[int, int]  # rows, cols
    origin: str  # why this CRS / grid, in words ("the DEM's grid", "UTM zone 33N …")


@dataclass
class LegendReport:
    """The land-cover legend: named, detected, or why it could not be detected."""

    legend: str | None
    how: str  # "given", "detected", "not detected"
    codes: list[int]  # distinct codes of a decimated read of the raster over the grid
    candidates: list[str]  # legends holding every code
    unknown: list[int]  # codes (of ``codes``) the legend does not have


@dataclass
class InspectReport:
    """The facts ``psirel inspect`` prints."""

    points: Path
    n_points: int
    source_crs: str
    crs: str  # after reprojection onto the DEM's CRS (or the source CRS without rasters)
    crs_origin: str
    roles: dict[str, str]
    profile: str | None  # the recognised export: "title (name)", or None
    units: str  # what the velocity and series were read as, and why ("m (detected) → mm")
    series_columns: tuple[str, ...]
    n_dates: int
    first_date: str | None
    last_date: str | None
    median_spacing_days: float | None
    velocity_range: tuple[float, float]
    coherence_range: tuple[float, float]
    height_range: tuple[float, float] | None
    labels: tuple[int, int] | None  # (reliable, unreliable)
    warnings: list[str]
    rasters: list[RasterReport] = field(default_factory=list)
    unusable: int = 0  # points with no raster data (outside the DEM grid / every raster)
    unusable_ids: list = field(default_factory=list)
    grid: GridReport | None = None  # with a DEM
    lulc_legend: LegendReport | None = None  # with a land-cover raster


def _name(crs: CRS) -> str:
    auth = crs.to_authority()
    return f"{auth[0]}:{auth[1]}" if auth else crs.name


def _pixel_m(crs: CRS, transform, lat: float) -> tuple[float, float]:
    """Pixel size (x, y) in metres; for a geographic CRS at latitude ``lat``."""
    rx, ry = abs(transform.a), abs(transform.e)
    if crs.is_geographic:
        return (rx * METRES_PER_DEGREE * math.cos(math.radians(lat)), ry * METRES_PER_DEGREE)
    factor = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
    return rx * factor, ry * factor


def inspect_inputs(points: Path | str, dem: Path | str | None = None,
                   lulc: Path | str | None = None, amplitude: Path | str | None = None,
                   crs=None, label: str | None = None, *, strict: bool = True,
                   pixel_m: float | None = None, lulc_legend: str | None = "auto",
                   schema: PointSchema | None = None) -> InspectReport:
    """Read the points and open the rasters given; collect what a user should check.

    Args:
        points: point file (any format :func:`read_points` reads).
        dem, lulc, amplitude: rasters, each optional.
        crs: CRS of the points when the file has none (see :func:`read_points`).
        label: training-label column (default ``reliable`` when present).
        strict: raise :class:`PointsOutsideRasters` when points have no raster data (outside
            the DEM grid, or without a DEM outside every raster); otherwise only count them.
        pixel_m: the model's pixel size (m) for the grid report; None: the DEM's own grid
            (a model grid at the DEM's resolution for a geographic DEM).
        lulc_legend: land-cover legend to check the codes against; ``"auto"`` (default)
            detects it and reports, without raising, when it cannot; None: none.
        schema: column map and units of the points (``--columns``, ``--units``).
    """
    paths = {k: Path(v) for k, v in (("dem", dem), ("lulc", lulc), ("amplitude", amplitude))
             if v is not None}
    sources = {}
    grid = None
    legend = None
    try:
        for name, p in paths.items():
            sources[name] = open_raster(p, name)
        cloud = read_points(points, crs=crs, label=label, schema=schema)
        if "dem" in sources:  # the grid patches are sampled on: its CRS is the stack's
            grid = stack_grid(sources["dem"], pixel_m, crs=cloud.source_crs.to_wkt())
            target = CRS.from_user_input(grid.crs.to_wkt())
        else:
            ref = next((s for s in sources.values() if s.crs.is_projected), None)
            target = CRS.from_user_input(ref.crs.to_wkt()) if ref is not None else None
        cloud = _reproject(cloud, target)
        sx, sy = cloud.source_xy
        lat = _mean_latitude(cloud)
        ref_px = (grid.pixel_m, grid.pixel_m) if grid is not None else None
        rasters, inside, data_warnings = [], {}, []
        for name, src in sources.items():
            rcrs = CRS.from_user_input(src.crs.to_wkt())
            if rcrs.equals(cloud.source_crs):
                px, py = sx, sy
            else:
                px, py = Transformer.from_crs(cloud.source_crs, rcrs,
                                              always_xy=True).transform(sx, sy)
            inv = ~src.transform
            col = inv.a * np.asarray(px) + inv.b * np.asarray(py) + inv.c
            row = inv.d * np.asarray(px) + inv.e * np.asarray(py) + inv.f
            ok = (row >= 0) & (row < src.height) & (col >= 0) & (col < src.width)
            own_px = float(np.mean(_pixel_m(rcrs, src.transform, lat)))
            margin = HALF_PATCH_PX * (float(np.mean(ref_px)) / own_px if ref_px else 1.0)
            edge = np.minimum(np.minimum(row, src.height - row), np.minimum(col, src.width - col))
            inside[name] = ok
            on = np.flatnonzero(ok)[sample_rows(int(ok.sum()))]
            judge_nodata(paths[name], name, _nodata_under(src, paths[name], px, py, on),
                         len(on), data_warnings.append)
            rasters.append(RasterReport(
                name=name, path=paths[name], crs=_name(rcrs),
                res=(float(abs(src.transform.a)), float(abs(src.transform.e))),
                units="degree" if rcrs.is_geographic else "m",
                bounds=tuple(float(v) for v in src.bounds), shape=(src.height, src.width),
                dtype=src.dtypes[0], nodata=None if src.nodata is None else float(src.nodata),
                outside=int((~ok).sum()), near_edge=int((ok & (edge < margin)).sum()),
                margin_px=margin))
        if "lulc" in sources and lulc_legend is not None:
            legend = _legend_report(sources["lulc"], grid, lulc_legend)
    finally:
        for s in sources.values():
            s.close()

    unusable = np.zeros(len(cloud), dtype=bool)
    if "dem" in inside:
        unusable, where = ~inside["dem"], f"the DEM grid ({paths['dem'].name})"
    elif inside:
        unusable = ~np.logical_or.reduce(list(inside.values()))
        where = "every raster (" + ", ".join(p.name for p in paths.values()) + ")"
    if strict and unusable.any():
        raise PointsOutsideRasters(cloud.path, int(unusable.sum()), len(cloud),
                                   cloud.ids[unusable], where)
    report = _report(cloud, rasters, unusable)
    report.warnings += data_warnings
    report.grid = _grid_report(grid) if grid is not None else None
    report.lulc_legend = legend
    return report


def _nodata_under(src, path: Path, px, py, rows: np.ndarray) -> int:
    """How many of ``rows`` have nodata (or NaN) under them in ``src``, read from its data: a
    truncated or corrupt file fails here, naming it, not later in ``predict``."""
    if len(rows) == 0:
        return 0
    try:
        xy = zip(np.asarray(px)[rows], np.asarray(py)[rows], strict=True)
        arr = np.ma.concatenate(list(src.sample(xy, indexes=1, masked=True)))
    except rasterio.errors.RasterioError as exc:
        raise UnreadableFile(path, f"cannot read its data ({first_line(exc)})") from None
    bad = np.ma.getmaskarray(arr) | ~np.isfinite(np.ma.getdata(arr).astype(np.float64))
    return int(bad.sum())


def _reproject(cloud: PointCloud, target: CRS | None) -> PointCloud:
    """The cloud with ``x``/``y`` in ``target`` (as :func:`read_points` with ``target_crs``)."""
    if target is None or target.equals(cloud.source_crs):
        return cloud
    tr = Transformer.from_crs(cloud.source_crs, target, always_xy=True)
    x, y = (np.asarray(v, np.float64) for v in tr.transform(*cloud.source_xy))
    bad = ~(np.isfinite(x) & np.isfinite(y))
    if bad.any():
        raise InvalidValues(cloud.path, "geometry", int(bad.sum()),
                            f"points that cannot be transformed to {_name(target)}",
                            cloud.ids[bad])
    return replace(cloud, x=x, y=y, crs=target)


def _grid_report(grid: Grid) -> GridReport:
    origin = {"legacy": "the DEM's grid", "dem": "the DEM's CRS", "given": "the points' CRS",
              "utm": f"{utm_zone_name(grid.crs)} chosen for a geographic DEM"}[grid.crs_source]
    return GridReport(crs=_name(CRS.from_user_input(grid.crs.to_wkt())), pixel_m=grid.pixel_m,
                      shape=grid.shape, origin=origin)


def _legend_report(src, grid: Grid | None, lulc_legend: str) -> LegendReport:
    """Codes of a decimated read of the LULC raster (over the grid when there is one) and the
    legend they follow."""
    codes = overview_codes(src, grid.bounds, grid.crs) if grid is not None \
        else overview_codes(src)
    candidates = legends.legend_candidates(codes)
    if str(lulc_legend).strip().lower() == "auto":
        name, how = legends.detect_legend(codes), "detected"
        if name is None:
            how = "not detected"
    else:
        name, how = legends.canonical(lulc_legend), "given"
    unknown = legends.unknown_codes(codes, name) if name is not None else []
    return LegendReport(legend=name, how=how, codes=codes, candidates=candidates,
                        unknown=unknown)


def _mean_latitude(cloud: PointCloud) -> float:
    if cloud.source_crs.is_geographic:
        return float(np.mean(cloud.source_xy[1]))
    tr = Transformer.from_crs(cloud.source_crs, "EPSG:4326", always_xy=True)
    step = max(1, len(cloud) // 1000)
    _, lat = tr.transform(cloud.source_xy[0][::step], cloud.source_xy[1][::step])
    lat = np.asarray(lat)
    return float(np.mean(lat[np.isfinite(lat)])) if np.isfinite(lat).any() else 0.0


def _report(cloud: PointCloud, rasters: list[RasterReport], unusable: np.ndarray
            ) -> InspectReport:
    d = cloud.dates
    spacing = float(np.median(np.diff(d).astype(np.int64))) if len(d) > 1 else None
    h = cloud.height_m
    hr = None
    if h is not None and np.isfinite(h).any():
        hr = (float(np.nanmin(h)), float(np.nanmax(h)))
    labels = None
    if cloud.labels is not None:
        labels = (int((cloud.labels == 1).sum()), int((cloud.labels == 0).sum()))
    return InspectReport(
        points=cloud.path, n_points=len(cloud), source_crs=_name(cloud.source_crs),
        crs=_name(cloud.crs), crs_origin=cloud.crs_origin, roles=dict(cloud.roles),
        profile=_profile_text(cloud.profile), units=_units_text(cloud),
        series_columns=cloud.series_columns, n_dates=len(d),
        first_date=str(d[0]) if len(d) else None, last_date=str(d[-1]) if len(d) else None,
        median_spacing_days=spacing,
        velocity_range=(float(cloud.velocity_mm_yr.min()), float(cloud.velocity_mm_yr.max())),
        coherence_range=(float(cloud.coherence.min()), float(cloud.coherence.max())),
        height_range=hr, labels=labels, warnings=list(cloud.warnings), rasters=rasters,
        unusable=int(unusable.sum()), unusable_ids=list(cloud.ids[unusable][:5]))


def _profile_text(name: str | None) -> str | None:
    return None if name is None else f"{profile_named(name).title} ({name})"


def _units_text(cloud: PointCloud) -> str:
    if cloud.units == "mm":
        why = "" if cloud.units_origin == "default" else f" ({cloud.units_origin})"
        return f"mm/yr and mm{why}"
    return f"m/yr and m ({cloud.units_origin}), converted to mm/yr and mm"


def format_report(report: InspectReport) -> str:
    """The report as aligned plain-text lines."""
    r = report
    lines = [f"points     {r.points}: {r.n_points:,} points"]
    crs = f"{r.source_crs} ({r.crs_origin})"
    lines.append(f"CRS        {crs}" + (f" → {r.crs}" if r.crs != r.source_crs else ""))
    lines.append(f"profile    {r.profile or 'none recognised (columns found by name)'}")
    roles = [f"{role} ← {r.roles[role]}" for role in
             ("velocity", "coherence", "height", "id", "label", "x", "y") if role in r.roles]
    if "height" not in r.roles:
        roles.append("height ← none (DEM used)")
    lines.append("columns    " + ", ".join(roles))
    if r.n_dates:
        sp = f", median spacing {r.median_spacing_days:g} days" if r.median_spacing_days else ""
        lines.append(f"series     {r.n_dates} dates, {r.first_date} … {r.last_date}{sp} "
                     f"(columns {r.series_columns[0]} … {r.series_columns[-1]})")
    else:
        lines.append("series     none")
    lines.append(f"units      {r.units}")
    lo, hi = r.velocity_range
    lines.append(f"velocity   {lo:.2f} … {hi:.2f} mm/yr")
    lo, hi = r.coherence_range
    lines.append(f"coherence  {lo:.3f} … {hi:.3f}")
    if r.height_range:
        lines.append(f"height     {r.height_range[0]:.1f} … {r.height_range[1]:.1f} m")
    if r.labels:
        lines.append(f"labels     {r.labels[0]:,} reliable, {r.labels[1]:,} unreliable")
    if r.rasters:
        lines.append("rasters")
        rows = [("layer", "CRS", "pixel", "extent (left, bottom, right, top)", "size", "dtype",
                 "nodata", "outside", "near edge")]
        for x in r.rasters:
            unit = "°" if x.units == "degree" else " m"
            rows.append((
                x.name, x.crs, f"{x.res[0]:g} x {x.res[1]:g}{unit}",
                ", ".join(f"{v:.10g}" for v in x.bounds), f"{x.shape[1]} x {x.shape[0]}",
                x.dtype, "none" if x.nodata is None else f"{x.nodata:g}",
                f"{x.outside:,}", f"{x.near_edge:,} (< {x.margin_px:.3g} px)"))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
                         .rstrip())
        if r.unusable:
            ids = ", ".join(map(str, r.unusable_ids))
            lines.append(f"  {r.unusable:,} points have no raster data (first ids: {ids})")
    if r.grid:
        g = r.grid
        lines.append(f"grid       {g.crs} ({g.origin}), {g.pixel_m:g} m pixels, "
                     f"{g.shape[1]} x {g.shape[0]}")
    if r.lulc_legend:
        lg = r.lulc_legend
        codes = _codes(lg.codes)
        if lg.legend is None:
            why = (f"fits {' and '.join(lg.candidates)}" if lg.candidates
                   else "no known legend has all of them")
            lines.append(f"land cover legend not detected (codes {codes}; {why}); known: "
                         f"{', '.join(legends.LEGENDS)}")
        else:
            lines.append(f"land cover {lg.legend} ({lg.how}; codes {codes})")
            if lg.unknown:
                lines.append(f"  codes not in the {lg.legend} legend: {_codes(lg.unknown)}")
    if r.warnings:
        lines.append("warnings")
        lines += [f"  - {w}" for w in r.warnings]
    return "\n".join(lines)


def _codes(codes: list[int], most: int = 16) -> str:
    return (", ".join(map(str, codes[:most])) + (" …" if len(codes) > most else "")) or "none"
