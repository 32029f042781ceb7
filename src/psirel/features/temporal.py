"""A fixed-length picture of a point's residual series, whatever the number and spacing of dates.

Stacks differ between sensors (Sentinel-1 every 6 or 12 days, RADARSAT/COSMO every 24 days with
gaps, 9 to 300 dates), so a feature that counts dates or lags in *samples* does not transfer. Each
series is fitted as in :mod:`psirel.features.series` (same design matrix and solver: line plus
annual term); a series with a date beyond 3 ``s`` (below) is refitted once with Huber weights,
so that a wild date stays one extreme residual instead of tilting the fit and its neighbours'
residuals. The residuals ``r_t`` on the finite dates are described by quantities whose expected
value does not depend on the sampling:

* **quantile function** (``temporal_quantile_00`` … ``_15``): the ``Q = 16`` quantiles at
  ``p_i = (i + ½) / Q`` of ``r_t / s``. Outliers, a jump, the two modes of a half-cycle
  unwrapping error shape this curve; the length does not. ``s`` is a winsorised standard
  deviation: deviations from the median clipped at ``±2`` robust sigmas (``1.4826 · MAD``, with
  Croux & Rousseeuw's small-sample factor ``n / (n − 0.8)``), their RMS over its Gaussian
  consistency factor, floored at :data:`SCALE_FLOOR_MM`. Outliers move it by at most 2 sigmas
  each, yet it is twice as efficient as the MAD, whose noise inflates ``r / s`` at few dates: for
  Gaussian residuals the mean curve at 32 dates then departs from the one at 150 by 0.08 instead
  of 0.15 (the MAD and linear quantiles). The quantiles are Hyndman & Fan's type 9 (unbiased for
  normal data at any ``n``), and ``p`` stays clear of 0 and 1, whose sample values (the
  extremes) grow with the length.
* **autocorrelation at fixed lags in days** (``temporal_acf_12d`` … ``_365d``): the mean of
  ``u_i u_j`` over every pair of finite dates whose separation falls in a log-spaced bin around
  the lag, over the mean of ``u²``, with ``u = clip(r / s, ±3)`` (a single wild date would
  otherwise dominate every product it is part of), clipped to ``[-1, 1]``. Irregular sampling and
  gaps only change how many pairs a bin holds; a bin without pairs reads 0.
* **pair weights** (``temporal_acf_weight_*``): ``n_b / (n_b + 10)`` for ``n_b`` pairs in the bin:
  0 when the sampling cannot see that lag (no 12-day pairs in a 24-day stack), near 1 when the
  estimate is well supported (its noise is ~ ``1/√n_b``). The fit itself makes white-noise
  residuals anti-correlated by about ``−p / n`` (:func:`detrending_null`); that value is
  subtracted, so white noise reads 0 at 9 dates as at 300.
* **extra terms**: ``temporal_log_scale_mm`` (``log`` of ``s``, corrected for the degrees of
  freedom the fit used), ``temporal_log_velocity_stderr_mm_yr`` (``log(s / √Σ(t − t̄)²)``, the
  robust version of ``series_velocity_stderr_mm_yr``: the quantity the expert's noise label
  thresholds), ``temporal_log_n_dates``, ``temporal_log_span_yr`` and ``temporal_present``.

Points with fewer than :data:`MIN_DATES` finite dates get zeros throughout
(``temporal_present = 0``). The block's column order is the model's contract
(:data:`TEMPORAL_LAYOUT`: quantiles, autocorrelations, weights, extras), read by
:class:`psirel.models.temporal.TemporalEncoder`.
"""

from __future__ import annotations

from math import erf, exp, pi, sqrt

import numpy as np

from psirel.features.robust import MAD_TO_STD, nanmedian_mad_rows
from psirel.features.row_blocks import map_row_blocks
from psirel.features.series import (
    DAYS_PER_YEAR,
    checked_series,
    design_matrix,
    fit_rows,
    solve_normal,
    time_spread_yr2,
)

N_QUANTILES = 16
QUANTILE_PROBS = (np.arange(N_QUANTILES) + 0.5) / N_QUANTILES
ACF_LAGS_DAYS = (12, 24, 48, 96, 192, 365)
# Bin edges at the geometric midpoints between lags (the first and last bins as wide, in log
# terms, as their neighbours): 8.5, 17, 34, 68, 136, 265, 503 days. A 6-day pair is below the
# first bin on purpose: its correlation is higher than a 12-day one's and would make the 12-day
# value depend on the sensor.
_LOG_LAGS = np.log(np.asarray(ACF_LAGS_DAYS, np.float64))
ACF_BIN_EDGES_DAYS = np.exp(np.concatenate([
    [_LOG_LAGS[0] - (_LOG_LAGS[1] - _LOG_LAGS[0]) / 2],
    (_LOG_LAGS[1:] + _LOG_LAGS[:-1]) / 2,
    [_LOG_LAGS[-1] + (_LOG_LAGS[-1] - _LOG_LAGS[-2]) / 2]]))
