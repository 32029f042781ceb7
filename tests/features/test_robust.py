"""psirel.features.robust: row medians and MADs ignoring NaN."""

from __future__ import annotations

import numpy as np

from psirel.features.robust import MAD_TO_STD, nanmad_rows, nanmedian_mad_rows, nanmedian_rows


def test_row_median_and_mad_match_numpy_and_all_nan_rows_are_zero():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(40, 9))
    v[rng.random(v.shape) < 0.3] = np.nan
    v[3] = np.nan                      # an all-NaN row
    v[5] = rng.normal(size=9)          # a complete row (partition path)
    v[7, :8] = np.nan                  # a single value
    med, mad = nanmedian_mad_rows(v)
    keep = ~np.isnan(v).all(axis=1)
    ref_med = np.nanmedian(v[keep], axis=1)
    ref_mad = np.nanmedian(np.abs(v[keep] - ref_med[:, None]), axis=1)
    np.testing.assert_allclose(med[keep], ref_med, rtol=0, atol=1e-12)
    np.testing.assert_allclose(mad[keep], ref_mad, rtol=0, atol=1e-12)
    assert med[3] == 0.0 and mad[3] == 0.0 and mad[7] == 0.0
    np.testing.assert_array_equal(nanmedian_rows(v), med)
    np.testing.assert_array_equal(nanmad_rows(v), mad)


def test_mad_to_std_makes_the_mad_of_a_normal_law_its_sigma():
    x = np.random.default_rng(1).normal(scale=3.0, size=(1, 200_001))
    assert abs(MAD_TO_STD * nanmad_rows(x)[0] - 3.0) < 0.03
