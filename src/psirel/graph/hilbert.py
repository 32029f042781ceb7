"""Hilbert-curve order of points: consecutive points close in space.

Serves every step that walks a cloud in compact pieces: inference chunks
(:class:`psirel.features.patches.PatchChunks`, the tiles' halo points), the training split and
the seed batches of :func:`psirel.graph.sampling.compact_batches`.
"""

from __future__ import annotations

import numpy as np

HILBERT_BITS = 16


def hilbert_index(ix: np.ndarray, iy: np.ndarray, bits: int = HILBERT_BITS) -> np.ndarray:
    """Distance along a Hilbert curve of integer cells ``0 <= ix, iy < 2**bits`` (int64).

    Vectorised form of the classic ``xy2d`` (Wikipedia, "Hilbert curve"): one pass per bit.
    """
    n = np.int64(1) << bits
    x = np.asarray(ix, dtype=np.int64).copy()
    y = np.asarray(iy, dtype=np.int64).copy()
    d = np.zeros(x.shape, dtype=np.int64)
    s = n >> 1
    while s > 0:
        rx = (x & s) > 0
        ry = (y & s) > 0
        d += s * s * ((3 * rx.astype(np.int64)) ^ ry.astype(np.int64))
        # Rotate the quadrant so that the curve inside it has the canonical orientation.
        flip = ~ry & rx
        x = np.where(flip, n - 1 - x, x)
        y = np.where(flip, n - 1 - y, y)
        swap = ~ry
        x, y = np.where(swap, y, x), np.where(swap, x, y)
        s >>= 1
    return d


def spatial_order(x: np.ndarray, y: np.ndarray, bits: int = HILBERT_BITS) -> np.ndarray:
    """Permutation that sorts points along a Hilbert curve over their bounding box.

    Consecutive points in this order are close in space, so a chunk of consecutive points covers
    a compact area and reads a small window. Ties keep input order (stable); points with
    non-finite coordinates come last. Returns ``[n]`` int64 indices.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    n = len(x)
    finite = np.isfinite(x) & np.isfinite(y)
    key = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    if finite.any():
        xf, yf = x[finite], y[finite]
        x0, y0 = xf.min(), yf.min()
        extent = max(xf.max() - x0, yf.max() - y0)
        cells = (1 << bits) - 1
        scale = cells / extent if extent > 0 else 0.0
        ix = np.clip(np.floor((xf - x0) * scale), 0, cells)
        iy = np.clip(np.floor((yf - y0) * scale), 0, cells)
        key[finite] = hilbert_index(ix, iy, bits)
    return np.argsort(key, kind="stable")
