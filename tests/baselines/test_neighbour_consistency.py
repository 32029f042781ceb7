import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from psirel.baselines import CoherenceThreshold, NeighbourConsistency, PointData
from psirel.baselines.neighbour_consistency import NEIGHBOUR_STAT_NAMES, neighbour_statistics


def _hand_example():
    t = np.arange(5.0)
    step = np.array([0, 0, 0, 10, 10.0])
    series = np.stack([step, np.zeros(5), 3 * t, np.zeros(5)])
    idx = np.array([[1, 2, 3], [0, 0, 0], [1, 3, 0], [0, 0, 0]])
    mask = np.array([[1, 1, 1], [0, 0, 0], [1, 1, 0], [1, 0, 0]], bool)
    return PointData.from_arrays(
        [0.0, 3.0, 6.0, 0.0], [0.0, 4.0, 8.0, 10.0], [1.0, 2.0, 4.0, 10.0],
        [0.9, 0.5, 0.7, 0.6], idx, mask, series_mm=series,
    )


def test_neighbour_statistics_by_hand():
    x, names = neighbour_statistics(_hand_example())
    assert names == NEIGHBOUR_STAT_NAMES
    col = {n: x[:, i] for i, n in enumerate(names)}
    np.testing.assert_array_equal(col["nbr_count"], [3, 0, 2, 1])
    # point 0: neighbours at 5, 10, 10 m; velocities 2, 4, 10 -> median 4, MAD 2
    assert col["nbr_mean_dist_m"][0] == pytest.approx(25 / 3)
    assert col["nbr_coh_mean"][0] == pytest.approx((0.5 + 0.7 + 0.6) / 3)
    assert col["nbr_vel_dev_mm_yr"][0] == pytest.approx(1 - 4)
    assert col["nbr_vel_mad_mm_yr"][0] == pytest.approx(2)
    # its series is a 10 mm step against flat neighbours: detrended residual [2,-1,-4,3,0]
    assert col["nbr_series_rms_mm"][0] == pytest.approx(np.sqrt(6), rel=1e-6)
    # point 1 has no neighbours: everything but the count is undefined
    assert np.isnan(x[1, 1:]).all()
    # point 2: a pure linear trend against flat neighbours leaves no residual (that is Δv's job)
    assert col["nbr_vel_dev_mm_yr"][2] == pytest.approx(4 - 6)  # median of 2 and 10
    assert col["nbr_series_rms_mm"][2] == pytest.approx(0, abs=1e-6)
    # point 3: a single neighbour, the step series, seen from the other side
    assert col["nbr_vel_dev_mm_yr"][3] == pytest.approx(10 - 1)
    assert col["nbr_vel_mad_mm_yr"][3] == 0
    assert col["nbr_series_rms_mm"][3] == pytest.approx(np.sqrt(6), rel=1e-6)


def test_chunking_does_not_change_the_statistics(mixed_scenes, monkeypatch):
    from psirel.baselines import neighbour_consistency as nc

    (data, _), _ = mixed_scenes
    whole, _ = neighbour_statistics(data)
    monkeypatch.setattr(nc, "_CHUNK_ELEMS", 7 * data.nbr_idx.shape[1] * data.series_mm.shape[1])
    chunked, _ = neighbour_statistics(data)
    np.testing.assert_array_equal(whole, chunked)


def test_flags_planted_neighbour_outliers_where_coherence_cannot(neighbour_only_scenes):
    (train, y_train), (test, y_test) = neighbour_only_scenes
    nc = NeighbourConsistency().fit(train, y_train)
    coh = CoherenceThreshold().fit(train, y_train)
    auc_nc = roc_auc_score(y_test, nc.predict_proba(test)[:, 1])
    auc_coh = roc_auc_score(y_test, coh.predict_proba(test)[:, 1])
    assert auc_nc > 0.95
    assert auc_coh < 0.6  # coherence carries no signal in this scene
    assert auc_nc > auc_coh + 0.3
    w = nc.model_.weights
    assert w[0] < 0  # larger velocity deviation -> less reliable


def test_on_mixed_errors_auc_on_each_planted_kind(mixed_scenes):
    (train, y_train), (test, y_test) = mixed_scenes
    p = NeighbourConsistency().fit(train, y_train).predict_proba(test)[:, 1]
    assert roc_auc_score(y_test, p) > 0.9


def test_isolated_points_and_missing_series_give_finite_probabilities(mixed_scenes):
    (train, y_train), (test, _) = mixed_scenes
    test = test.take(np.arange(test.n_points))
    test.nbr_mask[:50] = False  # isolated
    test.series_mm[50:60, :5] = np.nan  # missing epochs
    nc = NeighbourConsistency().fit(train, y_train)
    proba = nc.predict_proba(test)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(1), 1.0)
    # no series at all (T = 0): the series term drops out, velocity still works
    bare = PointData.from_arrays(train.x_m, train.y_m, train.velocity_mm_yr, train.coherence,
                                 train.nbr_idx, train.nbr_mask)
    p = NeighbourConsistency().fit(bare, y_train).predict_proba(bare)[:, 1]
    assert np.isfinite(p).all() and roc_auc_score(y_train, p) > 0.8


def test_json_round_trip(mixed_scenes):
    (train, y_train), (test, _) = mixed_scenes
    nc = NeighbourConsistency().fit(train, y_train)
    d = json.loads(json.dumps(nc.to_json()))
    assert len(d["logistic"]["weights"]) == 3
    nc2 = NeighbourConsistency.from_json(d)
    np.testing.assert_array_equal(nc.predict_proba(test), nc2.predict_proba(test))
    np.testing.assert_array_equal(nc.predict(test), nc2.predict(test))


def test_fast_nanmedian_matches_numpy():
    import warnings

    from psirel.baselines.neighbour_consistency import _nanmedian_axis1

    rng = np.random.default_rng(0)
    for shape in [(200, 7), (200, 8), (50, 16, 9)]:
        a = rng.normal(size=shape)
        a[rng.random(shape) < 0.3] = np.nan
        a[:3] = np.nan  # all-NaN slices
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            expected = np.nanmedian(a, axis=1)
        np.testing.assert_allclose(_nanmedian_axis1(a), expected, rtol=0, atol=1e-12)
