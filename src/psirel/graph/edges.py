"""Edge features of the spatial graph: what the GNN's messages see of an edge j → i.

For each edge of a :class:`~psirel.graph.knn.NeighbourTable`: offsets and length (dx, dy,
distance), differences of height and velocity, and two RMS differences of the points'
de-meaned displacement series, each divided by a scale of :class:`EdgeScale` (fitted on the
training cloud, stored in ``model.json``) so that they are of order one. numpy only.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

from psirel.features.robust import MAD_TO_STD

__all__ = ["EDGE_FEATURES", "UNIT_SCALE", "EdgeScale", "edge_features", "fit_edge_scale",
           "series_rms_differences"]

EDGE_FEATURES = ("dx", "dy", "distance", "dheight", "dvelocity", "dseries_rms",
                 "dseries_detrended_rms")


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

    NaN dates are skipped; no series (``None`` or T = 0) gives zeros. Two ``[r, k]`` float32.

    Edges between two complete series (the usual case) take :func:`_complete_rms_differences`,
    the same numbers from per-point statistics and one dot product per edge; edges touching a
    series with gaps take the NaN-aware path below."""
    if series_mm is None or series_mm.shape[1] == 0:
        return np.zeros(nb.shape, np.float32), np.zeros(nb.shape, np.float32)
    own_rows = np.arange(series_mm.shape[0])[rows]
    nodes, inv = np.unique(np.concatenate([own_rows, nb.ravel()]), return_inverse=True)
    s = np.asarray(series_mm[nodes], np.float32)                          # [u, T]
    complete = np.isfinite(s).all(axis=1)
    i_loc, j_loc = inv[:len(own_rows)], inv[len(own_rows):].reshape(nb.shape)
    rms, detrended = _complete_rms_differences(s, i_loc, j_loc)
    gaps = np.flatnonzero(~complete[i_loc] | ~complete[j_loc].all(axis=1))
    if len(gaps):
        rms[gaps], detrended[gaps] = _nan_rms_differences(series_mm, own_rows[gaps], nb[gaps])
    return rms, detrended


_DOT_ROWS = 256  # rows of edges per gather-and-dot: 9× faster than one [r, k, T] gather


def _complete_rms_differences(s: np.ndarray, i: np.ndarray, j: np.ndarray
                              ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`series_rms_differences` for complete series ``s [u, T]`` and edges ``j [r, k]``
    → ``i [r]`` (rows of ``s``), without a ``[r, k, T]`` difference series.

    With t the centred acquisition index, each point's series is its mean + slope·t + a
    residual r. For d = s_j − s_i the de-meaned variance is var(r_j − r_i) + (b_j − b_i)²·Σt²/T
    and the detrended one var(r_j − r_i) = q_i + q_j − 2·r_i·r_j / T (q the residuals' mean
    square): per-point statistics and one dot product per edge, the same numbers as the
    difference series up to float rounding (float64 throughout: the difference of squares
    would lose ~1e-3 mm in float32)."""
    t_len = s.shape[1]
    t = np.arange(t_len, dtype=np.float64) - (t_len - 1) / 2.0
    stt = float(t @ t)
    s64 = s.astype(np.float64)
    mean = s64.mean(axis=1)
    slope = (s64 @ t) / stt if stt > 0 else np.zeros(len(s))
    resid = s64 - mean[:, None] - slope[:, None] * t
    q = np.einsum("ut,ut->u", resid, resid) / t_len
    dot = np.empty(j.shape)                                                      # [r, k]
    for c in range(0, len(i), _DOT_ROWS):   # the [rows, k, T] gather stays in cache
        rows = slice(c, c + _DOT_ROWS)
        dot[rows] = np.matmul(resid[j[rows]], resid[i[rows]][:, :, None])[..., 0]
    det_var = q[i][:, None] + q[j] - 2.0 * dot / t_len
    det_var = np.maximum(det_var, 0.0)
    var = det_var + (slope[j] - slope[i][:, None]) ** 2 * stt / t_len
    return np.sqrt(var).astype(np.float32), np.sqrt(det_var).astype(np.float32)


def _nan_rms_differences(series_mm: np.ndarray, rows: np.ndarray, nb: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`series_rms_differences` from the difference series, skipping NaN dates."""
    own = np.asarray(series_mm[rows], np.float32)[:, None, :]
    d = np.asarray(series_mm[nb], np.float32) - own                      # [r, k, T]
    # two series without a date in common have no difference: 0 below, not a warning
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
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
