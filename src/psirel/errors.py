"""User-facing errors: one exception type per kind of user mistake.

Every message names the file, the column or the offending point ids, fits on one line, and is
printed by the CLI as ``error: <message>`` with a non-zero exit code (never a traceback).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of ``exc``'s message, at most ``limit`` characters, for a one-line error
    (the exception's type name when the message is empty)."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:limit]


class PsirelError(Exception):
    """Base class of every error a user can cause. ``exit_code`` is what the CLI returns."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))  # always one line


class InputFileNotFound(PsirelError):
    def __init__(self, path: Path | str, what: str = "file"):
        super().__init__(f"{path}: {what} not found")


class UnreadableFile(PsirelError):
    def __init__(self, path: Path | str, reason: str):
        super().__init__(f"{path}: cannot be read ({reason})")


class UnsupportedFormat(PsirelError):
    def __init__(self, path: Path | str, supported: Sequence[str]):
        super().__init__(
            f"{path}: unsupported format '{Path(path).suffix}' (supported: {', '.join(supported)})"
        )


class MissingCRS(PsirelError):
    def __init__(self, path: Path | str, hint: str = ""):
        msg = f"{path}: no coordinate reference system"
        super().__init__(msg + (f"; {hint}" if hint else ""))


class MissingColumn(PsirelError):
    def __init__(self, path: Path | str, role: str, aliases: Sequence[str], found: Sequence[str]):
        shown = ", ".join(list(found)[:12]) + (" …" if len(found) > 12 else "")
        super().__init__(
            f"{path}: no {role} column (looked for {', '.join(aliases)}; found {shown})"
        )


class InvalidValues(PsirelError):
    """NaN, infinite or implausible values in a column."""

    def __init__(self, path: Path | str, column: str, count: int, what: str, ids: Sequence = ()):
        first = f" (first ids: {', '.join(map(str, list(ids)[:5]))})" if len(ids) else ""
        super().__init__(f"{path}: column '{column}' has {count} {what}{first}")


class InvalidColumn(PsirelError):
    """A column whose name or content cannot be used (a malformed date name, non-numbers)."""

    def __init__(self, path: Path | str, column: str, reason: str):
        super().__init__(f"{path}: column '{column}' {reason}")


class NotPoints(PsirelError):
    """A vector file whose geometries are not (single) points."""

    def __init__(self, path: Path | str, found: str):
        super().__init__(f"{path}: geometries must be points, found {found}")


class EmptyCloud(PsirelError):
    def __init__(self, path: Path | str, where: str = ""):
        super().__init__(f"{path}: contains no points" + (f" {where}" if where else ""))


class PointsOutsideRasters(PsirelError):
    def __init__(self, path: Path | str, count: int, total: int, ids: Sequence, rasters: str):
        first = ", ".join(map(str, list(ids)[:5]))
        super().__init__(
            f"{path}: {count} of {total} points lie outside {rasters} (first ids: {first})"
        )


class PathError(PsirelError):
    """A problem with one file or folder: ``"<path>: <reason>"``."""

    def __init__(self, path: Path | str, reason: str):
        super().__init__(f"{path}: {reason}")


class RasterMismatch(PathError):
    """Rasters that do not fit together or with the points (grids, CRS, extents)."""


class NoRasterData(PathError):
    """A raster holds no data (nodata) under too many of the points to be trusted."""


class LandCoverLegendError(PsirelError):
    """A land-cover legend that is unknown, or that cannot be told from a raster's codes."""

    def __init__(self, path: Path | str | None, reason: str):
        super().__init__(f"{path}: {reason}" if path is not None else reason)


class ModelError(PathError):
    """A model directory that is missing, corrupt, or does not match the data."""


class WorkDirMismatch(PsirelError):
    """A work dir that another run owns (another key: ``--restart`` clears it) or uses now."""

    def __init__(self, path: Path | str, reason: str, hint: str = "use --restart to clear it"):
        super().__init__(f"{path}: {reason}" + (f" ({hint})" if hint else ""))


class MissingExtra(PsirelError):
    def __init__(self, feature: str, extra: str):
        super().__init__(f"{feature} needs the '{extra}' extra: pip install 'psirel[{extra}]'")


class ColumnMapError(PathError):
    """A ``--columns`` / ``--units`` value that cannot be used (a malformed entry, an unknown
    role), or a mapping naming a column the file does not have."""


class UnwritableOutput(PsirelError):
    """An output whose folder cannot be created or written (checked before any long work)."""

    def __init__(self, path: Path | str, reason: str):
        super().__init__(f"{path}: cannot write the output there ({reason})")
