"""Tiles with exact halos: cut the plane so that each tile's points can be scored on their own.

The plane is cut into square tiles of ``tile_m`` metres (DEM CRS); a tile's *core* points are
those whose cell it is, and it is scored with every point of its *outer box*: the bounding box of
its core points grown by the halo. Only the core points' predictions are kept.

Why a halo of H·r_max is exact (H = :meth:`~psirel.config.ModelConfig.receptive_hops`, GNN
layers + 1 with the edge summary): a point's output is fixed by its H-hop neighbourhood, in
which nodes of hop h < H need their full neighbour row and hop-H nodes only their (pointwise)
embedding.
:func:`~psirel.graph.knn.knn_table` keeps the k nearest *among the points within r_max*, so a
row is the whole-cloud row as soon as every point within r_max of its node is present; a hop-h
node lies within h·r_max of the core, so everything within (h + 1)·r_max ≤ H·r_max must be, and
the outer box holds it. Ties between equidistant neighbours are broken by index, so a tile keeps
its points in input order. Edge features depend only on the two end points and the model's
EdgeScale, scalar features only on the point: nothing depends on the subset.

:func:`run_tile` is the unit of work (a Dask task in :mod:`psirel.infer.distributed`): it reads
only the points inside its box (a spatial filter in GDAL for GPKG / SHP / FGB), runs both stages
on ONNX Runtime and returns, or writes, its core predictions. It never imports torch.
"""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from psirel.errors import ModelError, PsirelError
from psirel.infer.backends import make_backend
from psirel.infer.pipeline import output_columns, peak_rss_mb, predict_seeds
from psirel.infer.prepared import PreparedCloud, Timer
from psirel.io.formats import OGR_DRIVERS, read_format_of
from psirel.io.partitioned import part_name
from psirel.io.points import PointCloud, read_points, write_predictions
from psirel.io.rasters import RasterStack
from psirel.io.schema import PointSchema
from psirel.model_dir import MODEL_JSON, ModelCard, load_card, sha256_file

# Outer boxes grow by a hair more than the halo: a chain of H edges, each kept up to
# r_max·(1 + 1e-9) by the kNN, must never fall out of a box by rounding. More points never hurt.
HALO_SLACK = 1e-6
TILES_PER_WORKER = 4       # automatic tile size: at least this many tiles per worker (balance)
MIN_TILE_HALOS = 2.0       # ... and tiles at least 2 halos wide (halo overhead ≤ (1 + 2/2)² = 4)
TILE_MEMORY_SHARE = 0.5    # share of --memory-gb a tile's per-point arrays may take


def halo_for(card: ModelCard) -> float:
    """The exact halo of a model, metres: receptive hops × r_max (0 without graph)."""
    return card.receptive_hops() * card.features.r_max_m


def tile_bytes_per_point(n_dates: int, emb_dim: int, k: int) -> int:
    """Memory a tile holds per point, bytes: the file's columns as read (float64, series
    included), the float32 series, embeddings, scalars and the kNN table (idx, mask, dist)."""
    return 12 * n_dates + 4 * emb_dim + 13 * k + 400


# ---------------------------------------------------------------------------- the plan
@dataclass(eq=False)
class Tile:
    """One tile: its cell, its points (sorted input rows) and the box they were chosen by.

    Attributes:
        id: tile number, row-major over the grid.
        cell: ``(column, row)`` of the grid.
        rows: ``[m]`` int64 input rows of every point in ``box`` (core and halo), ascending.
        core: ``[m]`` bool, True for the tile's own points.
        box: ``(xmin, ymin, xmax, ymax)`` metres, DEM CRS: the core points' bounding box grown by
            the halo (inclusive).
    """

    id: int
    cell: tuple[int, int]
    rows: np.ndarray
    core: np.ndarray
    box: tuple[float, float, float, float]

    @property
    def n_core(self) -> int:
        return int(self.core.sum())

    @property
    def core_rows(self) -> np.ndarray:
        return self.rows[self.core]


