"""The points' spatial graph: k nearest neighbours in projected metres (edge features:
:mod:`psirel.graph.edges`).

Because the degree is bounded, a graph is a *neighbour table*: ``idx [N, k]`` lists the neighbours
of each point (never the point itself) and ``mask [N, k]`` is False where a slot is empty (edge
longer than ``r_max_m``, fewer than k other points in the cloud, or not sampled). Empty slots hold
the row's own index so that gathers never go out of range. Messages flow from neighbour to point:
node i aggregates over j = idx[i, :] (edge j → i). Layers gather ``[N, k, F]`` and reduce over the
k axis, which is ONNX-friendly and can be cut into blocks of rows.

Only numpy and scipy are imported here: the inference install has no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from psirel.graph.duplicates import spill_duplicates

__all__ = ["DEFAULT_K", "DEFAULT_R_MAX_M", "NeighbourTable", "knn_table"]

DEFAULT_K = 16
# Sentinel-1 PS/DS densities run from ~1000 points/km² on buildings and bare rock (spacing 10-30 m)
# to a few points/km² in vegetated land (spacing of hundreds of metres). 100 m holds the 16 nearest
# neighbours of dense areas (same block, same deformation regime; atmospheric residuals are common
# mode at this range) but keeps a sparse point from being "supported" by points across a valley.
# It also bounds the halo of tiled inference, (L + 1) · r_max = 300-400 m for L = 2-3.
DEFAULT_R_MAX_M = 100.0

@dataclass(eq=False)
class NeighbourTable:
    """A bounded-degree directed graph: row i lists the neighbours j of point i (edges j → i).

    Attributes:
        idx: ``[N, k]`` int64 neighbour indices, sorted by distance then index; the row's own index
            in empty slots.
        mask: ``[N, k]`` bool, True where the slot holds an edge.
        dist_m: ``[N, k]`` float32 edge length in metres, 0 in empty slots.
        k: table width (neighbours asked for).
        r_max_m: longest edge kept, metres.
    """

    idx: np.ndarray
    mask: np.ndarray
    dist_m: np.ndarray
    k: int
    r_max_m: float

    def __post_init__(self) -> None:
        if self.idx.shape != self.mask.shape or self.idx.shape != self.dist_m.shape:
            raise ValueError(
                f"idx {self.idx.shape}, mask {self.mask.shape} and dist_m {self.dist_m.shape} "
                "must have the same shape"
            )
        if self.idx.ndim != 2 or self.idx.shape[1] != self.k:
            raise ValueError(f"tables are [N, k] with k = {self.k}; got {self.idx.shape}")

    @property
    def n(self) -> int:
        """Number of points (rows)."""
        return int(self.idx.shape[0])

    def degree(self) -> np.ndarray:
        """``[N]`` int64 number of valid neighbours of each point."""
        return self.mask.sum(axis=1, dtype=np.int64)

    def to_edge_index(self) -> np.ndarray:
        """``[2, E]`` int64 edge list (source j, target i) in PyG's default source-to-target flow,
        row by row and slot by slot; for checks against torch-geometric layers."""
        rows, slots = np.nonzero(self.mask)
        return np.stack([self.idx[rows, slots], rows]).astype(np.int64)


def _coordinates(x_m: np.ndarray, y_m: np.ndarray) -> np.ndarray:
    x = np.asarray(x_m, dtype=np.float64)
    y = np.asarray(y_m, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"x_m and y_m must be 1-D arrays of one length; got {x.shape}, {y.shape}")
    bad = np.flatnonzero(~(np.isfinite(x) & np.isfinite(y)))
    if bad.size:
        first = ", ".join(map(str, bad[:5]))
        raise ValueError(f"{bad.size} points have non-finite coordinates (first: {first})")
    return np.column_stack([x, y])


def _select(rows: np.ndarray, d: np.ndarray, j: np.ndarray, k: int, n: int):
    """The k nearest of the candidates (d, j) of each row, self dropped by index, ordered by
    distance then index; empty places are (inf, n)."""
    if d.shape[1] > k:
        # Usual case, no sort needed: the tree put self first and no two candidates tie.
        ties = (d[:, 2:] == d[:, 1:-1]) & np.isfinite(d[:, 2:])
        simple = (j[:, 0] == rows) & ~ties.any(axis=1)
        if simple.all():
            return d[:, 1:k + 1], j[:, 1:k + 1]
        sd, sj = np.empty((rows.size, k)), np.empty((rows.size, k), np.int64)
        sd[simple], sj[simple] = d[simple, 1:k + 1], j[simple, 1:k + 1]
        hard = ~simple
        sd[hard], sj[hard] = _select_sorted(rows[hard], d[hard], j[hard], k, n)
        return sd, sj
    return _select_sorted(rows, d, j, k, n)


def _select_sorted(rows: np.ndarray, d: np.ndarray, j: np.ndarray, k: int, n: int):
    drop = (j == rows[:, None]) | (j >= n)
    d = np.where(drop, np.inf, d)
    j = np.where(drop, n, j)
    order = np.lexsort((j, d), axis=-1)[:, :k]
    d = np.take_along_axis(d, order, axis=1)
    j = np.take_along_axis(j, order, axis=1)
    if d.shape[1] < k:  # fewer candidates than k (tiny cloud)
        pad = k - d.shape[1]
        d = np.pad(d, ((0, 0), (0, pad)), constant_values=np.inf)
        j = np.pad(j, ((0, 0), (0, pad)), constant_values=n)
    return d, j


def _query_block(tree: cKDTree, xy: np.ndarray, rows: np.ndarray, k: int, r_max_m: float,
                 workers: int) -> tuple[np.ndarray, np.ndarray]:
    n = xy.shape[0]
    # The tree's bound is strict (d < bound); widen it a hair so that an edge of exactly r_max_m
    # is kept, then apply d <= r_max_m ourselves.
    bound = r_max_m * (1.0 + 1e-9) + 1e-12
    out_d = np.empty((rows.size, k), np.float64)
    out_j = np.empty((rows.size, k), np.int64)
    # k + 2 candidates: self plus one spare, so that in general position the k-th neighbour is
    # strictly closer than the last candidate and the choice is settled. Rows where it is not (ties
    # at the boundary: duplicated coordinates, gridded points) are asked again with twice as many
    # candidates, so that ties are broken by index and self is always found and dropped.
    want = min(k + 2, n)
    pending = np.arange(rows.size)
    while pending.size:
        r = rows[pending]
        d, j = tree.query(xy[r], k=want, distance_upper_bound=bound, workers=workers)
        d = d.reshape(r.size, want)
        j = j.reshape(r.size, want).astype(np.int64, copy=False)
        sd, sj = _select(r, d, j, k, n)
        last = d[:, -1]
        unsettled = (want < n) & (last <= r_max_m) & (sd[:, -1] == last)
        done = pending[~unsettled]
        out_d[done], out_j[done] = sd[~unsettled], sj[~unsettled]
        pending = pending[unsettled]
        want = min(2 * want, n)
    return out_d, out_j


def knn_table(x_m: np.ndarray, y_m: np.ndarray, k: int = DEFAULT_K,
              r_max_m: float = DEFAULT_R_MAX_M, workers: int = 1,
              block: int = 200_000) -> NeighbourTable:
    """k nearest neighbours of every point, within ``r_max_m``, as a neighbour table.

    Args:
        x_m, y_m: ``[N]`` projected coordinates in metres (a metric CRS such as UTM or EPSG:3035).
        k: neighbours per point, self excluded.
        r_max_m: longest edge kept, metres; longer edges are masked. The default, 100 m, suits
            Sentinel-1 PSI densities (see ``DEFAULT_R_MAX_M``).
        workers: threads for the tree queries (-1: all cores).
        block: points queried at once; bounds the query's memory (a few hundred bytes per point).

    Returns:
        A ``NeighbourTable``. Each row is sorted by distance, ties by index, so the table is
        deterministic. Points at identical coordinates are each other's neighbours at distance 0;
        a point is never its own neighbour. Rows with fewer than k neighbours within ``r_max_m``
        (or a cloud of k points or fewer) end in masked slots holding the row's own index.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if not (np.isfinite(r_max_m) and r_max_m > 0):
        raise ValueError(f"r_max_m must be a positive number of metres, got {r_max_m}")
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    xy = _coordinates(x_m, y_m)
    n = xy.shape[0]
    spilled = spill_duplicates(xy, k)  # members of large clusters of one position: no query
    if spilled is not None:
        keep, spill, neighbours = spilled
        sub = knn_table(xy[keep, 0], xy[keep, 1], k, r_max_m, workers, block)
        idx = np.empty((n, k), np.int64)
        idx[keep], idx[spill] = keep[sub.idx], neighbours
        mask = np.ones((n, k), bool)
        mask[keep] = sub.mask
        dist = np.zeros((n, k), np.float32)
        dist[keep] = sub.dist_m
        return NeighbourTable(idx=idx, mask=mask, dist_m=dist, k=int(k), r_max_m=float(r_max_m))
    idx = np.empty((n, k), np.int64)
    mask = np.empty((n, k), bool)
    dist = np.empty((n, k), np.float32)
    if n:
        tree = cKDTree(xy)
        # Query in the tree's leaf order: neighbouring queries walk the same nodes, which halves
        # the query time against the file's order on a million points.
        leaf_order = tree.indices.astype(np.int64)
        for start in range(0, n, block):
            rows = leaf_order[start:start + block]
            d, j = _query_block(tree, xy, rows, k, float(r_max_m), workers)
            ok = d <= r_max_m
            mask[rows] = ok
            idx[rows] = np.where(ok, j, rows[:, None])
            dist[rows] = np.where(ok, d, 0.0)
    return NeighbourTable(idx=idx, mask=mask, dist_m=dist, k=int(k), r_max_m=float(r_max_m))