PAIR_WEIGHT_HALF = 10.0   # pairs at which a bin's weight reaches 0.5
ACF_CLIP = 3.0            # |r / s| beyond this counts as 3 in the autocorrelation
SCALE_FLOOR_MM = 0.01     # two orders below PSI precision: residuals under it carry no shape
WINSOR_SIGMAS = 2.0
HUBER_SIGMAS = 3.0        # dates beyond 3 s are down-weighted in one refit
# E[min(z², c²)] for a standard normal z and c = WINSOR_SIGMAS: P(|z| < c) − 2cφ(c) + c² P(|z| > c)
_C = WINSOR_SIGMAS
_WINSOR_CONSISTENCY = (erf(_C / sqrt(2.0)) - 2.0 * _C * exp(-0.5 * _C * _C) / sqrt(2.0 * pi)
                       + _C * _C * (1.0 - erf(_C / sqrt(2.0))))
MIN_DATES = 3
_MIN_SPAN_YR = 1.0 / DAYS_PER_YEAR
_ROWS_PER_BLOCK = 4096

QUANTILE_FEATURES = [f"temporal_quantile_{i:02d}" for i in range(N_QUANTILES)]
ACF_FEATURES = [f"temporal_acf_{lag}d" for lag in ACF_LAGS_DAYS]
ACF_WEIGHT_FEATURES = [f"temporal_acf_weight_{lag}d" for lag in ACF_LAGS_DAYS]
EXTRA_FEATURES = ["temporal_log_scale_mm", "temporal_log_velocity_stderr_mm_yr",
                  "temporal_log_n_dates", "temporal_log_span_yr", "temporal_present"]
TEMPORAL_FEATURES = [*QUANTILE_FEATURES, *ACF_FEATURES, *ACF_WEIGHT_FEATURES, *EXTRA_FEATURES]
TEMPORAL_LAYOUT = {"n_quantiles": N_QUANTILES, "n_lags": len(ACF_LAGS_DAYS),
                   "n_extra": len(EXTRA_FEATURES)}
# Columns already dimensionless and of unit order (r / s quantiles, correlations, weights, a
# flag): the normalizer must not re-centre and re-scale them per column (see
# psirel.features.normalize.fit_normalizer).
PRESCALED_FEATURES = frozenset([*QUANTILE_FEATURES, *ACF_FEATURES, *ACF_WEIGHT_FEATURES,
                                "temporal_present"])
# Logs of quantities constant within a stack: at least this scale (natural-log units; 0.25 is a
# factor 1.3) when the normalizer standardises them.
SCALE_FLOORS = {"temporal_log_n_dates": 0.25, "temporal_log_span_yr": 0.25}
_Q0, _A0, _W0, _E0 = (0, N_QUANTILES, N_QUANTILES + len(ACF_LAGS_DAYS),
                      N_QUANTILES + 2 * len(ACF_LAGS_DAYS))
_I = {name: i for i, name in enumerate(TEMPORAL_FEATURES)}


def pair_bins(days: np.ndarray) -> np.ndarray:
    """``[T, B·T]`` float32 indicator: entry ``(i, b·T + j)`` is 1 when ``i < j`` and the
    separation ``days[j] − days[i]`` (``days`` sorted) falls in lag bin ``b``.

    ``u @ M`` followed by a product with ``u`` then sums ``u_i u_j`` over each bin's pairs for a
    whole block of rows in one BLAS call."""
    t = len(days)
    n_bins = len(ACF_LAGS_DAYS)
    sep = days[None, :] - days[:, None]
    b = np.searchsorted(ACF_BIN_EDGES_DAYS, sep, side="right") - 1
    use = (np.arange(t)[:, None] < np.arange(t)[None, :]) & (b >= 0) & (b < n_bins)
    m = np.zeros((t, n_bins, t), np.float32)
    i, j = np.nonzero(use)
    m[i, b[i, j], j] = 1.0
    return m.reshape(t, n_bins * t)


