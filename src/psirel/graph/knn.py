"""The points' spatial graph: k nearest neighbours in projected metres, and its edge features.

Because the degree is bounded, a graph is a *neighbour table*: ``idx [N, k]`` lists the neighbours
of each point (never the point itself) and ``mask [N, k]`` is False where a slot is empty (edge
longer than ``r_max_m``, fewer than k other points in the cloud, or not sampled). Empty slots hold
the row's own index so that gathers never go out of range. Messages flow from neighbour to point:
node i aggregates over j = idx[i, :] (edge j → i). Layers gather ``[N, k, F]`` and reduce over the
k axis, which is ONNX-friendly and can be cut into blocks of rows.

Only numpy and scipy are imported here: the inference install has no torch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
from scipy.spatial import cKDTree

from psirel.features.robust import MAD_TO_STD

__all__ = [
    "DEFAULT_K",
    "DEFAULT_R_MAX_M",
    "EDGE_FEATURES",
    "EdgeScale",
    "NeighbourTable",
    "edge_features",
    "fit_edge_scale",
    "knn_table",
]

DEFAULT_K = 16
# Sentinel-1 PS/DS densities run from ~1000 points/km² on buildings and bare rock (spacing 10-30 m)
# to a few points/km² in vegetated land (spacing of hundreds of metres). 100 m holds the 16 nearest
# neighbours of dense areas (same block, same deformation regime; atmospheric residuals are common
# mode at this range) but keeps a sparse point from being "supported" by points across a valley.
# It also bounds the halo of tiled inference, (L + 1) · r_max = 300-400 m for L = 2-3.
DEFAULT_R_MAX_M = 100.0

EDGE_FEATURES = ("dx", "dy", "distance", "dheight", "dvelocity", "dseries_rms",
                 "dseries_detrended_rms")


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


@dataclass(frozen=True)
class EdgeScale:
    """Divisors that bring edge features to order one; stored in ``model.json``.

    Attributes:
        xy_m: divides dx, dy and distance (metres); by default the graph's ``r_max_m``, so that
            they lie in [-1, 1].
        height_m: divides Δheight (metres).
        velocity_mm_yr: divides Δvelocity (mm/yr).
        series_mm: divides the RMS difference of two points' de-meaned series (mm).
        series_detrended_mm: divides the RMS of that difference with its linear trend removed
            too (mm).
    """

    xy_m: float
    height_m: float
    velocity_mm_yr: float
    series_mm: float = 1.0
    series_detrended_mm: float = 1.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"EdgeScale.{name} must be a positive finite number, got {value}")

    def to_json(self) -> dict[str, float]:
        """A JSON-ready mapping (to embed in ``model.json``)."""
        return {name: float(value) for name, value in asdict(self).items()}

    @classmethod
    def from_json(cls, data: Mapping[str, float] | str) -> EdgeScale:
        """From ``to_json()``'s mapping, or its JSON text."""
        if isinstance(data, str):
            data = json.loads(data)
        missing = {"xy_m", "height_m", "velocity_mm_yr"} - set(data)
        if missing:
            raise ValueError(f"edge scale is missing {', '.join(sorted(missing))}")
        return cls(xy_m=float(data["xy_m"]), height_m=float(data["height_m"]),
                   velocity_mm_yr=float(data["velocity_mm_yr"]),
                   series_mm=float(data.get("series_mm", 1.0)),
                   series_detrended_mm=float(data.get("series_detrended_mm", 1.0)))


UNIT_SCALE = EdgeScale(xy_m=1.0, height_m=1.0, velocity_mm_yr=1.0)


def _robust_scale(values: np.ndarray) -> float:
    """Spread of edge differences about zero: 1.4826 · median |Δ| (the MAD, which equals σ for a
    normal law and ignores the outlier scatterers); RMS when more than half are zero; 1 if all are.
    Differences are not centred: their distribution is symmetric about 0 by construction."""
    v = np.abs(values[np.isfinite(values)])
    if v.size == 0:
        return 1.0
    s = MAD_TO_STD * float(np.median(v))
    if s > 0:
        return s
    s = float(np.sqrt(np.mean(v * v)))
    return s if s > 0 else 1.0


