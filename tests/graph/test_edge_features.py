"""Edge features on hand-made graphs, scales, and subgraph consistency."""

import json

import numpy as np
import pytest

from psirel.graph.edges import EDGE_FEATURES, EdgeScale, edge_features, fit_edge_scale
from psirel.graph.knn import knn_table
from psirel.graph.sampling import full_neighbourhood


def three_points():
    # A 3-4-5 chain: 0 —5 m— 1 —5 m— 2; with r_max = 5 m, 0 and 2 are not linked.
    x = np.array([100.0, 103.0, 106.0])
    y = np.array([200.0, 204.0, 208.0])
    h = np.array([10.0, 13.0, 9.0])
    v = np.array([-2.0, 1.0, 5.0])
    return x, y, h, v, knn_table(x, y, k=2, r_max_m=5.0)


def test_edge_features_of_a_hand_made_graph():
    x, y, h, v, t = three_points()
    np.testing.assert_array_equal(t.idx, [[1, 0], [0, 2], [1, 2]])
    scale = EdgeScale(xy_m=5.0, height_m=2.0, velocity_mm_yr=4.0)
    f = edge_features(x, y, h, v, t.idx, t.mask, scale)
    assert f.shape == (3, 2, len(EDGE_FEATURES)) and f.dtype == np.float32
    assert EDGE_FEATURES == ("dx", "dy", "distance", "dheight", "dvelocity", "dseries_rms",
                             "dseries_detrended_rms")
    expected = np.zeros((3, 2, 7))  # no series given: both series differences are 0
    expected[0, 0] = [3 / 5, 4 / 5, 1.0, 3 / 2, 3 / 4, 0, 0]  # edge 1 → 0
    expected[1, 0] = [-3 / 5, -4 / 5, 1.0, -3 / 2, -3 / 4, 0, 0]  # edge 0 → 1
    expected[1, 1] = [3 / 5, 4 / 5, 1.0, -4 / 2, 4 / 4, 0, 0]  # edge 2 → 1
    expected[2, 0] = [-3 / 5, -4 / 5, 1.0, 4 / 2, -4 / 4, 0, 0]  # edge 1 → 2
    np.testing.assert_allclose(f, expected, rtol=1e-6)
    raw = edge_features(x, y, h, v, t.idx, t.mask)  # no scale: metres and mm/yr
    np.testing.assert_allclose(raw[1, 1], [3, 4, 5, -4, 4, 0, 0], rtol=1e-6)
    np.testing.assert_array_equal(raw[~t.mask], 0.0)


def test_series_rms_differences_ignore_offsets_and_see_disagreement():
    x, y, h, v, t = three_points()
    # 0 and 1 move alike up to a constant offset; 2 has a 27.75 mm unwrapping step at date 2
    series = np.array([[0.0, 1.0, 2.0, 3.0],
                       [5.0, 6.0, 7.0, 8.0],
                       [0.0, 1.0, 29.75, 30.75]], np.float32)
    scale = EdgeScale(xy_m=5.0, height_m=2.0, velocity_mm_yr=4.0, series_mm=2.0)
    f = edge_features(x, y, h, v, t.idx, t.mask, scale, series_mm=series)
    assert f[0, 0, 5] == pytest.approx(0.0, abs=1e-6)  # edge 1 → 0: same motion
    d = np.array([0.0, 0.0, 27.75, 27.75]) - 27.75 / 2  # edge 2 → 1 after de-meaning
    assert f[1, 1, 5] == pytest.approx(np.sqrt(np.mean(d * d)) / 2.0, rel=1e-5)
    assert f[2, 0, 5] == pytest.approx(f[1, 1, 5], rel=1e-6)  # symmetric
    np.testing.assert_array_equal(f[~t.mask], 0.0)
    # detrended, a difference that is a pure trend vanishes and a step does not
    trend = np.array([[0.0, 0.0, 0.0, 0.0], [0.0, 2.0, 4.0, 6.0], [0.0, 1.0, 29.75, 30.75]])
    scale2 = EdgeScale(xy_m=5.0, height_m=2.0, velocity_mm_yr=4.0, series_detrended_mm=0.5)
    f2 = edge_features(x, y, h, v, t.idx, t.mask, scale2, series_mm=trend)
    assert f2[0, 0, 5] > 1.0 and f2[0, 0, 6] == pytest.approx(0.0, abs=1e-6)
    step = trend[2] - trend[1] - np.mean(trend[2] - trend[1])
    ti = np.arange(4) - 1.5
    res = step - (ti @ step) / (ti @ ti) * ti
    assert f2[1, 1, 6] == pytest.approx(np.sqrt(np.mean(res * res)) / 0.5, rel=1e-5)
    assert f2[1, 1, 6] > 1.0
    # the row blocks of the series computation do not change it
    g = edge_features(x, y, h, v, t.idx, t.mask, scale, series_mm=series, block=1)
    np.testing.assert_array_equal(f, g)


