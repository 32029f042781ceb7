import json

import numpy as np
import pytest

from psirel.baselines import PointData, load_training_features, save_training_features


def _tiny(n=5):
    idx = np.array([[1, 2], [0, 2], [0, 1], [4, 0], [3, 0]])
    mask = np.array([[1, 1], [1, 1], [1, 1], [1, 0], [1, 0]], bool)
    return PointData.from_arrays(
        np.arange(n) * 10.0, np.zeros(n), np.arange(n), np.full(n, 0.8), idx, mask,
        series_mm=np.arange(n * 3).reshape(n, 3), lulc_class=[10, 10, 40, 50, 50],
    )


def test_from_arrays_fills_defaults_and_dtypes():
    d = _tiny()
    assert d.n_points == len(d) == 5
    assert d.x_m.dtype == np.float64 and d.velocity_mm_yr.dtype == np.float32
    assert d.series_mm.dtype == np.float32 and d.series_mm.shape == (5, 3)
    assert d.series_feats.shape == (5, 0) and d.patch_stats.shape == (5, 0)
    assert d.series_feat_names == [] and d.patch_stat_names == []
    assert d.nbr_idx.dtype == np.int64 and d.nbr_mask.dtype == bool
    np.testing.assert_array_equal(d.slope_deg, 0)
    # empty slots get the row's own index, so gathers never go out of bounds
    d2 = PointData.from_arrays([0.0, 1.0], [0.0, 0.0], [0, 0], [1, 1], [[1, -1], [0, -1]])
    np.testing.assert_array_equal(d2.nbr_mask, [[True, False], [True, False]])
    np.testing.assert_array_equal(d2.nbr_idx, [[1, 0], [0, 1]])
    d3 = PointData.from_arrays([0.0, 1.0], [0.0, 0.0], [0, 0], [1, 1], [[1, 7], [0, 9]],
                               [[True, False], [True, False]])
    np.testing.assert_array_equal(d3.nbr_idx, [[1, 0], [0, 1]])
    np.testing.assert_array_equal(d2.lulc_class, [-1, -1])


def test_validation_rejects_inconsistent_arrays():
    d = _tiny()
    with pytest.raises(ValueError, match="coherence"):
        PointData.from_arrays(d.x_m, d.y_m, d.velocity_mm_yr, d.coherence[:4], d.nbr_idx)
    with pytest.raises(ValueError, match="own neighbour"):
        PointData.from_arrays([0.0, 1.0], [0.0, 0.0], [0, 0], [1, 1], [[0], [0]])
    with pytest.raises(ValueError, match="outside"):
        PointData.from_arrays([0.0, 1.0], [0.0, 0.0], [0, 0], [1, 1], [[1], [2]])
    with pytest.raises(ValueError, match="series_feat_names"):
        PointData.from_arrays(d.x_m, d.y_m, d.velocity_mm_yr, d.coherence, d.nbr_idx,
                              d.nbr_mask, series_feats=np.zeros((5, 2)),
                              series_feat_names=["a"])


def test_take_renumbers_and_masks_neighbours():
    d = _tiny()
    sub = d.take(np.array([0, 2, 3]))
    np.testing.assert_array_equal(sub.velocity_mm_yr, [0, 2, 3])
    # point 0's neighbours (1, 2) -> only 2 survives, now index 1
    np.testing.assert_array_equal(sub.nbr_mask[0], [False, True])
    assert sub.nbr_idx[0, 1] == 1
    # point 3's neighbour 4 is gone; its slot points at the row itself
    assert not sub.nbr_mask[2].any()
    np.testing.assert_array_equal(sub.nbr_idx[2], [2, 2])
    mask_sel = d.take(np.array([True, False, True, True, False]))
    np.testing.assert_array_equal(mask_sel.nbr_idx, sub.nbr_idx)


def test_training_features_round_trip_without_pickle(tmp_path):
    d = _tiny()
    d.series_feats = np.ones((5, 2), np.float32)
    d.series_feat_names = ["resid_std_mm", "max_step_mm"]
    y = np.array([1, 0, 1, 1, 0])
    path = save_training_features(tmp_path / "training_features.npz", d, y)
    assert path.exists() and list(tmp_path.iterdir()) == [path]  # no temporary left behind
    with np.load(path, allow_pickle=False) as z:
        assert json.loads(str(z["series_feat_names"])) == d.series_feat_names
        assert all(z[k].dtype != object for k in z.files)
    d2, y2 = load_training_features(path)
    np.testing.assert_array_equal(y2, y)
    for name in d.__dataclass_fields__:
        a, b = getattr(d, name), getattr(d2, name)
        if isinstance(a, np.ndarray):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
        else:
            assert a == b


def test_save_rejects_bad_labels(tmp_path):
    with pytest.raises(ValueError, match="both"):
        save_training_features(tmp_path / "t.npz", _tiny(), np.ones(5))