def series_rms_differences(series_mm: np.ndarray | None, rows: np.ndarray | slice,
                           nb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How differently two points moved in time, for the edges ``nb [r, k]`` of ``rows``, from
    one gather of the difference series ``d = s_j − s_i``:

    * the RMS over dates of ``d − mean(d)``, whatever the points' reference offset: a point
      whose series disagrees with all its neighbours' (an unwrapping slip, a sidelobe of another
      target, a spurious scatterer) stands out even when its own series is smooth;
    * the same with ``d``'s least-squares line over the acquisition index removed as well: the
      part Δvelocity cannot explain (seasonal soil moisture on a field, unwrapping steps,
      noise), as in StaMPS-like weeding against the neighbours' series.

    NaN dates are skipped; no series (``None`` or T = 0) gives zeros. Two ``[r, k]`` float32."""
    if series_mm is None or series_mm.shape[1] == 0:
        return np.zeros(nb.shape, np.float32), np.zeros(nb.shape, np.float32)
    own = np.asarray(series_mm[rows], np.float32)[:, None, :]
    d = np.asarray(series_mm[nb], np.float32) - own                      # [r, k, T]
    with np.errstate(invalid="ignore", divide="ignore"):
        d = d - np.nanmean(d, axis=2, keepdims=True)
        rms = np.sqrt(np.nanmean(d * d, axis=2))
        ok = np.isfinite(d)
        t = np.broadcast_to(np.arange(d.shape[2], dtype=np.float32), d.shape)
        t = np.where(ok, t - (ok * t).sum(axis=2, keepdims=True)
                     / ok.sum(axis=2, keepdims=True), 0.0)
        slope = (t * np.where(ok, d, 0.0)).sum(axis=2, keepdims=True) \
            / (t * t).sum(axis=2, keepdims=True)
        d = d - np.nan_to_num(slope) * t    # float64 (t is): not in place on float32
        detrended = np.sqrt(np.nanmean(d * d, axis=2))
    return tuple(np.where(np.isfinite(x), x, 0.0).astype(np.float32) for x in (rms, detrended))


def _edge_inputs(x_m, y_m, height_m, velocity_mm_yr, idx, mask):
    """Validated float64 node arrays and the ``[N, k]`` table, as the edge functions need them."""
    arrays = [np.asarray(a, dtype=np.float64) for a in (x_m, y_m, height_m, velocity_mm_yr)]
    idx = np.asarray(idx)
    mask = np.asarray(mask, dtype=bool)
    n = idx.shape[0]
    if idx.ndim != 2 or mask.shape != idx.shape:
        raise ValueError(f"idx {idx.shape} and mask {mask.shape} must be one [N, k] shape")
    if any(a.shape != (n,) for a in arrays):
        raise ValueError(f"x_m, y_m, height_m and velocity_mm_yr must all be [{n}]")
    return (*arrays, idx, mask)


def fit_edge_scale(x_m: np.ndarray, y_m: np.ndarray, height_m: np.ndarray,
                   velocity_mm_yr: np.ndarray, idx: np.ndarray, mask: np.ndarray,
                   r_max_m: float | None = None, max_nodes: int = 100_000,
                   rng: np.random.Generator | None = None,
                   series_mm: np.ndarray | None = None) -> EdgeScale:
    """Edge feature scales from a sample of a neighbour table (arguments as ``edge_features``).

    ``xy_m`` is ``r_max_m`` (dx, dy and distance then lie in [-1, 1]), or the longest sampled edge
    when ``r_max_m`` is None. ``height_m`` and ``velocity_mm_yr`` are robust spreads (MAD about
    zero) of Δheight and Δvelocity over the valid edges of at most ``max_nodes`` rows drawn with
    ``rng`` (default: seeded, so the scales are deterministic).
    """
    x, y, h, v, idx, mask = _edge_inputs(x_m, y_m, height_m, velocity_mm_yr, idx, mask)
    n = idx.shape[0]
    rng = np.random.default_rng(0) if rng is None else rng
    rows = np.sort(rng.choice(n, size=max_nodes, replace=False)) if n > max_nodes else np.arange(n)
    nb, ok = idx[rows], mask[rows]
    if r_max_m is None:
        lengths = np.hypot(x[nb] - x[rows, None], y[nb] - y[rows, None])[ok]
        xy = float(lengths.max()) if lengths.size and lengths.max() > 0 else 1.0
    else:
        xy = float(r_max_m)
    dh = (h[nb] - h[rows, None])[ok]
    dv = (v[nb] - v[rows, None])[ok]
    sub = rows[: min(len(rows), 20_000)]  # the series RMS costs k·T per row
    ds, dd = (x[ok[: len(sub)]] for x in series_rms_differences(series_mm, sub, nb[: len(sub)]))
    has = series_mm is not None
    return EdgeScale(xy_m=xy, height_m=_robust_scale(dh), velocity_mm_yr=_robust_scale(dv),
                     series_mm=_robust_scale(ds) if has else 1.0,
                     series_detrended_mm=_robust_scale(dd) if has else 1.0)


def edge_features(x_m: np.ndarray, y_m: np.ndarray, height_m: np.ndarray,
                  velocity_mm_yr: np.ndarray, idx: np.ndarray, mask: np.ndarray,
                  scale: EdgeScale | None = None, block: int = 262_144,
                  series_mm: np.ndarray | None = None) -> np.ndarray:
    """Features of every edge j → i of a neighbour table, in ``EDGE_FEATURES`` order.

    For the edge from j = idx[i, s] to i: dx = x_j − x_i, dy = y_j − y_i, distance = |(dx, dy)|
    (all divided by ``scale.xy_m``), Δheight = h_j − h_i (÷ ``scale.height_m``) and
    Δvelocity = v_j − v_i (÷ ``scale.velocity_mm_yr``), the RMS difference of the two
    de-meaned series (:func:`series_rms_differences`, ÷ ``scale.series_mm``) and the same with
    the difference's linear trend removed (÷ ``scale.series_detrended_mm``); both 0 without
    ``series_mm``. Masked slots are 0.

    Works for any table whose indices point into the given arrays: the full graph, or a sampled
    subgraph with its local indices (pass ``x_m[sub.nodes]`` and so on).

    Args:
        x_m, y_m: ``[N]`` projected coordinates, metres.
        height_m: ``[N]`` point heights, metres.
        velocity_mm_yr: ``[N]`` line-of-sight velocities, mm/yr.
        idx, mask: ``[N, k]`` neighbour table.
        scale: divisors; None leaves the features in metres and mm/yr.
        block: rows computed at once (bounds the float64 temporaries).
        series_mm: ``[N, T]`` displacement series (mm), or None.

    Returns:
        ``[N, k, 7]`` float32.
    """
    s = UNIT_SCALE if scale is None else scale
    x, y, h, v, idx, mask = _edge_inputs(x_m, y_m, height_m, velocity_mm_yr, idx, mask)
    n = idx.shape[0]
    out = np.zeros((*idx.shape, len(EDGE_FEATURES)), np.float32)
    for start in range(0, n, block):
        r = slice(start, min(start + block, n))
        nb = idx[r]
        dx = x[nb] - x[r, None]
        dy = y[nb] - y[r, None]
        o = out[r]
        o[..., 0] = dx / s.xy_m
        o[..., 1] = dy / s.xy_m
        o[..., 2] = np.hypot(dx, dy) / s.xy_m
        o[..., 3] = (h[nb] - h[r, None]) / s.height_m
        o[..., 4] = (v[nb] - v[r, None]) / s.velocity_mm_yr
        if series_mm is not None:
            # [rows, k, T] temporaries: at most ~2^22 floats at a time
            step = max(1, (1 << 22) // max(nb.shape[1] * series_mm.shape[1], 1))
            for a in range(0, nb.shape[0], step):
                rows = np.arange(r.start + a, min(r.start + a + step, r.stop))
                rms, detrended = series_rms_differences(series_mm, rows, nb[a:a + step])
                o[a:a + len(rows), :, 5] = rms / s.series_mm
                o[a:a + len(rows), :, 6] = detrended / s.series_detrended_mm
        o[~mask[r]] = 0.0
    return out
