"""Which column is which: the user's column map (``--columns``) and units (``--units``).

A PSI export names its columns as its producer likes. :func:`psirel.io.points.read_points`
finds each role by alias (:mod:`psirel.io.columns`), by the profile of a recognised export
(:mod:`psirel.io.profiles`), or, winning over both, by the :class:`PointSchema` a user gives::

    psirel predict ... --columns x=pnt_lon,y=pnt_lat,velocity=pnt_linear,series=d_ --units m

Roles: ``x``, ``y`` (the coordinate columns of a file without geometry), ``id``, ``velocity``
(line of sight), ``coherence`` (0..1), ``height`` (m), ``label`` (1 reliable / 0 unreliable),
and ``series=PREFIX``: the displacement columns are named PREFIX + YYYYMMDD. ``units`` is the
unit of the velocity and of the series: ``mm`` (mm/yr and mm) or ``m`` (m/yr and m, converted
to mm by ×1000 in float64, before the float32 cast, so nothing is lost).

The schema is a small frozen dataclass of strings: it pickles to Dask workers
(:class:`psirel.infer.tiling.TileTask`), and :meth:`PointSchema.to_json` goes into a run's key
so that a changed mapping never resumes stale results.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from psirel.errors import ColumnMapError

ROLES = ("x", "y", "id", "velocity", "coherence", "height", "label")
SERIES = "series"
UNITS = ("mm", "m")
METRES_TO_MM = 1000.0  # m → mm, m/yr → mm/yr


@dataclass(frozen=True)
class PointSchema:
    """How to read a point file's columns; the default (empty) schema leaves every role to the
    profiles and aliases.

    Attributes:
        columns: ``(role, column)`` pairs, one per role, kept in :data:`ROLES` order (so two
            schemas naming the same columns are equal whatever the order they were given in).
            Column names match case-insensitively.
        series_prefix: the time-series columns are ``series_prefix + YYYYMMDD``; None: the
            profile's convention, else ``DYYYYMMDD`` or bare ``YYYYMMDD``.
        units: ``"mm"`` or ``"m"`` for the velocity and the series; None: the profile's units,
            else mm unless the values look like metres (then converted, with a warning).

    Invalid content raises :class:`~psirel.errors.ColumnMapError`.
    """

    columns: tuple[tuple[str, str], ...] = ()
    series_prefix: str | None = None
    units: str | None = None

    def __post_init__(self):
        seen: dict[str, str] = {}
        by_name: dict[str, str] = {}
        for role, name in self.columns:
            if role not in ROLES:
                raise ColumnMapError("--columns", f"unknown role '{role}' (roles: "
                                     f"{', '.join(ROLES)}, {SERIES}=PREFIX)")
            if role in seen:
                raise ColumnMapError("--columns", f"role '{role}' is given twice ('{seen[role]}' "
                                     f"and '{name}')")
            if not name:
                raise ColumnMapError("--columns", f"role '{role}' names no column")
            other = by_name.get(name.lower())
            if other is not None:
                raise ColumnMapError("--columns", f"column '{name}' is mapped to both {other} "
                                     f"and {role}")
            seen[role], by_name[name.lower()] = name, role
        if ("x" in seen) != ("y" in seen):
            raise ColumnMapError("--columns", "map both x and y (or neither): only "
                                 f"{'x' if 'x' in seen else 'y'} is given")
        if self.units is not None and self.units not in UNITS:
            raise ColumnMapError("--units", f"'{self.units}': choose mm or m")
        ordered = tuple(sorted(self.columns, key=lambda rc: ROLES.index(rc[0])))
        object.__setattr__(self, "columns", ordered)

    def column(self, role: str) -> str | None:
        """The column mapped to ``role``, or None."""
        return self.mapping.get(role)

    @property
    def mapping(self) -> dict[str, str]:
        """Role → column, as given."""
        return dict(self.columns)

    @property
    def is_default(self) -> bool:
        """True when nothing is mapped and no units are set."""
        return not self.columns and self.series_prefix is None and self.units is None

    def with_units(self, units: str | None) -> PointSchema:
        """The same mapping with ``units`` pinned (a tiled run pins the units the whole cloud
        was read with, so that no tile decides differently from its few points)."""
        return replace(self, units=units)

    def to_json(self) -> dict:
        """A JSON-able dict (for run keys and model records); :meth:`from_json` inverts it."""
        return {"columns": self.mapping, "series": self.series_prefix, "units": self.units}

    @classmethod
    def from_json(cls, d: dict | None) -> PointSchema:
        d = d or {}
        return cls(columns=tuple((d.get("columns") or {}).items()),
                   series_prefix=d.get("series"), units=d.get("units"))

    def __str__(self) -> str:
        parts = [f"{r}={c}" for r, c in self.columns]
        if self.series_prefix is not None:
            parts.append(f"{SERIES}={self.series_prefix}")
        text = ",".join(parts)
        if self.units is not None:
            text += (" " if text else "") + f"units={self.units}"
        return text or "default"


def parse_units(text: str | None, where: str = "--units") -> str | None:
    """``"mm"``, ``"m"`` or None (absent or empty); anything else is a
    :class:`~psirel.errors.ColumnMapError`."""
    if text is None or not str(text).strip():
        return None
    u = str(text).strip().lower()
    if u not in UNITS:
        raise ColumnMapError(where, f"'{text}': choose mm (mm/yr, mm) or m (m/yr, m)")
    return u


def parse_columns(text: str | None, units: str | None = None,
                  where: str = "--columns") -> PointSchema:
    """A :class:`PointSchema` from ``"ROLE=NAME,..."`` (``series=PREFIX`` for the dates) and a
    units word (see :func:`parse_units`).

    ``parse_columns("x=pnt_lon,y=pnt_lat,velocity=pnt_linear,series=d_", "m")``. Roles are
    case-insensitive, names are kept as given (and matched case-insensitively). Every mistake
    is a one-line :class:`~psirel.errors.ColumnMapError` naming the entry (``where`` names the
    option or the file it came from).
    """
    u = parse_units(units, "--units" if where == "--columns" else where)
    columns: list[tuple[str, str]] = []
    prefix = None
    seen_series = False
    for token in (text or "").split(","):
        tok = token.strip()
        if not tok:
            continue
        if "=" not in tok:
            raise ColumnMapError(where, f"'{tok}' is not ROLE=NAME (e.g. velocity=VEL)")
        role, name = (s.strip() for s in tok.split("=", 1))
        role = role.lower()
        if role == SERIES:
            if seen_series:
                raise ColumnMapError(where, f"role '{SERIES}' is given twice")
            seen_series, prefix = True, name
            continue
        if role not in ROLES:
            raise ColumnMapError(where, f"unknown role '{role}' in '{tok}' (roles: "
                                 f"{', '.join(ROLES)}, {SERIES}=PREFIX)")
        if not name:
            raise ColumnMapError(where, f"'{tok}' names no column")
        columns.append((role, name))
    try:
        return PointSchema(columns=tuple(columns), series_prefix=prefix, units=u)
    except ColumnMapError as exc:
        if where == "--columns":
            raise
        raise ColumnMapError(where, str(exc).split(": ", 1)[-1]) from None
