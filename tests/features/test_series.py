from __future__ import annotations

import numpy as np
import pytest

from psirel.features.series import SERIES_FEATURES, series_features

DAY0 = np.datetime64("2019-01-03")


def dates_every(days: int, span_days: int) -> np.ndarray:
    return DAY0 + np.arange(0, span_days, days).astype("timedelta64[D]")


def years(dates: np.ndarray) -> np.ndarray:
    return (dates - dates[0]).astype(float) / 365.25


def feature(f: np.ndarray, name: str) -> np.ndarray:
    return f[:, SERIES_FEATURES.index(name)]


@pytest.fixture
def dates():
    return dates_every(12, 3 * 365)           # Sentinel-1-like, 92 dates over 3 years


def clean_series(dates, v=-12.5, amp=4.0, phase=0.7, offset=3.0):
    t = years(dates)
    return offset + v * t + amp * np.sin(2 * np.pi * t + phase)


def test_clean_series_recovers_velocity_and_season(dates):
    d = np.stack([clean_series(dates), clean_series(dates, v=30.0, amp=0.0)]).astype(np.float32)
    f, names = series_features(d, dates)
    assert names == SERIES_FEATURES and f.shape == (2, len(names)) and f.dtype == np.float32
    np.testing.assert_allclose(feature(f, "series_velocity_mm_yr"), [-12.5, 30.0], atol=1e-4)
    np.testing.assert_allclose(feature(f, "series_seasonal_amp_mm"), [4.0, 0.0], atol=1e-4)
    assert (feature(f, "series_residual_std_mm") < 1e-4).all()
    assert (feature(f, "series_residual_mad_mm") < 1e-4).all()
    np.testing.assert_array_equal(feature(f, "series_residual_lag1"), 0.0)
    np.testing.assert_array_equal(feature(f, "series_halfwave_jumps"), 0.0)
    np.testing.assert_array_equal(feature(f, "series_present"), 1.0)
    np.testing.assert_array_equal(feature(f, "series_valid_frac"), 1.0)
    # 30 mm/yr over 12 days, no season: every step is 30 * 12 / 365.25 mm
    assert feature(f, "series_max_step_mm")[1] == pytest.approx(30 * 12 / 365.25, rel=1e-5)
    assert feature(f, "series_step_noise_mm")[1] == pytest.approx(0.0, abs=1e-4)


def test_planted_unwrapping_jump(dates):
    v = 6.0
    d = clean_series(dates, v=v, amp=0.0)
    d[40:] -= 27.75                                       # a λ/2 unwrapping error
    f, _ = series_features(d[None].astype(np.float32), dates)
    assert feature(f, "series_max_step_mm")[0] == pytest.approx(27.75 - v * 12 / 365.25, abs=1e-4)
    assert feature(f, "series_halfwave_jumps")[0] == 1
    assert feature(f, "series_residual_lag1")[0] > 0.8    # the line cannot follow a step
    assert feature(f, "series_residual_std_mm")[0] > 5.0


def test_two_jumps_and_a_full_cycle(dates):
    d = clean_series(dates, v=0.0, amp=0.0)
    d[20:] += 27.75
    d[60:] += 55.5 + 0.5                                  # a full λ, a little off
    d[75:] += 14.0                                        # a real step, not a multiple of λ/2
    f, _ = series_features(d[None], dates)
    assert feature(f, "series_halfwave_jumps")[0] == 2
    assert feature(f, "series_max_step_mm")[0] == pytest.approx(56.0, abs=1e-6)


def test_noisy_series(dates):
    rng = np.random.default_rng(0)
    sigma = 2.0
    d = clean_series(dates)[None] + rng.normal(0, sigma, (400, len(dates)))
    f, _ = series_features(d.astype(np.float32), dates)
    assert np.median(feature(f, "series_residual_std_mm")) == pytest.approx(sigma, rel=0.05)
    assert np.median(feature(f, "series_residual_mad_mm")) == pytest.approx(sigma, rel=0.1)
    assert np.median(feature(f, "series_step_noise_mm")) == pytest.approx(sigma * np.sqrt(2),
                                                                          rel=0.1)
    assert abs(np.mean(feature(f, "series_residual_lag1"))) < 0.05
    assert np.mean(feature(f, "series_velocity_mm_yr")) == pytest.approx(-12.5, abs=0.1)
    assert np.mean(feature(f, "series_seasonal_amp_mm")) == pytest.approx(4.0, abs=0.2)
    assert feature(f, "series_halfwave_jumps").sum() == 0  # noise does not look like a jump


