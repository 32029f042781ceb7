"""Write points: :class:`PointWriter` streams chunks into GPKG / SHP / FGB / CSV / GeoParquet
(the file appears only when the writer closes without error); :func:`write_predictions` writes
a cloud's input attributes plus the model's columns, in the input's CRS.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pyproj import CRS

from psirel.io.atomic import atomic_path
from psirel.io.formats import format_of
from psirel.io.sinks import check_columns, make_sink

if TYPE_CHECKING:
    from psirel.io.points import PointCloud


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
