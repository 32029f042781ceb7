"""Temporal block: invariance to the number and spacing of dates, sensitivity to what matters."""

from __future__ import annotations

import numpy as np
import pytest

from psirel.features.normalize import _robust_centre_scale
from psirel.features.series import SERIES_FEATURES, series_features
from psirel.features.temporal import (
    ACF_FEATURES,
    PRESCALED_FEATURES,
    QUANTILE_FEATURES,
    SCALE_FLOORS,
    TEMPORAL_FEATURES,
    TEMPORAL_LAYOUT,
    temporal_features,
)

HALF_WAVE_MM = 27.75
START = np.datetime64("2019-01-06")


def cols(f: np.ndarray, names: list[str]) -> np.ndarray:
    return f[:, [TEMPORAL_FEATURES.index(n) for n in names]]


def col(f: np.ndarray, name: str) -> np.ndarray:
    return f[:, TEMPORAL_FEATURES.index(name)]


def stack(revisit_days: int, n_dates: int) -> tuple[np.ndarray, np.ndarray]:
    """Dates and their times in years."""
    days = revisit_days * np.arange(n_dates)
    return START + days.astype("timedelta64[D]"), days / 365.25


def process(t_yr: np.ndarray, n: int, rng, sigma_mm=2.0, ou_mm=0.0, tau_days=60.0
            ) -> np.ndarray:
    """Trend + annual term + white noise of ``sigma_mm`` + an Ornstein–Uhlenbeck part of
    stationary std ``ou_mm`` and correlation time ``tau_days`` (exact on any sampling)."""
    v = rng.normal(0, 5, (n, 1))
    amp, ph = rng.uniform(0, 4, (n, 1)), rng.uniform(0, 2 * np.pi, (n, 1))
    d = v * t_yr + amp * np.sin(2 * np.pi * t_yr + ph) + rng.normal(0, sigma_mm, (n, len(t_yr)))
    if ou_mm > 0:
        x = rng.normal(0, ou_mm, n)
        ou = np.empty((n, len(t_yr)))
        ou[:, 0] = x
        for j in range(1, len(t_yr)):
            rho = np.exp(-(t_yr[j] - t_yr[j - 1]) * 365.25 / tau_days)
            x = rho * x + np.sqrt(1 - rho ** 2) * rng.normal(0, ou_mm, n)
            ou[:, j] = x
        d += ou
    return d


def gappy(d: np.ndarray, rng, frac=0.2) -> np.ndarray:
    d = d.copy()
    d[rng.random(d.shape) < frac] = np.nan
    return d


@pytest.fixture(scope="module")
def two_sensors():
    """The same process seen by a 6-day × 150-date stack and by a 24-day × 40-date stack with
    20 % of dates missing at random (both ~2.5 years)."""
    rng = np.random.default_rng(0)
    n = 3000
    da, ta = stack(6, 150)
    db, tb = stack(24, 40)
    out = {}
    for kind, kw in (("white", {}), ("ou", {"sigma_mm": 1.0, "ou_mm": 2.0})):
        fa, _ = temporal_features(process(ta, n, rng, **kw), da)
        fb, _ = temporal_features(gappy(process(tb, n, rng, **kw), rng), db)
        out[kind] = fa, fb
    return out


def test_names_and_layout():
    f, names = temporal_features(np.zeros((2, 5)), START + np.arange(5))
    assert names == TEMPORAL_FEATURES and f.shape == (2, len(names)) and f.dtype == np.float32
    assert all(n.startswith("temporal_") for n in names) and len(set(names)) == len(names)
    lay = TEMPORAL_LAYOUT
    assert len(names) == lay["n_quantiles"] + 2 * lay["n_lags"] + lay["n_extra"]
    assert names[:lay["n_quantiles"]] == QUANTILE_FEATURES
    assert PRESCALED_FEATURES <= set(names) and set(SCALE_FLOORS) <= set(names)


def test_quantiles_invariant_to_length_and_sampling(two_sensors):
    fa, fb = two_sensors["white"]
    qa, qb = cols(fa, QUANTILE_FEATURES).mean(0), cols(fb, QUANTILE_FEATURES).mean(0)
    # Gaussian residuals: the curve follows the normal quantiles
    from statistics import NormalDist
    p = (np.arange(16) + 0.5) / 16
    normal = np.array([NormalDist().inv_cdf(x) for x in p])
    assert np.abs(qa - normal).max() < 0.1
    assert np.abs(qa - qb).max() < 0.08           # measured 0.05 (type-8 quantiles)
    ls = col(fa, "temporal_log_scale_mm").mean(), col(fb, "temporal_log_scale_mm").mean()
    assert abs(ls[0] - np.log(2.0)) < 0.05 and abs(ls[1] - np.log(2.0)) < 0.05
    np.testing.assert_allclose(col(fa, "temporal_log_n_dates"), np.log(150), rtol=1e-6)


