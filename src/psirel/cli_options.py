"""The options several ``psirel`` commands share, and help texts drawn from the registries."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def registry_help(registry: dict) -> str:
    """A registry's choices for --help: "a (what it is) | b (...)"; the first is the default."""
    return " | ".join(f"{name} ({v if isinstance(v, str) else v.title})"
                      for name, v in registry.items())


PointsOpt = Annotated[Path, typer.Option("--points", help="Point cloud: .gpkg .shp .fgb .parquet "
                                                         ".csv (incl. EGMS CSV)")]
DemOpt = Annotated[Path, typer.Option("--dem", help="DEM (m), any CRS: resampled onto the "
                                                   "model's grid")]
LulcOpt = Annotated[Path, typer.Option("--lulc", help="Land-cover GeoTIFF (class codes)")]
AmpOpt = Annotated[Path, typer.Option("--amplitude", help="Mean SAR amplitude GeoTIFF")]
CrsOpt = Annotated[str | None, typer.Option("--crs", help="CRS of the points when the file has "
                                                          "none (e.g. EPSG:3035)")]
LabelOpt = Annotated[str | None, typer.Option("--label", help="Label column (1 reliable, "
                                                              "0 unreliable); default 'reliable'")]
ColumnsOpt = Annotated[str | None, typer.Option(
    "--columns", help="Which column holds which role, as ROLE=NAME,... (roles: x, y, id, "
                      "velocity, coherence, height, label; series=PREFIX for the PREFIX+YYYYMMDD "
                      "date columns), e.g. x=pnt_lon,y=pnt_lat,velocity=pnt_linear,series=d_; "
                      "wins over the recognised export's profile and the name aliases")]
UnitsOpt = Annotated[str | None, typer.Option(
    "--units", help="Units of the velocity and the time series: mm (mm/yr, mm) or m (m/yr, m; "
                    "converted to mm). Default: the recognised export's, else mm unless the "
                    "values look like metres (then converted, with a warning)")]
LegendOpt = Annotated[str | None, typer.Option(
    "--lulc-legend", help="Land-cover product of --lulc: worldcover | corine | nlcd | cci | "
                          "dynamic_world (default: its LULC_LEGEND tag, else detected from its "
                          "codes)")]
