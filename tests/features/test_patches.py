from __future__ import annotations

import numpy as np
import pytest
from pyproj import Transformer

from psirel.features.patches import (
    PATCH_PX,
    extract_patches,
    iter_patch_chunks,
)
from psirel.graph.hilbert import hilbert_index, spatial_order


def code(r, c):
    return r * 1000 + c


def test_known_pixel_centre_and_corners(stack, grid):
    # Anywhere inside pixel (100, 120) is that pixel: centre, near the upper-left edge, near
    # the lower-right edge.
    pts = [grid.pixel_xy(100.5, 120.5), grid.pixel_xy(100.0, 120.0), grid.pixel_xy(100.99, 120.99)]
    x, y = np.array(pts).T
    patches, valid = extract_patches(stack, x, y)
    assert patches.shape == (3, 3, PATCH_PX, PATCH_PX) and patches.dtype == np.float32
    assert valid.all()
    for p in patches:
        dem = p[0]
        assert dem[40, 40] == code(100, 120)
        assert dem[0, 0] == code(60, 80)          # 40 rows above, 40 columns left
        assert dem[79, 79] == code(139, 159)      # 39 rows below, 39 columns right
        assert dem[0, 79] == code(60, 159)
        assert dem[79, 0] == code(139, 80)
        r, c = np.mgrid[60:140, 80:160]
        np.testing.assert_array_equal(dem, code(r, c))
        np.testing.assert_array_equal(p[1], grid.lulc_of(r, c))
        np.testing.assert_allclose(p[2], grid.amp_of(r, c), rtol=1e-6)


def test_odd_patch_size_is_centred(stack, grid):
    x, y = grid.pixel_xy(50.5, 60.5)
    patches, _ = extract_patches(stack, [x], [y], patch_px=5)
    r, c = np.mgrid[48:53, 58:63]
    np.testing.assert_array_equal(patches[0, 0], code(r, c))


def test_upper_left_corner_padding(stack, grid):
    x, y = grid.pixel_xy(0.5, 0.5)
    patches, valid = extract_patches(stack, [x], [y])
    i, j = np.mgrid[0:PATCH_PX, 0:PATCH_PX]
    expect = (i >= 40) & (j >= 40)                # raster rows/cols -40..-1 are off the raster
    np.testing.assert_array_equal(valid[0], expect)
    assert np.isnan(patches[0][:, ~expect]).all()
    np.testing.assert_array_equal(patches[0, 0, 40:, 40:], code(i[:40, :40], j[:40, :40]))


def test_lower_right_corner_padding(stack, grid):
    x, y = grid.pixel_xy(grid.height - 0.5, grid.width - 0.5)   # pixel (199, 239)
    patches, valid = extract_patches(stack, [x], [y])
    i, j = np.mgrid[0:PATCH_PX, 0:PATCH_PX]
    # patch row i is raster row 159 + i: rows i >= 41 fall below the raster; same for columns.
    expect = (i <= 40) & (j <= 40)
    np.testing.assert_array_equal(valid[0], expect)
    assert np.isnan(patches[0][:, ~expect]).all()
    assert patches[0, 0, 40, 40] == code(199, 239)
    assert patches[0, 0, 0, 0] == code(159, 199)


def test_nodata_is_invalid_in_all_channels_mask(make_stack, grid):
    dem = grid.encoded_dem()
    dem[100, 121] = -9999.0
    r, c = np.mgrid[0:grid.height, 0:grid.width]
    stack = make_stack(dem, grid.lulc_of(r, c), grid.amp_of(r, c), dem={"nodata": -9999.0})
    x, y = grid.pixel_xy(100.5, 120.5)
    patches, valid = extract_patches(stack, [x], [y])
    assert not valid[0, 40, 41] and valid.sum() == PATCH_PX**2 - 1
    assert np.isnan(patches[0, 0, 40, 41])
    assert patches[0, 1, 40, 41] == grid.lulc_of(100, 121)   # other layers keep their values


