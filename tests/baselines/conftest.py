"""Synthetic PSI point sets whose truth is known, for the baseline tests.

``make_scene`` scatters points over a 3 km square with a smooth deformation field (a subsidence
bowl and a gentle tilt), gives every point a 12-day displacement series (~2 years), fits its
velocity, and plants unreliable points by chosen mechanisms:

* ``"coherence"`` — noise-dominated: low coherence and a noisy series;
* ``"velocity"`` — a velocity that does not match the neighbours (±4..12 mm/yr), normal coherence;
* ``"jump"`` — an unwrapping error (a λ/2 = 27.75 mm step), normal coherence;
* ``"noise"`` — a noisy series with normal coherence;
* ``"context"`` — forest points with a dark amplitude patch (volume decorrelation), otherwise
  normal: visible only through land cover and patch statistics.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from psirel.baselines import PointData

HALF_WAVELENGTH_MM = 27.75
LULC = {"forest": 10, "crop": 40, "urban": 50, "bare": 60}
PATCH_NAMES = ["dem_mean", "dem_std", "amp_mean_db", "amp_std_db", "valid_frac"]
SERIES_NAMES = ["resid_std_mm", "max_step_mm", "lag1_autocorr"]


def neighbour_table(x, y, k=10, r_max_m=400.0):
    tree = cKDTree(np.c_[x, y])
    dist, idx = tree.query(np.c_[x, y], k=k + 1)
    dist, idx = dist[:, 1:], idx[:, 1:]  # drop the point itself
    mask = dist <= r_max_m
    return np.where(mask, idx, 0), mask


def series_stats(series, t_yr):
    a = np.c_[np.ones_like(t_yr), t_yr]
    coef, *_ = np.linalg.lstsq(a, series.T, rcond=None)
    resid = series - (a @ coef).T
    r0, r1 = resid[:, :-1], resid[:, 1:]
    ac = (r0 * r1).sum(1) / np.maximum((resid * resid).sum(1), 1e-9)
    feats = np.c_[resid.std(1), np.abs(np.diff(series, axis=1)).max(1), ac]
    return coef[1], feats


def make_scene(n=3000, seed=0, mechanisms=("coherence", "velocity", "jump"), frac=0.2,
               t_len=60, k=10):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 3000, n)
    y = rng.uniform(0, 3000, n)
    cx, cy = rng.uniform(800, 2200, 2)
    v_true = -15 * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * 500.0**2)) + 2e-3 * (x - 1500)
    t_yr = np.arange(t_len) * 12 / 365.25
    series = v_true[:, None] * t_yr[None, :] + rng.normal(0, 1.5, (n, t_len))
    coherence = np.clip(rng.normal(0.8, 0.07, n), 0, 1)
    lulc = rng.choice(list(LULC.values()), n, p=[0.3, 0.2, 0.3, 0.2])
    amp = np.where(lulc == LULC["urban"], 5.0, np.where(lulc == LULC["forest"], -8.0, -3.0))
    amp = amp + rng.normal(0, 2.0, n)
    slope = rng.uniform(0, 30, n)

    label = np.ones(n, np.int64)
    bad = rng.random(n) < frac
    which = rng.integers(0, len(mechanisms), n)
    for m_i, mech in enumerate(mechanisms):
        sel = bad & (which == m_i)
        ns = int(sel.sum())
        if mech == "coherence":
            coherence[sel] = np.clip(rng.normal(0.5, 0.08, ns), 0, 1)
            series[sel] += rng.normal(0, 6.0, (ns, t_len))
        elif mech == "velocity":
            dv = rng.choice([-1, 1], ns) * rng.uniform(4, 12, ns)
            series[sel] += dv[:, None] * t_yr[None, :]
        elif mech == "jump":
            at = rng.integers(10, t_len - 10, ns)
            step = rng.choice([-1, 1], ns) * HALF_WAVELENGTH_MM
            series[sel] += np.where(np.arange(t_len)[None, :] >= at[:, None], step[:, None], 0)
        elif mech == "noise":
            series[sel] += rng.normal(0, 6.0, (ns, t_len))
        elif mech == "context":
            # only dark forest points can be bad this way; others stay reliable
            sel = sel & (lulc == LULC["forest"]) & (amp < -8.0)
        else:
            raise ValueError(mech)
        label[sel] = 0
    series -= series[:, :1]  # relative to the first acquisition
    velocity, feats = series_stats(series, t_yr)
    nbr_idx, nbr_mask = neighbour_table(x, y, k)
    patch = np.c_[rng.normal(0, 5, n), rng.gamma(2, 2, n), amp, rng.gamma(2, 1, n),
                  np.ones(n)]
    data = PointData(
        x_m=x, y_m=y, velocity_mm_yr=velocity, coherence=coherence, series_mm=series,
        series_feats=feats, series_feat_names=SERIES_NAMES, nbr_idx=nbr_idx, nbr_mask=nbr_mask,
        patch_stats=patch, patch_stat_names=PATCH_NAMES, slope_deg=slope, lulc_class=lulc,
    )
    return data, label


@pytest.fixture(scope="session")
def mixed_scenes():
    """(train, test) scenes: coherence, velocity and jump errors."""
    return make_scene(seed=0), make_scene(seed=1)


@pytest.fixture(scope="session")
def neighbour_only_scenes():
    """(train, test) scenes where unreliability shows only against the neighbours."""
    mech = ("velocity", "jump")
    return make_scene(seed=2, mechanisms=mech), make_scene(seed=3, mechanisms=mech)


@pytest.fixture(scope="session")
def combined_scenes():
    """(train, test) scenes whose unreliable points need several features together."""
    mech = ("coherence", "velocity", "jump", "context", "context")
    return (make_scene(seed=4, mechanisms=mech, frac=0.3),
            make_scene(seed=5, mechanisms=mech, frac=0.3))
