"""Square raster patches around points, read by window and gathered without a loop over points.

Convention (**contract**): a point at fractional pixel position ``(row, col)`` on the DEM grid
(pixel centres at .5, see :meth:`RasterStack.to_pixel`) lies in pixel ``(floor(row),
floor(col))``. That pixel sits at index ``(patch_px // 2, patch_px // 2)`` of its patch. For the
default ``patch_px = 80`` the point's pixel is at ``[40, 40]``, with 40 pixels above and left of
it and 39 below and right: patch row ``i`` is raster row ``floor(row) - 40 + i``.

Where a patch runs off the raster, or a layer has no data, values are NaN and ``valid`` is
False. The model sees a validity channel instead of a fabricated value, so an edge point is not
mistaken for one next to a flat, dark, unknown-land-cover area.

Reading: the points of a call are split into spatial groups spanning at most ``block_px`` pixels
each way (:func:`split_blocks`); each group costs one ``stack.read_window`` of the bounding window
of its points' patches. A compact chunk reads about its own footprint, and sparse points spread
over a large raster read a few small windows instead of the whole raster.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from psirel.graph.hilbert import spatial_order
from psirel.io.rasters import LAYERS, RasterStack

PATCH_PX = 80
# Largest spread of a group of points read together, in pixels: a read is at most
# (block_px + patch_px)^2 pixels per layer (~1.4 MB for 256 + 80). Larger blocks re-read less
# margin between neighbouring groups but may read more empty area between sparse points.
BLOCK_PX = 256
_GATHER_POINTS = 64


def patch_offset(patch_px: int = PATCH_PX) -> int:
    """Rows (and columns) of the patch above (left of) the point's pixel: ``patch_px // 2``."""
    return patch_px // 2