def test_layers_on_other_grids(make_stack, grid):
    """LULC at 20 m (nearest) and amplitude in another UTM zone at 7 m (bilinear) land on the
    DEM grid: the patch shows the values of the DEM pixels' own locations."""
    r, c = np.mgrid[0:grid.height // 2, 0:grid.width // 2]
    lulc20 = (10 * ((r * 3 + c) % 9 + 1)).astype(np.uint8)
    # Amplitude defined as a linear function of EPSG:32633 coordinates, sampled on a 7 m grid in
    # EPSG:32632 covering the scene; bilinear resampling keeps a linear function (almost) exact.
    to32 = Transformer.from_crs("EPSG:32633", "EPSG:32632", always_xy=True)
    to33 = Transformer.from_crs("EPSG:32632", "EPSG:32633", always_xy=True)
    ex, ey = to32.transform([grid.x0 - 200, grid.x0 + 2600, grid.x0 - 200, grid.x0 + 2600],
                            [grid.y0 + 200, grid.y0 + 200, grid.y0 - 2200, grid.y0 - 2200])
    ax0, ay0 = min(ex), max(ey)
    aw, ah = int((max(ex) - ax0) / 7) + 1, int((ay0 - min(ey)) / 7) + 1
    ar, ac = np.mgrid[0:ah, 0:aw]
    e33, n33 = to33.transform(ax0 + (ac + 0.5) * 7.0, ay0 - (ar + 0.5) * 7.0)

    def f(e, n):
        return 100.0 + 0.01 * (e - grid.x0) + 0.02 * (grid.y0 - n)

    amp = f(e33, n33).astype(np.float32)
    stack = make_stack(grid.encoded_dem(), lulc20, amp,
                       lulc={"pixel_m": 20.0},
                       amplitude={"crs": "EPSG:32632", "x0": ax0, "y0": ay0, "pixel_m": 7.0})
    x, y = grid.pixel_xy(100.5, 120.5)
    patches, valid = extract_patches(stack, [x], [y])
    assert valid.all()
    pr, pc = np.mgrid[60:140, 80:160]
    np.testing.assert_array_equal(patches[0, 0], code(pr, pc))
    np.testing.assert_array_equal(patches[0, 1], lulc20[pr // 2, pc // 2])
    ex33, ny33 = grid.pixel_xy(pr + 0.5, pc + 0.5)
    np.testing.assert_allclose(patches[0, 2], f(ex33, ny33), atol=0.02)


class ReadSpy:
    def __init__(self, stack):
        self.inner, self.calls = stack.read_window, []

    def __call__(self, row0, col0, height, width):
        self.calls.append((row0, col0, height, width))
        return self.inner(row0, col0, height, width)

    @property
    def pixels(self) -> list[int]:
        return [h * w for _, _, h, w in self.calls]


def test_compact_chunk_reads_about_its_footprint(stack, grid, monkeypatch):
    spy = ReadSpy(stack)
    monkeypatch.setattr(stack, "read_window", spy)
    rng = np.random.default_rng(1)
    # 200 points inside a 20 x 20 pixel square, well inside one 256-pixel block
    r, c = rng.uniform(30, 50, 200), rng.uniform(30, 50, 200)
    x, y = grid.pixel_xy(r, c)
    extract_patches(stack, x, y)
    assert len(spy.calls) == 1
    _, _, h, w = spy.calls[0]
    assert h <= 20 + PATCH_PX and w <= 20 + PATCH_PX


def test_far_clusters_do_not_read_everything(make_stack, grid, monkeypatch):
    n = 1200
    dem = np.zeros((n, n), np.float32)
    stack = make_stack(dem, np.full((n, n), 10, np.uint8), np.ones((n, n), np.float32))
    spy = ReadSpy(stack)
    monkeypatch.setattr(stack, "read_window", spy)
    rng = np.random.default_rng(2)
    r = np.r_[rng.uniform(100, 110, 50), rng.uniform(1100, 1110, 50)]
    c = np.r_[rng.uniform(100, 110, 50), rng.uniform(1100, 1110, 50)]
    x, y = grid.pixel_xy(r, c)
    _, valid = extract_patches(stack, x, y)
    assert valid.all()
    assert len(spy.calls) == 2
    assert max(spy.pixels) <= (10 + PATCH_PX) ** 2
    # sparse points over the whole raster: no read larger than a block plus margin
    spy.calls.clear()
    x, y = grid.pixel_xy(rng.uniform(0, n, 30), rng.uniform(0, n, 30))
    extract_patches(stack, x, y, block_px=256)
    assert max(spy.pixels) <= (256 + PATCH_PX) ** 2
    assert sum(spy.pixels) < n * n / 2


def test_result_independent_of_blocks_order_and_buffer(stack, grid):
    rng = np.random.default_rng(3)
    x, y = grid.pixel_xy(rng.uniform(-30, grid.height + 30, 300),
                         rng.uniform(-30, grid.width + 30, 300))
    ref, ref_valid = extract_patches(stack, x, y)
    for block_px in (1, 37, 5000):
        p, v = extract_patches(stack, x, y, block_px=block_px)
        np.testing.assert_array_equal(p, ref)
        np.testing.assert_array_equal(v, ref_valid)
    buf = np.full((400, 3, PATCH_PX, PATCH_PX), -1.0, np.float32)
    p, v = extract_patches(stack, x, y, out=buf)
    assert np.shares_memory(p, buf) and len(p) == 300
    np.testing.assert_array_equal(p, ref)
    seen = np.zeros(len(x), int)
    for reuse in (False, True):
        seen[:] = 0
        for idx, p, v in iter_patch_chunks(stack, x, y, chunk_size=64, reuse_buffer=reuse):
            seen[idx] += 1
            np.testing.assert_array_equal(p, ref[idx])
            np.testing.assert_array_equal(v, ref_valid[idx])
        assert (seen == 1).all()
    assert len(iter_patch_chunks(stack, x, y, chunk_size=64)) == 5


def test_bad_coordinates_give_invalid_patches(stack, grid, monkeypatch):
    spy = ReadSpy(stack)
    monkeypatch.setattr(stack, "read_window", spy)
    x0, y0 = grid.pixel_xy(100.5, 120.5)
    x = np.array([np.nan, x0, 1e9, x0])
    y = np.array([y0, np.inf, -1e9, y0])
    p, v = extract_patches(stack, x, y)
    assert not v[:3].any() and np.isnan(p[:3]).all()
    assert v[3].all() and p[3, 0, 40, 40] == code(100, 120)
    assert max(spy.pixels) <= PATCH_PX**2                   # far point: a patch-sized read
    p, v = extract_patches(stack, np.array([]), np.array([]))
    assert p.shape == (0, 3, PATCH_PX, PATCH_PX) and v.shape == (0, PATCH_PX, PATCH_PX)


def test_out_buffer_is_checked(stack, grid):
    x, y = grid.pixel_xy(np.array([10.5]), np.array([10.5]))
    with pytest.raises(ValueError, match="float32"):
        extract_patches(stack, x, y, out=np.empty((1, 3, PATCH_PX, PATCH_PX), np.float64))


def test_hilbert_curve_visits_neighbours():
    k = 5
    iy, ix = np.mgrid[0:2**k, 0:2**k]
    d = hilbert_index(ix.ravel(), iy.ravel(), bits=k)
    assert sorted(d) == list(range(4**k))            # a bijection onto 0 .. 4^k - 1
    order = np.argsort(d)
    steps = np.abs(np.diff(ix.ravel()[order])) + np.abs(np.diff(iy.ravel()[order]))
    assert (steps == 1).all()                         # consecutive cells touch


def test_spatial_order_makes_compact_chunks():
    rng = np.random.default_rng(4)
    x, y = rng.uniform(0, 10_000, 4096), rng.uniform(0, 10_000, 4096)
    x[5] = np.nan
    order = spatial_order(x, y)
    assert sorted(order) == list(range(4096)) and order[-1] == 5
    np.testing.assert_array_equal(order, spatial_order(x, y))        # deterministic

    finite = order[:-1]

    def mean_bbox_area(perm):
        areas = []
        for s in range(0, 3840, 256):
            i = perm[s:s + 256]
            areas.append(np.ptp(x[i]) * np.ptp(y[i]))
        return np.mean(areas)

    # 16 chunks of 256 in Hilbert order each cover about 1/16 of the area; random ones ~all.
    assert mean_bbox_area(finite) < 0.15 * 10_000**2
    assert mean_bbox_area(rng.permutation(finite)) > 0.8 * 10_000**2


def test_spatial_order_degenerate_inputs():
    assert spatial_order(np.array([]), np.array([])).tolist() == []
    np.testing.assert_array_equal(spatial_order(np.ones(4), np.ones(4)), [0, 1, 2, 3])
    np.testing.assert_array_equal(spatial_order([np.nan, 1.0], [0.0, 2.0]), [1, 0])
