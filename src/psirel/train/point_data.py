"""Glue from a prepared cloud to the baselines' :class:`~psirel.baselines.data.PointData`."""

from __future__ import annotations

import numpy as np

from psirel.baselines.data import PointData
from psirel.features.normalize import Normalizer
from psirel.train.data import CloudInputs

PATCH_STAT_NAMES = ["dem_rel_mean_m", "dem_rel_std_m", "amp_db_mean", "amp_db_std",
                    "valid_fraction"]


def patch_stats(patches: np.ndarray, normalizer: Normalizer, pixel_m: float,
                chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Per-point patch statistics and terrain slope (degrees) from the normalised patch cache."""
    n, _, p, _ = patches.shape
    stats = np.zeros((n, len(PATCH_STAT_NAMES)), np.float32)
    slope = np.zeros(n, np.float32)
    c = p // 2
    for s in range(0, n, chunk):
        blk = np.asarray(patches[s:s + chunk], np.float32)
        valid = blk[:, 3] > 0.5
        cnt = np.maximum(valid.sum(axis=(1, 2)), 1)
        dem = blk[:, 0] * normalizer.dem_rel_std_m
        amp = blk[:, 2] * normalizer.amp_db_std + normalizer.amp_db_mean
        for j, arr in enumerate((dem, amp)):
            m = (arr * valid).sum(axis=(1, 2)) / cnt
            v = ((arr - m[:, None, None]) ** 2 * valid).sum(axis=(1, 2)) / cnt
            stats[s:s + chunk, 2 * j] = m
            stats[s:s + chunk, 2 * j + 1] = np.sqrt(v)
        stats[s:s + chunk, 4] = valid.mean(axis=(1, 2))
        gx = (dem[:, c, c + 1] - dem[:, c, c - 1]) / (2 * pixel_m)
        gy = (dem[:, c + 1, c] - dem[:, c - 1, c]) / (2 * pixel_m)
        slope[s:s + chunk] = np.degrees(np.arctan(np.hypot(gx, gy)))
    return stats, slope


def build_point_data(inputs: CloudInputs, patches: np.ndarray, normalizer: Normalizer) -> PointData:
    c = inputs.cloud
    keep = [i for i, n in enumerate(inputs.scalar_names) if n not in ("velocity", "coherence")]
    stats, slope = patch_stats(patches, normalizer, inputs.stack.pixel_m)
    lulc = inputs.stack.sample(c.x, c.y, "lulc")
    return PointData(
        x_m=c.x, y_m=c.y, velocity_mm_yr=c.velocity_mm_yr, coherence=c.coherence,
        series_mm=c.series_mm, series_feats=inputs.scalars_raw[:, keep],
        series_feat_names=[inputs.scalar_names[i] for i in keep],
        nbr_idx=inputs.table.idx, nbr_mask=inputs.table.mask, patch_stats=stats,
        patch_stat_names=list(PATCH_STAT_NAMES), slope_deg=slope,
        lulc_class=np.nan_to_num(lulc, nan=0).astype(np.int64))
