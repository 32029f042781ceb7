"""knn_table against a brute-force O(N²) reference, ties, duplicates, r_max and tiny clouds."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from psirel.graph.knn import DEFAULT_R_MAX_M, NeighbourTable, knn_table


def brute_knn(x, y, k, r_max_m):
    """The k nearest other points, ordered by (distance, index), edges > r_max_m masked."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = x.size
    d = np.sqrt((x[None, :] - x[:, None]) ** 2 + (y[None, :] - y[:, None]) ** 2)
    d[np.arange(n), np.arange(n)] = np.inf
    j = np.broadcast_to(np.arange(n), (n, n))
    order = np.lexsort((j, d), axis=-1)
    dd = np.take_along_axis(d, order, 1)[:, :k]
    jj = np.take_along_axis(j, order, 1)[:, :k]
    if dd.shape[1] < k:
        dd = np.pad(dd, ((0, 0), (0, k - dd.shape[1])), constant_values=np.inf)
        jj = np.pad(jj, ((0, 0), (0, k - jj.shape[1])))
    mask = dd <= r_max_m
    own = np.arange(n)[:, None]
    return np.where(mask, jj, own), mask, np.where(mask, dd, 0.0)


def assert_matches_brute(t: NeighbourTable, x, y, k, r_max_m, exact=True):
    idx, mask, dist = brute_knn(x, y, k, r_max_m)
    assert t.idx.dtype == np.int64 and t.mask.dtype == bool and t.dist_m.dtype == np.float32
    np.testing.assert_array_equal(t.mask, mask)
    np.testing.assert_array_equal(t.idx, idx)
    if exact:
        np.testing.assert_array_equal(t.dist_m, dist.astype(np.float32))
    else:
        np.testing.assert_allclose(t.dist_m, dist, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("r_max_m", [1e9, 40.0, 15.0])
def test_random_points_match_brute_force(r_max_m):
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0, 500, 600), rng.uniform(0, 500, 600)
    t = knn_table(x, y, k=16, r_max_m=r_max_m)
    assert_matches_brute(t, x, y, 16, r_max_m, exact=False)
    assert t.k == 16 and t.r_max_m == r_max_m
    if r_max_m < 1e9:
        assert 0 < t.mask.mean() < 1  # the bound bites
    assert not (t.idx == np.arange(600)[:, None])[t.mask].any()  # never self


def test_projected_coordinates_with_large_offsets_and_ties():
    # Points on an integer lattice at EPSG:3035-like magnitudes: many exactly equal distances,
    # which must be broken by index, and exact distances.
    rng = np.random.default_rng(2)
    x = rng.integers(0, 25, 500) * 10.0 + 4_321_000.0
    y = rng.integers(0, 25, 500) * 10.0 + 3_210_000.0
    t = knn_table(x, y, k=16, r_max_m=30.0)
    assert_matches_brute(t, x, y, 16, 30.0)


def test_edge_exactly_at_r_max_is_kept():
    x, y = np.array([0.0, 3.0, 6.0]), np.array([0.0, 4.0, 8.0])
    t = knn_table(x, y, k=2, r_max_m=5.0)
    np.testing.assert_array_equal(t.idx, [[1, 0], [0, 2], [1, 2]])
    np.testing.assert_array_equal(t.mask, [[True, False], [True, True], [True, False]])
    np.testing.assert_array_equal(t.dist_m, [[5, 0], [5, 5], [5, 0]])
    t = knn_table(x, y, k=2, r_max_m=4.999)
    assert not t.mask.any()
    np.testing.assert_array_equal(t.idx, np.repeat(np.arange(3)[:, None], 2, 1))


def test_duplicated_points_are_neighbours_at_zero_distance():
    # A ring of 8 points of radius 10 m around (0, 0), a far point, and six points at (0, 0):
    # 0, 1, 3, 7 (a ring point moved onto the centre), 12 and 13.
    ang = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    x = np.array([0, 0, 50, 0, *(10 * np.cos(ang)), 0, 0], float)
    y = np.array([0, 0, 50, 0, *(10 * np.sin(ang)), 0, 0], float)
    x[7], y[7] = 0.0, 0.0
    twins = [0, 1, 3, 7, 12, 13]
    t = knn_table(x, y, k=8, r_max_m=20.0)
    assert_matches_brute(t, x, y, 8, 20.0, exact=False)
    for i in twins:
        others = [j for j in twins if j != i]
        np.testing.assert_array_equal(t.idx[i, :5], others)
        np.testing.assert_array_equal(t.dist_m[i, :5], 0.0)
        assert t.mask[i, :5].all()
        np.testing.assert_allclose(t.dist_m[i, 5:], 10.0, rtol=1e-6)  # then the ring


