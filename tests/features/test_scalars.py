from __future__ import annotations

import numpy as np
import pytest

from psirel.features.scalars import SCALAR_FEATURES, scalar_features
from psirel.features.series import SERIES_FEATURES
from psirel.features.temporal import TEMPORAL_FEATURES


def col(f: np.ndarray, name: str) -> np.ndarray:
    return f[:, SCALAR_FEATURES.index(name)]


@pytest.fixture
def dates():
    return np.datetime64("2020-01-01") + np.arange(0, 2 * 365, 6).astype("timedelta64[D]")


def test_columns_and_values(dates):
    t = (dates - dates[0]).astype(float) / 365.25
    series = np.stack([-8.0 * t, 4.0 * t]).astype(np.float32)
    v = np.array([-8.0, 10.0])
    coh = np.array([0.9, 0.4])
    f, names = scalar_features(v, coh, series, dates)
    assert names == SCALAR_FEATURES == ["velocity_mm_yr", "coherence", *SERIES_FEATURES,
                                        "velocity_minus_series_mm_yr", *TEMPORAL_FEATURES]
    assert f.shape == (2, len(names)) and f.dtype == np.float32
    np.testing.assert_array_equal(col(f, "velocity_mm_yr"), v)
    np.testing.assert_allclose(col(f, "coherence"), coh)
    np.testing.assert_allclose(col(f, "series_velocity_mm_yr"), [-8.0, 4.0], atol=1e-4)
    np.testing.assert_allclose(col(f, "velocity_minus_series_mm_yr"), [0.0, 6.0], atol=1e-4)


def test_without_series():
    v, coh = np.array([1.0, -2.0, 3.0]), np.array([0.5, 0.6, 0.7])
    for series, d in ((None, None), (np.zeros((3, 0)), np.array([], "datetime64[D]"))):
        f, names = scalar_features(v, coh, series, d)
        assert f.shape == (3, len(names))
        np.testing.assert_array_equal(col(f, "velocity_mm_yr"), v.astype(np.float32))
        assert not col(f, "series_present").any()
        assert not col(f, "temporal_present").any()
        assert not col(f, "velocity_minus_series_mm_yr").any()   # no series: no mismatch
        assert not f[:, 2:].any()


def test_finite_and_deterministic(dates):
    rng = np.random.default_rng(0)
    n = 300
    series = np.cumsum(rng.normal(0, 5, (n, len(dates))), axis=1).astype(np.float32)
    series[:10] = 0.0                                      # constant series
    series[10:20, ::2] += 27.75
    v, coh = rng.normal(0, 10, n), rng.uniform(0, 1, n)
    a, _ = scalar_features(v, coh, series, dates)
    b, _ = scalar_features(v.copy(), coh.copy(), series.copy(), dates.copy())
    assert np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)


def test_length_mismatch(dates):
    with pytest.raises(ValueError, match="differ in length"):
        scalar_features(np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match=r"\[3, T\]"):
        scalar_features(np.zeros(3), np.zeros(3), np.zeros((2, len(dates))), dates)


def test_features_import_without_torch():
    import subprocess
    import sys

    code = ("import sys, psirel.features.patches, psirel.features.normalize, "
            "psirel.features.series, psirel.features.scalars; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
