"""Stage 1 for a shared-feature-map model: one encoder call per raster window, not per point.

A chunk of points (a run of the Hilbert order, so spatially compact) is split on a lattice of
``tile_px``-pixel tiles aligned to the CNN's stride; each tile's points get one window
(:func:`~psirel.features.tiles.window_around`: their extent plus context), which is read,
normalised and passed with the points' positions to the encoder. The encoder's cost follows the
window's area; the number of points in it only adds the sampling, so dense clouds are cheap.
Memory per call is bounded by the tile size (a 1024-px tile with context is ~1,150² pixels).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from psirel.features.tiles import ALIGN_PX, normalised_window, window_around

TILE_PX = 1024


def tile_groups(rows: np.ndarray, cols: np.ndarray, tile_px: int = TILE_PX) -> list[np.ndarray]:
    """Indices into ``rows``/``cols`` grouped by ``tile_px`` lattice tile, in a fixed order
    (row-major over tiles, input order within one)."""
    if tile_px % ALIGN_PX:
        raise ValueError(f"tile_px must be a multiple of {ALIGN_PX}, got {tile_px}")
    tr = np.floor(np.asarray(rows) / tile_px).astype(np.int64)
    tc = np.floor(np.asarray(cols) / tile_px).astype(np.int64)
    keys = np.stack([tr, tc], axis=1)
    _, inverse = np.unique(keys, axis=0, return_inverse=True)
    order = np.argsort(inverse.ravel(), kind="stable")
    splits = np.flatnonzero(np.diff(inverse.ravel()[order])) + 1
    return np.split(order, splits)


def embed_windows(scene, be, chunks: list[np.ndarray], emb: np.ndarray, timer,
                  on_chunk: Callable[[int, int], None] | None = None,
                  tile_px: int = TILE_PX) -> float:
    """Embed ``chunks`` (arrays of scene rows) into ``emb[rows]`` with the backend's
    ``embed_window(window [1, 4, H, W], rc [n, 2], scalars [n, S])``; the next window is read
    and normalised in a background thread while the encoder runs. After each chunk,
    ``on_chunk(i, n_points_on_unknown_land_cover)``.

    Returns the seconds spent reading and normalising windows (overlapped with encoding)."""
    c = scene.cloud
    row_px, col_px = scene.stack.to_pixel(c.x, c.y)
    jobs = []                                    # (chunk index, rows of one window)
    for j, rows in enumerate(chunks):
        jobs += [(j, rows[g]) for g in tile_groups(row_px[rows], col_px[rows], tile_px)]
    if not jobs:
        return 0.0
    last_job = {j: i for i, (j, _) in enumerate(jobs)}
    unknown = dict.fromkeys(range(len(chunks)), 0)
    read_s = 0.0

    def read(i: int):
        t = time.perf_counter()
        rows = jobs[i][1]
        win = window_around(row_px[rows], col_px[rows])
        window = normalised_window(scene.normalizer, scene.stack, win)
        rc = win.local(row_px[rows], col_px[rows])
        r, q = rc[:, 0].astype(np.int64), rc[:, 1].astype(np.int64)
        n_unknown = int(((window[1, r, q] == 0) & (window[3, r, q] > 0)).sum())
        return window[None], rc, n_unknown, time.perf_counter() - t

    with ThreadPoolExecutor(1, thread_name_prefix="psirel-windows") as pool:
        pending = pool.submit(read, 0)
        for i, (j, rows) in enumerate(jobs):
            window, rc, n_unknown, dt = pending.result()
            read_s += dt
            if i + 1 < len(jobs):
                pending = pool.submit(read, i + 1)
            t0 = time.perf_counter()
            emb[rows] = be.embed_window(window, rc, scene.scalars[rows])
            timer.add("encoder", t0)
            unknown[j] += n_unknown
            if on_chunk is not None and last_job[j] == i:
                on_chunk(j, unknown[j])
    return read_s
