"""Partitioned output: a folder of GeoParquet parts, one per tile, and a ``manifest.json``.

Each part holds the core points of one tile (written by the task that scored it, so results
never pass through one process): every input attribute, ``input_row`` (the point's 0-based row in
the input file), ``reliability``, ``reliability_std`` and ``reliable_pred``, with the geometry
in the input's CRS. The
manifest, written last and atomically, lists the parts with their row counts, the CRS and the
columns; a folder without it is an unfinished run. :func:`read_parts` reassembles the input order.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pyproj import CRS

from psirel.errors import MissingExtra, PsirelError
from psirel.io.atomic import atomic_write_text

FORMAT = "psirel-parts/1"
MANIFEST = "manifest.json"
ROW_COLUMN = "input_row"


def part_name(tile: int) -> str:
    return f"part-{tile:06d}.parquet"


def check_parts_dir(path: Path, resuming: bool) -> None:
    """Refuse what cannot become a parts folder: pyarrow missing (the ``parquet`` extra), a file
    in the way, or a non-empty folder at the start of a fresh run (never mix two runs' parts)."""
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise MissingExtra("--partitioned (GeoParquet parts)", "parquet") from None
    if path.exists() and not path.is_dir():
        raise PsirelError(f"--out {path}: is a file; --partitioned writes a folder of parts")
    if not resuming and path.is_dir() and any(path.iterdir()):
        raise PsirelError(f"--out {path}: folder is not empty; give a new or empty folder for "
                          "the parts")


def write_manifest(path: Path, parts: list[dict], crs: CRS, extra: dict | None = None) -> Path:
    """Write ``path/manifest.json``: ``parts`` (``file``, ``tile``, ``rows`` ... each), the total
    row count, the CRS (as EPSG code when it has one, and WKT) and the columns of the first
    part (all parts share them)."""
    import pyarrow.parquet as pq

    columns = []
    if parts:
        schema = pq.read_schema(path / parts[0]["file"])
        columns = [{"name": f.name, "type": str(f.type)} for f in schema]
    auth = crs.to_authority()
    meta = {"format": FORMAT, "rows": int(sum(p["rows"] for p in parts)),
            "crs": f"{auth[0]}:{auth[1]}" if auth else None, "crs_wkt": crs.to_wkt(),
            "columns": columns, "parts": parts, **(extra or {})}
    atomic_write_text(path / MANIFEST, json.dumps(meta, indent=1) + "\n")
    return path / MANIFEST


def read_parts(path: Path | str, columns: list[str] | None = None) -> dict[str, np.ndarray]:
    """Every part of a finished parts folder as one table in input order (``{name: [N]}``;
    geometry as WKB). ``columns`` restricts what is read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    mf = path / MANIFEST
    if not mf.exists():
        raise PsirelError(f"{path}: no {MANIFEST} (not a finished partitioned output)")
    meta = json.loads(mf.read_text())
    cols = None if columns is None else list(dict.fromkeys([*columns, ROW_COLUMN]))
    tables = [pq.read_table(path / p["file"], columns=cols) for p in meta["parts"]]
    table = pa.concat_tables(tables)
    order = np.argsort(table.column(ROW_COLUMN).to_numpy(), kind="stable")
    return {name: table.column(name).to_numpy(zero_copy_only=False)[order]
            for name in table.column_names}
