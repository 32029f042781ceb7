"""Robust statistics of PSI displacement time series, vectorised over points.

Each series is fitted by least squares with a shared design matrix ``[1, t, sin 2πt, cos 2πt]``
(``t`` in years; the annual terms only when the series spans at least a year and has at least
five dates, since a shorter series cannot tell a season from a trend). One solve serves every
complete series at once (``np.linalg.lstsq`` of ``[T, p]`` against ``[T, N]``); series with
gaps (NaN) are solved through their own normal equations, batched.

Features (``SERIES_FEATURES``, units in the names):

* ``series_velocity_mm_yr``: slope of the fit.
* ``series_seasonal_amp_mm``: amplitude of the annual term, ``sqrt(a_sin² + a_cos²)``.
* ``series_residual_std_mm``: residual RMS with ``T - p`` degrees of freedom.
* ``series_residual_mad_mm``: ``1.4826 · median |r - median r|``, robust to a few outliers.
* ``series_residual_lag1``: lag-1 autocorrelation of the residuals (0 when they vanish); near 1
  when the model misses structure, e.g. after an unwrapping jump.
* ``series_max_step_mm``: largest absolute change between consecutive dates.
* ``series_step_noise_mm``: robust spread of consecutive changes, ``1.4826 · MAD(Δd)``.
* ``series_halfwave_jumps``: number of consecutive changes within ``λ/8`` of a non-zero multiple
  of ``λ/2`` (27.75 mm at C band) that also exceed ``3 ×`` the step noise: the signature of a
  phase-unwrapping error, counted only where it stands out of the noise.
* ``series_valid_frac``: fraction of dates with a finite value.
* ``series_present``: 1 when the point has at least two finite dates, else 0 (then all other
  features are 0).
* ``series_velocity_stderr_mm_yr``: the OLS standard error of the slope from the residual
  scatter, ``series_residual_std_mm / sqrt(Σ (t − t̄)²)`` over the finite dates (``t`` in years),
  the line-fit formula of the expert labels (:func:`psirel.scene.labels.velocity_noise_sigma`).
  The residual std alone does not transfer between sensors: the same scatter gives a velocity
  about five times less certain with 9 dates over a year than with 60 over two.

Steps and lags run over consecutive *finite* dates: a gap (NaN) is bridged, not a step.
"""

from __future__ import annotations

import numpy as np

from psirel.features.robust import MAD_TO_STD, nanmad_rows
from psirel.features.row_blocks import map_row_blocks

SERIES_FEATURES = [
    "series_velocity_mm_yr", "series_seasonal_amp_mm", "series_residual_std_mm",
    "series_residual_mad_mm", "series_residual_lag1", "series_max_step_mm",
    "series_step_noise_mm", "series_halfwave_jumps", "series_valid_frac", "series_present",
    "series_velocity_stderr_mm_yr",
]
_I = {name: i for i, name in enumerate(SERIES_FEATURES)}
C_BAND_WAVELENGTH_MM = 55.5
DAYS_PER_YEAR = 365.25
MIN_SEASONAL_SPAN_YR = 1.0
MIN_SEASONAL_DATES = 5
JUMP_TOLERANCE_WAVELENGTHS = 1.0 / 8.0   # |step| within λ/8 of k·λ/2
JUMP_NOISE_FACTOR = 3.0                  # and |step| > 3 × step noise
_ROWS_PER_BLOCK = 4096   # rows per pass: bounds float64 temporaries (fastest of 1k, 4k, 32k)


def design_matrix(dates: np.ndarray) -> tuple[np.ndarray, bool]:
    """``[T, p]`` columns ``1, t - mean(t), (sin 2πt, cos 2πt)`` with ``t`` in years since the
    first date; returns also whether the annual terms are included."""
    days = (np.asarray(dates, dtype="datetime64[D]") - np.asarray(dates, "datetime64[D]").min())
    t = days.astype(np.float64) / DAYS_PER_YEAR
    n = len(t)
    seasonal = n >= MIN_SEASONAL_DATES and n > 0 and (t.max() - t.min()) >= MIN_SEASONAL_SPAN_YR
    cols = [np.ones(n), t - (t.mean() if n else 0.0)]
    if seasonal:
        cols += [np.sin(2 * np.pi * t), np.cos(2 * np.pi * t)]
    return np.stack(cols, axis=1) if n else np.zeros((0, len(cols))), seasonal


