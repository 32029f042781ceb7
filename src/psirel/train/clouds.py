"""Several labelled clouds in one training run: the clouds file, and statistics fitted on all.

``psirel train --clouds CLOUDS.csv`` names one cloud a row: columns ``points, dem, lulc,
amplitude`` and optionally ``label``, ``crs``, ``split`` (``train`` / ``val``), ``lulc_legend``,
``columns`` and ``units`` (as ``--columns`` and ``--units``: a column map holds commas, so it is
quoted, ``"x=pnt_lon,y=pnt_lat,series=d_"``); relative paths are relative to the CSV. Clouds may
differ in CRS, size, dates and raster products: each keeps its own rasters, series and graph,
and only what is pooled here (normalisation, edge scales, the land-cover vocabulary) is shared.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from psirel.baselines.data import PointData
from psirel.errors import PsirelError
from psirel.features.normalize import Normalizer
from psirel.features.normalize import _robust_centre_scale as robust_centre_scale
from psirel.graph.edges import EdgeScale
from psirel.io.schema import PointSchema, parse_columns

COLUMNS = ("points", "dem", "lulc", "amplitude")
OPTIONAL = ("label", "crs", "split", "lulc_legend", "columns", "units")
SPLITS = ("train", "val")


@dataclass(frozen=True)
class CloudSpec:
    """One labelled cloud and its rasters (paths as given, resolved against the CSV)."""

    points: Path
    dem: Path
    lulc: Path
    amplitude: Path
    label: str | None = None
    crs: str | None = None
    split: str | None = None          # "train", "val" or None (spatial blocks)
    lulc_legend: str | None = None
    schema: PointSchema | None = None  # the points' column map and units
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def files(self) -> dict[str, Path]:
        return {"points": self.points, "dem": self.dem, "lulc": self.lulc,
                "amplitude": self.amplitude}


def read_clouds_csv(path: Path | str) -> list[CloudSpec]:
    """Parse a clouds file; every problem is a one-line error naming the file and the row."""
    path = Path(path)
    if not path.is_file():
        raise PsirelError(f"{path}: clouds file not found")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            header = [h.strip().lower() for h in (reader.fieldnames or [])]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise PsirelError(f"{path}: cannot read the clouds file ({exc})") from None
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise PsirelError(f"{path}: clouds file lacks column(s) {', '.join(missing)} (needs "
                          f"{', '.join(COLUMNS)}; optional {', '.join(OPTIONAL)})")
    if not rows:
        raise PsirelError(f"{path}: clouds file lists no cloud")
    base = path.resolve().parent
    specs = []
    for i, raw in enumerate(rows, start=2):   # row 1 is the header
        if None in raw:  # csv.DictReader's key for fields beyond the header
            raise PsirelError(f"{path}: row {i} has more fields than the header (quote a "
                              "columns value that holds commas)")
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()}
        for c in COLUMNS:
            if not row.get(c):
                raise PsirelError(f"{path}: row {i} has no '{c}'")
        split = row.get("split") or None
        if split is not None and split.lower() not in SPLITS:
            raise PsirelError(f"{path}: row {i}: split '{split}' must be one of "
                              f"{', '.join(SPLITS)} (or empty)")
        files = {c: _resolve(base, row[c]) for c in COLUMNS}
        for c, p in files.items():
            if not p.exists():
                raise PsirelError(f"{path}: row {i}: {c} file {p} not found")
        schema = parse_columns(row.get("columns"), row.get("units"),
                               where=f"{path}: row {i}: columns/units")
        specs.append(CloudSpec(**files, label=row.get("label") or None,
                               crs=row.get("crs") or None,
                               split=None if split is None else split.lower(),
                               lulc_legend=row.get("lulc_legend") or None,
                               schema=None if schema.is_default else schema))
    if all(s.split == "val" for s in specs):
        raise PsirelError(f"{path}: every cloud is 'val': at least one must train")
    return specs


def _resolve(base: Path, p: str) -> Path:
    q = Path(p).expanduser()
    return q if q.is_absolute() else base / q


def uses_whole_clouds(specs: list[CloudSpec]) -> bool:
    """Validation on whole held-out clouds when any row says ``split=val``, else on spatial
    blocks of every cloud."""
    return any(s.split == "val" for s in specs)


def pool_normalizers(parts: list[Normalizer], counts: list[int], scalars_raw: np.ndarray
                     ) -> Normalizer:
    """One normaliser for several training clouds: the union of their land-cover
    vocabularies, the pooled (count-weighted) DEM and amplitude statistics, and the scalar
    statistics refitted on every training cloud's rows ``scalars_raw`` together."""
    first = parts[0]
    if len(parts) == 1:
        return first
    w = np.asarray(counts, np.float64) / max(sum(counts), 1)
    dem_std = float(np.sqrt(np.sum(w * np.array([p.dem_rel_std_m for p in parts]) ** 2)))
    means = np.array([p.amp_db_mean for p in parts])
    amp_mean = float(np.sum(w * means))
    amp_var = float(np.sum(w * (np.array([p.amp_db_std for p in parts]) ** 2
                                + (means - amp_mean) ** 2)))
    centre, scale = robust_centre_scale(np.asarray(scalars_raw, np.float64), first.scalar_names)
    codes = sorted({int(c) for p in parts for c in p.lulc_codes})
    d = first.to_json()
    d.update(lulc_codes=codes, dem_rel_std_m=dem_std or 1.0, amp_db_mean=amp_mean,
             amp_db_std=float(np.sqrt(amp_var)) or 1.0, scalar_mean=centre.tolist(),
             scalar_std=scale.tolist())
    return Normalizer.from_json(d)


def pool_edge_scales(parts: list[EdgeScale], counts: list[int]) -> EdgeScale:
    """Count-weighted mean of each cloud's robust edge scales (``xy_m`` is r_max, shared)."""
    if len(parts) == 1:
        return parts[0]
    w = np.asarray(counts, np.float64) / max(sum(counts), 1)
    d = {k: float(np.sum(w * np.array([p.to_json()[k] for p in parts])))
         for k in parts[0].to_json()}
    return EdgeScale.from_json(d)


def concat_point_data(parts: list[PointData]) -> PointData:
    """The baselines' rows of several clouds as one table: neighbour indices offset (graphs
    stay within their cloud), series padded with NaN (missing dates) to the longest."""
    if len(parts) == 1:
        return parts[0]
    t = max(p.series_mm.shape[1] for p in parts)
    offsets = np.cumsum([0] + [p.n_points for p in parts[:-1]])
    series = [np.pad(p.series_mm, ((0, 0), (0, t - p.series_mm.shape[1])),
                     constant_values=np.nan) for p in parts]
    return PointData(
        x_m=np.concatenate([p.x_m for p in parts]),
        y_m=np.concatenate([p.y_m for p in parts]),
        velocity_mm_yr=np.concatenate([p.velocity_mm_yr for p in parts]),
        coherence=np.concatenate([p.coherence for p in parts]),
        series_mm=np.concatenate(series),
        series_feats=np.concatenate([p.series_feats for p in parts]),
        series_feat_names=parts[0].series_feat_names,
        nbr_idx=np.concatenate([p.nbr_idx + o for p, o in zip(parts, offsets, strict=True)]),
        nbr_mask=np.concatenate([p.nbr_mask for p in parts]),
        patch_stats=np.concatenate([p.patch_stats for p in parts]),
        patch_stat_names=parts[0].patch_stat_names,
        slope_deg=np.concatenate([p.slope_deg for p in parts]),
        lulc_class=np.concatenate([p.lulc_class for p in parts]))
