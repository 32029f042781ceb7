"""What a PSI processor computes from each point's series: velocity and temporal coherence.

* Velocity: least-squares slope of the displacement series against time (mm/yr).
* Temporal coherence (Ferretti et al. 2001, "Permanent scatterers in SAR interferometry",
  IEEE TGRS 39(1)): ``γ = |1/N Σ_t exp(j (φ_t − φ̂_t))|``, where ``φ_t = 4π d_t / λ`` is the
  point's phase and ``φ̂_t`` a smooth model of it — here linear motion plus an annual cycle. The
  model is fitted to the *wrapped* phase (a periodogram over velocities, then two Gauss–Newton
  steps on the wrapped residual for the velocity correction and the annual terms), as a PS
  processor does before unwrapping. γ ≈ 1 for a clean scatterer, ≈ exp(−σ²/2) for Gaussian phase
  noise of σ rad, and ≈ 0.2–0.3 for pure noise over 60 dates. Because it works on wrapped
  phase, a whole-cycle unwrapping error (a ``λ/2`` step in the series) leaves γ unchanged.
"""

from __future__ import annotations

import numpy as np


def line_fit_velocity(series_mm: np.ndarray, years: np.ndarray) -> np.ndarray:
    """Least-squares slope (mm/yr, float64, shape (n,)) of series (n, T) in mm at ``years``."""
    t = np.asarray(years, np.float64)
    tc = t - t.mean()
    return np.asarray(series_mm, np.float64) @ tc / (tc @ tc)


def temporal_coherence(series_mm: np.ndarray, years: np.ndarray, wavelength_mm: float,
                       v_max_mm_yr: float = 150.0, v_step_mm_yr: float = 2.0) -> np.ndarray:
    """Temporal coherence (float64, 0 … 1, shape (n,)) of displacement series (n, T) in mm.

    ``v_max_mm_yr`` and ``v_step_mm_yr`` set the periodogram's velocity grid; the step must be
    well under ``λ / (2 · time span)`` (the width of the periodogram's peak, ≈ 14 mm/yr for two
    years of C-band data) so that the coarse search lands on the main peak.
    """
    t = np.asarray(years, np.float64)
    k = 4.0 * np.pi / wavelength_mm
    phase = (k * np.asarray(series_mm, np.float64)).astype(np.float32)
    grid = np.arange(-v_max_mm_yr, v_max_mm_yr + 0.5 * v_step_mm_yr, v_step_mm_yr)
    steer = np.exp(-1j * k * np.outer(t, grid)).astype(np.complex64)
    v0 = grid[np.argmax(np.abs(cis(phase) @ steer), axis=1)]
    model = (k * v0[:, None] * t[None, :]).astype(np.float32)
    design = np.column_stack([t - t.mean(), np.sin(2 * np.pi * t), np.cos(2 * np.pi * t)])
    design -= design.mean(axis=0)
    fit = (np.linalg.pinv(design).T @ design.T).astype(np.float32)  # (T, T) projector
    for _ in range(2):  # Gauss-Newton on the wrapped residual
        resid = _wrap(phase - model)
        centre = np.angle(cis(resid).mean(axis=1, keepdims=True))
        resid = _wrap(resid - centre)
        model += centre + resid @ fit
    return np.abs(cis(phase - model).mean(axis=1)).astype(np.float64)


def _wrap(phase: np.ndarray) -> np.ndarray:
    """Phase wrapped into [-π, π)."""
    return (phase + np.float32(np.pi)) % np.float32(2 * np.pi) - np.float32(np.pi)


def cis(phase: np.ndarray) -> np.ndarray:
    """``exp(j·phase)`` as complex64 (cos and sin are several times faster than a complex exp)."""
    out = np.empty(phase.shape, np.complex64)
    out.real = np.cos(phase)
    out.imag = np.sin(phase)
    return out