def fit_rows(a: np.ndarray, d: np.ndarray, ok: np.ndarray, seasonal: bool
         ) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares coefficients ``[N, 4]`` of ``d [N, T]`` on ``a [T, p]`` and the number of
    parameters each row used.

    Complete rows share one least-squares solution: ``d @ pinv(a)ᵀ``, the minimum-norm
    solution ``lstsq`` gives, as one matrix product (``lstsq`` with thousands of right-hand
    sides cost ~30× more). Rows with gaps solve their own normal equations, batched; those whose
    finite dates are too few or too short for the annual terms fit the line alone.
    """
    n = d.shape[0]
    coef = np.zeros((n, 4))
    n_par = np.full(n, a.shape[1])
    full = ok.all(axis=1)
    if full.any():
        coef[full, :a.shape[1]] = d[full] @ np.linalg.pinv(a).T
    gap = np.flatnonzero(~full)
    if len(gap):
        okg = ok[gap]
        if seasonal:
            t = np.where(okg, a[:, 1], np.nan)
            span = np.nanmax(t, axis=1) - np.nanmin(t, axis=1)
            linear = (okg.sum(axis=1) < MIN_SEASONAL_DATES) | ~(span >= MIN_SEASONAL_SPAN_YR)
        else:
            linear = np.ones(len(gap), bool)
        for rows, p in ((gap[linear], 2), (gap[~linear], a.shape[1])):
            if not len(rows):
                continue
            ap = a[:, :p]
            w = ok[rows].astype(np.float64)
            gram = (w @ (ap[:, :, None] * ap[:, None, :]).reshape(len(ap), p * p)
                    ).reshape(len(rows), p, p)
            rhs = np.where(ok[rows], d[rows], 0.0) @ ap
            coef[rows, :p] = solve_normal(gram, rhs)
            n_par[rows] = p
    return coef, n_par


def solve_normal(gram: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``gram⁺ rhs`` for a batch ``[n, p, p]``, ``[n, p]``: an LU solve where the system is well
    posed, the pseudo-inverse (minimum-norm solution) only where it is (nearly) singular. The
    pseudo-inverse's SVD costs ~20× the solve, and ill-posed rows (no two distinct dates) are
    rare. Well posed: ``det(G) / Π diag(G)`` (1 for orthogonal columns, 0 when singular) above
    ``1e-10``."""
    diag = np.diagonal(gram, axis1=1, axis2=2).prod(axis=1)
    ratio = np.linalg.det(gram) / np.where(diag > 0, diag, 1.0)
    well = (diag > 0) & (ratio > 1e-10)
    out = np.zeros(rhs.shape)
    if well.any():
        out[well] = np.linalg.solve(gram[well], rhs[well][..., None])[..., 0]
    if not well.all():
        bad = ~well
        out[bad] = np.einsum("nij,nj->ni", np.linalg.pinv(gram[bad]), rhs[bad])
    return out


