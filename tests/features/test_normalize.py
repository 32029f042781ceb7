from __future__ import annotations

import json

import numpy as np
import pytest

from psirel.features.normalize import Normalizer, amplitude_db, fit_normalizer
from psirel.features.patches import PATCH_PX, extract_patches


def small_normalizer(**kw) -> Normalizer:
    args = dict(lulc_codes=[20, 10, 40], dem_rel_std_m=2.0, amp_db_mean=-10.0, amp_db_std=5.0,
                scalar_mean=[1.0, 0.5], scalar_std=[2.0, 0.25], scalar_names=["v", "c"],
                patch_px=8)
    args.update(kw)
    return Normalizer(**args)


def raw_patches(n: int = 2, p: int = 8) -> tuple[np.ndarray, np.ndarray]:
    i = np.arange(p, dtype=np.float32)
    raw = np.empty((n, 3, p, p), np.float32)
    raw[:, 0] = 100.0 + i[:, None]          # height grows by 1 m a row
    raw[:, 1] = 10.0
    raw[:, 2] = 0.1                          # -10 dB
    return raw, np.ones((n, p, p), bool)


def test_channels_by_hand():
    norm = small_normalizer()
    assert norm.lulc_codes == [10, 20, 40]
    raw, valid = raw_patches()
    raw[0, 1, 0, :4] = [10, 20, 40, 30]      # 30 never seen
    raw[0, 2, 1, 1] = 1.0                    # 0 dB
    raw[0, 2, 1, 2] = 0.0                    # floored at amp_eps = 1e-6: -60 dB
    valid[0, 7, 7] = False
    raw[0, :, 7, 7] = np.nan
    out, n_unknown = norm.patches(raw, valid)
    assert out.shape == (2, 4, 8, 8) and out.dtype == np.float32
    # channel 0: (dem - dem at [4, 4]) / 2 m
    expect = (np.arange(8.0) - 4.0)[:, None] / 2.0 * np.ones(8)
    expect[7, 7] = 0.0
    np.testing.assert_allclose(out[0, 0], expect)
    assert out[0, 0, 4, 4] == 0.0
    np.testing.assert_array_equal(out[0, 1, 0, :4], [1, 2, 3, 0])
    assert out[0, 1, 5, 5] == 1 and out[0, 1, 7, 7] == 0
    assert out[0, 2, 0, 0] == pytest.approx(0.0)                 # -10 dB is the mean
    assert out[0, 2, 1, 1] == pytest.approx((0.0 + 10.0) / 5.0)
    assert out[0, 2, 1, 2] == pytest.approx((-60.0 + 10.0) / 5.0, rel=1e-5)
    assert out[0, 2, 7, 7] == 0.0
    assert out[0, 3].sum() == 63 and out[0, 3, 7, 7] == 0
    assert n_unknown == 1
    assert np.isfinite(out).all()


def test_unknown_code_counts_only_valid_pixels_and_points():
    norm = small_normalizer()
    raw, valid = raw_patches(n=4)
    raw[0, 1, 2, 2] = 99                     # unseen, valid pixel -> counted
    raw[0, 1, 3, 3] = 77                     # a second one in the same patch: still one point
    raw[1, 1, 2, 2] = 99                     # unseen, but invalid pixel -> not counted
    valid[1, 2, 2] = False
    raw[2, 1, 2, 2] = np.nan                 # LULC nodata -> index 0, not 'unknown'
    valid[2, 2, 2] = False
    raw[3, 1, 0, 0] = 70000.5                # beyond the lookup table
    out, n_unknown = norm.patches(raw, valid)
    assert n_unknown == 2
    assert out[0, 1, 2, 2] == 0 and out[1, 1, 2, 2] == 0 and out[2, 1, 2, 2] == 0
    assert out[3, 1, 0, 0] == 0