def _bin_sums(u: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``Σ_{pairs in bin b} u_i u_j`` of each row: ``u [n, T]``, ``m [T, B·T]`` → ``[n, B]``."""
    n, t = u.shape
    um = (u @ m).reshape(n, -1, t)                       # [n, B, T]: Σ_i u_i M_b[i, j]
    return np.matmul(um, u[:, :, None])[..., 0]


def _nanquantiles(z: np.ndarray, ok: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Hyndman–Fan type-9 quantiles at :data:`QUANTILE_PROBS` of each row's finite values:
    the order statistic at (1-based) position ``(n + ¼) p + ⅜``, interpolated linearly."""
    srt = np.sort(np.where(ok, z, np.inf), axis=1)      # finite values first
    last = (k - 1)[:, None].astype(np.float64)
    h = np.clip((k[:, None] + 0.25) * QUANTILE_PROBS[None] + 0.375 - 1.0, 0.0, last)
    lo = np.floor(h).astype(np.intp)
    hi = np.minimum(lo + 1, last.astype(np.intp))
    frac = h - lo
    qlo = np.take_along_axis(srt, lo, axis=1)
    qhi = np.take_along_axis(srt, hi, axis=1)
    return qlo + frac * (qhi - qlo)


def _huber_refit(a: np.ndarray, d: np.ndarray, ok: np.ndarray, z: np.ndarray,
                 n_par: np.ndarray) -> np.ndarray:
    """Coefficients ``[n, 4]`` refitted with Huber weights ``min(1, c / |z|)`` (``c`` =
    :data:`HUBER_SIGMAS`), each row on the ``n_par`` columns it was fitted with."""
    w = np.where(ok, np.minimum(1.0, HUBER_SIGMAS / np.maximum(np.abs(z), 1e-12)), 0.0)
    coef = np.zeros((len(d), 4))
    for p in np.unique(n_par):
        rows = np.flatnonzero(n_par == p)
        ap = a[:, :p]
        gram = (w[rows] @ (ap[:, :, None] * ap[:, None, :]).reshape(len(ap), p * p)
                ).reshape(len(rows), p, p)
        coef[rows, :p] = solve_normal(gram, (w[rows] * np.where(ok[rows], d[rows], 0.0)) @ ap)
    return coef


def _winsorised_std(r: np.ndarray, ok: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Scale ``s`` of each row's finite residuals (see the module docstring), floored."""
    med, mad = nanmedian_mad_rows(r)
    dev = r - med[:, None]
    robust = MAD_TO_STD * mad * k / (k - 0.8)
    lim = (WINSOR_SIGMAS * robust)[:, None]
    w = np.where(ok, np.clip(dev, -lim, lim), 0.0)
    s = np.sqrt((w * w).sum(axis=1) / np.maximum(k - 1, 1) / _WINSOR_CONSISTENCY)
    return np.maximum(s, SCALE_FLOOR_MM)


def detrending_null(a: np.ndarray, m: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``[B]`` expected autocorrelation per lag bin of the residuals of *white* noise on the
    complete stack: ``−mean_{pairs in b} H_ij / (1 − p / T)`` with ``H = A (AᵀA)⁻¹ Aᵀ`` the
    fit's hat matrix (residual covariance ``σ² (I − H)``). It is about ``−p / T``: −0.12 at 32
    dates, −0.03 at 150, so it is subtracted to keep white noise at 0 whatever the length."""
    t, p = a.shape
    if t <= p:
        return np.zeros(len(counts))
    h = a @ np.linalg.pinv(a.T @ a) @ a.T
    pair_sum = (m.reshape(t, -1, t) * h[:, None, :]).sum(axis=(0, 2))
    mean_h = np.where(counts > 0, pair_sum / np.where(counts > 0, counts, 1.0), 0.0)
    return -mean_h / (1.0 - p / t)


def _block_features(d: np.ndarray, a: np.ndarray, seasonal: bool, days: np.ndarray,
                    m: np.ndarray, full_counts: np.ndarray, null: np.ndarray) -> np.ndarray:
    n, t = d.shape
    f = np.zeros((n, len(TEMPORAL_FEATURES)))
    ok = np.isfinite(d)
    k = ok.sum(axis=1)
    rows = np.flatnonzero(k >= MIN_DATES)
    if not len(rows):
        return f
    d, ok, k = d[rows], ok[rows], k[rows]
    coef, n_par = fit_rows(a, d, ok, seasonal)
    r = d - coef[:, :a.shape[1]] @ a.T                   # NaN at gaps
    s = _winsorised_std(r, ok, k)
    z = r / s[:, None]
    out = np.flatnonzero((np.abs(np.where(ok, z, 0.0)) > HUBER_SIGMAS).any(axis=1))
    if len(out):   # one Huber step for the rows with a wild date (~15 % of noise rows)
        coef[out] = _huber_refit(a, d[out], ok[out], z[out], n_par[out])
        r[out] = d[out] - coef[out, :a.shape[1]] @ a.T
        s[out] = _winsorised_std(r[out], ok[out], k[out])
        z[out] = r[out] / s[out, None]
    g = np.zeros((len(rows), len(TEMPORAL_FEATURES)))
    g[:, _Q0:_A0] = _nanquantiles(z, ok, k)

    u = np.clip(np.where(ok, z, 0.0), -ACF_CLIP, ACF_CLIP).astype(np.float32)
    num = _bin_sums(u, m).astype(np.float64)
    cnt = np.broadcast_to(full_counts, num.shape).copy()
    gap = np.flatnonzero(k < t)
    if len(gap):
        cnt[gap] = _bin_sums(ok[gap].astype(np.float32), m)
    mean_sq = (u.astype(np.float64) ** 2).sum(axis=1) / k
    # No measurable scatter (residual RMS below the floor, e.g. a noise-free synthetic series):
    # its correlations are those of float rounding; report none.
    scatter = mean_sq * s * s >= SCALE_FLOOR_MM ** 2
    good = (cnt > 0) & scatter[:, None]
    # Less the white-noise value of the detrending; a row with gaps scales the complete
    # stack's by (T − p) / (k − p), since H_ij ∝ 1 / k for the same smooth columns.
    null_rows = null[None, :] * ((t - a.shape[1]) / np.maximum(k - n_par, 1))[:, None]
    acf = num / np.where(good, cnt * mean_sq[:, None], 1.0) - null_rows
    g[:, _A0:_W0] = np.where(good, np.clip(acf, -1.0, 1.0), 0.0)
    g[:, _W0:_E0] = cnt / (cnt + PAIR_WEIGHT_HALF)

    # The fit's p parameters shrink the residuals by sqrt(1 - p/n) on average: undo it, so that
    # log(s) estimates the noise level alike at 9 and at 300 dates (r / s needs no correction).
    dof = np.maximum(k - n_par, 1)
    scale = np.maximum(s * np.sqrt((k - 1) / dof), SCALE_FLOOR_MM)
    sxx = np.maximum(time_spread_yr2(a[:, 1], ok), _MIN_SPAN_YR ** 2)
    dd = np.where(ok, days[None, :], np.nan)
    span = (np.nanmax(dd, axis=1) - np.nanmin(dd, axis=1)) / DAYS_PER_YEAR
    g[:, _I["temporal_log_scale_mm"]] = np.log(scale)
    g[:, _I["temporal_log_velocity_stderr_mm_yr"]] = np.log(scale / np.sqrt(sxx))
    g[:, _I["temporal_log_n_dates"]] = np.log(k)
    g[:, _I["temporal_log_span_yr"]] = np.log(np.maximum(span, _MIN_SPAN_YR))
    g[:, _I["temporal_present"]] = 1.0
    f[rows] = g
    return f


def temporal_features(series_mm: np.ndarray, dates: np.ndarray | None, workers: int | None = 1
                      ) -> tuple[np.ndarray, list[str]]:
    """Sampling-independent description of each residual series (see the module docstring).

    Args:
        series_mm: ``[N, T]`` displacements in mm (NaN for a missing date); ``T = 0`` when the
            cloud has no series.
        dates: ``[T]`` acquisition dates (datetime64, any order; sorted here).
        workers: threads over the row blocks (the result does not depend on it).

    Returns:
        ``[N, F_t]`` float32 in :data:`TEMPORAL_FEATURES` order and those names. Finite input
        gives finite output; points with fewer than 3 finite dates (and a cloud without series)
        give zeros.
    """
    d, dates, order = checked_series(series_mm, dates)
    n, t = d.shape
    if t == 0:
        return np.zeros((n, len(TEMPORAL_FEATURES)), np.float32), list(TEMPORAL_FEATURES)
    a, seasonal = design_matrix(dates[order])
    days = (dates[order] - dates[order][0]).astype(np.float64)
    m = pair_bins(days)
    full_counts = m.reshape(t, -1, t).sum(axis=(0, 2)).astype(np.float64)
    null = detrending_null(a, m, full_counts)

    def rows(s: int, e: int) -> np.ndarray:
        block = d[s:e][:, order].astype(np.float64)
        block[~np.isfinite(block)] = np.nan
        with np.errstate(invalid="ignore", divide="ignore"):
            return _block_features(block, a, seasonal, days, m, full_counts, null)

    out = np.empty((n, len(TEMPORAL_FEATURES)), np.float32)
    return map_row_blocks(rows, n, _ROWS_PER_BLOCK, out, workers), list(TEMPORAL_FEATURES)
