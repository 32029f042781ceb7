"""Which column of one file holds which role: the user's schema, then the profile, then aliases.

:func:`resolve_columns` looks only at the column names (and, for profiles that need it, the
values) and returns a :class:`ColumnResolution`: the role → column map with where each came
from, the recognised profile, the time-series columns and their dates, the units when they are
known before looking at the values, and the CRS convention of the coordinates. A column the
schema names that is not in the file is a :class:`~psirel.errors.ColumnMapError` here; a role
that is missing altogether is reported by :func:`psirel.io.points.read_points` when it needs it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from psirel.errors import ColumnMapError, MissingColumn
from psirel.io.columns import GEOGRAPHIC_PAIRS, XY_PAIRS, date_columns, match_column, match_role
from psirel.io.profiles import Profile, find_column, match_profile
from psirel.io.schema import ROLES, PointSchema
from psirel.io.tables import RawTable

_LON = re.compile(r"lon|lng", re.IGNORECASE)
_LAT = re.compile(r"lat", re.IGNORECASE)


@dataclass
class ColumnResolution:
    """Where the roles of one file come from.

    Attributes:
        roles: role → column for every role found (``x``/``y`` only for a file without
            geometry; ``rmse`` when there is no coherence column).
        origin: role → ``"--columns"``, ``"--label"``, ``"profile"`` or ``"alias"``.
        profile: the recognised export, or None.
        series: the time-series columns and their dates, sorted by date.
        series_rule: how the series columns were chosen, in words (for messages).
        units: ``"mm"`` / ``"m"`` when the schema or the profile says, else None (detected
            from the values).
        units_origin: ``"--units"``, the profile's title, or ``""``.
        geographic: the coordinate columns are longitude / latitude.
        crs_convention: ``(crs, why)`` of the coordinates when the file declares none, or None.
    """

    roles: dict[str, str] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)
    profile: Profile | None = None
    series: list[tuple[str, np.datetime64]] = field(default_factory=list)
    series_rule: str = "DYYYYMMDD or YYYYMMDD"
    units: str | None = None
    units_origin: str = ""
    geographic: bool = False
    crs_convention: tuple[str, str] | None = None

    def set(self, role: str, column: str, origin: str) -> None:
        self.roles[role], self.origin[role] = column, origin


def _found(names: list[str]) -> str:
    return ", ".join(names[:12]) + (" …" if len(names) > 12 else "")


def _mapped(path: Path, names: list[str], role: str, column: str) -> str:
    """The file's column for a ``--columns`` entry (case-insensitive), or the error naming it."""
    c = match_column(names, (column.strip().lower(),))
    if c is None:
        raise ColumnMapError(path, f"no column '{column}' (--columns {role}={column}; found "
                                   f"{_found(names)})")
    return c


def resolve_columns(path: Path, table: RawTable, schema: PointSchema | None = None,
                    label: str | None = None) -> ColumnResolution:
    """Resolve every role of ``table`` (read from ``path``): ``schema`` first, then the
    recognised profile's roles where its columns exist, then the aliases of
    :mod:`psirel.io.columns`. ``label`` is the ``--label`` column (it must exist)."""
    schema = schema or PointSchema()
    names = list(table.columns)
    res = ColumnResolution(profile=match_profile(names, table.columns))
    given = {r: (_mapped(path, names, r, c), "--columns") for r, c in schema.columns}
    if label is not None:
        lc = match_column(names, (label.strip().lower(),))
        if lc is None:
            raise MissingColumn(path, "label", [label], names)
        if "label" in given and given["label"][0] != lc:
            raise ColumnMapError(path, f"--label {label} and --columns label="
                                       f"{schema.column('label')} name different columns")
        given["label"] = (lc, "--label")
    if table.x is not None and "x" in given:
        raise ColumnMapError(path, "has point geometry; --columns x=/y= name the coordinate "
                                   "columns of a CSV or plain Parquet file")
    prof = dict(res.profile.roles) if res.profile is not None else {}
    taken = {c.lower() for c, _ in given.values()}
    free = [n for n in names if n.lower() not in taken]  # a mapped column has one role only
    for role in ROLES:
        if role in given:
            res.set(role, *given[role])
        elif role in ("x", "y"):
            continue
        elif role in prof and find_column(free, prof[role]) is not None:
            res.set(role, find_column(free, prof[role]), "profile")
        else:
            c = match_role(free, role)
            if c is not None:
                res.set(role, c, "alias")
    if table.x is None:
        _coordinate_columns(res, free, prof, "x" in given)
    if "coherence" not in res.roles:
        r = match_role(free, "rmse")
        if r is not None:
            res.set("rmse", r, "alias")
    _series(path, res, names, schema)
    _units(res, schema)
    if res.profile is not None and res.profile.crs is not None:
        xy = f"{res.roles['x']}/{res.roles['y']}" if "x" in res.roles else "coordinates"
        res.crs_convention = (res.profile.crs, f"{res.profile.title} convention: {xy} → "
                                               f"{res.profile.crs}")
    return res


def _coordinate_columns(res: ColumnResolution, names: list[str], prof: dict[str, str],
                        mapped: bool) -> None:
    """x/y of a file without geometry: mapped, the profile's pair, or the first alias pair."""
    if mapped:
        xc, yc = res.roles["x"], res.roles["y"]
    elif "x" in prof and find_column(names, prof["x"]) and find_column(names, prof["y"]):
        xc, yc = find_column(names, prof["x"]), find_column(names, prof["y"])
        res.set("x", xc, "profile")
        res.set("y", yc, "profile")
    else:
        for xa, ya in XY_PAIRS:
            xc, yc = match_column(names, (xa,)), match_column(names, (ya,))
            if xc is not None and yc is not None:
                res.set("x", xc, "alias")
                res.set("y", yc, "alias")
                res.geographic = (xa, ya) in GEOGRAPHIC_PAIRS
                return
        return
    res.geographic = bool(_LON.search(xc) and _LAT.search(yc))


def _series(path: Path, res: ColumnResolution, names: list[str], schema: PointSchema) -> None:
    prefix, style = schema.series_prefix, "yyyymmdd"
    if prefix is None and res.profile is not None:
        prefix, style = res.profile.series_prefix, res.profile.date_style
    res.series = date_columns(names, path, prefix=prefix, style=style)
    if style == "yy/mm/dd":
        res.series_rule = "YY/MM/DD"
    elif prefix is not None:
        res.series_rule = f"{prefix}YYYYMMDD"
    if schema.series_prefix is not None and not res.series:
        raise ColumnMapError(path, f"no column named {prefix}YYYYMMDD (--columns series="
                                   f"{prefix}; found {_found(names)})")


def _units(res: ColumnResolution, schema: PointSchema) -> None:
    if schema.units is not None:
        res.units, res.units_origin = schema.units, "--units"
    elif res.profile is not None:
        res.units, res.units_origin = res.profile.units, f"{res.profile.title} profile"