def time_spread_yr2(t_yr: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """``Σ (t − t̄)²`` (yr²) of each row over its finite dates: ``t_yr [T]``, ``ok [N, T]`` →
    ``[N]``. ``t_yr`` should be centred (the design matrix's column 1), so that the one-pass
    form loses no precision."""
    w = ok.astype(np.float64)
    k = w.sum(axis=1)
    s1, s2 = w @ t_yr, w @ (t_yr * t_yr)
    return np.maximum(s2 - s1 * s1 / np.maximum(k, 1.0), 0.0)


def _block_features(d: np.ndarray, a: np.ndarray, seasonal: bool, half_wave_mm: float
                    ) -> np.ndarray:
    n, t = d.shape
    p = a.shape[1]
    ok = np.isfinite(d)
    k = ok.sum(axis=1)
    present = k >= 2
    f = np.zeros((n, len(SERIES_FEATURES)))
    f[:, _I["series_valid_frac"]] = k / t
    f[:, _I["series_present"]] = present
    if not present.any():
        return f

    # Series with a single date cannot be fitted; drop them from the fit (their row stays zero).
    d = np.where(ok & present[:, None], d, np.nan)
    ok &= present[:, None]
    coef, n_par = fit_rows(a, d, ok, seasonal)
    f[:, _I["series_velocity_mm_yr"]] = coef[:, 1]
    f[:, _I["series_seasonal_amp_mm"]] = np.hypot(coef[:, 2], coef[:, 3])
    r = d - coef[:, :p] @ a.T                              # NaN at gaps
    r0 = np.where(ok, r, 0.0)
    dof = np.maximum(k - n_par, 1)
    f[:, _I["series_residual_std_mm"]] = np.sqrt((r0 * r0).sum(axis=1) / dof)
    f[:, _I["series_residual_mad_mm"]] = MAD_TO_STD * nanmad_rows(r)
    sxx = time_spread_yr2(a[:, 1], ok)
    f[:, _I["series_velocity_stderr_mm_yr"]] = np.where(
        sxx > 0, f[:, _I["series_residual_std_mm"]] / np.sqrt(np.where(sxx > 0, sxx, 1.0)), 0.0)
    # Consecutive finite dates: gaps are bridged, not counted as steps or lags.
    last = np.where(ok, np.arange(t), -1)
    prev_idx = np.maximum.accumulate(last, axis=1)[:, :-1]    # last finite date before j + 1
    has_prev = (prev_idx >= 0) & ok[:, 1:]
    prev_at = np.maximum(prev_idx, 0)

    num = np.where(has_prev, r0[:, 1:] * np.take_along_axis(r0, prev_at, axis=1), 0.0).sum(1)
    den = (r0 * r0).sum(axis=1)
    # Residuals at float32 rounding level carry no structure: report no autocorrelation.
    scale = np.abs(np.where(ok, d, 0.0)).max(axis=1)
    tiny = den <= (1e-6 * np.maximum(scale, 1.0)) ** 2 * np.maximum(k, 1)
    f[:, _I["series_residual_lag1"]] = np.where(tiny, 0.0, num / np.where(den > 0, den, 1.0))

    steps = np.where(has_prev, d[:, 1:] - np.take_along_axis(np.where(ok, d, 0.0), prev_at,
                                                             axis=1), np.nan)
    sabs = np.abs(steps)
    f[:, _I["series_max_step_mm"]] = np.where(np.isfinite(sabs), sabs, 0.0).max(axis=1)
    noise = MAD_TO_STD * nanmad_rows(steps)
    f[:, _I["series_step_noise_mm"]] = noise
    mult = np.rint(sabs / half_wave_mm)
    near = np.abs(sabs - mult * half_wave_mm) <= JUMP_TOLERANCE_WAVELENGTHS * 2 * half_wave_mm
    jump = (mult >= 1) & near & (sabs > JUMP_NOISE_FACTOR * noise[:, None])
    f[:, _I["series_halfwave_jumps"]] = jump.sum(axis=1)
    f[~present, :_I["series_valid_frac"]] = 0.0  # no fit without two dates
    f[~present, _I["series_velocity_stderr_mm_yr"]] = 0.0
    return f


def checked_series(series_mm: np.ndarray, dates: np.ndarray | None
                   ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``(series [N, T], dates as datetime64[D], the dates' sort order)``, checked to agree
    (dates and order are None when ``T = 0``: a cloud without series)."""
    d = np.asarray(series_mm)
    if d.ndim != 2:
        raise ValueError(f"series must be [N, T], got {list(d.shape)}")
    t = d.shape[1]
    if t == 0:
        return d, None, None
    if dates is None or len(dates) != t:
        raise ValueError(f"need {t} dates for a series of {t} values, got "
                         f"{None if dates is None else len(dates)}")
    dates = np.asarray(dates, dtype="datetime64[D]")
    return d, dates, np.argsort(dates, kind="stable")


def series_features(series_mm: np.ndarray, dates: np.ndarray | None,
                    wavelength_mm: float = C_BAND_WAVELENGTH_MM, workers: int | None = 1
                    ) -> tuple[np.ndarray, list[str]]:
    """Robust statistics of displacement series (see the module docstring).

    Args:
        series_mm: ``[N, T]`` displacements in mm (NaN for a missing date); ``T = 0`` when the
            cloud has no series.
        dates: ``[T]`` acquisition dates (datetime64, any order; sorted here).
        wavelength_mm: radar wavelength λ (mm); unwrapping jumps are multiples of λ/2.
        workers: threads over the row blocks (the result does not depend on it).

    Returns:
        ``[N, F]`` float32 features and their ``F`` names (:data:`SERIES_FEATURES`). Finite input
        gives finite output; a cloud without series gives zeros (``series_present = 0``).
    """
    d, dates, order = checked_series(series_mm, dates)
    n, t = d.shape
    if t == 0:
        return np.zeros((n, len(SERIES_FEATURES)), np.float32), list(SERIES_FEATURES)
    a, seasonal = design_matrix(dates[order])
    half_wave = float(wavelength_mm) / 2.0

    def rows(s: int, e: int) -> np.ndarray:
        block = d[s:e][:, order].astype(np.float64)
        block[~np.isfinite(block)] = np.nan
        with np.errstate(invalid="ignore", divide="ignore"):
            return _block_features(block, a, seasonal, half_wave)

    out = np.empty((n, len(SERIES_FEATURES)), np.float32)
    return map_row_blocks(rows, n, _ROWS_PER_BLOCK, out, workers), list(SERIES_FEATURES)
