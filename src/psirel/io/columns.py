"""Column roles: which input column holds the velocity, the coherence, the time series ...

PSI exports name their columns in many ways. Every role has an ordered list of aliases, matched
case-insensitively; the first alias present wins. The lists include the 10-character forms a
shapefile leaves behind (``mean_velocity`` → ``mean_veloc``), so a cloud that went through a
shapefile is still recognised.

Time-series columns are named after their acquisition date: ``DYYYYMMDD`` (the usual PSI export
convention, shapefile-safe) or a bare ``YYYYMMDD`` (EGMS); a schema or profile may name another
prefix (DePSI: ``d_YYYYMMDD``) or SARPROZ's ``YY/MM/DD``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from psirel.errors import InvalidColumn

# Aliases in order of preference (contract: DESIGN §3). Shapefile-truncated forms come last.
ROLE_ALIASES: dict[str, tuple[str, ...]] = {
    "velocity": ("velocity", "vel", "mean_velocity", "v", "mean_veloc"),
    "coherence": ("coherence", "coh", "temporal_coherence", "temp_coh", "temporal_c"),
    "height": ("height", "hgt", "height_ortho", "height_wgs84", "height_ort", "height_wgs"),
    "id": ("pid", "id", "point_id", "code"),
    "label": ("reliable",),
    # Used only when coherence is missing (EGMS L3 / ortho export), see values.coherence;
    # ``rmse_ts`` in the EGMS releases from 2019-2023 on.
    "rmse": ("rmse", "rmse_ts"),
}

# Coordinate column pairs for files without a geometry (CSV, plain Parquet), in order of
# preference: a projected pair beats a geographic one (EGMS basic exports carry both).
XY_PAIRS: tuple[tuple[str, str], ...] = (
    ("x", "y"), ("easting", "northing"), ("east", "north"),
    ("lon", "lat"), ("longitude", "latitude"), ("long", "lat"), ("lng", "lat"),
)
GEOGRAPHIC_PAIRS = frozenset({("lon", "lat"), ("longitude", "latitude"), ("long", "lat"),
                              ("lng", "lat")})

# Shapefile (dBASE) field names hold at most 10 characters. We launder names ourselves with the
# same rule as GDAL (truncate; on a clash ``name[:8]_1`` ...) so the written names are known
# and reported; our own output columns therefore become:
SHAPEFILE_NAME_LIMIT = 10
OUTPUT_COLUMNS = ("reliability", "reliability_std", "reliable_pred")
# Their shapefile names, chosen rather than laundered ("reliabil_1" would say nothing):
SHAPEFILE_OUTPUT_NAMES = {"reliability": "reliabilit", "reliability_std": "rel_std",
                          "reliable_pred": "reliable_p"}

_DATE_RE = re.compile(r"^[Dd]?(\d{8})$")
# Date styles of time-series column names: the name → its YYYYMMDD digits.
DATE_STYLES = ("yyyymmdd", "yy/mm/dd")
_SARPROZ_RE = re.compile(r"^(\d{2})[./-](\d{2})[./-](\d{2})$")  # YY/MM/DD, this century


def match_column(names: Sequence[str], aliases: Sequence[str]) -> str | None:
    """The column of ``names`` matching the earliest alias (case-insensitive), or None."""
    lower: dict[str, str] = {}
    for n in names:
        lower.setdefault(n.strip().lower(), n)
    for a in aliases:
        if a in lower:
            return lower[a]
    return None


def match_role(names: Sequence[str], role: str) -> str | None:
    """The column holding ``role`` (a key of :data:`ROLE_ALIASES`), or None."""
    return match_column(names, ROLE_ALIASES[role])


def match_xy(names: Sequence[str]) -> tuple[str, str, bool] | None:
    """``(x_column, y_column, geographic)`` of the first coordinate pair present, or None."""
    for xa, ya in XY_PAIRS:
        xc, yc = match_column(names, (xa,)), match_column(names, (ya,))
        if xc is not None and yc is not None:
            return xc, yc, (xa, ya) in GEOGRAPHIC_PAIRS
    return None


def date_digits(name: str, prefix: str | None = None, style: str = "yyyymmdd") -> str | None:
    """The ``YYYYMMDD`` of a time-series column name, or None when it is not one.

    ``prefix`` None: ``DYYYYMMDD`` or bare ``YYYYMMDD``; else ``prefix + YYYYMMDD`` (prefix
    matched case-insensitively). ``style="yy/mm/dd"``: SARPROZ's ``YY/MM/DD`` (also with ``.``
    or ``-``), years 2000-2099.
    """
    n = name.strip()
    if style == "yy/mm/dd":
        m = _SARPROZ_RE.match(n)
        return f"20{m.group(1)}{m.group(2)}{m.group(3)}" if m else None
    if prefix is None:
        m = _DATE_RE.match(n)
        return m.group(1) if m else None
    if n[:len(prefix)].lower() != prefix.lower():
        return None
    rest = n[len(prefix):]
    return rest if len(rest) == 8 and rest.isdigit() else None


def date_columns(names: Sequence[str], path: Path | str = "", prefix: str | None = None,
                 style: str = "yyyymmdd") -> list[tuple[str, np.datetime64]]:
    """Time-series columns and their dates, sorted by date (names as in :func:`date_digits`).

    A name of the form ``DYYYYMMDD`` or ``YYYYMMDD`` that is not a calendar date (``D20201345``)
    is an error rather than silently becoming an attribute, and so is the same date twice.
    """
    found: list[tuple[str, np.datetime64]] = []
    for n in names:
        s = date_digits(n, prefix, style)
        if s is None:
            continue
        try:
            d = np.datetime64(f"{s[:4]}-{s[4:6]}-{s[6:]}", "D")
        except ValueError:
            raise InvalidColumn(path, n, "looks like a date (YYYYMMDD) but is not a calendar "
                                "date") from None
        found.append((n, d))
    found.sort(key=lambda t: t[1])
    for (a, da), (b, db) in zip(found, found[1:], strict=False):
        if da == db:
            raise InvalidColumn(path, b, f"repeats the date of column '{a}'")
    return found


def shapefile_names(names: Sequence[str]) -> list[str]:
    """Launder field names for a shapefile: at most 10 characters, unique (case-insensitive).

    Same rule as GDAL's shapefile driver, done here so we know the names we wrote (our own
    output columns take :data:`SHAPEFILE_OUTPUT_NAMES`): ``reliability`` → ``reliabilit``,
    ``mean_velocity_std`` after ``mean_velocity`` →
    ``mean_vel_1``. ``DYYYYMMDD`` (9 characters) is untouched.
    """
    out: list[str] = []
    taken: set[str] = set()
    for n in names:
        new = SHAPEFILE_OUTPUT_NAMES.get(n, n)[:SHAPEFILE_NAME_LIMIT]
        i = 1
        while new.lower() in taken:
            suffix = f"_{i}"
            new = n[:SHAPEFILE_NAME_LIMIT - len(suffix)] + suffix
            i += 1
        taken.add(new.lower())
        out.append(new)
    return out