def test_correlated_residuals_have_high_lag1(dates):
    rng = np.random.default_rng(1)
    walk = np.cumsum(rng.normal(0, 1, (50, len(dates))), axis=1)
    f, _ = series_features(walk, dates)
    assert np.median(feature(f, "series_residual_lag1")) > 0.6


def test_batch_equals_one_by_one_and_is_deterministic(dates):
    rng = np.random.default_rng(2)
    d = (clean_series(dates)[None] + rng.normal(0, 3, (7, len(dates)))).astype(np.float32)
    d[3, [4, 5, 60]] = np.nan
    f, _ = series_features(d, dates)
    for i in range(len(d)):
        np.testing.assert_allclose(series_features(d[i:i + 1], dates)[0][0], f[i], rtol=1e-5,
                                   atol=1e-5)
    np.testing.assert_array_equal(series_features(d, dates)[0], f)


def test_unsorted_dates_are_sorted(dates):
    rng = np.random.default_rng(3)
    d = clean_series(dates)[None] + rng.normal(0, 1, (3, len(dates)))
    perm = rng.permutation(len(dates))
    np.testing.assert_allclose(series_features(d[:, perm], dates[perm])[0],
                               series_features(d, dates)[0], rtol=1e-5, atol=1e-5)


def test_gaps_match_the_series_without_those_dates(dates):
    rng = np.random.default_rng(4)
    d = clean_series(dates)[None] + rng.normal(0, 2, (1, len(dates)))
    gap = [3, 4, 30, 31, 32, 80]
    keep = np.setdiff1d(np.arange(len(dates)), gap)
    with_nan = d.copy()
    with_nan[:, gap] = np.nan
    f_nan, _ = series_features(with_nan, dates)
    f_cut, _ = series_features(d[:, keep], dates[keep])
    same = [n for n in SERIES_FEATURES if n != "series_valid_frac"]
    idx = [SERIES_FEATURES.index(n) for n in same]
    np.testing.assert_allclose(f_nan[:, idx], f_cut[:, idx], rtol=1e-5, atol=1e-5)
    assert feature(f_nan, "series_valid_frac")[0] == pytest.approx(len(keep) / len(dates))


def test_no_series_and_short_series():
    f, names = series_features(np.zeros((3, 0), np.float32), np.array([], "datetime64[D]"))
    assert f.shape == (3, len(names)) and not f.any()          # zeros, series_present = 0
    one = dates_every(12, 12)
    f, _ = series_features(np.float32([[5.0]]), one)
    assert feature(f, "series_present")[0] == 0 and feature(f, "series_valid_frac")[0] == 1
    assert not f[:, :8].any()
    for t in (2, 3, 4):                                        # line only: no annual terms
        dd = dates_every(100, 100 * t)
        d = 2.0 + 10.0 * years(dd)
        f, _ = series_features(d[None], dd)
        assert feature(f, "series_velocity_mm_yr")[0] == pytest.approx(10.0)
        assert feature(f, "series_seasonal_amp_mm")[0] == 0.0
        assert np.isfinite(f).all()
    # a short stack (half a year): a season cannot be told from a trend, so none is fitted
    dd = dates_every(6, 180)
    f, _ = series_features((1.5 * np.sin(2 * np.pi * years(dd)))[None], dd)
    assert feature(f, "series_seasonal_amp_mm")[0] == 0.0
    # a point whose every date is missing
    f, _ = series_features(np.full((1, 10), np.nan), dates_every(12, 120))
    assert not f.any()


def test_shape_errors(dates):
    with pytest.raises(ValueError, match="dates"):
        series_features(np.zeros((2, 5)), dates)
    with pytest.raises(ValueError, match=r"\[N, T\]"):
        series_features(np.zeros(5), dates[:5])
