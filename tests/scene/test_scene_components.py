"""The building blocks of a scene, each checked against what it should do physically."""

from __future__ import annotations

import numpy as np
import pytest

from psirel.scene.acquisition import Acquisition
from psirel.scene.amplitude import NOISE_FLOOR, backscatter, mean_amplitude
from psirel.scene.artefacts import cycle_errors, error_ends, longest_run
from psirel.scene.deformation import CREEP, LANDSLIDE, SETTLEMENT, STABLE, SUBSIDENCE
from psirel.scene.estimation import line_fit_velocity, temporal_coherence
from psirel.scene.fields import bilinear, power_law_field
from psirel.scene.geometry import LookGeometry, look_masks
from psirel.scene.labels import (
    GEOMETRY,
    MOISTURE,
    NOISE,
    SIDELOBE,
    SPURIOUS,
    TOPOGRAPHIC,
    UNWRAPPING,
    VELOCITY,
    expert_labels,
    velocity_noise_sigma,
)
from psirel.scene.landcover import (
    BARE,
    BUILT_UP,
    CROPLAND,
    FOREST,
    WATER,
    elevation_rank,
)
from psirel.scene.params import SceneParams, default_size_px
from psirel.scene.rng import child_rng
from psirel.scene.sidelobes import FACTORS, sidelobe_offsets, sidelobe_parents
from psirel.scene.surface import make_moisture_bias
from psirel.scene.terrain import slope_aspect
from psirel.scene.world import build_world

YEARS = np.arange(61) * 12 / 365.25
LAMBDA = 55.5


@pytest.fixture(scope="module")
def world():
    return build_world(SceneParams(n_points=40_000, seed=21, size_px=400))


def test_default_size_gives_2500_points_per_km2():
    assert default_size_px(20_000, 10.0) == 283 + 80  # 2.83 km point area + 2 × 40 px margin
    assert default_size_px(1_000_000, 10.0) == 2000 + 80
    assert default_size_px(1_000, 10.0) == 256  # the minimum
    assert default_size_px(20_000, 20.0) == 256  # 141 px of 20 m would be under the minimum


def test_child_streams_are_independent_and_reproducible():
    a = child_rng(1, "terrain").random(4)
    np.testing.assert_array_equal(a, child_rng(1, "terrain").random(4))
    assert not np.array_equal(a, child_rng(1, "landcover").random(4))
    assert not np.array_equal(a, child_rng(2, "terrain").random(4))
    block0, block1 = child_rng(1, "points", 0), child_rng(1, "points", 1)
    assert not np.array_equal(block0.random(4), block1.random(4))


def test_power_law_field_statistics_do_not_depend_on_grid_size():
    small = power_law_field(child_rng(0, "f"), (200, 200), 10.0, beta=3.0, corner_m=300.0)
    large = power_law_field(child_rng(0, "f"), (800, 800), 10.0, beta=3.0, corner_m=300.0)
    # corner (300 m) ≪ both grids: unit variance on both, zero mean
    assert small.std() == pytest.approx(1.0, rel=0.15)
    assert large.std() == pytest.approx(1.0, rel=0.1)
    assert abs(large.mean()) < 1e-5
    # a red spectrum is smooth: neighbours nearly equal
    steep = power_law_field(child_rng(0, "f"), (200, 200), 10.0, beta=4.5, corner_m=2000.0)
    assert np.corrcoef(steep[:, :-1].ravel(), steep[:, 1:].ravel())[0, 1] > 0.95


def test_bilinear_is_exact_on_a_plane():
    rows, cols = np.mgrid[0:5, 0:7]
    plane = 2.0 * rows + 3.0 * cols
    r, c = np.array([0.5, 2.25, 3.9]), np.array([1.5, 0.1, 5.75])
    np.testing.assert_allclose(bilinear(plane, r, c), 2 * r + 3 * c)
    stack = np.stack([plane, -plane])
    np.testing.assert_allclose(bilinear(stack, r, c), np.column_stack([2 * r + 3 * c,
                                                                       -2 * r - 3 * c]))


