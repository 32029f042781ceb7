"""Phase-unwrapping errors: whole cycles (``λ/2`` of LOS motion) wrongly added to a series.

Each error adds ``±λ/2`` over a run of dates: from a start date to an end date (exclusive), or to
the end of the stack (a persistent step). Every error is invisible to the temporal coherence (a
whole cycle does not change the wrapped phase the coherence is computed from); only steps bias
the velocity much — a short run of wrong dates leaves the line fit almost unchanged, but the
series is wrong on those dates, and an expert who sees it flags the point (a single wrong date
is an outlier the expert tolerates: ``labels.py``).

* *spatial* errors: a date's interferogram is unwrapped over the point network, and a mis-counted
  cycle on one arc puts a whole cluster of neighbouring points one cycle off — from then on
  (60 %: the temporal unwrapping carries it forward), for a few dates (25 %), or on that date
  only (15 %). The cluster moves together: each of its points has a moderate residual (one step
  in a smooth series), but its velocity is biased by up to tens of mm/yr relative to the points
  around it — the pattern (a patch whose edge is a velocity jump) shows it better than any
  single series. Clusters hold a few tens to a hundred points (their radius shrinks where points
  are dense) and are drawn point-wise, so their share of the points does not depend on where
  towns happen to be. Where the phase gradient is steep — on landslides and in subsidence bowls
  — they are twice as frequent, and the error runs against the motion (the unwrapper takes the
  short way round and under-estimates it);
* *isolated* errors on single points, more likely for fast-moving and for noisy points: half are
  persistent steps, half runs of 1–5 dates.

(Temporal unwrapping errors of very noisy points arise by themselves in the point simulation.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from psirel.scene.deformation import STABLE, Deformation

# per-point artefact flags (uint16 bit mask), counted in scene.json; "topographic_bias": the
# topography-correlated velocity bias (topography.py) exceeds TOPO_FLAG_MM_YR;
# "distributed_scatterer": a point whose phase follows its field's soil moisture (surface.py)
OUTLIER, TEMPORARY, LAYOVER, SHADOW = 1, 2, 4, 8
UNWRAP_TEMPORAL, UNWRAP_PATCH, UNWRAP_ISOLATED = 16, 32, 64
SPURIOUS, TOPO_BIAS, DISTRIBUTED, SIDELOBE = 128, 256, 512, 1024
TOPO_FLAG_MM_YR = 1.0
ARTEFACTS: dict[str, int] = {
    "outlier_scatterer": OUTLIER, "temporary_scatterer": TEMPORARY, "layover": LAYOVER,
    "shadow": SHADOW, "unwrapping_temporal": UNWRAP_TEMPORAL,
    "unwrapping_spatial_patch": UNWRAP_PATCH, "unwrapping_isolated": UNWRAP_ISOLATED,
    "spurious_scatterer": SPURIOUS, "topographic_bias": TOPO_BIAS,
    "distributed_scatterer": DISTRIBUTED, "sidelobe": SIDELOBE}


@dataclass
class UnwrapPatches:
    """Spatial unwrapping errors: ``patch_id`` raster (int32, 0 = none); per patch id the first
    and the end (exclusive) date index of the error and its sign (±1 cycles; id 0: no error);
    and the patch records for the scene description."""

    patch_id: np.ndarray
    start: np.ndarray
    end: np.ndarray
    sign: np.ndarray
    records: list[dict]


def make_unwrap_patches(rng: np.random.Generator, deformation: Deformation,
                        points_per_px: np.ndarray, pixel_m: float, n_dates: int,
                        points_per_patch: float = 1200.0) -> UnwrapPatches:
    """Draw one patch per ``points_per_patch`` expected points (Poisson; twice as many on ground
    moving faster than 5 mm/yr). ``points_per_px``: the expected number of points per pixel;
    patch centres follow it, and each patch's radius (30–400 m) is set to hold 15–120 points
    on average (10–40 on moving ground)."""
    shape = deformation.source.shape
    expected = points_per_px.ravel()
    moving = ((deformation.source.ravel() != STABLE) & (expected > 0)
              & (np.abs(deformation.velocity_mm_yr.ravel()) > 5.0))
    # one patch per `points_per_patch` points anywhere, plus as many again on moving ground
    n_any = rng.poisson(expected.sum() / points_per_patch)
    n_moving = rng.poisson(expected[moving].sum() / points_per_patch) if moving.any() else 0
    count = n_any + n_moving
    on_moving = np.arange(count) >= n_any
    local = ndimage.gaussian_filter(points_per_px, sigma=max(1.0, 50.0 / pixel_m))
    # centres: inverse-CDF draws (one cumulative sum, not one per patch)
    cdf_all = np.cumsum(expected)
    cdf_moving = np.cumsum(np.where(moving, expected, 0.0))
    u = rng.random(count)
    centre = np.where(on_moving,
                      np.searchsorted(cdf_moving, u * cdf_moving[-1], side="right"),
                      np.searchsorted(cdf_all, u * cdf_all[-1], side="right"))
    centre = np.minimum(centre, expected.size - 1)
    n_target = np.where(on_moving, rng.uniform(10.0, 40.0, count),
                        rng.uniform(15.0, 120.0, count))
    patch_id = np.zeros(shape, np.int32)
    dates = rng.integers(1, n_dates, count)
    ends = error_ends(rng, dates, n_dates, (0.15, 0.25, 0.6))
    signs = rng.choice(np.array([-1, 1]), count)
    records = []
    for i in range(count):  # patches (tens to hundreds), each a small window
        row, col = divmod(int(centre[i]), shape[1])
        if on_moving[i]:
            signs[i] = 1 if deformation.velocity_mm_yr[row, col] < 0 else -1
        radius_m = float(np.clip(np.sqrt(n_target[i] / (np.pi * max(local[row, col], 1e-6)))
                                 * pixel_m, 30.0, 400.0))
        radius_px = radius_m / pixel_m
        h = int(np.ceil(radius_px))
        r0, r1 = max(0, row - h), min(shape[0], row + h + 1)
        c0, c1 = max(0, col - h), min(shape[1], col + h + 1)
        yy, xx = np.mgrid[r0:r1, c0:c1]
        inside = (yy - row) ** 2 + (xx - col) ** 2 <= radius_px**2
        patch_id[r0:r1, c0:c1][inside] = i + 1
        records.append({"row": row, "col": col, "radius_m": radius_m,
                        "start_index": int(dates[i]), "end_index": int(ends[i]),
                        "cycles": int(signs[i]),
                        "on_moving_ground": bool(on_moving[i])})
    return UnwrapPatches(patch_id, np.concatenate([[n_dates], dates]).astype(np.int64),
                         np.concatenate([[n_dates], ends]).astype(np.int64),
                         np.concatenate([[0], signs]).astype(np.int64), records)


def error_ends(rng: np.random.Generator, start: np.ndarray, n_dates: int,
               shares: tuple[float, float, float]) -> np.ndarray:
    """End date index (exclusive) of errors starting at ``start``: with probabilities ``shares``
    the error lasts one date, 2–6 dates, or to the end of the stack."""
    start = np.asarray(start)
    kind = rng.choice(3, size=start.shape, p=np.asarray(shares) / np.sum(shares))
    length = np.where(kind == 0, 1, rng.integers(2, 7, start.shape))
    return np.where(kind == 2, n_dates, np.minimum(start + length, n_dates))


def longest_run(wrong: np.ndarray) -> np.ndarray:
    """Length (int64, (n,)) of the longest run of consecutive ``True`` dates in each row of the
    (n, T) bool array ``wrong``."""
    n, t = wrong.shape
    best = np.zeros(n, np.int64)
    run = np.zeros(n, np.int64)
    for j in range(t):  # over dates (tens), vectorised over points
        run = np.where(wrong[:, j], run + 1, 0)
        np.maximum(best, run, out=best)
    return best


def cycle_errors(start: np.ndarray, end: np.ndarray, cycles: np.ndarray, n_dates: int
                 ) -> np.ndarray:
    """(n, n_dates) int array: ``cycles[i]`` on dates ``start[i]`` … ``end[i] - 1``, else 0."""
    idx = np.arange(n_dates)[None, :]
    on = (idx >= start[:, None]) & (idx < end[:, None])
    return np.where(on, cycles[:, None], 0)
