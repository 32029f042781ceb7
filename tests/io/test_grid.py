"""The model's grid: its CRS (given, the DEM's, or a UTM zone), its extent and its lattice."""

import math

import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine
from rasterio.warp import transform_bounds

from psirel.errors import RasterMismatch
from psirel.io.grid import Grid, model_grid, native_pixel_m, utm_crs

ARCSEC = 1 / 3600


@pytest.fixture
def dem_ll(tmp_path, write_raster):
    """A DEM in EPSG:4326 at 1 arc-second: 360 × 360 px, lon 15.0–15.1, lat 45.0–45.1."""
    return write_raster(tmp_path / "dem_ll.tif", np.zeros((360, 360), np.float32), "EPSG:4326",
                        Affine(ARCSEC, 0, 15.0, 0, -ARCSEC, 45.1), -9999)


def test_geographic_dem_gets_its_utm_zone_on_the_lattice(dem_ll):
    g = model_grid(dem_ll, 10.0)
    assert g.crs.to_epsg() == 32633 and g.crs_source == "utm" and g.pixel_m == 10.0
    left, bottom, right, top = g.bounds
    assert all(v % 10 == 0 for v in (left, bottom, right, top))
    with rasterio.open(dem_ll) as src:
        fb = transform_bounds(src.crs, g.crs, *src.bounds, densify_pts=21)
    # the DEM's footprint, snapped outwards by less than a pixel
    assert 0 <= fb[0] - left < 10 and 0 <= bottom - fb[1] + 10 <= 10
    assert 0 <= right - fb[2] < 10 and 0 <= top - fb[3] < 10
    assert (g.width, g.height) == (round((right - left) / 10), round((top - bottom) / 10))
    assert "UTM zone 33N chosen for a geographic DEM" in g.describe()


def test_utm_zones():
    assert utm_crs(15.05, 45.05).to_epsg() == 32633
    assert utm_crs(-70.6, -33.4).to_epsg() == 32719  # Santiago de Chile: south
    assert utm_crs(-180.0, 10).to_epsg() == 32601 and utm_crs(180.0, 10).to_epsg() == 32660


def test_crs_rule(dem_ll, tmp_path, write_raster):
    assert model_grid(dem_ll, 10, crs="EPSG:3035").crs.to_epsg() == 3035  # projected: used
    g = model_grid(dem_ll, 10, crs="EPSG:4326")  # geographic given: as without
    assert g.crs.to_epsg() == 32633 and g.crs_source == "utm"
    dem_utm = write_raster(tmp_path / "dem_utm.tif", np.zeros((100, 120), np.float32),
                           "EPSG:32632", Affine(10, 0, 700_000, 0, -10, 5_000_000))
    g = model_grid(dem_utm, 10)
    assert g.crs.to_epsg() == 32632 and g.crs_source == "dem"
    # a DEM on the lattice at the model's pixel size: its own grid, exactly
    assert g == Grid(g.crs, Affine(10, 0, 700_000, 0, -10, 5_000_000), 120, 100)
    assert model_grid(dem_utm, 10, crs=32633).crs_source == "given"
    # a geographic DEM across zones 33 | 34 (18° E): the zone of its centre, or of the bbox's
    wide = write_raster(tmp_path / "wide.tif", np.zeros((10, 100), np.float32), "EPSG:4326",
                        Affine(0.01, 0, 17.6, 0, -0.01, 45.1))
    assert model_grid(wide, 10).crs.to_epsg() == 32634
    g = model_grid(wide, 10, crs="EPSG:4326", bbox=(17.7, 45.02, 17.8, 45.05))
    assert g.crs.to_epsg() == 32633 and g.width < 1000


def test_off_lattice_dem_is_snapped_outwards(tmp_path, write_raster):
    dem = write_raster(tmp_path / "off.tif", np.zeros((50, 50), np.float32), "EPSG:32633",
                       Affine(30, 0, 400_007, 0, -30, 5_000_013))
    g = model_grid(dem, 10)
    assert g.bounds == (400_000, 4_998_510, 401_510, 5_000_020)  # multiples of 10 m around it
    assert g.transform.a == 10 and g.transform.e == -10


def test_bbox_crops_with_a_margin_and_grids_share_pixels(dem_ll):
    full = model_grid(dem_ll, 10)
    x0, y0 = full.bounds[0] + 2000.3, full.bounds[1] + 3000.7
    a = model_grid(dem_ll, 10, crs=full.crs, bbox=(x0, y0, x0 + 500, y0 + 400), margin_px=5)
    assert a.crs == full.crs and a.crs_source == "given"
    assert a.bounds == (math.floor((x0 - 50) / 10) * 10, math.floor((y0 - 50) / 10) * 10,
                        math.ceil((x0 + 550) / 10) * 10, math.ceil((y0 + 450) / 10) * 10)
    b = model_grid(dem_ll, 10, crs=full.crs, bbox=(x0 + 333.3, y0, x0 + 900, y0 + 400))
    for g in (a, b):  # every grid's pixel edges lie on the full grid's: the same pixels
        dc = (g.transform.c - full.transform.c) / 10
        dr = (full.transform.f - g.transform.f) / 10
        assert dc == round(dc) and dr == round(dr)
    # a bbox off the DEM
    with pytest.raises(RasterMismatch, match="does not overlap the DEM"):
        model_grid(dem_ll, 10, crs=full.crs, bbox=(0, 0, 10, 10))


def test_pixel_size_is_never_a_reason_to_refuse(dem_ll):
    for px in (1.0, 2.5, 30.0, 90.0, 1000.0):
        g = model_grid(dem_ll, px)
        assert g.pixel_m == px and g.width >= 1 and g.height >= 1
    with pytest.raises(ValueError, match="positive"):
        model_grid(dem_ll, 0.0)


def test_native_pixel_size(dem_ll, tmp_path, write_raster):
    with rasterio.open(dem_ll) as src:  # 1" at 45°: 30.9 m × 21.9 m
        assert native_pixel_m(src) == 25.0
    eq = write_raster(tmp_path / "eq.tif", np.zeros((10, 10), np.float32), "EPSG:4326",
                      Affine(ARCSEC, 0, 15.0, 0, -ARCSEC, 0.01))
    with rasterio.open(eq) as src:
        assert native_pixel_m(src) == 30.0
    utm = write_raster(tmp_path / "u.tif", np.zeros((10, 10), np.float32), "EPSG:32633",
                       Affine(12.5, 0, 0, 0, -12.5, 0))
    with rasterio.open(utm) as src:
        assert native_pixel_m(src) == 12.5
