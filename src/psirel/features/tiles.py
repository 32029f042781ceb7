"""Raster tiles for the shared-feature-map encoder: normalised windows on a 32-pixel lattice.

The shared-map encoder (:mod:`psirel.models.shared_map`) runs its CNN once over a window of the
rasters and samples the feature maps at the points, instead of cutting an 80×80 patch per point.
Its input is the patch model's four channels computed on the whole window, with one change:
channel 0 cannot be "height relative to *the* point" (a window holds many points), so it is the
relief relative to the mean height of the 81×81 pixels around each pixel (a high-pass of the DEM,
masked to valid pixels), divided by the same ``dem_rel_std_m``.

Windows start on multiples of :data:`ALIGN_PX` (the CNN's total stride) in the DEM grid, so every
window's feature cells coincide with those of any other window: a point's features depend on
where a window starts only through the zero padding at its edges, which :data:`CONTEXT_PX` of
context on every side keeps away from the points.

Shapes: a window is ``[4, H, W]`` float32 with ``H, W`` multiples of :data:`ALIGN_PX`; point
positions inside it are continuous pixel coordinates ``(row, col)`` with pixel ``i`` spanning
``[i, i + 1)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import uniform_filter

from psirel.features.normalize import N_PATCH_CHANNELS, Normalizer
from psirel.io.rasters import RasterStack

ALIGN_PX = 32          # total stride of the ConvNeXt (stem 4 × three 2× downsamplings)
CONTEXT_PX = 64        # context kept around the points of a window (≥ the patch half-width 40)
RELIEF_PX = 81         # box of the high-pass: the patch model's 80-px view, made odd


@dataclass(frozen=True)
class AlignedBox:
    """An aligned box of the DEM grid: top-left pixel and size (multiples of :data:`ALIGN_PX`).

    Row first, as numpy indexes: ``full[:, row0:row0 + height, col0:col0 + width]``. Not a
    :class:`rasterio.windows.Window`, whose order is ``(col_off, row_off, width, height)``;
    the rasters are read through :meth:`RasterStack.read_window`, which takes rows first too.
    """

    row0: int
    col0: int
    height: int
    width: int

    def local(self, row: np.ndarray, col: np.ndarray) -> np.ndarray:
        """``[n, 2]`` float32 (row, col) of grid positions inside this window."""
        return np.stack([np.asarray(row) - self.row0, np.asarray(col) - self.col0],
                        axis=1).astype(np.float32)


def window_around(row: np.ndarray, col: np.ndarray, context_px: int = CONTEXT_PX) -> AlignedBox:
    """The smallest aligned window holding every ``(row, col)`` with ``context_px`` around."""
    row, col = np.asarray(row, float), np.asarray(col, float)
    if row.size == 0:
        raise ValueError("window_around needs at least one point")
    r0 = int(np.floor((row.min() - context_px) / ALIGN_PX)) * ALIGN_PX
    c0 = int(np.floor((col.min() - context_px) / ALIGN_PX)) * ALIGN_PX
    r1 = int(np.ceil((row.max() + context_px) / ALIGN_PX)) * ALIGN_PX
    c1 = int(np.ceil((col.max() + context_px) / ALIGN_PX)) * ALIGN_PX
    return AlignedBox(r0, c0, max(r1 - r0, ALIGN_PX), max(c1 - c0, ALIGN_PX))


def relief(dem: np.ndarray, valid: np.ndarray, box_px: int = RELIEF_PX) -> np.ndarray:
    """DEM minus its masked ``box_px``×``box_px`` mean (0 where invalid); float32."""
    d = np.where(valid, dem, 0.0).astype(np.float64)
    w = valid.astype(np.float64)
    num = uniform_filter(d, size=box_px, mode="constant")
    den = uniform_filter(w, size=box_px, mode="constant")
    mean = num / np.maximum(den, 1e-9)
    return np.where(valid, dem - mean, 0.0).astype(np.float32)


def normalised_window(normalizer: Normalizer, stack: RasterStack, win: AlignedBox) -> np.ndarray:
    """The encoder input ``[4, H, W]`` of ``win`` (channels as in the module docstring).

    The DEM is read with half a relief box of extra margin so the high-pass at the window's
    edge pixels sees the same neighbourhood as in any other window."""
    m = RELIEF_PX // 2
    raw, valid = stack.read_window(win.row0 - m, win.col0 - m, win.height + 2 * m,
                                   win.width + 2 * m)
    out = np.empty((N_PATCH_CHANNELS, win.height, win.width), np.float32)
    inner = (slice(m, m + win.height), slice(m, m + win.width))
    normalizer.pixel_channels(raw[:, inner[0], inner[1]], valid[inner], out=out)
    rel = relief(raw[0], valid)[inner]
    out[0] = rel * np.float32(1.0 / normalizer.dem_rel_std_m)
    return out


def full_raster(normalizer: Normalizer, stack: RasterStack, out: np.ndarray | None = None,
                strip_px: int = 1024) -> np.ndarray:
    """The whole DEM grid as one normalised ``[4, H', W']`` array (H', W' rounded up to
    :data:`ALIGN_PX`), built in strips of ``strip_px`` rows, so the float64 temporaries of the
    high-pass are a strip's, never the scene's; ``out`` may be a float16 memory map
    (:func:`scene_raster`). The relief margin makes each strip's pixels the whole's."""
    height = -(-stack.height // ALIGN_PX) * ALIGN_PX
    width = -(-stack.width // ALIGN_PX) * ALIGN_PX
    if out is None:
        out = np.empty((N_PATCH_CHANNELS, height, width), np.float32)
    strip_px = max(ALIGN_PX, strip_px // ALIGN_PX * ALIGN_PX)
    for r0 in range(0, height, strip_px):
        h = min(strip_px, height - r0)
        out[:, r0:r0 + h] = normalised_window(normalizer, stack, AlignedBox(r0, 0, h, width))
    return out


def scene_raster(normalizer: Normalizer, stack: RasterStack, path: Path,
                 dtype=np.float16) -> np.ndarray:
    """:func:`full_raster` into a memory-mapped ``.npy`` at ``path`` (read-only once built):
    memory stays a strip's whatever the scene's size."""
    height = -(-stack.height // ALIGN_PX) * ALIGN_PX
    width = -(-stack.width // ALIGN_PX) * ALIGN_PX
    arr = np.lib.format.open_memmap(path, mode="w+", dtype=dtype,
                                    shape=(N_PATCH_CHANNELS, height, width))
    full_raster(normalizer, stack, out=arr)
    arr.flush()
    del arr
    return np.load(path, mmap_mode="r")


def crop(full: np.ndarray, win: AlignedBox) -> np.ndarray:
    """``win`` cut from a :func:`full_raster` array, zero-padded (mask 0) outside it."""
    _, h, w = full.shape
    out = np.zeros((N_PATCH_CHANNELS, win.height, win.width), np.float32)
    r0, c0 = max(win.row0, 0), max(win.col0, 0)
    r1, c1 = min(win.row0 + win.height, h), min(win.col0 + win.width, w)
    if r1 > r0 and c1 > c0:
        out[:, r0 - win.row0:r1 - win.row0, c0 - win.col0:c1 - win.col0] = full[:, r0:r1, c0:c1]
    return out