def extract_patches(stack: RasterStack, x: np.ndarray, y: np.ndarray, patch_px: int = PATCH_PX,
                    out: np.ndarray | None = None, block_px: int = BLOCK_PX
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Raw patches of the stack's layers around points given in the stack's CRS (metres).

    Args:
        stack: the DEM / LULC / amplitude stack; patches are on the DEM's grid.
        x, y: ``[n]`` map coordinates in the stack's CRS.
        patch_px: patch edge in pixels (see the module docstring for the centring convention).
        out: optional float32 buffer of shape ``[m >= n, 3, patch_px, patch_px]`` to fill
            (``out[:n]`` is filled and returned). Pass one when extracting chunk after chunk:
            a fresh ~150 MB array per 2,048 points costs more in page faults than the gather
            itself (2-4x slower, measured).
        block_px: largest spread (pixels) of a group of points that share one windowed read.

    Returns:
        ``patches [n, 3, patch_px, patch_px]`` float32 raw values in :data:`LAYERS` order (DEM in
        m, LULC class code, amplitude as stored), NaN where invalid; and ``valid [n, patch_px,
        patch_px]`` bool, True where all three layers have data. Points with non-finite
        coordinates get all-invalid patches.
    """
    return gather_patches(stack, x, y, None, len(LAYERS), patch_px, out, block_px)


WindowFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def gather_patches(stack: RasterStack, x: np.ndarray, y: np.ndarray,
                   prepare: WindowFn | None = None, n_channels: int = len(LAYERS),
                   patch_px: int = PATCH_PX, out: np.ndarray | None = None,
                   block_px: int = BLOCK_PX) -> tuple[np.ndarray, np.ndarray]:
    """Patches of per-pixel channels computed once per window, then gathered per point.

    ``prepare(values [3, h, w], valid [h, w]) -> [n_channels, h, w]`` float32 runs on each block's
    window before the gather, so per-pixel work (e.g. a log, a lookup) is done once per raster
    pixel rather than once per patch pixel; overlapping patches share it. ``None`` keeps the raw
    values (:func:`extract_patches`). Points with non-finite coordinates get the channels
    ``prepare`` gives an all-NaN, invalid pixel. Returns ``(patches [n, n_channels, P, P],
    valid [n, P, P])``.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in length ({len(x)} vs {len(y)})")
    if patch_px < 1 or block_px < 1:
        raise ValueError("patch_px and block_px must be positive")
    n, p, nc = len(x), int(patch_px), int(n_channels)
    if out is None:
        out = np.empty((n, nc, p, p), dtype=np.float32)
    else:
        if out.dtype != np.float32 or out.ndim != 4 or out.shape[1:] != (nc, p, p) \
                or out.shape[0] < n:
            raise ValueError(f"out must be float32 [>= {n}, {nc}, {p}, {p}], got "
                             f"{out.dtype} {list(out.shape)}")
        out = out[:n]
    valid = np.zeros((n, p, p), dtype=bool)
    if n == 0:
        return out, valid

    with np.errstate(invalid="ignore"):  # inf coordinates
        row, col = stack.to_pixel(x, y)
    finite = np.isfinite(row) & np.isfinite(col)
    if not finite.all():
        fill = np.full((len(LAYERS), 1, 1), np.nan, dtype=np.float32)
        if prepare is not None:
            fill = prepare(fill, np.zeros((1, 1), dtype=bool))
        out[~finite] = fill[None, :, :, :]
    ok = np.flatnonzero(finite)
    half = patch_offset(p)
    top = np.floor(row[ok]).astype(np.int64) - half   # raster row of patch row 0
    left = np.floor(col[ok]).astype(np.int64) - half

    for sel in split_blocks(top, left, block_px):
        t, lf = top[sel], left[sel]
        t0, l0 = int(t.min()), int(lf.min())
        h, w = int(t.max()) - t0 + p, int(lf.max()) - l0 + p
        vals, ok_px = stack.read_window(t0, l0, h, w)
        if prepare is not None:
            vals = prepare(vals, ok_px)
        # [h - p + 1, w - p + 1, p, p] views: every patch origin, no copy until the gather.
        views = [sliding_window_view(vals[i], (p, p)) for i in range(nc)]
        vview = sliding_window_view(ok_px, (p, p))
        # Vectorised gather, 64 points per numpy call so that the intermediate copy stays in
        # cache (2x faster than one call per block, measured).
        for g in range(0, len(sel), _GATHER_POINTS):
            lr, lc = t[g:g + _GATHER_POINTS] - t0, lf[g:g + _GATHER_POINTS] - l0
            dst = ok[sel[g:g + _GATHER_POINTS]]
            for i in range(nc):
                out[dst, i] = views[i][lr, lc]
            valid[dst] = vview[lr, lc]
    return out, valid


def split_blocks(row: np.ndarray, col: np.ndarray, block_px: int) -> list[np.ndarray]:
    """Index groups of points whose rows and columns each span at most ``block_px`` pixels.

    The bounding box is halved along its longer side until every part is small enough, so a
    compact cluster is one group wherever it lies on the raster (no fixed tile edges cut it),
    clusters more than ``block_px`` apart are never read together, and no group's window
    exceeds ``(block_px + patch_px)^2`` pixels.
    """
    groups, todo = [], [np.arange(len(row))]
    while todo:
        idx = todo.pop()
        r, c = row[idx], col[idx]
        r0, r1, c0, c1 = r.min(), r.max(), c.min(), c.max()
        if r1 - r0 <= block_px and c1 - c0 <= block_px:
            groups.append(idx)
        elif r1 - r0 >= c1 - c0:
            low = r <= (r0 + r1) // 2
            todo += [idx[~low], idx[low]]
        else:
            low = c <= (c0 + c1) // 2
            todo += [idx[~low], idx[low]]
    return groups


class PatchChunks:
    """Iterate over points in spatially compact chunks: ``(indices, patches, valid)`` per chunk.

    ``indices`` are positions in the input arrays (in Hilbert order when ``ordered``), and
    ``patches`` / ``valid`` are as returned by :func:`extract_patches` for those points. With
    ``reuse_buffer`` the same patch array is overwritten by each chunk (copy what you keep).
    """

    def __init__(self, stack: RasterStack, x: np.ndarray, y: np.ndarray, chunk_size: int = 2048,
                 patch_px: int = PATCH_PX, ordered: bool = True, reuse_buffer: bool = False,
                 block_px: int = BLOCK_PX):
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        self.stack, self.chunk_size, self.patch_px = stack, int(chunk_size), int(patch_px)
        self.x = np.asarray(x, dtype=np.float64).ravel()
        self.y = np.asarray(y, dtype=np.float64).ravel()
        self.order = spatial_order(self.x, self.y) if ordered else np.arange(len(self.x))
        self.reuse_buffer, self.block_px = reuse_buffer, block_px

    def __len__(self) -> int:
        return -(-len(self.order) // self.chunk_size)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        buf = None
        if self.reuse_buffer and len(self.order):
            p = self.patch_px
            buf = np.empty((min(self.chunk_size, len(self.order)), len(LAYERS), p, p), np.float32)
        for s in range(0, len(self.order), self.chunk_size):
            idx = self.order[s:s + self.chunk_size]
            patches, valid = extract_patches(self.stack, self.x[idx], self.y[idx], self.patch_px,
                                             out=buf, block_px=self.block_px)
            yield idx, patches, valid


def iter_patch_chunks(stack: RasterStack, x: np.ndarray, y: np.ndarray, chunk_size: int = 2048,
                      patch_px: int = PATCH_PX, ordered: bool = True, reuse_buffer: bool = False,
                      block_px: int = BLOCK_PX) -> PatchChunks:
    """``(indices, patches, valid)`` chunks in spatially compact order (:class:`PatchChunks`)."""
    return PatchChunks(stack, x, y, chunk_size, patch_px, ordered, reuse_buffer, block_px)
