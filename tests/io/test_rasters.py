"""RasterStack: layers of other CRS / resolution land on the DEM grid; nodata and errors."""

import pickle

import numpy as np
import pytest
from pyproj import Transformer
from rasterio.transform import Affine

from psirel.errors import InputFileNotFound, MissingCRS, UnreadableFile
from psirel.io.points import read_points, write_points
from psirel.io.rasters import LAYERS, RasterStack

UTM = "EPSG:32633"
X0, Y0 = 400_000.0, 5_000_000.0  # DEM top-left (conftest.dem_path: 100 × 120 px at 10 m)
TO_LL = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
LULC_RES = 0.0006  # degrees: ~46 m × 67 m here, coarser than the DEM


def ramp(x, y):
    """Amplitude as a plane in map coordinates: bilinear resampling reproduces it exactly."""
    return 0.5 * (x - X0) + 0.25 * (Y0 - y) + 10


@pytest.fixture
def amp_path(tmp_path, write_raster):
    """20 m amplitude in the DEM's CRS covering only the western 600 m; no nodata value."""
    rows, cols = np.mgrid[0:50, 0:30]
    a = ramp(X0 + (cols + 0.5) * 20, Y0 - (rows + 0.5) * 20).astype(np.float32)
    return write_raster(tmp_path / "amp.tif", a, UTM, Affine(20, 0, X0, 0, -20, Y0))


@pytest.fixture
def lulc_grid():
    """(transform, classes) of a land-cover raster in EPSG:4326 over the DEM's west part."""
    lon0, lat0 = TO_LL.transform(X0 - 150, Y0 + 150)
    classes = (np.arange(20 * 14) % 9 + 1).reshape(20, 14).astype(np.uint8)
    return Affine(LULC_RES, 0, lon0, 0, -LULC_RES, lat0), classes


@pytest.fixture
def lulc_path(tmp_path, write_raster, lulc_grid):
    transform, classes = lulc_grid
    return write_raster(tmp_path / "lulc.tif", classes, "EPSG:4326", transform)


def centres(rows, cols):
    return X0 + (cols + 0.5) * 10, Y0 - (rows + 0.5) * 10


def test_dem_values_and_nodata(dem_path, lulc_path, amp_path):
    with RasterStack(dem_path, lulc_path, amp_path) as s:
        assert (s.width, s.height, s.pixel_m) == (120, 100, 10.0)
        assert s.bounds == (X0, Y0 - 1000, X0 + 1200, Y0)
        vals, valid = s.read_window(-2, -3, 20, 30)  # runs off the top-left corner
        dem = vals[LAYERS.index("dem")]
        assert np.isnan(dem[:2]).all() and np.isnan(dem[:, :3]).all()
        assert np.isnan(dem[2, 3]) and not valid[2, 3]  # pixel (0, 0) is nodata
        assert dem[2 + 10, 3 + 20] == 1000 + 10 * 1000 + 20
        infos = {i.name: i for i in s.layer_infos()}
        assert infos["lulc"].units == "degree" and infos["lulc"].warped
        assert infos["amplitude"].res_m == (20.0, 20.0) and not infos["dem"].warped


def test_amplitude_20m_is_bilinear_and_nan_outside_its_footprint(dem_path, lulc_path, amp_path):
    with RasterStack(dem_path, lulc_path, amp_path) as s:
        vals, valid = s.read_window(0, 0, 100, 120)
    amp = vals[LAYERS.index("amplitude")]
    rows, cols = np.mgrid[1:99, 1:59]  # interior of the amplitude footprint (x < 400 600 m)
    np.testing.assert_allclose(amp[1:99, 1:59], ramp(*centres(rows, cols)), atol=1e-3)
    assert np.isnan(amp[:, 61:]).all() and not valid[:, 61:].any()  # east of it: no data


def test_lulc_in_4326_is_nearest_and_nan_outside(dem_path, lulc_path, amp_path, lulc_grid):
    transform, classes = lulc_grid
    with RasterStack(dem_path, lulc_path, amp_path) as s:
        vals, _ = s.read_window(0, 0, 100, 120)
    lulc = vals[LAYERS.index("lulc")]
    rows, cols = np.mgrid[0:100, 0:120]
    lon, lat = TO_LL.transform(*centres(rows, cols))
    inv = ~transform
    fc, fr = inv.a * lon + inv.b * lat + inv.c, inv.d * lon + inv.e * lat + inv.f
    inside = (fr >= 0) & (fr < classes.shape[0]) & (fc >= 0) & (fc < classes.shape[1])
    # away from LULC pixel edges, where GDAL's approximate transformer (1/8 px) cannot matter
    clear = inside & (np.abs(fr - np.round(fr)) > 0.2) & (np.abs(fc - np.round(fc)) > 0.2)
    assert clear.sum() > 1000
    want = classes[fr[clear].astype(int), fc[clear].astype(int)]
    np.testing.assert_array_equal(lulc[clear], want)  # class codes, never interpolated
    assert set(np.unique(lulc[np.isfinite(lulc)])) <= set(range(1, 10))
    far = ~inside & (np.abs(fc - np.clip(fc, 0, classes.shape[1])) > 1)
    assert far.sum() > 1000 and np.isnan(lulc[far]).all()