@pytest.mark.parametrize("n", [5, 17, 40])
def test_cloud_where_every_point_is_duplicated(n):
    x = np.full(n, 1234.5)
    y = np.full(n, -17.0)
    k = 16
    t = knn_table(x, y, k=k, r_max_m=1.0)
    for i in range(n):
        expected = [j for j in range(n) if j != i][:k]
        np.testing.assert_array_equal(t.idx[i, : len(expected)], expected)
        assert t.mask[i].sum() == min(k, n - 1)
        np.testing.assert_array_equal(t.idx[i, len(expected):], i)
    np.testing.assert_array_equal(t.dist_m, 0.0)


def test_tiny_clouds():
    t = knn_table(np.empty(0), np.empty(0), k=4)
    assert t.idx.shape == (0, 4) and t.mask.shape == (0, 4) and t.dist_m.shape == (0, 4)
    t = knn_table(np.array([5.0]), np.array([7.0]), k=4)
    np.testing.assert_array_equal(t.idx, [[0, 0, 0, 0]])
    assert not t.mask.any()
    np.testing.assert_array_equal(t.dist_m, 0.0)
    x, y = np.array([0.0, 1.0, 3.0, 6.0, 10.0]), np.zeros(5)
    t = knn_table(x, y, k=16)
    assert_matches_brute(t, x, y, 16, DEFAULT_R_MAX_M)
    np.testing.assert_array_equal(t.mask.sum(1), 4)
    np.testing.assert_array_equal(t.idx[0, :4], [1, 2, 3, 4])
    np.testing.assert_array_equal(t.dist_m[0, :4], [1, 3, 6, 10])
    np.testing.assert_array_equal(t.idx[:, 4:], np.repeat(np.arange(5)[:, None], 12, 1))


def test_blocks_and_workers_do_not_change_the_result():
    rng = np.random.default_rng(3)
    x, y = rng.integers(0, 30, 700).astype(float), rng.integers(0, 30, 700).astype(float)
    a = knn_table(x, y, k=12, r_max_m=3.0)
    b = knn_table(x, y, k=12, r_max_m=3.0, block=37, workers=2)
    for f in ("idx", "mask", "dist_m"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))


def test_edge_index_lists_valid_slots_as_source_target():
    x, y = np.array([0.0, 3.0, 6.0]), np.array([0.0, 4.0, 8.0])
    t = knn_table(x, y, k=2, r_max_m=5.0)
    np.testing.assert_array_equal(t.to_edge_index(), [[1, 0, 2, 1], [0, 1, 1, 2]])
    np.testing.assert_array_equal(t.degree(), [1, 2, 1])


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="non-finite"):
        knn_table(np.array([0.0, np.nan]), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="k must"):
        knn_table(np.zeros(3), np.zeros(3), k=0)
    with pytest.raises(ValueError, match="r_max_m"):
        knn_table(np.zeros(3), np.zeros(3), r_max_m=0.0)
    with pytest.raises(ValueError, match="one length"):
        knn_table(np.zeros(3), np.zeros(4))


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 60),
    k=st.integers(1, 10),
    side=st.integers(1, 8),
    r_max_m=st.sampled_from([0.5, 1.0, 2.0, 3.0, 100.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_lattice_clouds_match_brute_force(n, k, side, r_max_m, seed):
    # Small lattices: duplicates, equal distances and distances exactly at r_max everywhere.
    rng = np.random.default_rng(seed)
    x = rng.integers(0, side, n).astype(float)
    y = rng.integers(0, side, n).astype(float)
    assert_matches_brute(knn_table(x, y, k=k, r_max_m=r_max_m, block=7), x, y, k, r_max_m)


@pytest.mark.parametrize("seed", [0, 1])
def test_large_clusters_of_one_position_match_brute_force(seed):
    """Members beyond the first k + 1 of a position are answered without the tree; the table
    is still exactly the brute force's, for them, their cluster and the points around."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 60, 300)
    y = rng.uniform(0, 60, 300)
    for cx, cy, m in ((10.0, 10.0, 40), (30.0, 31.0, 9), (50.0, 12.0, 25)):
        at = rng.choice(300, m, replace=False)
        x[at], y[at] = cx, cy
    assert_matches_brute(knn_table(x, y, k=8, r_max_m=15.0), x, y, 8, 15.0)


def test_a_huge_cluster_of_one_position_is_not_quadratic():
    from psirel.graph.duplicates import spill_duplicates

    n = 200_000
    x, y = np.full(n, 500_000.0), np.full(n, 4_000_000.0)
    x[:10] += np.arange(1, 11)               # a few others nearby
    t = knn_table(x, y, k=16)                # seconds, not hours: one tree query of 17 rows
    keep, spilled, nb = spill_duplicates(np.column_stack([x, y]), 16)
    assert len(keep) == 10 + 17 and len(spilled) == n - 27
    assert (t.idx[spilled[0]] == np.arange(10, 26)).all() and t.mask[spilled].all()
    assert (t.dist_m[spilled] == 0).all()
