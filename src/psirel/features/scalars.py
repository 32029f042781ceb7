"""Per-point scalar features: the PSI product's own velocity and coherence, plus series statistics.

Columns: :data:`BASE_FEATURES`, the series statistics
(:data:`~psirel.features.series.SERIES_FEATURES`), the velocity mismatch, then the temporal block
(:data:`~psirel.features.temporal.TEMPORAL_FEATURES`), contiguous and last: a model with a
temporal encoder takes it by position (:data:`TEMPORAL_START`, set from the names).

The column order is fixed by :func:`scalar_features` and recorded (as names) in the model's
:class:`~psirel.features.normalize.Normalizer`, which refuses a different set at inference.
"""

from __future__ import annotations

import numpy as np

from psirel.features.series import C_BAND_WAVELENGTH_MM, SERIES_FEATURES, series_features
from psirel.features.temporal import TEMPORAL_FEATURES, temporal_features

BASE_FEATURES = ["velocity_mm_yr", "coherence"]
# The product's velocity minus the series fit's: a processor's velocity that the series does not
# support (or the reverse) is itself a sign of trouble. 0 without a series.
MISMATCH_FEATURE = "velocity_minus_series_mm_yr"
SCALAR_FEATURES = [*BASE_FEATURES, *SERIES_FEATURES, MISMATCH_FEATURE, *TEMPORAL_FEATURES]
TEMPORAL_START = SCALAR_FEATURES.index(TEMPORAL_FEATURES[0])


def scalar_features(velocity_mm_yr: np.ndarray, coherence: np.ndarray,
                    series_mm: np.ndarray | None = None, dates: np.ndarray | None = None,
                    wavelength_mm: float = C_BAND_WAVELENGTH_MM, workers: int | None = 1
                    ) -> tuple[np.ndarray, list[str]]:
    """Scalar features of ``N`` points.

    Args:
        velocity_mm_yr: ``[N]`` line-of-sight velocity of the PSI product (mm/yr).
        coherence: ``[N]`` temporal coherence (0..1).
        series_mm: ``[N, T]`` displacement series (mm), or None / ``T = 0`` without series.
        dates: ``[T]`` dates of the series (datetime64), or None without series.
        wavelength_mm: radar wavelength (mm), for the unwrapping-jump count.
        workers: threads for the series and temporal features, None: one per CPU (the result
            does not depend on it; see :mod:`psirel.features.row_blocks`).

    Returns:
        ``[N, S]`` float32 in :data:`SCALAR_FEATURES` order, and those names. Deterministic; finite
        input gives finite output.
    """
    v = np.asarray(velocity_mm_yr, dtype=np.float64).ravel()
    c = np.asarray(coherence, dtype=np.float64).ravel()
    n = len(v)
    if len(c) != n:
        raise ValueError(f"velocity and coherence differ in length ({n} vs {len(c)})")
    if series_mm is None:
        series_mm, dates = np.zeros((n, 0), np.float32), None
    series_mm = np.asarray(series_mm)
    if series_mm.ndim != 2 or series_mm.shape[0] != n:
        raise ValueError(f"series must be [{n}, T], got {list(series_mm.shape)}")
    sf, names = series_features(series_mm, dates, wavelength_mm, workers)
    fit_v = sf[:, names.index("series_velocity_mm_yr")].astype(np.float64)
    present = sf[:, names.index("series_present")] > 0
    mismatch = np.where(present, v - fit_v, 0.0)
    tf, _ = temporal_features(series_mm, dates, workers)
    feats = np.column_stack([v, c, sf.astype(np.float64), mismatch, tf]).astype(np.float32)
    return feats, list(SCALAR_FEATURES)
