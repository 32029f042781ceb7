"""Shared-map windows: lattice alignment, relief, and training crops equal inference reads."""

import numpy as np
import pytest

from psirel.features.normalize import fit_normalizer
from psirel.features.scalars import scalar_features
from psirel.features.tiles import (
    ALIGN_PX,
    CONTEXT_PX,
    AlignedBox,
    crop,
    full_raster,
    normalised_window,
    relief,
    scene_raster,
    window_around,
)
from psirel.io.points import read_points
from psirel.io.rasters import RasterStack


def test_window_around_is_aligned_and_holds_the_points_with_context():
    rng = np.random.default_rng(0)
    rows, cols = rng.uniform(100, 300, 50), rng.uniform(-20, 90, 50)
    w = window_around(rows, cols)
    assert w.row0 % ALIGN_PX == 0 and w.col0 % ALIGN_PX == 0
    assert w.height % ALIGN_PX == 0 and w.width % ALIGN_PX == 0
    rc = w.local(rows, cols)
    assert rc[:, 0].min() >= CONTEXT_PX and rc[:, 1].min() >= CONTEXT_PX
    assert (w.height - rc[:, 0]).min() >= CONTEXT_PX and (w.width - rc[:, 1]).min() >= CONTEXT_PX
    with pytest.raises(ValueError):
        window_around(np.array([]), np.array([]))


def test_relief_removes_planes_and_constants_and_ignores_invalid():
    yy, xx = np.mgrid[0:200, 0:200].astype(np.float32)
    valid = np.ones((200, 200), bool)
    assert np.abs(relief(np.full((200, 200), 500.0, np.float32), valid)[50:150, 50:150]).max() \
        < 1e-3
    plane = 3.0 * xx + 2.0 * yy
    assert np.abs(relief(plane, valid)[50:150, 50:150]).max() < 1e-2
    bump = np.zeros((200, 200), np.float32)
    bump[100, 100] = 81.0 * 81.0
    valid[:, :20] = False
    r = relief(np.where(valid, bump, np.nan), valid)
    assert r[100, 100] == pytest.approx(81 * 81 - 1, rel=1e-4)
    assert (r[:, :20] == 0).all()


@pytest.fixture(scope="module")
def stack_and_normalizer(tiny_scene):
    stack = RasterStack(tiny_scene / "dem.tif", tiny_scene / "lulc.tif",
                        tiny_scene / "amplitude.tif")
    cloud = read_points(tiny_scene / "points.gpkg", target_crs=stack.crs)
    feats, names = scalar_features(cloud.velocity_mm_yr, cloud.coherence, cloud.series_mm,
                                   cloud.dates)
    norm = fit_normalizer(stack, cloud.x, cloud.y, feats, names, seed=0)
    yield stack, norm
    stack.close()


def test_crop_of_the_full_raster_equals_a_window_read(stack_and_normalizer):
    stack, norm = stack_and_normalizer
    full = full_raster(norm, stack)
    assert full.shape[1] % ALIGN_PX == 0 and full.shape[1] >= stack.height
    for win in (AlignedBox(64, 96, 128, 160), AlignedBox(-32, -64, 96, 128)):
        a = crop(full, win)
        b = normalised_window(norm, stack, win)
        inside = (slice(max(-win.row0, 0), None), slice(max(-win.col0, 0), None))
        np.testing.assert_allclose(a[:, inside[0], inside[1]], b[:, inside[0], inside[1]],
                                   atol=1e-5)
        assert np.isfinite(b).all()
        assert (b[3] == 0).sum() == ((a[3] == 0).sum())   # padding is marked invalid


def test_the_scene_built_in_strips_equals_one_window_and_lands_in_a_memory_map(
        stack_and_normalizer, tmp_path):
    stack, norm = stack_and_normalizer
    whole = full_raster(norm, stack, strip_px=1 << 20)          # one strip
    strips = full_raster(norm, stack, strip_px=ALIGN_PX)         # many
    np.testing.assert_allclose(strips, whole, atol=1e-5)
    mm = scene_raster(norm, stack, tmp_path / "scene.npy")
    assert isinstance(mm, np.memmap) and mm.dtype == np.float16 and mm.shape == whole.shape
    np.testing.assert_array_equal(mm, whole.astype(np.float16))