def test_slope_and_aspect_of_a_tilted_plane():
    rows, cols = np.mgrid[0:20, 0:20].astype(float)
    dem = 100.0 + cols * 10.0  # rises 10 m per 10 m pixel towards the east
    slope, aspect, dz_dx, dz_dy = slope_aspect(dem, 10.0)
    np.testing.assert_allclose(slope, 45.0)
    np.testing.assert_allclose(aspect, 270.0)  # it faces west
    np.testing.assert_allclose(dz_dx, 1.0)
    np.testing.assert_allclose(dz_dy, 0.0, atol=1e-12)


def test_look_geometry_layover_and_shadow():
    look = LookGeometry(heading_deg=-10.0, incidence_deg=35.0)
    los = look.los_enu
    assert np.linalg.norm(los) == pytest.approx(1.0)
    assert los[0] < -0.5 and los[2] == pytest.approx(np.cos(np.radians(35.0)))
    # planes rising along the look direction (sensor → ground, azimuth 80°) face the sensor
    a = np.radians(look.look_azimuth_deg)
    for slope_deg, layover, shadow in ((20, False, False), (40, True, False),
                                       (-50, False, False), (-60, False, True)):
        g = np.tan(np.radians(slope_deg))
        masks = look_masks(np.full((3, 3), g * np.sin(a)), np.full((3, 3), g * np.cos(a)), look)
        assert masks.range_slope_deg[1, 1] == pytest.approx(slope_deg)
        assert masks.layover.all() == layover and masks.shadow.all() == shadow
        assert masks.cos_local_incidence[1, 1] == pytest.approx(
            np.cos(np.radians(35.0 - slope_deg)), abs=1e-9)


def test_acquisition_dates_and_phase_scale():
    acq = Acquisition()
    assert acq.column_names[:2] == ["D20190106", "D20190118"]
    assert acq.years[-1] == pytest.approx(720 / 365.25)
    assert acq.ambiguity_mm == pytest.approx(27.75)
    assert acq.rad_per_mm * acq.ambiguity_mm == pytest.approx(2 * np.pi)


def test_line_fit_velocity_recovers_a_trend():
    series = 7.5 * YEARS[None, :] + np.array([[0.0], [3.0]])
    np.testing.assert_allclose(line_fit_velocity(series, YEARS), [7.5, 7.5])


def test_temporal_coherence_behaves_like_ferretti():
    rng = np.random.default_rng(0)
    clean = -12.0 * YEARS + 4.0 * np.sin(2 * np.pi * YEARS + 1.0)
    assert temporal_coherence(clean[None, :], YEARS, LAMBDA)[0] > 0.999
    # Gaussian phase noise of σ rad: γ ≈ exp(-σ²/2)
    for sigma_mm in (1.0, 2.0, 3.0):
        noisy = clean + rng.normal(0.0, sigma_mm, (2000, YEARS.size))
        sigma = 4 * np.pi / LAMBDA * sigma_mm
        assert np.median(temporal_coherence(noisy, YEARS, LAMBDA)) == pytest.approx(
            np.exp(-sigma**2 / 2), abs=0.03)
    # pure noise: low
    random = rng.uniform(-LAMBDA / 4, LAMBDA / 4, (2000, YEARS.size))
    assert np.median(temporal_coherence(random, YEARS, LAMBDA)) < 0.35
    # a whole-cycle unwrapping error (λ/2 step) leaves it unchanged; the velocity does not
    stepped = noisy.copy()
    stepped[:, 30:] += LAMBDA / 2
    np.testing.assert_allclose(temporal_coherence(stepped, YEARS, LAMBDA),
                               temporal_coherence(noisy, YEARS, LAMBDA), atol=1e-5)
    shift = line_fit_velocity(stepped, YEARS) - line_fit_velocity(noisy, YEARS)
    assert np.all(np.abs(shift) > 10.0)


def test_unwrapping_error_runs():
    rng = np.random.default_rng(0)
    start = rng.integers(1, 61, 5000)
    end = error_ends(rng, start, 61, (0.6, 0.25, 0.15))
    assert np.all(end > start) and np.all(end <= 61)
    length = end - start
    assert np.mean(length == 1) == pytest.approx(0.6, abs=0.05)
    steps = cycle_errors(np.array([2, 0]), np.array([4, 3]), np.array([1, -1]), 6)
    np.testing.assert_array_equal(steps, [[0, 0, 1, 1, 0, 0], [-1, -1, -1, 0, 0, 0]])


