import json
import warnings

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from psirel.baselines import (
    BASELINES,
    CoherenceThreshold,
    GradientBoosting,
    NeighbourConsistency,
    PointData,
    ReliabilityEstimator,
    hand_features,
    load_baseline,
    save_training_features,
)
from psirel.baselines.neighbour_consistency import NEIGHBOUR_STAT_NAMES


def test_hand_features_columns(mixed_scenes):
    (data, _), _ = mixed_scenes
    x, names = hand_features(data)
    assert x.dtype == np.float32 and x.shape == (data.n_points, len(names))
    assert len(set(names)) == len(names)
    assert names[:3] == ["velocity_mm_yr", "abs_velocity_mm_yr", "coherence"]
    assert names[-1] == "lulc_class"
    np.testing.assert_array_equal(x[:, -1], data.lulc_class)
    np.testing.assert_array_equal(x[:, names.index("coherence")], data.coherence)
    for s in data.series_feat_names:
        np.testing.assert_array_equal(x[:, names.index(f"series:{s}")],
                                      data.series_feats[:, data.series_feat_names.index(s)])
    assert set(NEIGHBOUR_STAT_NAMES) <= set(names)
    assert {f"patch:{s}" for s in data.patch_stat_names} <= set(names)
    dev = x[:, names.index("nbr_vel_dev_mm_yr")]
    np.testing.assert_array_equal(x[:, names.index("nbr_abs_vel_dev_mm_yr")], np.abs(dev))


def test_beats_both_baselines_where_features_combine(combined_scenes):
    (train, y_train), (test, y_test) = combined_scenes
    auc = {}
    for cls in (CoherenceThreshold, NeighbourConsistency, GradientBoosting):
        est = cls().fit(train, y_train)
        auc[cls.name] = roc_auc_score(y_test, est.predict_proba(test)[:, 1])
    assert auc["gradient_boosting"] > 0.97
    assert auc["gradient_boosting"] > auc["neighbour_consistency"] + 0.02
    assert auc["gradient_boosting"] > auc["coherence_threshold"] + 0.2


def test_refit_from_saved_training_features_gives_identical_predictions(mixed_scenes, tmp_path):
    (train, y_train), (test, _) = mixed_scenes
    gb = GradientBoosting(max_iter=60).fit(train, y_train)
    path = save_training_features(tmp_path / "training_features.npz", train, y_train)
    d = json.loads(json.dumps(gb.to_json()))
    assert d["params"]["max_iter"] == 60
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gb2 = GradientBoosting.from_json(d, training=path)
    np.testing.assert_array_equal(gb.predict_proba(test), gb2.predict_proba(test))
    assert gb2.threshold_ == gb.threshold_
    # the same, through the registry
    gb3 = load_baseline(d, training=path)
    np.testing.assert_array_equal(gb.predict_proba(test), gb3.predict_proba(test))


def test_refit_refuses_other_training_data(mixed_scenes):
    (train, y_train), (test, y_test) = mixed_scenes
    d = GradientBoosting(max_iter=10).fit(train, y_train).to_json()
    with pytest.raises(ValueError, match="refitting"):
        GradientBoosting.from_json(d)
    with pytest.raises(ValueError, match="do not match"):
        GradientBoosting.from_json(d, training=(test, y_test))
    y_other = y_train.copy()
    y_other[0] = 1 - y_other[0]
    with pytest.raises(ValueError, match="do not match"):
        GradientBoosting.from_json(d, training=(train, y_other))


def test_predict_refuses_different_feature_layout(mixed_scenes):
    (train, y_train), (test, _) = mixed_scenes
    gb = GradientBoosting(max_iter=10).fit(train, y_train)
    other = PointData.from_arrays(test.x_m, test.y_m, test.velocity_mm_yr, test.coherence,
                                  test.nbr_idx, test.nbr_mask)
    with pytest.raises(ValueError, match="hand features differ"):
        gb.predict_proba(other)
    with pytest.raises(ValueError, match="unknown"):
        GradientBoosting(n_estimators=3)


@pytest.mark.parametrize("name", list(BASELINES))
def test_every_baseline_proba_contract_and_json(name, mixed_scenes, tmp_path):
    (train, y_train), (test, _) = mixed_scenes
    est = BASELINES[name]().fit(train, y_train)
    assert est.name == name
    assert isinstance(est, ReliabilityEstimator)
    proba = est.predict_proba(test)
    assert proba.shape == (test.n_points, 2) and proba.dtype == np.float64
    assert np.isfinite(proba).all() and proba.min() >= 0 and proba.max() <= 1
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    assert 0 < est.threshold_ < 1
    d = json.loads(json.dumps(est.to_json()))
    assert d["name"] == name
    est2 = load_baseline(d, training=(train, y_train))
    np.testing.assert_array_equal(est2.predict_proba(test), proba)
    with pytest.raises(ValueError, match="unknown baseline"):
        load_baseline({**d, "name": "oracle"})


def test_rejects_single_class_labels(mixed_scenes):
    (train, _), _ = mixed_scenes
    for cls in BASELINES.values():
        with pytest.raises(ValueError, match="both"):
            cls().fit(train, np.ones(train.n_points, int))
