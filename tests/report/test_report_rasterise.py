import math

import numpy as np
import pytest

from psirel.report.rasterise import METRES_PER_DEGREE, MIN_SPAN_M, bin_points, map_grid, splat


def test_grid_covers_the_points_with_square_cells():
    rng = np.random.default_rng(0)
    x = rng.uniform(400_000, 430_000, 1000)
    y = rng.uniform(5_000_000, 5_010_000, 1000)
    g = map_grid(x, y, 1500)
    assert g.width == 1500 and g.height < g.width
    assert g.cell_x == g.cell_y == g.cell_m
    left, right, bottom, top = g.extent
    assert left < x.min() and right > x.max() and bottom < y.min() and top > y.max()
    coarse = g.with_max_cells(700)
    assert max(coarse.shape) <= 700 and coarse.cell_m == pytest.approx(3 * g.cell_m)
    assert coarse.left == g.left and coarse.top == g.top
    assert tuple(g.transform)[:6] == (g.cell_x, 0.0, g.left, 0.0, -g.cell_y, g.top)


def test_geographic_grid_is_square_on_the_ground():
    lon = np.array([10.0, 10.2])
    lat = np.array([60.0, 60.1])
    g = map_grid(lon, lat, 500, geographic=True)
    # a degree of longitude at 60° N is about half a degree of latitude on the ground
    assert g.cell_x == pytest.approx(g.cell_y / math.cos(math.radians(60.05)), rel=1e-9)
    assert g.cell_y * METRES_PER_DEGREE == pytest.approx(g.cell_m)
    assert g.width == 500


def test_degenerate_extents():
    g = map_grid(np.array([5.0]), np.array([7.0]), 100)  # one point
    assert g.width == g.height == 100 and g.cell_m * 100 > MIN_SPAN_M
    left, right, bottom, top = g.extent
    assert left < 5 < right and bottom < 7 < top
    g = map_grid(np.array([np.nan]), np.array([np.nan]), 50)  # nothing placed
    assert g.shape == (50, 50)
    with pytest.raises(ValueError, match="max_cells"):
        map_grid(np.array([0.0]), np.array([0.0]), 0)


def test_bin_points_min_mean_and_counts():
    g = map_grid(np.array([0.0, 1000.0]), np.array([0.0, 1000.0]), 4)
    c = g.cell_x
    # three points in the top-left cell, one unscored in the bottom-right one
    x = np.array([g.left + 0.2 * c, g.left + 0.5 * c, g.left + 0.7 * c, g.left + 3.5 * c, np.nan])
    y = np.array([g.top - 0.5 * c] * 3 + [g.top - 3.5 * c, 0.0])
    v = np.array([0.9, 0.3, 0.6, np.nan, 0.1])
    value, n_scored, n_unscored = bin_points(g, x, y, v, "min")
    assert value.shape == n_scored.shape == g.shape == (4, 4)
    assert value[0, 0] == pytest.approx(0.3)
    assert np.isnan(value[3, 3]) and n_unscored[3, 3] == 1 and n_scored[3, 3] == 0
    assert n_scored.sum() == 3 and n_unscored.sum() == 1  # the NaN-coordinate point is left out
    assert np.isnan(value).sum() == 15
    mean, _, _ = bin_points(g, x, y, v, "mean")
    assert mean[0, 0] == pytest.approx(0.6)
    with pytest.raises(ValueError, match="stat"):
        bin_points(g, x, y, v, "median")
    with pytest.raises(ValueError, match="sizes differ"):
        bin_points(g, x, y[:2], v)


def test_splat_widens_points_least_reliable_winning():
    value = np.full((6, 6), np.nan)
    n_scored = np.zeros((6, 6), int)
    n_unscored = np.zeros((6, 6), int)
    value[1, 1], n_scored[1, 1] = 0.9, 2
    value[2, 2], n_scored[2, 2] = 0.2, 1
    n_unscored[5, 5] = 1
    v, s, u = splat(value, n_scored, n_unscored, 3)
    assert v[0, 0] == 0.9 and v[1, 1] == 0.2 and v[3, 3] == 0.2 and np.isnan(v[4, 4])
    assert np.isfinite(v).sum() == 14  # two 3 × 3 blocks overlapping on 2 × 2
    assert (s > 0).sum() == 14 and s.max() == 1
    assert u[4, 4] == u[5, 5] == 1 and u.sum() == 4  # clipped at the corner
    same = splat(value, n_scored, n_unscored, 1)
    assert same[0] is value and same[1] is n_scored