def test_acf_invariant_to_sampling(two_sensors):
    fa, fb = two_sensors["ou"]
    common = ["temporal_acf_24d", "temporal_acf_48d", "temporal_acf_96d"]
    aa, ab = cols(fa, common).mean(0), cols(fb, common).mean(0)
    # OU of std 2 + white noise of std 1: rho(lag) = 0.8 exp(-lag / 60 d) before the fit, whose
    # line and annual term take some of the slow part away
    for acf in (aa, ab):
        assert acf[0] > 0.25 and acf[0] > acf[1] > acf[2]
        assert (acf < 0.8 * np.exp(-np.array([24, 48, 96]) / 60.0)).all()
    assert np.abs(aa - ab).max() < 0.1            # measured 0.065 (48 d), 0.054 (24 d)
    # a 24-day stack sees no 12-day pairs: acf 0 and weight 0 there
    assert not col(fb, "temporal_acf_12d").any()
    assert not col(fb, "temporal_acf_weight_12d").any()
    assert (col(fa, "temporal_acf_weight_12d") > 0.9).all()


def test_acf_white_noise_and_random_walk():
    rng = np.random.default_rng(1)
    dates, t = stack(12, 80)
    white, _ = temporal_features(rng.normal(0, 2, (2000, 80)), dates)
    walk, _ = temporal_features(np.cumsum(rng.normal(0, 2, (2000, 80)), axis=1), dates)
    assert np.abs(cols(white, ACF_FEATURES).mean(0)).max() < 0.02   # after the detrending null
    assert (cols(white, ACF_FEATURES).std(0) < 0.25).all()
    assert col(walk, "temporal_acf_12d").mean() > 0.5
    assert col(walk, "temporal_acf_48d").mean() > 0.3


def test_unwrapping_errors_change_quantiles():
    rng = np.random.default_rng(2)
    dates, t = stack(12, 60)
    base = process(t, 500, rng, sigma_mm=1.5)
    stretch = base.copy()
    stretch[:, 30:36] -= HALF_WAVE_MM              # six dates a cycle off
    step = base.copy()
    step[:, 30:] -= HALF_WAVE_MM                   # every date after the 30th
    f0, _ = temporal_features(base, dates)
    q0 = cols(f0, QUANTILE_FEATURES)
    f1, _ = temporal_features(stretch, dates)
    q1 = cols(f1, QUANTILE_FEATURES)
    assert np.abs(q1 - q0).max(axis=1).min() > 1.0       # measured ≥ 1.57
    assert (q1[:, 0] < -3.0).all() and np.median(q0[:, 0]) > -2.2
    # A step: the line absorbs part of it, so in units of s the curve moves less (median 0.6);
    # its scale and its correlation at short lags give it away.
    f2, _ = temporal_features(step, dates)
    assert np.median(np.abs(cols(f2, QUANTILE_FEATURES) - q0).max(axis=1)) > 0.4
    assert col(f2, "temporal_acf_12d").min() > col(f0, "temporal_acf_12d").max()
    assert (col(f2, "temporal_log_scale_mm") > col(f0, "temporal_log_scale_mm")).all()


def test_outlier_date_is_one_tail():
    rng = np.random.default_rng(3)
    dates, t = stack(12, 60)
    d = rng.normal(0, 2, (200, 60))
    d[:, 20] += 40.0
    f, _ = temporal_features(d, dates)
    keep = np.r_[0:20, 21:60]
    ref, _ = temporal_features(d[:, keep], dates[keep])
    q, qr = cols(f, QUANTILE_FEATURES), cols(ref, QUANTILE_FEATURES)
    # p = 0.97 lies below the top date of 60: a 20-sigma date moves it by one order statistic
    assert abs(q[:, -1].mean() - qr[:, -1].mean()) < 0.3
    assert np.abs(q).max() < 5.0
    # clipping at 3 s: the wild date cannot drown the correlations
    assert np.abs(cols(f, ACF_FEATURES).mean(0) - cols(ref, ACF_FEATURES).mean(0)).max() < 0.05