def _difference_series_reference(series, rows, nb):
    """The definition, in float64: RMS of the de-meaned (and de-trended) s_j − s_i."""
    d = series[nb].astype(np.float64) - series[rows][:, None, :].astype(np.float64)
    d -= d.mean(axis=2, keepdims=True)
    t = np.arange(series.shape[1]) - (series.shape[1] - 1) / 2
    res = d - (d @ t)[..., None] / (t @ t) * t
    return np.sqrt((d * d).mean(axis=2)), np.sqrt((res * res).mean(axis=2))


def test_series_rms_differences_from_point_statistics_equal_the_definition():
    from psirel.graph.edges import _nan_rms_differences, series_rms_differences

    rng = np.random.default_rng(4)
    n, k, t_len = 400, 8, 111
    t = np.arange(t_len)
    # offsets of ±30 mm and trends of ±10 mm over the stack, 2 mm noise, an unwrapping step
    series = (rng.normal(0, 30, (n, 1)) + rng.normal(0, 10, (n, 1)) * t / t_len
              + rng.normal(0, 2, (n, t_len))).astype(np.float32)
    series[7, 60:] += 15.5
    nb, rows = rng.integers(0, n, (n, k)), np.arange(n)
    rms, det = series_rms_differences(series, rows, nb)
    ref_rms, ref_det = _difference_series_reference(series, rows, nb)
    np.testing.assert_allclose(rms, ref_rms, atol=1e-5)
    np.testing.assert_allclose(det, ref_det, atol=1e-5)
    # a subset of rows, given as a slice or an index array, is those rows' edges
    sub = series_rms_differences(series, slice(100, 150), nb[100:150])
    np.testing.assert_array_equal(sub[0], rms[100:150])
    # series with gaps: their edges take the NaN-aware path, the others are unchanged
    gappy = series.copy()
    gappy[3, 10] = np.nan
    gappy[5] = np.nan
    rms2, det2 = series_rms_differences(gappy, rows, nb)
    touched = np.isin(rows, [3, 5]) | np.isin(nb, [3, 5]).any(axis=1)
    np.testing.assert_array_equal(rms2[~touched], rms[~touched])
    slow = _nan_rms_differences(gappy, rows[touched], nb[touched])
    np.testing.assert_array_equal(rms2[touched], slow[0])
    np.testing.assert_array_equal(det2[touched], slow[1])
    assert (rms2[5] == 0).all() and (rms2[3] > 0).all()   # no dates in common: 0


def test_masked_slots_are_zero_even_with_nan_attributes():
    x, y, h, v, t = three_points()
    h = np.array([np.nan, 13.0, 9.0])
    idx = np.array([[1, 2], [0, 2], [1, 0]])  # masked slots pointing elsewhere
    mask = np.array([[False, False], [False, True], [True, False]])
    f = edge_features(x, y, h, v, idx, mask)
    np.testing.assert_array_equal(f[~mask], 0.0)
    np.testing.assert_allclose(f[1, 1], [3, 4, 5, -4, 4, 0, 0], rtol=1e-6)