def test_lulc_index_lookup_and_search_agree():
    values = np.array([10, 20, 40, 30, 0, -1, -0.5, 10.7, np.nan, 1e12, 41, 39], np.float32)
    expect = [1, 2, 3, 0, 0, 0, 0, 1, 0, 0, 0, 0]
    np.testing.assert_array_equal(small_normalizer().lulc_index(values), expect)
    big = small_normalizer(lulc_codes=[10, 20, 40, 1_000_000])   # binary-search path
    assert big._lut is None
    np.testing.assert_array_equal(big.lulc_index(values), expect)
    np.testing.assert_array_equal(big.lulc_index(np.float32([1_000_000])), [4])
    np.testing.assert_array_equal(small_normalizer(lulc_codes=[]).lulc_index(values), 0)


def test_dem_hole_at_centre_uses_patch_mean():
    norm = small_normalizer()
    raw, valid = raw_patches(n=1)
    raw[0, 0, 4, 4] = np.nan
    valid[0, 4, 4] = False
    out, _ = norm.patches(raw, valid)
    mean = (100.0 * 64 + 8 * 28 - 104) / 63    # mean of the 63 valid heights
    assert out[0, 0, 0, 0] == pytest.approx((100.0 - mean) / 2.0, rel=1e-5)
    assert out[0, 0, 4, 4] == 0.0


def test_amplitude_already_in_db():
    norm = small_normalizer(amp_is_db=True)
    raw, valid = raw_patches(n=1)
    raw[0, 2] = -25.0
    out, _ = norm.patches(raw, valid)
    np.testing.assert_allclose(out[0, 2], (-25.0 + 10.0) / 5.0)
    np.testing.assert_allclose(amplitude_db(np.float32([1.0, 10.0, 0.0])), [0.0, 10.0, -60.0],
                               rtol=1e-6)


def test_json_round_trip():
    norm = small_normalizer(amp_is_db=True)
    d = json.loads(json.dumps(norm.to_json()))
    assert d["format"] == "psirel-normalizer/1" and "_lut" not in d
    back = Normalizer.from_json(d)
    assert back == norm
    raw, valid = raw_patches()
    raw[1, 1, 0, 0] = 33
    a, na = norm.patches(raw, valid)
    b, nb = back.patches(raw, valid)
    np.testing.assert_array_equal(a, b)
    assert na == nb == 1
    missing = dict(d)
    del missing["dem_rel_std_m"]
    with pytest.raises(ValueError, match="dem_rel_std_m"):
        Normalizer.from_json(missing)
    with pytest.raises(ValueError, match="format"):
        Normalizer.from_json({**d, "format": "other/9"})
    with pytest.raises(ValueError, match="unknown field 'extra'"):
        Normalizer.from_json({**d, "extra": 1})
    with pytest.raises(ValueError, match="positive"):
        Normalizer.from_json({**d, "amp_db_std": 0.0})


def test_scalars_robustly_scaled_and_checked():
    norm = small_normalizer()
    z = norm.scalars(np.array([[3.0, 0.75], [1.0, np.nan], [201.0, 0.5]]), names=["v", "c"])
    # asinh of the standardised value: linear near 0, logarithmic in the tails
    np.testing.assert_allclose(z, [[np.arcsinh(1.0)] * 2, [0.0, 0.0], [np.arcsinh(100.0), 0.0]],
                               rtol=1e-6)
    assert z.dtype == np.float32
    with pytest.raises(ValueError, match="differ"):
        norm.scalars(np.zeros((1, 2)), names=["c", "v"])
    with pytest.raises(ValueError, match=r"\[n, 2\]"):
        norm.scalars(np.zeros((1, 3)))


def test_patch_size_must_match():
    with pytest.raises(ValueError, match="8 px"):
        small_normalizer().patches(*raw_patches(p=10))