def test_expert_labels_reasons():
    v = np.array([1.0, 1.0, 30.0, 30.0, 0.0, 0.0, 0.5, 0.5, 3.0, 3.0, 0.0, 0.0])
    true = np.array([0.0, 4.0, 27.0, 20.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    sigma_v = velocity_noise_sigma(np.array([5.0, 5.0, 5.0, 5.0, 0.3, 5.0, 0.8, 5.0, 5.0,
                                             5.0, 5.0, 5.0]), YEARS, LAMBDA)
    false = np.zeros(12, bool)
    flag = np.arange(12)
    topo = np.where(flag == 8, 3.0, 0.5)
    moisture = np.where(flag == 9, -2.5, 0.0)
    reliable, reasons = expert_labels(v, true, sigma_v, false, flag == 7, flag == 5, topo,
                                      flag == 10, moisture, flag == 11)
    # 1 mm/yr off: fine; 3 mm/yr off: no; 3 of 27: within 15 %; 10 of 20: no; noise (SCR 0.3);
    # unwrapping; noisy (SCR 0.8) but the velocity holds: fine; layover; a topographic bias
    # beyond the tolerance; a moisture trend beyond it; spurious; sidelobe
    np.testing.assert_array_equal(reliable, [1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0])
    assert reasons[1] == VELOCITY and reasons[3] == VELOCITY
    assert reasons[4] & NOISE and reasons[5] == UNWRAPPING and reasons[7] == GEOMETRY
    assert reasons[8] == TOPOGRAPHIC | VELOCITY and reasons[9] == MOISTURE | VELOCITY
    assert reasons[10] == SPURIOUS and reasons[11] == SIDELOBE
    # the velocity's noise from SCR: 1/√(2·SCR) rad of phase, λ/4π per rad, over √Σ(t − t̄)²
    expected = np.sqrt(0.5 / 5.0) * LAMBDA / (4 * np.pi) / np.sqrt(np.sum((YEARS - YEARS.mean())
                                                                          ** 2))
    assert sigma_v[0] == pytest.approx(expected)
    assert sigma_v[4] > 1.0 > sigma_v[6]  # noise-dominated below SCR ≈ 0.5


def test_terrain_has_relief_valleys_and_steep_slopes(world):
    t = world.terrain
    assert 200.0 < np.ptp(t.dem_m) < 2000.0
    assert np.percentile(t.slope_deg, 99) > 30.0  # steep ground exists ...
    assert np.median(t.slope_deg) < 20.0          # ... but most of it is gentle
    rank = elevation_rank(t.dem_m)
    assert rank[t.valley_dist_m < 100.0].mean() < 0.4  # valley floors are low


def test_land_cover_follows_the_terrain(world):
    lulc, t = world.cover.lulc, world.terrain
    rank = elevation_rank(t.dem_m)
    share = {c: (lulc == c).mean() for c in (BUILT_UP, FOREST, CROPLAND, BARE, WATER)}
    assert all(0.005 < s < 0.6 for s in share.values()), share
    assert rank[lulc == WATER].mean() < 0.2
    assert t.slope_deg[lulc == BARE].mean() > t.slope_deg[lulc == FOREST].mean()
    assert t.slope_deg[lulc == FOREST].mean() > t.slope_deg[lulc == CROPLAND].mean()
    built = (lulc == BUILT_UP) & ~world.cover.road
    assert t.slope_deg[built].mean() < 10.0
    assert world.cover.road.sum() > 0 and np.all(lulc[world.cover.road] == BUILT_UP)
    assert sum(s["kind"] == "town" for s in world.cover.settlements) >= 2


def test_amplitude_bright_on_buildings_dark_on_water_and_shadow(world):
    amp, lulc = world.amplitude, world.cover.lulc
    med = {c: np.median(amp[lulc == c]) for c in (BUILT_UP, FOREST, CROPLAND, WATER)}
    assert med[BUILT_UP] > 2 * med[FOREST] > 2 * med[WATER]
    assert med[CROPLAND] > 2 * med[WATER]
    g = world.geometry
    if g.layover.any():
        assert np.median(amp[g.layover]) > np.median(amp[lulc == FOREST])
    # the stack mean of 61 speckled (Rayleigh) amplitudes: mean √(πσ0)/2, variance / 61
    a = mean_amplitude(np.random.default_rng(0), np.full((400, 400), NOISE_FLOOR), 61)
    assert np.mean(a) == pytest.approx(np.sqrt(np.pi * NOISE_FLOOR) / 2, rel=0.01)
    assert np.std(a) / np.mean(a) == pytest.approx(np.sqrt((4 - np.pi) / np.pi / 61), rel=0.05)
    s0 = backscatter(np.random.default_rng(0), lulc, world.cover.road, g, 35.0, 10.0)
    assert np.all(s0 >= NOISE_FLOOR)


def test_deformation_fields(world):
    d = world.deformation
    assert len(d.bowls) >= 1 and all(b["los_mm_yr"] < 0 for b in d.bowls)
    assert d.velocity_mm_yr[d.source == SUBSIDENCE].mean() < -2.0
    assert np.abs(d.velocity_mm_yr[d.source == STABLE]).mean() < 1.5
    for ls in d.landslides:
        assert 15.0 <= ls["rate_mm_yr"] <= 60.0
        assert abs(ls["los_mm_yr"]) >= 0.35 * ls["rate_mm_yr"]
        assert 18.0 < ls["slope_deg"] < 40.0
    if d.landslides:
        assert np.abs(d.velocity_mm_yr[d.source == LANDSLIDE]).mean() > 5.0
    assert 0.0 <= d.seasonal_mm.min() and d.seasonal_mm.max() < 10.0


def test_passive_layover_and_shadow_along_range():
    """A steep ridge across the range direction: active layover on its flank facing the sensor,
    passive layover in front of its foot and behind its crest, shadow behind it; none far off."""
    look = LookGeometry(heading_deg=0.0, incidence_deg=35.0)  # looks due east: range = columns
    cols = np.arange(200, dtype=float)
    up = np.clip((cols - 80.0) * 10.0 * np.tan(np.radians(50.0)), 0.0, None)  # rises at 50°
    down = np.clip((120.0 - cols) * 10.0 * np.tan(np.radians(70.0)), 0.0, None)  # falls at 70°
    profile = np.minimum(up, down)  # crest near column 108, ~330 m high
    dem = np.tile(300.0 + profile, (40, 1))
    _, _, dz_dx, dz_dy = slope_aspect(dem, 10.0)
    m = look_masks(dz_dx, dz_dy, look, dem, 10.0)
    active, row = m.active_layover[20], m.layover[20]
    assert active[82:95].all() and not active[:78].any()
    assert (row & active).sum() == active.sum()  # active layover is part of the mask
    # passive: flat ground in front of the foot whose slant range the slope also covers
    assert row[60:80].any() and not row[:30].any()
    # behind the ridge: its steep back slope (active) and the flat ground after it (passive)
    assert m.active_shadow[20, 100:118].any() and m.shadow[20, 121:130].all()
    assert not m.shadow[20, 160:].any() and not m.shadow[20, :80].any()
    # without a DEM only the local criteria apply
    local = look_masks(dz_dx, dz_dy, look)
    np.testing.assert_array_equal(local.layover, m.active_layover)


def test_sidelobes_of_a_strong_target():
    look = LookGeometry(heading_deg=-10.0, incidence_deg=35.0)
    sigma0 = np.full((21, 21), 0.05)
    sigma0[10, 10] = 50.0  # 30 dB above the clutter
    parent, with_lobes = sidelobe_parents(sigma0, look, min_sigma0=3.0)
    offsets = sidelobe_offsets(look, 3)
    assert len(offsets) == 12 and {k for _, _, k in offsets} == {1, 2, 3}
    for dr, dc, k in offsets:  # along range and azimuth: dominated by the target's sidelobe
        assert parent[10 + dr, 10 + dc] == 10 * 21 + 10
        assert with_lobes[10 + dr, 10 + dc] == pytest.approx(0.05 + 50.0 * FACTORS[k - 1])
    assert np.count_nonzero(parent >= 0) == 12
    assert parent[10, 10] == -1 and parent[9, 9] == -1  # not the target, not the diagonals
    # a weak target's sidelobes dominate nothing
    weak, _ = sidelobe_parents(np.where(sigma0 > 1, 0.5, sigma0), look, min_sigma0=3.0)
    assert (weak < 0).all()


def test_topographic_biases_follow_the_relief(world):
    topo, terrain, atmo = world.topo, world.terrain, world.atmosphere
    err = np.abs(topo.dem_error_m)
    steep, gentle = terrain.slope_deg > 25.0, terrain.slope_deg < 5.0
    assert np.median(err[steep]) > 3.0 * np.median(err[gentle])
    assert 0.06 <= abs(topo.coupling_mm_yr_per_m) <= 0.15 + 1e-12
    r, c = np.array([5, 100]), np.array([7, 200])
    np.testing.assert_allclose(topo.velocity_bias_mm_yr(r, c),
                               topo.coupling_mm_yr_per_m * topo.dem_error_m[r, c])
    # the stratified drift: a trend per km of height above the reference
    h = atmo.ref_height_m + np.array([0.0, 500.0])
    bias = atmo.velocity_bias_mm_yr(h)
    assert bias[0] == 0.0 and bias[1] == pytest.approx(0.5 * atmo.stratified_trend_mm_yr_per_km)
    assert 1.8 <= abs(atmo.stratified_trend_mm_yr_per_km) <= 6.0
    delay = atmo.delay_mm(np.array([50.0, 50.0]), np.array([50.0, 50.0]), h)
    drift = line_fit_velocity(delay[1:] - delay[:1], world.acquisition.years)[0]
    assert drift == pytest.approx(bias[1], abs=0.6)


def test_moisture_fields_are_piecewise_constant():
    m = make_moisture_bias(child_rng(0, "moisture"), (300, 300), 10.0, field_m=250.0,
                           velocity_mm_yr=3.0, seasonal_mm=1.0)
    n_fields = len(np.unique(m.field_id))
    assert 100 < n_fields <= 144  # one per (250 m)² of a 3 km square, a few seeds coincide
    assert 2.0 < np.std(m.trend_mm_yr) < 4.0
    rows, cols = np.array([0, 0, 150]), np.array([0, 1, 150])
    s = m.series_mm(rows, cols, YEARS, (YEARS % 1.0))
    assert s.shape == (3, 61) and np.all(s[:, 0] == 0.0)
    np.testing.assert_allclose(line_fit_velocity(s, YEARS), m.velocity_bias_mm_yr(rows, cols),
                               atol=0.5)


def test_creep_and_settling_buildings(world):
    d = world.deformation
    creep = d.source == CREEP
    assert creep.any() and np.median(world.terrain.slope_deg[creep]) > 15.0  # steep ground
    assert np.abs(d.velocity_mm_yr[creep]).mean() > 1.0
    settles = np.flatnonzero(d.settle_mm)
    assert 0.05 < len(settles) / (len(d.settle_mm) - 1) < 0.15
    assert np.all(d.settle_mm[settles] < 0)  # consolidation: away from the sensor
    on = np.flatnonzero(np.isin(d.building_id, settles))[:50]
    row, col = np.divmod(on, d.building_id.shape[1])
    s = d.settlement_mm(row, col, YEARS)
    b = d.building_id[row, col]
    assert np.all(np.diff(s, axis=1) <= 1e-12)  # monotonic, decelerating
    assert np.all(np.abs(s[:, -1]) <= np.abs(d.settle_mm[b]) + 1e-9)
    before = YEARS[None, :] <= d.settle_start_yr[b, None]
    assert np.all(s[before] == 0.0)
    assert (d.source[row, col] == SETTLEMENT).any()


def test_longest_run_of_wrong_dates():
    wrong = np.array([[0, 1, 0, 1, 1, 0], [0, 0, 0, 0, 0, 0], [1, 1, 1, 0, 1, 1]], bool)
    np.testing.assert_array_equal(longest_run(wrong), [2, 0, 3])