def test_blocks_do_not_change_features():
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 300, 500), rng.uniform(0, 300, 500)
    h, v = rng.normal(100, 20, 500), rng.normal(0, 5, 500)
    t = knn_table(x, y, k=8, r_max_m=30.0)
    a = edge_features(x, y, h, v, t.idx, t.mask)
    b = edge_features(x, y, h, v, t.idx, t.mask, block=33)
    np.testing.assert_array_equal(a, b)
    # the distance feature is the table's edge length
    np.testing.assert_allclose(a[..., 2], t.dist_m, rtol=1e-6)


def test_features_of_a_subgraph_equal_those_of_the_full_graph():
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0, 300, 800), rng.uniform(0, 300, 800)
    h, v = rng.normal(100, 20, 800), rng.normal(0, 5, 800)
    t = knn_table(x, y, k=8, r_max_m=30.0)
    scale = fit_edge_scale(x, y, h, v, t.idx, t.mask, r_max_m=t.r_max_m)
    full = edge_features(x, y, h, v, t.idx, t.mask, scale)
    sub = full_neighbourhood(t, np.array([5, 17, 3]), hops=2)
    n = sub.nodes
    f = edge_features(x[n], y[n], h[n], v[n], sub.idx, sub.mask, scale)
    expanded = sub.hop < 2
    np.testing.assert_array_equal(f[expanded], full[n[expanded]])
    np.testing.assert_array_equal(f[~expanded], 0.0)


def test_fit_edge_scale_uses_robust_spreads():
    # A row of points 1 m apart with heights alternating 0, 1: every edge's Δheight is ±1.
    x = np.arange(200.0)
    y = np.zeros(200)
    t = knn_table(x, y, k=2, r_max_m=1.5)  # neighbours at ±1 m only
    h = (np.arange(200) % 2).astype(float)
    v = np.full(200, 3.0)  # no velocity differences: falls back to 1

    def fit(h, v, **kw):
        return fit_edge_scale(x, y, h, v, t.idx, t.mask, **kw)

    s = fit(h, v, r_max_m=t.r_max_m)
    assert s.xy_m == 1.5
    assert s.height_m == pytest.approx(1.4826)
    assert s.velocity_mm_yr == 1.0
    assert fit(h, v).xy_m == 1.0  # without r_max_m: the longest edge
    # An outlier scatterer barely moves the MAD.
    h2 = h.copy()
    h2[50] = 1e4
    assert fit(h2, v).height_m == pytest.approx(1.4826)
    # More than half the differences zero: the RMS instead.
    v2 = np.zeros(200)
    v2[100] = 10.0
    dv = (v2[t.idx] - v2[:, None])[t.mask]
    assert fit(h, v2).velocity_mm_yr == pytest.approx(np.sqrt(np.mean(dv**2)))
    # Subsampled rows: deterministic for a given rng.
    noisy = np.random.default_rng(0).normal(0, 3, 200)
    a = fit(noisy, v, max_nodes=50, rng=np.random.default_rng(7))
    b = fit(noisy, v, max_nodes=50, rng=np.random.default_rng(7))
    assert a == b


def test_edge_scale_json_round_trip_and_validation():
    s = EdgeScale(xy_m=100.0, height_m=4.5, velocity_mm_yr=2.25)
    d = s.to_json()
    assert d == {"xy_m": 100.0, "height_m": 4.5, "velocity_mm_yr": 2.25, "series_mm": 1.0,
                 "series_detrended_mm": 1.0}
    assert EdgeScale.from_json(d) == s
    assert EdgeScale.from_json(json.dumps(d)) == s
    with pytest.raises(ValueError, match="missing"):
        EdgeScale.from_json({"xy_m": 1.0})
    with pytest.raises(ValueError, match="positive"):
        EdgeScale(xy_m=0.0, height_m=1.0, velocity_mm_yr=1.0)
    with pytest.raises(ValueError, match="positive"):
        EdgeScale(xy_m=1.0, height_m=np.nan, velocity_mm_yr=1.0)
