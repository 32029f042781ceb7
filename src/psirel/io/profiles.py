"""The exports users have: each processor's column names, units and CRS convention.

A :class:`Profile` is recognised from a file's column names (:func:`match_profile`), in any
format: an export converted to another format (a DePSI CSV written back as GeoPackage) keeps its
names and its units, so it is still recognised. Its ``roles`` apply where those columns exist
(a role mapped with ``--columns`` wins; a role a profile does not name falls back to the
aliases of :mod:`psirel.io.columns`), its ``units`` unless ``--units`` is given, its ``crs``
when the file declares none, and its time-series convention unless ``series=`` is mapped.

Names are matched case-insensitively, and also in the 10-character form a shapefile leaves
(``temporal_coherence`` → ``temporal_c``). When several profiles fit, the one with the longest
signature wins (EGMS L2 over L3; MintPy over TRE when its constant fields say so).

Sources of the column names (the fixtures of ``tests/io/test_profiles.py`` follow them):

- EGMS L2a/L2b and L3: the Copernicus EGMS product user manual's CSV layout, as in the files
  downloaded from https://egms.land.copernicus.eu (a zip holding the CSV and an XML file).
- TRE ALTAMIRA SqueeSAR shapefile: TRE's description of the delivered shapefile,
  http://www.treuropa.com/Home/ProductsandServices/MapVisualization/tabid/419/Default.aspx
- MintPy ``save_qgis``: insarlab/MintPy ``src/mintpy/save_qgis.py`` (EPSG:4326 shapefile,
  ``H_STDEV`` written as 0 and ``EFF_AREA`` as 1 for every point, VEL and D<date> in mm).
- SARvey ``sarvey_export``: luhipi/sarvey ``sarvey/sarvey_export.py`` (EPSG:4326, names cut
  to 10 characters, velocity mm/yr, ``D<date>`` mm).
- DePSI (TU Delft) CSV: the layout of TUDelftGeodesy/stmtools ``tests/data/example.csv``
  (``pnt_*`` columns, ``d_YYYYMMDD`` displacements in metres, ``pnt_linear`` in m/yr).
- StaMPS: the CSV of the ``ps_export_gis.m`` script (``ps_plot('v-dao', 'ts')`` values:
  ``VLOS`` mm/yr, ``D<yyyymmdd>`` mm); StaMPS' own ``ps_output`` writes header-less text.
- SARPROZ sparse data export CSV: https://sarproz.com/manual/dbf_sito.html (ID, LAT, LON,
  SVET, LVET, HEIGHT, VEL mm/yr, COHER ...); its time-series columns are named ``YY/MM/DD``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from psirel.io.columns import SHAPEFILE_NAME_LIMIT


@dataclass(frozen=True)
class Profile:
    """One processor's export.

    Attributes:
        name: short identifier (``"depsi"``), shown by ``psirel inspect``.
        title: what it is, in words.
        signature: columns that must all be present to recognise it.
        roles: ``(role, column)`` pairs, applied where the column exists.
        units: ``"mm"`` or ``"m"``: the unit of its velocity (per year) and time series.
        series_prefix: its time-series columns are ``series_prefix + YYYYMMDD``; None: the
            default ``DYYYYMMDD`` / ``YYYYMMDD``.
        date_style: ``"yyyymmdd"`` or ``"yy/mm/dd"`` (SARPROZ), see
            :func:`psirel.io.columns.date_digits`.
        crs: CRS of its coordinates when the file declares none.
        absent: columns whose presence rules the profile out.
        formats: what the processor writes (for the report).
        check: a test of the column values that must pass too (None: names suffice).
    """

    name: str
    title: str
    signature: tuple[str, ...]
    roles: tuple[tuple[str, str], ...]
    units: str = "mm"
    series_prefix: str | None = None
    date_style: str = "yyyymmdd"
    crs: str | None = None
    absent: tuple[str, ...] = ()
    formats: tuple[str, ...] = ()
    check: Callable[[Mapping[str, np.ndarray]], bool] | None = field(default=None,
                                                                    compare=False)

    def matches(self, names: Sequence[str], columns: Mapping[str, np.ndarray]) -> bool:
        """True when every signature column is present, no ``absent`` one is and ``check``
        passes."""
        if not all(find_column(names, c) is not None for c in self.signature):
            return False
        if any(find_column(names, c) is not None for c in self.absent):
            return False
        return self.check is None or bool(self.check(columns))


def find_column(names: Sequence[str], wanted: str) -> str | None:
    """The column of ``names`` that is ``wanted`` (case-insensitive), or its 10-character
    shapefile form; None when absent."""
    lower = {n.strip().lower(): n for n in names}
    w = wanted.lower()
    return lower.get(w) or lower.get(w[:SHAPEFILE_NAME_LIMIT])


def _mintpy_constants(columns: Mapping[str, np.ndarray]) -> bool:
    """``save_qgis`` writes ``H_STDEV`` = 0 and ``EFF_AREA`` = 1 for every point; a TRE
    delivery has real values there."""
    names = list(columns)
    h, e = find_column(names, "H_STDEV"), find_column(names, "EFF_AREA")
    try:
        hv = np.asarray(columns[h], dtype=np.float64)
        ev = np.asarray(columns[e], dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return bool(np.all(hv == 0) and np.all(ev == 1))


_TRE_ROLES = (("id", "CODE"), ("velocity", "VEL"), ("coherence", "COHERENCE"),
              ("height", "HEIGHT"))
_OGR = ("ESRI Shapefile", "GPKG")

PROFILES: tuple[Profile, ...] = (
    Profile("egms-l2", "EGMS L2a/L2b (basic / calibrated) CSV",
            signature=("pid", "mean_velocity", "temporal_coherence", "amplitude_dispersion"),
            roles=(("id", "pid"), ("velocity", "mean_velocity"),
                   ("coherence", "temporal_coherence"), ("height", "height")),
            crs="EPSG:3035", formats=("CSV", "zip")),
    Profile("egms-l3", "EGMS L3 ortho (east-west / vertical) CSV",
            signature=("pid", "easting", "northing", "mean_velocity"),
            roles=(("id", "pid"), ("x", "easting"), ("y", "northing"),
                   ("velocity", "mean_velocity"), ("height", "height")),
            absent=("temporal_coherence",), crs="EPSG:3035", formats=("CSV", "zip")),
    Profile("tre", "TRE ALTAMIRA SqueeSAR shapefile",
            signature=("CODE", "HEIGHT", "VEL", "V_STDEV", "COHERENCE", "EFF_AREA"),
            roles=_TRE_ROLES, formats=("ESRI Shapefile",)),
    Profile("mintpy", "MintPy save_qgis export",
            signature=("CODE", "HEIGHT", "H_STDEV", "VEL", "V_STDEV", "COHERENCE", "EFF_AREA"),
            roles=_TRE_ROLES, crs="EPSG:4326", formats=_OGR, check=_mintpy_constants),
    Profile("sarvey", "SARvey sarvey_export",
            signature=("point_id", "velocity", "coherence", "omega", "dem_error", "dem"),
            roles=(("id", "point_id"), ("velocity", "velocity"), ("coherence", "coherence"),
                   ("height", "dem")),
            crs="EPSG:4326", formats=_OGR),
    Profile("depsi", "DePSI CSV (TU Delft)",
            signature=("pnt_id", "pnt_lat", "pnt_lon", "pnt_height", "pnt_enscoh",
                       "pnt_linear"),
            roles=(("x", "pnt_lon"), ("y", "pnt_lat"), ("id", "pnt_id"),
                   ("velocity", "pnt_linear"), ("coherence", "pnt_enscoh"),
                   ("height", "pnt_height")),
            units="m", series_prefix="d_", crs="EPSG:4326", formats=("CSV",)),
    Profile("stamps", "StaMPS ps_plot export (ps_export_gis CSV)",
            signature=("CODE", "LON", "LAT", "HEIGHT", "COHERENCE", "VLOS"),
            roles=(("x", "LON"), ("y", "LAT"), ("id", "CODE"), ("velocity", "VLOS"),
                   ("coherence", "COHERENCE"), ("height", "HEIGHT")),
            crs="EPSG:4326", formats=("CSV",)),
    Profile("sarproz", "SARPROZ sparse data export CSV",
            signature=("ID", "LAT", "LON", "SVET", "LVET", "VEL", "COHER"),
            roles=(("x", "LON"), ("y", "LAT"), ("id", "ID"), ("velocity", "VEL"),
                   ("coherence", "COHER"), ("height", "HEIGHT")),
            date_style="yy/mm/dd", crs="EPSG:4326", formats=("CSV",)),
)


def profile_named(name: str) -> Profile:
    """The built-in profile called ``name`` (KeyError when there is none)."""
    for p in PROFILES:
        if p.name == name:
            return p
    raise KeyError(name)


def match_profile(names: Sequence[str], columns: Mapping[str, np.ndarray] | None = None
                  ) -> Profile | None:
    """The built-in profile the columns ``names`` (values ``columns``, for the profiles that
    check values) fit best: the longest matching signature, the first listed on a tie; None
    when none fits."""
    columns = columns if columns is not None else {}
    best = None
    for p in PROFILES:
        if p.check is not None and not columns:
            continue
        if p.matches(names, columns) and (best is None or len(p.signature) > len(best.signature)):
            best = p
    return best