def test_lulc_nodata_becomes_nan(tmp_path, dem_path, amp_path, write_raster, lulc_grid):
    transform, classes = lulc_grid
    classes = classes.copy()
    classes[:, :7] = 0
    p = write_raster(tmp_path / "lulc0.tif", classes, "EPSG:4326", transform, nodata=0)
    with RasterStack(dem_path, p, amp_path) as s:
        vals, _ = s.read_window(0, 0, 100, 120)
    lulc = vals[LAYERS.index("lulc")]
    assert not (lulc == 0).any() and np.isfinite(lulc).sum() > 500


def test_points_in_4326_land_on_their_utm_pixels(tmp_path, dem_path, lulc_path, amp_path):
    rows = np.array([0, 5, 50, 99, 37])
    cols = np.array([0, 17, 60, 119, 101])
    lon, lat = TO_LL.transform(*centres(rows, cols))
    p = write_points(tmp_path / "ll.gpkg", lon, lat, "EPSG:4326",
                     {"vel": np.zeros(5), "coh": np.ones(5)})
    with RasterStack(dem_path, lulc_path, amp_path) as s:
        cloud = read_points(p, target_crs=s.crs)
        r, c = s.to_pixel(cloud.x, cloud.y)
        np.testing.assert_allclose(r, rows + 0.5, atol=1e-6)
        np.testing.assert_allclose(c, cols + 0.5, atol=1e-6)
        dem = s.sample(cloud.x, cloud.y, "dem", tile_px=16)  # several tiles
        np.testing.assert_array_equal(dem[1:], 1000 + rows[1:] * 1000 + cols[1:])
        assert np.isnan(dem[0])  # nodata pixel
        assert s.inside(cloud.x, cloud.y).all()
        assert s.inside(cloud.x, cloud.y, margin_px=40).tolist() == [False, False, True,
                                                                    False, False]


def test_sample_outside_and_amplitude(dem_path, lulc_path, amp_path):
    with RasterStack(dem_path, lulc_path, amp_path) as s:
        x, y = np.array([X0 + 105, X0 - 5, X0 + 1100]), np.array([Y0 - 205, Y0 - 5, Y0 - 5])
        amp = s.sample(x, y, "amplitude")
        np.testing.assert_allclose(amp[0], ramp(x[0], y[0]), atol=1e-3)
        assert np.isnan(amp[1:]).all()  # off the DEM grid; off the amplitude footprint


def test_stack_pickles_by_path(dem_path, lulc_path, amp_path):
    with RasterStack(dem_path, lulc_path, amp_path) as s:
        s2 = pickle.loads(pickle.dumps(s))
    with s2:
        assert s2.read_window(10, 20, 1, 1)[0][0, 0, 0] == 11020


def test_raster_errors(tmp_path, dem_path, lulc_path, amp_path, write_raster):
    with pytest.raises(InputFileNotFound, match="missing.tif: lulc raster not found"):
        RasterStack(dem_path, tmp_path / "missing.tif", amp_path)
    junk = tmp_path / "junk.tif"
    junk.write_text("not a raster")
    with pytest.raises(UnreadableFile, match="junk.tif: cannot be read") as info:
        RasterStack(dem_path, junk, amp_path)
    assert "\n" not in str(info.value)
    nocrs = write_raster(tmp_path / "nocrs.tif", np.zeros((5, 5), np.float32), None,
                         Affine(10, 0, X0, 0, -10, Y0))
    with pytest.raises(MissingCRS, match="nocrs.tif: no coordinate reference system"):
        RasterStack(dem_path, lulc_path, nocrs)


def test_truncated_raster_fails_on_read(tmp_path, dem_path, lulc_path, write_raster):
    big = np.random.default_rng(0).normal(size=(400, 400)).astype(np.float32)
    p = write_raster(tmp_path / "trunc.tif", big, UTM, Affine(2.5, 0, X0, 0, -2.5, Y0))
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 3])
    with pytest.raises(UnreadableFile, match="trunc.tif: cannot be read"):
        with RasterStack(dem_path, lulc_path, p) as s:
            s.read_window(0, 0, 100, 120)
