"""Hand-made per-point features for the gradient-boosting baseline."""

from __future__ import annotations

import numpy as np

from psirel.baselines.data import PointData
from psirel.baselines.neighbour_consistency import neighbour_statistics

LULC_FEATURE = "lulc_class"
"""Name of the (categorical) land-cover column of :func:`hand_features`."""


def hand_features(data: PointData) -> tuple[np.ndarray, list[str]]:
    """Stack everything a point-wise tabular model can use.

    Columns, in order: ``velocity_mm_yr``, ``abs_velocity_mm_yr``, ``coherence``, the series
    statistics (``series:<name>``), the neighbour statistics of
    :func:`~psirel.baselines.neighbour_consistency.neighbour_statistics` (count, mean distance,
    neighbour coherence, velocity deviation and its absolute value, neighbour velocity spread,
    series residual RMS), the patch statistics (``patch:<name>``), ``slope_deg`` and finally
    ``lulc_class`` — the raw land-cover code as a float, to be treated as categorical (negative =
    unknown = missing).

    Returns:
        ``(X [N, M] float32, names [M])``; NaN where a value is undefined.
    """
    nbr, nbr_names = neighbour_statistics(data)
    cols = [
        data.velocity_mm_yr[:, None],
        np.abs(data.velocity_mm_yr)[:, None],
        data.coherence[:, None],
        data.series_feats,
        nbr,
        np.abs(nbr[:, [nbr_names.index("nbr_vel_dev_mm_yr")]]),
        data.patch_stats,
        data.slope_deg[:, None],
        data.lulc_class.astype(np.float32)[:, None],
    ]
    names = (
        ["velocity_mm_yr", "abs_velocity_mm_yr", "coherence"]
        + [f"series:{s}" for s in data.series_feat_names]
        + nbr_names
        + ["nbr_abs_vel_dev_mm_yr"]
        + [f"patch:{s}" for s in data.patch_stat_names]
        + ["slope_deg", LULC_FEATURE]
    )
    x = np.ascontiguousarray(np.concatenate(cols, axis=1), dtype=np.float32)
    return x, names