@pytest.mark.parametrize("days", [150, 700])  # line only / line + annual term
def test_stderr_matches_ols(days):
    rng = np.random.default_rng(4)
    n_dates = 25
    d_days = np.sort(rng.choice(days, n_dates, replace=False))
    dates = START + d_days.astype("timedelta64[D]")
    t = d_days / 365.25
    y = 3.0 * t + rng.normal(0, 2, (6, n_dates))
    y[3, [2, 7, 11]] = np.nan
    y[4, :18] = np.nan                                   # 7 dates: line only
    f, names = series_features(y, dates)
    got = f[:, SERIES_FEATURES.index("series_velocity_stderr_mm_yr")]
    for i in range(len(y)):
        ok = np.isfinite(y[i])
        ti = t[ok]
        seasonal = days > 365 and ok.sum() >= 5 and np.ptp(ti) >= 1.0
        if not seasonal:
            _, cov = np.polyfit(ti, y[i, ok], 1, cov=True)
            expect = np.sqrt(cov[0, 0])
        else:
            a = np.stack([np.ones_like(ti), ti, np.sin(2 * np.pi * ti), np.cos(2 * np.pi * ti)],
                         axis=1)
            r = y[i, ok] - a @ np.linalg.lstsq(a, y[i, ok], rcond=None)[0]
            expect = np.sqrt((r @ r) / (ok.sum() - 4)) / np.sqrt(((ti - ti.mean()) ** 2).sum())
        assert got[i] == pytest.approx(expect, rel=1e-4)
    # the robust twin in the temporal block: same order of magnitude for Gaussian noise
    ft, _ = temporal_features(y, dates)
    ratio = np.exp(col(ft, "temporal_log_velocity_stderr_mm_yr")) / got
    assert (ratio > 0.5).all() and (ratio < 2.0).all()


def test_stderr_sampling_dependence():
    """Same noise, other sampling: the residual std agrees, the stderr does not."""
    rng = np.random.default_rng(5)
    f = {}
    for revisit, n_dates in ((12, 60), (36, 12)):
        dates, t = stack(revisit, n_dates)
        f[revisit], _ = series_features(rng.normal(0, 2, (1000, n_dates)), dates)
    std = [f[r][:, SERIES_FEATURES.index("series_residual_std_mm")].mean() for r in (12, 36)]
    se = [f[r][:, SERIES_FEATURES.index("series_velocity_stderr_mm_yr")].mean() for r in (12, 36)]
    assert std[0] == pytest.approx(std[1], rel=0.1)
    assert se[1] > 2.5 * se[0]   # 12 dates over 1.1 yr vs 60 over 1.9 yr: ≈ 3.7×


def test_finite_zeros_and_order():
    rng = np.random.default_rng(6)
    dates, _ = stack(12, 30)
    d = rng.normal(0, 3, (10, 30)) * 10.0 ** rng.uniform(-3, 4, (10, 1))
    d[0] = 0.0                                     # constant
    d[1] = np.linspace(0, 30, 30)                  # exact line: no scatter
    d[2, 2:] = np.nan                              # two dates
    d[3] = np.nan                                  # none
    d[4, 3:] = np.nan                              # three dates
    d[5, ::2] += HALF_WAVE_MM
    f, _ = temporal_features(d.astype(np.float32), dates)
    assert np.isfinite(f).all()
    assert not f[2].any() and not f[3].any()
    assert col(f, "temporal_present").tolist() == [1, 1, 0, 0, 1, 1, 1, 1, 1, 1]
    assert not cols(f, ACF_FEATURES)[:2].any()     # no scatter, no correlation
    assert np.abs(cols(f, QUANTILE_FEATURES)[:2]).max() < 1e-2
    perm = rng.permutation(30)
    g, _ = temporal_features(d.astype(np.float32)[:, perm], dates[perm])
    np.testing.assert_allclose(g, f, atol=1e-5)
    empty, names = temporal_features(np.zeros((4, 0)), None)
    assert empty.shape == (4, len(names)) and not empty.any()
    with pytest.raises(ValueError, match="need 30 dates"):
        temporal_features(d, dates[:5])


def test_normalizer_keeps_prescaled_columns():
    rng = np.random.default_rng(7)
    dates, _ = stack(12, 60)
    f, names = temporal_features(rng.normal(0, 2, (500, 60)), dates)
    centre, scale = _robust_centre_scale(f.astype(np.float64), names)
    for j, name in enumerate(names):
        if name in PRESCALED_FEATURES:
            assert (centre[j], scale[j]) == (0.0, 1.0)
        elif name in SCALE_FLOORS:                # constant within the stack: scale 1
            assert scale[j] == 1.0 and centre[j] == pytest.approx(float(f[0, j]))
    # nearly constant (a few points miss dates): the MAD is 0 and the std tiny, the floor holds
    g = f.astype(np.float64)
    j = names.index("temporal_log_n_dates")
    g[:5, j] = np.log(55)
    _, scale = _robust_centre_scale(g, names)
    assert scale[j] == SCALE_FLOORS["temporal_log_n_dates"]
    _, unfloored = _robust_centre_scale(g, None)
    assert unfloored[j] < 0.05
    j = names.index("temporal_log_scale_mm")
    assert centre[j] == pytest.approx(np.log(2.0), abs=0.05) and 0 < scale[j] < 0.3