@dataclass(eq=False)
class TilePlan:
    """Square tiles of ``tile_m`` metres from ``origin`` (the points' lower-left corner), the
    halo each is scored with, and the non-empty tiles."""

    tile_m: float
    halo_m: float
    origin: tuple[float, float]
    shape: tuple[int, int]  # (columns, rows)
    tiles: list[Tile] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"tile_m": self.tile_m, "halo_m": self.halo_m, "origin": list(self.origin),
                "shape": list(self.shape), "tiles": len(self.tiles)}


def in_box(x: np.ndarray, y: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """``[n]`` bool: inside ``box`` (inclusive). The driver and the tasks use this one test, so
    a task selects exactly the points its plan lists."""
    return (x >= box[0]) & (x <= box[2]) & (y >= box[1]) & (y <= box[3])


def auto_tile_m(x: np.ndarray, y: np.ndarray, halo_m: float, memory_gb: float, n_workers: int,
                bytes_per_point: int) -> float:
    """A tile side (metres) for ``n`` points over their bounding box.

    As large as ``TILE_MEMORY_SHARE`` of ``memory_gb`` allows for a tile with its halo at the
    mean density, but small enough for ``TILES_PER_WORKER`` tiles per worker; never under
    ``MIN_TILE_HALOS`` halos (the halo's points are read and embedded again by every tile that
    needs them). Rounded up to whole 10 m."""
    if not memory_gb > 0:
        raise PsirelError(f"--memory-gb {memory_gb}: must be positive")
    n = len(x)
    w = float(np.ptp(x)) if n else 0.0
    h = float(np.ptp(y)) if n else 0.0
    area = max(w, 1.0) * max(h, 1.0)
    density = max(n, 1) / area
    max_points = memory_gb * 2**30 * TILE_MEMORY_SHARE / bytes_per_point
    by_memory = math.sqrt(max_points / density) - 2 * halo_m
    by_balance = math.sqrt(area / (TILES_PER_WORKER * max(n_workers, 1)))
    side = max(min(by_memory, by_balance), MIN_TILE_HALOS * halo_m, 10.0)
    return float(math.ceil(side / 10.0) * 10.0)


def plan_tiles(x: np.ndarray, y: np.ndarray, tile_m: float, halo_m: float) -> TilePlan:
    """Cut the points ``x, y`` (``[N]`` metres) into tiles of ``tile_m`` with a ``halo_m`` halo.

    Every point is the core of exactly one tile (its grid cell); empty cells get no tile. A
    tile's points are gathered from the cells its box can reach, not by testing all N points.
    """
    if not (tile_m > 0 and math.isfinite(tile_m)):
        raise PsirelError(f"--tile-m {tile_m}: must be a positive number of metres")
    if not halo_m >= 0:
        raise PsirelError(f"halo {halo_m} m: must be >= 0")
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if not len(x):
        return TilePlan(float(tile_m), float(halo_m), (0.0, 0.0), (0, 0))
    x0, y0 = float(x.min()), float(y.min())
    ncols = int(np.floor((x.max() - x0) / tile_m)) + 1
    nrows = int(np.floor((y.max() - y0) / tile_m)) + 1
    ix = np.minimum(((x - x0) // tile_m).astype(np.int64), ncols - 1)
    iy = np.minimum(((y - y0) // tile_m).astype(np.int64), nrows - 1)
    cell = iy * ncols + ix
    by_cell = np.argsort(cell, kind="stable")
    sorted_cells = cell[by_cell]
    # only occupied cells are enumerated: a small --tile-m over a large extent has few of them
    occupied, starts = np.unique(sorted_cells, return_index=True)
    ends = np.append(starts[1:], len(sorted_cells))
    grow = halo_m * (1 + HALO_SLACK) + HALO_SLACK
    reach = int(np.ceil(grow / tile_m)) + 1  # cells a box can reach beyond its own
    tiles = []
    for c, start, end in zip(occupied.tolist(), starts, ends, strict=True):
        cx, cy = int(c % ncols), int(c // ncols)
        core = by_cell[start:end]
        box = (float(x[core].min() - grow), float(y[core].min() - grow),
               float(x[core].max() + grow), float(y[core].max() + grow))
        q0, q1 = max(cx - reach, 0), min(cx + reach, ncols - 1)
        near = []
        for r in range(max(cy - reach, 0), min(cy + reach + 1, nrows)):
            # cells q0..q1 of row r are consecutive ids: one slice of the sorted points
            lo, hi = np.searchsorted(sorted_cells, [r * ncols + q0, r * ncols + q1 + 1])
            near.append(by_cell[lo:hi])
        cand = np.concatenate(near)
        rows = np.sort(cand[in_box(x[cand], y[cand], box)])
        tiles.append(Tile(id=int(c), cell=(cx, cy), rows=rows, core=cell[rows] == c, box=box))
    return TilePlan(float(tile_m), float(halo_m), (x0, y0), (ncols, nrows), tiles)


def match_rows(x_read: np.ndarray, y_read: np.ndarray, x_plan: np.ndarray,
               y_plan: np.ndarray) -> np.ndarray | None:
    """Pair the points a task read with the rows its plan lists, by coordinates.

    Returns ``perm`` with ``(x_read[perm], y_read[perm]) == (x_plan, y_plan)``, or None when
    the two sets differ. Points at identical coordinates pair in reading order, which is file
    order for every reader psirel uses."""
    if len(x_read) != len(x_plan):
        return None
    a = np.lexsort((np.arange(len(x_read)), y_read, x_read))
    b = np.lexsort((np.arange(len(x_plan)), y_plan, x_plan))
    if not (np.array_equal(x_read[a], x_plan[b]) and np.array_equal(y_read[a], y_plan[b])):
        return None
    perm = np.empty(len(a), np.int64)
    perm[b] = a
    return perm


def tile_tasks(plan: TilePlan, card: ModelCard, cloud, points, rasters, crs, chunk: int,
           block: int, device: str, threads: int | None, out: Path, partitioned: bool,
           hook, skip: set[int], precision: str = "fp32",
           raster_options: dict | None = None,
           schema: PointSchema | None = None) -> list[TileTask]:
    """One task per tile of ``plan`` not in ``skip``: points in the file's CRS box, the tile's
    own points for a file without spatial index, the part file when ``partitioned``."""
    sx, sy = cloud.source_xy
    sha = sha256_file(card.path / MODEL_JSON)
    indexed = read_format_of(Path(points)) in OGR_DRIVERS  # tasks read their box themselves
    tasks = []
    for t in plan.tiles:
        if t.id in skip:
            continue
        r = t.rows
        box = (float(sx[r].min()), float(sy[r].min()), float(sx[r].max()), float(sy[r].max()))
        pad = 1e-7 * max(1.0, *map(abs, box))  # the reader's box: a hair larger, never smaller
        tasks.append(TileTask(
            tile=t.id, model_dir=str(card.path.resolve()), model_sha256=sha,
            points=str(Path(points).resolve()),
            rasters=tuple(str(Path(p).resolve()) for p in rasters), crs=crs,
            rows=r, core=t.core, xy=np.column_stack([cloud.x[r], cloud.y[r]]), box=t.box,
            src_bbox=(box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad),
            chunk=chunk, block=block, threshold=float(card.threshold), device=device,
            threads=threads, hook=hook, precision=precision,
            raster_options=raster_options or {}, schema=schema,
            cloud=None if indexed else cloud.subset(r),
            part=str(out.resolve() / part_name(t.id)) if partitioned else None))
    return tasks


# ---------------------------------------------------------------------------- one tile
@dataclass(eq=False)
class TileTask:
    """Everything a worker needs to score one tile (picklable; paths must exist on the worker).

    ``xy`` (``[m, 2]`` float64, DEM CRS) are the planned points' coordinates, used to pair the
    points read with ``rows``; ``src_bbox`` is their bounding box in the file's CRS, given to the
    reader. ``part`` (optional) is a GeoParquet file the task writes its core points to.
    ``schema`` is how the points' columns are read (the driver pins its units to the whole
    cloud's, so that a tile never decides them from its own few points). ``cloud``: the tile's
    points themselves, in plan order on the model's grid, for files without a spatial index
    (CSV, GeoParquet), which every task would otherwise read whole to filter its box.
    """

    tile: int
    model_dir: str
    model_sha256: str
    points: str
    rasters: tuple[str, str, str]
    crs: str | None
    rows: np.ndarray
    core: np.ndarray
    xy: np.ndarray
    box: tuple[float, float, float, float]
    src_bbox: tuple[float, float, float, float]
    chunk: int
    block: int
    threshold: float
    device: str = "cpu"
    threads: int | None = 1
    precision: str = "fp32"
    part: str | None = None
    raster_options: dict = field(default_factory=dict)   # RasterStack keywords: model grid
    schema: PointSchema | None = None
    hook: Callable[[int], None] | None = None
    cloud: PointCloud | None = None


@dataclass
class TileResult:
    """What a task returns: its core rows and their P(reliable) (None when written to
    ``part``), and facts for the summary."""

    tile: int
    rows: np.ndarray             # [c] int64 input rows of the core points
    reliability: np.ndarray | None  # [c, 2] float32 (P, std), or None (in the part file)
    n_outer: int
    n_embedded: int
    n_reliable: int
    unknown_lulc: int
    seconds: float
    peak_rss_mb: float | None
    worker: str
    part: str | None = None


_MODELS: dict[tuple, tuple] = {}  # one model per process: (card, backend), keyed by its identity


def _model(task: TileTask):
    key = (str(Path(task.model_dir).resolve()), task.model_sha256, task.device, task.threads,
           task.precision)
    if key not in _MODELS:
        card = load_card(task.model_dir)
        if sha256_file(card.path / MODEL_JSON) != task.model_sha256:
            raise ModelError(card.path / MODEL_JSON, "changed since the run started")
        _MODELS.clear()
        _MODELS[key] = (card, make_backend(card, "onnx", task.device, task.threads,
                                           task.precision))
    return _MODELS[key]


def run_tile(task: TileTask) -> TileResult:
    """Score one tile: read its box, check it holds exactly the planned points, run both stages
    on its points and keep the core's predictions. A user mistake surfaces as a one-line
    :class:`~psirel.errors.PsirelError` naming the tile (plain class, so it pickles)."""
    try:
        return _run_tile(task)
    except PsirelError as exc:
        raise PsirelError(f"tile {task.tile}: {exc}") from None


def _read_tile_points(task: TileTask, stack: RasterStack) -> PointCloud:
    """The tile's points read from the file by its box, paired with the plan's rows."""
    cloud = read_points(task.points, crs=task.crs, target_crs=stack.crs, bbox=task.src_bbox,
                        schema=task.schema)
    inside = np.flatnonzero(in_box(cloud.x, cloud.y, task.box))
    perm = match_rows(cloud.x[inside], cloud.y[inside], task.xy[:, 0], task.xy[:, 1])
    if perm is None:
        raise PsirelError(f"{task.points}: the {len(inside)} points read inside the tile's "
                          f"box are not the {len(task.rows)} the whole-file read put there")
    return cloud.subset(inside[perm])  # input order: kNN ties break as in the whole cloud


def _run_tile(task: TileTask) -> TileResult:
    t0 = time.perf_counter()
    if task.hook is not None:
        task.hook(task.tile)
    card, be = _model(task)
    stack = RasterStack(*task.rasters, **task.raster_options)
    try:
        cloud = task.cloud if task.cloud is not None else _read_tile_points(task, stack)
        scene = PreparedCloud.from_cloud(card, stack, cloud)
        seeds = np.flatnonzero(task.core)
        rel, unknown, n_embedded = predict_seeds(scene, be, seeds, task.chunk, task.block,
                                                 Timer())
        cols = output_columns(rel, task.threshold)
        pred = cols["reliable_pred"]
        if task.part is not None:
            write_predictions(cloud.subset(seeds), task.part,
                              {"input_row": task.rows[seeds], **cols})
    finally:
        stack.close()
    return TileResult(tile=task.tile, rows=task.rows[seeds],
                      reliability=None if task.part is not None else rel,
                      n_outer=len(task.rows), n_embedded=n_embedded, n_reliable=int(pred.sum()),
                      unknown_lulc=unknown, seconds=time.perf_counter() - t0,
                      peak_rss_mb=peak_rss_mb(), worker=f"{socket.gethostname()}:{os.getpid()}",
                      part=None if task.part is None else Path(task.part).name)
