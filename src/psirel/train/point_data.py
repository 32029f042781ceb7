"""Glue from a prepared cloud to the baselines' :class:`~psirel.baselines.data.PointData`."""

from __future__ import annotations

import numpy as np

from psirel.baselines.data import PointData
from psirel.features.normalize import Normalizer
from psirel.graph.hilbert import spatial_order
from psirel.io.points import PointCloud
from psirel.io.rasters import RasterStack
from psirel.train.data import CloudInputs

PATCH_STAT_NAMES = ["dem_rel_mean_m", "dem_rel_std_m", "amp_db_mean", "amp_db_std",
                    "valid_fraction"]


def _block_stats(blk: np.ndarray, normalizer: Normalizer, pixel_m: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Statistics ``[b, 5]`` and slope ``[b]`` of a block of normalised patches (float32)."""
    c = blk.shape[-1] // 2
    stats = np.zeros((len(blk), len(PATCH_STAT_NAMES)), np.float32)
    valid = blk[:, 3] > 0.5
    cnt = np.maximum(valid.sum(axis=(1, 2)), 1)
    dem = blk[:, 0] * normalizer.dem_rel_std_m
    amp = blk[:, 2] * normalizer.amp_db_std + normalizer.amp_db_mean
    for j, arr in enumerate((dem, amp)):
        m = (arr * valid).sum(axis=(1, 2)) / cnt
        v = ((arr - m[:, None, None]) ** 2 * valid).sum(axis=(1, 2)) / cnt
        stats[:, 2 * j] = m
        stats[:, 2 * j + 1] = np.sqrt(v)
    stats[:, 4] = valid.mean(axis=(1, 2))
    gx = (dem[:, c, c + 1] - dem[:, c, c - 1]) / (2 * pixel_m)
    gy = (dem[:, c + 1, c] - dem[:, c - 1, c]) / (2 * pixel_m)
    return stats, np.degrees(np.arctan(np.hypot(gx, gy))).astype(np.float32)


def patch_stats(patches: np.ndarray, normalizer: Normalizer, pixel_m: float,
                chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Per-point patch statistics and terrain slope (degrees) from the normalised patch cache."""
    n = len(patches)
    stats = np.zeros((n, len(PATCH_STAT_NAMES)), np.float32)
    slope = np.zeros(n, np.float32)
    for s in range(0, n, chunk):
        stats[s:s + chunk], slope[s:s + chunk] = _block_stats(
            np.asarray(patches[s:s + chunk], np.float32), normalizer, pixel_m)
    return stats, slope


def streamed_patch_stats(inputs: CloudInputs, normalizer: Normalizer, chunk: int = 4096,
                         progress=None, *, stored_dtype: np.dtype | type | None = None
                         ) -> tuple[tuple[np.ndarray, np.ndarray], int]:
    """The same statistics straight from the rasters, chunk by chunk in the spatial order,
    keeping no patch: a shared-map model needs patches only for them, and a patch cache of a
    million points is 51 GB. Returns ``((stats, slope), points on unknown land cover)``.
    See :func:`raster_patch_stats`."""
    return raster_patch_stats(inputs.cloud, inputs.stack, normalizer, chunk, progress,
                              stored_dtype=stored_dtype)


def raster_patch_stats(cloud: PointCloud, stack: RasterStack, normalizer: Normalizer,
                       chunk: int = 4096, progress=None, *,
                       stored_dtype: np.dtype | type | None = None
                       ) -> tuple[tuple[np.ndarray, np.ndarray], int]:
    """:func:`streamed_patch_stats` of a cloud read on ``stack``'s grid, before its features
    and graph exist (``psirel predict --baseline`` takes them first, so that the chunk's patch
    buffers never sit beside the whole cloud's features).

    ``stored_dtype``: round each patch through this dtype first, as a cache stores it
    (``np.float16``, :func:`~psirel.train.data.build_patch_cache`, same chunks and order):
    the statistics then equal :func:`patch_stats` of that cache, without the cache."""
    c = cloud
    n = len(c.x)
    stats = np.zeros((n, len(PATCH_STAT_NAMES)), np.float32)
    slope = np.zeros(n, np.float32)
    order = spatial_order(c.x, c.y)
    p = normalizer.patch_px
    buf = np.empty((min(chunk, n), 4, p, p), np.float32)
    n_unknown = 0
    for s in range(0, n, chunk):
        sel = np.sort(order[s:s + chunk])
        norm, unk = normalizer.extract(stack, c.x[sel], c.y[sel], out=buf[:len(sel)])
        if stored_dtype is not None:
            norm[...] = norm.astype(stored_dtype)
        stats[sel], slope[sel] = _block_stats(norm, normalizer, stack.pixel_m)
        n_unknown += int(unk)
        if progress is not None:
            progress(len(sel))
    return (stats, slope), n_unknown


def build_point_data(inputs: CloudInputs, patches: np.ndarray | None, normalizer: Normalizer,
                     stats: tuple[np.ndarray, np.ndarray] | None = None) -> PointData:
    """The baselines' inputs; patch statistics from ``patches`` (the cache), or ``stats``
    already computed (:func:`streamed_patch_stats`)."""
    c = inputs.cloud
    keep = [i for i, n in enumerate(inputs.scalar_names) if n not in ("velocity", "coherence")]
    stats, slope = stats if stats is not None else patch_stats(patches, normalizer,
                                                               inputs.stack.pixel_m)
    lulc = inputs.stack.sample(c.x, c.y, "lulc")
    return PointData(
        x_m=c.x, y_m=c.y, velocity_mm_yr=c.velocity_mm_yr, coherence=c.coherence,
        series_mm=c.series_mm, series_feats=inputs.scalars_raw[:, keep],
        series_feat_names=[inputs.scalar_names[i] for i in keep],
        nbr_idx=inputs.table.idx, nbr_mask=inputs.table.mask, patch_stats=stats,
        patch_stat_names=list(PATCH_STAT_NAMES), slope_deg=slope,
        lulc_class=np.nan_to_num(lulc, nan=0).astype(np.int64))
