"""Stage 1 for a shared-feature-map model: one encoder call per raster window, not per point.

A chunk of points (a run of the Hilbert order, so spatially compact) is split on one global
lattice of ``cell_px``-pixel cells of the DEM grid, aligned to the CNN's stride; each cell's
points get one window: the whole cell plus :data:`~psirel.features.tiles.CONTEXT_PX` on every
side (:func:`cell_window`), read, normalised and passed with the points' positions to the
encoder. The window depends on the cell alone, never on which points, chunk or Dask tile asked
for it, so a point's embedding is the same in every run: tiled = single process to float
rounding, for this encoder as for the patch one. (A window fitted to the points' extent, as
before, changed with the chunk and the tile; the ConvNeXt's receptive field, ~1,000 px, reaches
the zero padding of any window of practical size, so outputs differed by up to 1.4e-3.)

The encoder's cost follows the window's area; the number of points in it only adds the
sampling, so dense clouds are cheap. Each cell is encoded once for all the chunks of a call,
however the Hilbert order cuts it into chunks (encoding it once per chunk cost 7× the pixels
on a 20,000-point scene). Memory per call is bounded by the cell: a 256-px cell with context is
384² pixels; the context costs 2.25× the cell's area where the cloud covers it all, the price
of windows that do not depend on the tiling.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from psirel.features.tiles import ALIGN_PX, CONTEXT_PX, AlignedBox, normalised_window

CELL_PX = 256
WINDOW_POINTS = 16_384  # points sampled in one encoder call (bounds its sampling memory)


def cell_groups(rows: np.ndarray, cols: np.ndarray, cell_px: int = CELL_PX
                ) -> list[tuple[tuple[int, int], np.ndarray]]:
    """``((cell_row, cell_col), indices into rows/cols)`` for each occupied ``cell_px`` lattice
    cell, in a fixed order (row-major over cells, input order within one)."""
    if cell_px % ALIGN_PX:
        raise ValueError(f"cell_px must be a multiple of {ALIGN_PX}, got {cell_px}")
    tr = np.floor(np.asarray(rows) / cell_px).astype(np.int64)
    tc = np.floor(np.asarray(cols) / cell_px).astype(np.int64)
    keys, inverse = np.unique(np.stack([tr, tc], axis=1), axis=0, return_inverse=True)
    order = np.argsort(inverse.ravel(), kind="stable")
    splits = np.flatnonzero(np.diff(inverse.ravel()[order])) + 1
    return [((int(k[0]), int(k[1])), g) for k, g in zip(keys, np.split(order, splits),
                                                        strict=True)]


def cell_window(cell: tuple[int, int], cell_px: int = CELL_PX,
                context_px: int = CONTEXT_PX) -> AlignedBox:
    """The encoder window of a lattice cell: the cell plus ``context_px`` on every side."""
    return AlignedBox(cell[0] * cell_px - context_px, cell[1] * cell_px - context_px,
                      cell_px + 2 * context_px, cell_px + 2 * context_px)


def embed_windows(scene, be, chunks: list[np.ndarray], emb: np.ndarray, timer,
                  on_chunk: Callable[[int, int], None] | None = None,
                  cell_px: int = CELL_PX) -> float:
    """Embed ``chunks`` (arrays of scene rows) into ``emb[rows]`` with the backend's
    ``embed_window(window [1, 4, H, W], rc [n, 2], scalars [n, S])``, each lattice cell's
    window encoded once for all the chunks' points in it (up to :data:`WINDOW_POINTS` a call),
    cells in the order of the first chunk they serve; the next window is read and normalised
    in a background thread while the encoder runs. Once a chunk's every cell is done,
    ``on_chunk(i, n_points_on_unknown_land_cover)``.

    Returns the seconds spent reading and normalising windows (overlapped with encoding)."""
    if not chunks:
        return 0.0
    c = scene.cloud
    row_px, col_px = scene.stack.to_pixel(c.x, c.y)
    rows_all = np.concatenate(chunks)
    chunk_of = np.repeat(np.arange(len(chunks)), [len(r) for r in chunks])
    groups = cell_groups(row_px[rows_all], col_px[rows_all], cell_px)
    groups.sort(key=lambda cg: (int(chunk_of[cg[1]].min()), cg[0]))
    jobs = [(cell, g[s:s + WINDOW_POINTS]) for cell, g in groups
            for s in range(0, len(g), WINDOW_POINTS)]          # (cell, indices into rows_all)
    if not jobs:
        for j in range(len(chunks)):
            if on_chunk is not None:
                on_chunk(j, 0)
        return 0.0
    left = np.bincount(np.concatenate([np.unique(chunk_of[g]) for _, g in jobs]),
                       minlength=len(chunks))                  # jobs still to do, per chunk
    unknown = np.zeros(len(chunks), np.int64)
    read_s = 0.0

    def read(i: int):
        t = time.perf_counter()
        cell, g = jobs[i]
        rows = rows_all[g]
        win = cell_window(cell, cell_px)
        window = normalised_window(scene.normalizer, scene.stack, win)
        rc = win.local(row_px[rows], col_px[rows])
        r, q = rc[:, 0].astype(np.int64), rc[:, 1].astype(np.int64)
        on_unknown = (window[1, r, q] == 0) & (window[3, r, q] > 0)
        return window[None], rc, on_unknown, time.perf_counter() - t

    with ThreadPoolExecutor(1, thread_name_prefix="psirel-windows") as pool:
        pending = pool.submit(read, 0)
        for i, (_, g) in enumerate(jobs):
            window, rc, on_unknown, dt = pending.result()
            read_s += dt
            if i + 1 < len(jobs):
                pending = pool.submit(read, i + 1)
            t0 = time.perf_counter()
            rows = rows_all[g]
            emb[rows] = be.embed_window(window, rc, scene.scalars[rows])
            timer.add("encoder", t0)
            timer.count("windows")
            timer.count("window_px", window.shape[-2] * window.shape[-1])
            unknown += np.bincount(chunk_of[g], weights=on_unknown,
                                   minlength=len(chunks)).astype(np.int64)
            for j in np.unique(chunk_of[g]):
                left[j] -= 1
                if left[j] == 0 and on_chunk is not None:
                    on_chunk(int(j), int(unknown[j]))
    return read_s
