"""Gaussian random fields with a power-law spectrum (spectral synthesis by FFT).

Terrain, land-cover patchiness, deformation and atmospheric screens are all built from these
fields. The spectrum is ``P(k) ∝ (k² + k0²)^(-β/2)`` with ``k`` in cycles/m and ``k0 = 1/corner_m``:
a fractal (self-similar) surface at wavelengths shorter than ``corner_m`` that flattens out beyond
it, so the statistics of a field do not depend on the size of the grid it is drawn on.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def power_law_field(rng: np.random.Generator, shape: tuple[int, int], pixel_m: float,
                    beta: float, corner_m: float, coarse: int = 1) -> np.ndarray:
    """Zero-mean random field on a ``shape`` grid of ``pixel_m`` metre pixels.

    The field is scaled to unit variance *on an unbounded plane* (the integral of the spectrum),
    not on this grid: a small grid, missing the longest wavelengths, has less variance, as a
    small window of real terrain shows less relief. This keeps slopes, patch sizes and
    roughness independent of the scene size.

    ``beta`` is the spectral exponent (≈ 3–4 for terrain, 8/3 for turbulence); ``corner_m`` (m)
    the wavelength beyond which the spectrum flattens. ``coarse`` > 1 draws the field on a grid
    ``coarse`` times coarser and interpolates it (bilinear): much cheaper for smooth fields.
    The FFT wraps around, so the field is drawn on a grid padded by a quarter and cropped, which
    hides the periodic seam. Returns float32 ``shape`` (computed in single precision: the
    fields are smooth and metre-scale, and 2,000² grids stay light).
    """
    ny, nx = shape
    cy, cx = max(2, -(-ny // coarse)), max(2, -(-nx // coarse))
    pad = max(8, max(cy, cx) // 4)
    py, px = cy + pad, cx + pad
    step_m = pixel_m * coarse
    spectrum = np.fft.rfft2(rng.standard_normal((py, px), dtype=np.float32))
    ky = np.fft.fftfreq(py, d=step_m)[:, None]
    kx = np.fft.rfftfreq(px, d=step_m)[None, :]
    k0 = 1.0 / corner_m
    # var = step² ∫ P(k) d²k = step² π k0^(2-β) / (β/2 - 1) for unit white noise
    norm = step_m * np.sqrt(np.pi * k0 ** (2.0 - beta) / (beta / 2.0 - 1.0))
    amp = ((kx**2 + ky**2 + k0**2) ** (-beta / 4.0) / norm).astype(np.float32)
    amp[0, 0] = 0.0
    spectrum *= amp
    del amp
    field = np.fft.irfft2(spectrum, s=(py, px))[:cy, :cx]
    if coarse > 1:
        field = resize(field, shape)
    return (field - field.mean(dtype=np.float64)).astype(np.float32)


def resize(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resampling of a 2-D array onto ``shape`` (pixel centres aligned, edges clamped)."""
    ny, nx = shape
    ry = (np.arange(ny) + 0.5) * a.shape[0] / ny - 0.5
    rx = (np.arange(nx) + 0.5) * a.shape[1] / nx - 0.5
    yy = np.clip(ry, 0, a.shape[0] - 1)[:, None]
    xx = np.clip(rx, 0, a.shape[1] - 1)[None, :]
    return ndimage.map_coordinates(a, np.broadcast_arrays(yy, xx), order=1, mode="nearest")


def bilinear(grid: np.ndarray, row: np.ndarray, col: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of ``grid`` at fractional pixel-centre coordinates (``row``,
    ``col``; pixel (i, j) has its centre at (i, j)); coordinates are clamped to the grid. A
    3-D ``grid`` (k, rows, cols) is interpolated layer by layer and returns (n, k)."""
    ny, nx = grid.shape[-2:]
    r = np.clip(row, 0.0, ny - 1.0)
    c = np.clip(col, 0.0, nx - 1.0)
    r0 = np.minimum(r.astype(np.int64), ny - 2) if ny > 1 else np.zeros(r.shape, np.int64)
    c0 = np.minimum(c.astype(np.int64), nx - 2) if nx > 1 else np.zeros(c.shape, np.int64)
    fr, fc = r - r0, c - c0
    r1, c1 = np.minimum(r0 + 1, ny - 1), np.minimum(c0 + 1, nx - 1)
    if grid.ndim == 2:
        return ((grid[r0, c0] * (1 - fc) + grid[r0, c1] * fc) * (1 - fr)
                + (grid[r1, c0] * (1 - fc) + grid[r1, c1] * fc) * fr)
    top = grid[:, r0, c0] * (1 - fc) + grid[:, r0, c1] * fc
    bottom = grid[:, r1, c0] * (1 - fc) + grid[:, r1, c1] * fc
    return (top * (1 - fr) + bottom * fr).T
