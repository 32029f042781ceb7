import math

import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from rasterio.transform import Affine

from psirel.errors import InputFileNotFound, MissingCRS, UnreadableFile
from psirel.report.hillshade import hillshade, read_dem_on_grid
from psirel.report.rasterise import map_grid

UTM = "EPSG:32633"


def test_hillshade_flat_and_facing_slopes():
    flat = hillshade(np.full((5, 6), 100.0), 10.0, 10.0)
    np.testing.assert_allclose(flat, math.sin(math.radians(45)), atol=1e-6)
    rows, cols = np.mgrid[0:20, 0:20].astype(float)
    # rising to the south-east: the slope faces north-west, towards the light (azimuth 315)
    nw = hillshade(5.0 * (rows + cols), 10.0, 10.0)
    se = hillshade(-5.0 * (rows + cols), 10.0, 10.0)
    assert nw.min() > 0.9 and se.max() < 0.5
    # a 45° slope facing the light straight on is lit fully: n · l = 1
    slope = hillshade(10.0 * (rows + cols) / math.sqrt(2), 10.0, 10.0)
    np.testing.assert_allclose(slope, 1.0, atol=1e-6)
    # pixel size matters: the same heights over 10× wider pixels are 10× less steep
    gentle = hillshade(5.0 * (rows + cols), 100.0, 100.0)
    assert flat[0, 0] < gentle.mean() < nw.mean()


def test_hillshade_keeps_holes():
    z = np.arange(30.0).reshape(5, 6)
    z[2, 3] = np.nan
    s = hillshade(z, 1.0, 1.0)
    assert s.dtype == np.float32 and np.isnan(s[2, 3]) and np.isfinite(s).sum() == 29
    assert np.isnan(hillshade(np.full((3, 3), np.nan), 1, 1)).all()
    assert np.isfinite(hillshade(np.array([[1.0, 2.0, 3.0]]), 1, 1)).all()  # one row


def _write(path, z, crs, transform, nodata=None):
    with rasterio.open(path, "w", driver="GTiff", width=z.shape[1], height=z.shape[0], count=1,
                       dtype="float32", crs=crs, transform=transform, nodata=nodata) as dst:
        dst.write(z.astype(np.float32), 1)
    return path


def _utm_points(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(402_000, 408_000, n), rng.uniform(4_995_000, 4_999_000, n)


def test_same_crs_dem_onto_the_grid(tmp_path):
    # z = x/10 - y/20 (m): linear, so bilinear resampling reproduces it exactly
    t = Affine(20.0, 0, 400_000.0, 0, -20.0, 5_000_000.0)
    rows, cols = np.mgrid[0:400, 0:600] + 0.5
    xs, ys = t.c + cols * t.a, t.f + rows * t.e
    dem = _write(tmp_path / "dem.tif", xs / 10 - ys / 20 + 250_000, UTM, t)
    x, y = _utm_points()
    for max_cells, atol in ((400, 0.02), (120, 2.3)):
        g = map_grid(x, y, max_cells)
        z = read_dem_on_grid(dem, g, UTM)
        assert z.shape == g.shape and np.isfinite(z).all()
        c, r = np.meshgrid(np.arange(g.width) + 0.5, np.arange(g.height) + 0.5)
        gx, gy = g.left + c * g.cell_x, g.top - r * g.cell_y
        # grid finer than the DEM: bilinear, exact on a plane; coarser: the DEM is decimated
        # by nearest neighbour, off by at most a DEM pixel (20 m × |grad z| = 2.24 m)
        np.testing.assert_allclose(z, gx / 10 - gy / 20 + 250_000, atol=atol)


def test_dem_in_epsg4326_under_utm_points(tmp_path):
    # z = 1000 (lon - 14) + 2000 (lat - 45) on a 0.001° grid around the UTM 33N points
    t = Affine(0.001, 0, 13.70, 0, -0.001, 45.20)
    rows, cols = np.mgrid[0:400, 0:500] + 0.5
    lon, lat = t.c + cols * t.a, t.f + rows * t.e
    z = 1000 * (lon - 14) + 2000 * (lat - 45)
    z[:, :60] = -9999  # the western edge is nodata
    dem = _write(tmp_path / "dem4326.tif", z, "EPSG:4326", t, nodata=-9999)
    to_utm = Transformer.from_crs("EPSG:4326", UTM, always_xy=True)
    x0, y0 = to_utm.transform(13.78, 44.99)
    x1, y1 = to_utm.transform(13.98, 45.15)
    rng = np.random.default_rng(1)
    x, y = rng.uniform(x0, x1, 300), rng.uniform(y0, y1, 300)
    g = map_grid(x, y, 300)  # cells finer than the DEM's: no decimation
    out = read_dem_on_grid(str(dem), g, UTM)
    c, r = np.meshgrid(np.arange(g.width) + 0.5, np.arange(g.height) + 0.5)
    glon, glat = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True).transform(
        g.left + c * g.cell_x, g.top - r * g.cell_y)
    expected = 1000 * (glon - 14) + 2000 * (glat - 45)
    inside = glon > 13.70 + 0.061  # off the nodata columns and their bilinear fringe
    assert np.isfinite(out[inside]).mean() > 0.99
    ok = inside & np.isfinite(out)
    # GDAL's warper places pixels to within an eighth of a source pixel (2 m a pixel here)
    np.testing.assert_allclose(out[ok], expected[ok], atol=0.3)
    assert np.isnan(out[glon < 13.70 + 0.059]).all()  # nodata stays NaN
    # an open dataset works too
    with rasterio.open(dem) as src:
        np.testing.assert_array_equal(read_dem_on_grid(src, g, UTM), out)


def test_dem_elsewhere_missing_and_without_crs(tmp_path):
    t = Affine(20.0, 0, 100_000.0, 0, -20.0, 1_000_000.0)
    far = _write(tmp_path / "far.tif", np.ones((50, 50)), UTM, t)
    x, y = _utm_points()
    g = map_grid(x, y, 50)
    assert np.isnan(read_dem_on_grid(far, g, UTM)).all()
    with pytest.raises(InputFileNotFound, match="nope.tif"):
        read_dem_on_grid(tmp_path / "nope.tif", g, UTM)
    (tmp_path / "bad.tif").write_bytes(b"not a raster")
    with pytest.raises(UnreadableFile, match="bad.tif"):
        read_dem_on_grid(tmp_path / "bad.tif", g, UTM)
    bare = _write(tmp_path / "bare.tif", np.ones((50, 50)), None, t)
    with pytest.raises(MissingCRS, match="bare.tif"):
        read_dem_on_grid(bare, g, UTM)


def test_south_up_dem(tmp_path):
    t = Affine(20.0, 0, 400_000.0, 0, 20.0, 4_990_000.0)  # row 0 is the southern edge
    rows, cols = np.mgrid[0:600, 0:600] + 0.5
    ys = t.f + rows * t.e
    dem = _write(tmp_path / "south_up.tif", ys / 10 - 499_000, UTM, t)
    x, y = _utm_points()
    g = map_grid(x, y, 60)
    z = read_dem_on_grid(dem, g, UTM)
    gy = g.top - (np.arange(g.height) + 0.5) * g.cell_y
    np.testing.assert_allclose(z[:, g.width // 2], gy / 10 - 499_000, atol=2.5)