def test_extract_equals_patches_of_raw(stack, grid):
    norm = Normalizer(lulc_codes=[10, 20, 40], dem_rel_std_m=3000.0, amp_db_mean=-8.0,
                      amp_db_std=2.0, scalar_mean=[], scalar_std=[], scalar_names=[])
    rng = np.random.default_rng(5)
    r = np.r_[rng.uniform(-20, grid.height + 20, 200), 0.5, np.nan]
    c = np.r_[rng.uniform(-20, grid.width + 20, 200), 0.5, 3.0]
    x, y = grid.pixel_xy(r, c)
    ref, n_ref = norm.patches(*extract_patches(stack, x, y))
    buf = np.full((300, 4, PATCH_PX, PATCH_PX), 7.0, np.float32)
    out, n_out = norm.extract(stack, x, y, out=buf)
    np.testing.assert_array_equal(out, ref)
    assert n_out == n_ref > 0                   # codes 30 and 50 are unknown to this model
    assert not out[-1].any()                    # NaN coordinates: an all-zero, all-invalid patch
    assert np.isfinite(out).all()


def test_fit_normalizer_statistics(stack, grid, monkeypatch):
    rng = np.random.default_rng(6)
    # training points in the upper-left part only
    r, c = rng.uniform(5, 60, 500), rng.uniform(5, 60, 500)
    x, y = grid.pixel_xy(r, c)
    feats = np.column_stack([rng.normal(3, 2, 500), rng.uniform(0, 1, 500)])
    feats[0, 0] = np.nan
    norm = fit_normalizer(stack, x, y, feats, ["v", "c"], sample=100, seed=1)
    again = fit_normalizer(stack, x, y, feats, ["v", "c"], sample=100, seed=1)
    assert norm == again                                       # deterministic

    # LULC: every code inside the training points' window (rows/cols -35..99), none else
    rr, cc = np.mgrid[0:100, 0:100]
    assert norm.lulc_codes == sorted(set(grid.lulc_of(rr, cc).ravel().tolist()))

    # DEM and amplitude: recompute over the same deterministic sample
    pick = np.sort(np.random.default_rng(1).choice(500, size=100, replace=False))
    raw, valid = extract_patches(stack, x[pick], y[pick])
    rel = (raw[:, 0] - raw[:, 0, 40, 40][:, None, None])[valid]
    db = 10 * np.log10(raw[:, 2][valid].astype(np.float64))
    assert norm.dem_rel_std_m == pytest.approx(rel.std(), rel=1e-6)
    assert norm.amp_db_mean == pytest.approx(db.mean(), rel=1e-5)
    assert norm.amp_db_std == pytest.approx(db.std(), rel=1e-5)
    # scalars: robust centre and scale (median, 1.4826·MAD) over finite values
    v, c = feats[:, 0][np.isfinite(feats[:, 0])], feats[:, 1]
    np.testing.assert_allclose(norm.scalar_mean, [np.median(v), np.median(c)])
    np.testing.assert_allclose(norm.scalar_std, [1.4826 * np.median(np.abs(v - np.median(v))),
                                                 1.4826 * np.median(np.abs(c - np.median(c)))])
    assert norm.scalar_names == ["v", "c"] and not norm.amp_is_db

    # vocabulary from the sampled patches only
    by_patch = fit_normalizer(stack, x, y, feats, ["v", "c"], sample=100, seed=1,
                              lulc_source="patches")
    assert by_patch.lulc_codes == sorted(set(raw[:, 1][valid].astype(int).tolist()))


def test_fit_normalizer_vocabulary_excludes_codes_outside_training_area(make_stack, grid):
    n = 400
    lulc = np.full((n, n), 10, np.uint8)
    lulc[300:, 300:] = 90                    # only far from the training points
    lulc[50:52, 50:52] = 60                  # rare, but inside the training area
    stack = make_stack(np.zeros((n, n), np.float32), lulc, np.ones((n, n), np.float32))
    x, y = grid.pixel_xy(np.array([20.5, 100.5]), np.array([20.5, 100.5]))
    norm = fit_normalizer(stack, x, y, np.zeros((2, 0)), [], sample=1)
    assert norm.lulc_codes == [10, 60]
    assert norm.dem_rel_std_m == 1.0 and norm.amp_db_std == 1.0   # flat rasters: no scaling
    assert norm.amp_db_mean == 0.0
