"""RasterStack on the model's grid: a geographic DEM, CORINE in EPSG:3035 and a 20 m UTM
amplitude, warped lazily by window; legends, feet, the default path and large rasters."""

import pickle
import time
import tracemalloc

import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from rasterio.enums import Resampling
from rasterio.transform import Affine
from rasterio.vrt import WarpedVRT
from rasterio.warp import reproject
from rasterio.windows import Window

from psirel.errors import LandCoverLegendError
from psirel.io import legends
from psirel.io.rasters import LAYERS, RESAMPLING, RasterStack

ARCSEC = 1 / 3600
LON0, LAT0 = 15.0, 45.1  # DEM top-left; it spans 0.1° × 0.1° (UTM zone 33N)
N = 360  # DEM pixels a side (1 arc-second)
DEM, LULC, AMP = (LAYERS.index(k) for k in LAYERS)
CORINE = np.array([111, 211, 311, 512, 321, 412], np.uint16)


def dem_height(lon, lat):
    """A smooth surface (m) in lon/lat: bilinear interpolation of it is exact in the DEM's
    pixel space, so only the warp's geometry can make the stack differ from it."""
    return 200.0 + 2000.0 * (lon - LON0) + 3000.0 * (LAT0 - lat)


def amp_value(x, y):
    return 0.002 * (x - 480_000.0) + 0.001 * (5_000_000.0 - y) + 5.0


def _write(path, array, crs, transform, nodata=None, units=None, **opts):
    with rasterio.open(path, "w", driver="GTiff", width=array.shape[1], height=array.shape[0],
                       count=1, dtype=array.dtype, crs=crs, transform=transform, nodata=nodata,
                       **opts) as dst:
        dst.write(array, 1)
        if units:
            dst.units = (units,)
    return path


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """DEM (EPSG:4326, 1"), CORINE land cover (EPSG:3035, 100 m), amplitude (UTM 33N, 20 m)."""
    d = tmp_path_factory.mktemp("grid_scene")
    rows, cols = np.mgrid[0:N, 0:N]
    lon, lat = LON0 + (cols + 0.5) * ARCSEC, LAT0 - (rows + 0.5) * ARCSEC
    dem = dem_height(lon, lat).astype(np.float32)
    dem[100:104, 200:204] = -9999
    dem_t = Affine(ARCSEC, 0, LON0, 0, -ARCSEC, LAT0)
    _write(d / "dem.tif", dem, "EPSG:4326", dem_t, nodata=-9999)
    x, y = Transformer.from_crs(4326, 3035, always_xy=True).transform(LON0 - 0.02, LAT0 + 0.02)
    blocks = np.add.outer(np.arange(140) // 3, np.arange(120) // 3)  # 300 m blocks
    lulc = CORINE[blocks % len(CORINE)]
    lulc_t = Affine(100, 0, round(x, -2), 0, -100, round(y, -2))
    _write(d / "lulc.tif", lulc, "EPSG:3035", lulc_t, nodata=999)
    ar, ac = np.mgrid[0:700, 0:500]
    ax, ay = 498_000 + (ac + 0.5) * 20, 4_998_000 - (ar + 0.5) * 20
    _write(d / "amp.tif", amp_value(ax, ay).astype(np.float32), "EPSG:32633",
           Affine(20, 0, 498_000, 0, -20, 4_998_000))
    return d


def paths(d, **kw):
    p = {"dem": d / "dem.tif", "lulc": d / "lulc.tif", "amplitude": d / "amp.tif"}
    p.update(kw)
    return p


def by_hand(path, grid, r0, c0, h, w, resampling, band_nodata=None):
    """Reference: the window warped with rasterio.warp.reproject from the whole source."""
    with rasterio.open(path) as src:
        a = src.read(1).astype(np.float32)
        nodata = src.nodata if band_nodata is None else band_nodata
        if nodata is not None:
            a[a == nodata] = np.nan
        out = np.full((h, w), np.nan, np.float32)
        reproject(a, out, src_transform=src.transform, src_crs=src.crs, src_nodata=np.nan,
                  dst_transform=grid.transform @ Affine.translation(c0, r0), dst_crs=grid.crs,
                  dst_nodata=np.nan, resampling=resampling)
    return out


def test_geographic_dem_on_a_10m_utm_grid_matches_a_warp_by_hand(scene):
    with RasterStack(**paths(scene), pixel_m=10) as s:
        assert s.crs.to_epsg() == 32633 and s.pixel_m == 10 and s.grid.crs_source == "utm"
        r0, c0, h, w = 300, 200, 240, 260
        vals, valid = s.read_window(r0, c0, h, w)
        infos = {i.name: i for i in s.layer_infos()}
    assert infos["dem"].warped and infos["dem"].resampling == "bilinear"
    assert infos["amplitude"].resampling == "bilinear" and infos["lulc"].resampling == "nearest"
    ref = by_hand(scene / "dem.tif", s.grid, r0, c0, h, w, Resampling.bilinear)
    both = np.isfinite(ref) & np.isfinite(vals[DEM])
    assert both.sum() > 0.95 * h * w
    # GDAL approximates the transformation to 1/8 source pixel, chunk by chunk: at a slope of
    # < 1 m per source pixel the VRT and the warp by hand agree to 0.05 m (measured: 0.013 m)
    np.testing.assert_allclose(vals[DEM][both], ref[both], atol=0.05)
    # the nodata hole (4 × 4 source pixels ≈ 120 × 90 m): the same, but for its rim
    hole, ref_hole = np.isnan(vals[DEM]), np.isnan(ref)
    assert 80 < ref_hole.sum() < 150 and (hole != ref_hole).sum() <= 0.1 * ref_hole.sum()
    # and both match the surface itself at the grid's pixel centres
    rows, cols = np.mgrid[r0:r0 + h, c0:c0 + w]
    t = s.grid.transform
    x, y = t.c + (cols + 0.5) * t.a, t.f + (rows + 0.5) * t.e
    lon, lat = Transformer.from_crs(32633, 4326, always_xy=True).transform(x, y)
    fr, fc = (LAT0 - lat) / ARCSEC, (lon - LON0) / ARCSEC  # DEM pixel coordinates
    rim = (fr > 98) & (fr < 106) & (fc > 198) & (fc < 206)  # bilinear next to the hole
    far = both & ~rim
    np.testing.assert_allclose(vals[DEM][far], dem_height(lon, lat)[far], atol=0.05)
    # amplitude (20 m → 10 m): bilinear, a plane reproduced
    np.testing.assert_allclose(vals[AMP], amp_value(x, y), atol=1e-3)


def test_amplitude_much_finer_than_the_grid_is_averaged(scene):
    with RasterStack(**paths(scene), pixel_m=50) as s:
        info = {i.name: i for i in s.layer_infos()}["amplitude"]
        vals, _ = s.read_window(40, 40, 60, 60)
    assert info.resampling == "average"
    ref = by_hand(scene / "amp.tif", s.grid, 40, 40, 60, 60, Resampling.average)
    np.testing.assert_allclose(vals[AMP], ref, atol=1e-3)


def test_corine_in_3035_is_nearest_then_semantic(scene):
    with RasterStack(**paths(scene), pixel_m=10, lulc_legend="corine") as s:
        vals, _ = s.read_window(300, 200, 240, 260)
        raw_stack = RasterStack(**paths(scene), pixel_m=10)
        raw, _ = raw_stack.read_window(300, 200, 240, 260)
        raw_stack.close()
        assert s.lulc_legend == "corine" and s.unknown_lulc_codes == []
    ref = by_hand(scene / "lulc.tif", s.grid, 300, 200, 240, 260, Resampling.nearest)
    assert set(np.unique(raw[LULC])) <= set(CORINE.tolist())  # nearest: codes intact
    # GDAL's approximate transformer may move a pixel across a class edge: nearly all agree
    assert (raw[LULC] == ref).mean() > 0.99
    np.testing.assert_array_equal(vals[LULC], legends.to_semantic(raw[LULC], "corine"))
    assert set(np.unique(vals[LULC])) == {1, 2, 3, 4, 6, 7}


def test_auto_legend_unknown_codes_and_ambiguity(scene, tmp_path):
    with RasterStack(**paths(scene), pixel_m=20, lulc_legend="auto") as s:
        assert s.lulc_legend == "corine"
    with rasterio.open(scene / "lulc.tif") as src:
        codes, prof = src.read(1), src.profile
    odd = codes.copy()
    odd[60:66, 60:66] = 700  # not a CORINE code
    odd[0:3, 0:3] = 999  # CORINE's no data
    p = tmp_path / "odd.tif"
    with rasterio.open(p, "w", **prof) as dst:
        dst.write(odd, 1)
    with RasterStack(**paths(scene, lulc=p), pixel_m=20, lulc_legend="CLC") as s:
        v, _ = s.read_window(0, 0, s.height, s.width)
        assert s.unknown_lulc_codes == [700]
        assert (v[LULC] == legends.UNKNOWN).sum() > 0
    amb = tmp_path / "amb.tif"
    with rasterio.open(amb, "w", **prof) as dst:
        dst.write(np.where(codes > 300, 11, 12).astype(np.uint16), 1)
    with pytest.raises(LandCoverLegendError, match=r"amb.tif: cannot tell the land-cover legend "
                       r"from its codes \(11, 12; fits nlcd and cci\)"):
        RasterStack(**paths(scene, lulc=amb), pixel_m=20, lulc_legend="auto")


@pytest.mark.parametrize("unit, factor", [("ft", 0.3048), ("US survey foot", 1200 / 3937),
                                          ("us-ft", 1200 / 3937), ("metre", 1.0)])
def test_dem_in_feet_is_converted_to_metres(tmp_path, write_raster, unit, factor):
    dem = np.full((50, 60), 1000.0, np.float32)
    t = Affine(10, 0, 400_000, 0, -10, 5_000_000)
    p = _write(tmp_path / "dem_ft.tif", dem, "EPSG:32633", t, units=unit)
    other = write_raster(tmp_path / "one.tif", np.ones((50, 60), np.float32), "EPSG:32633", t)
    for kw in ({}, {"pixel_m": 20}):  # the DEM's own grid and a model grid
        with RasterStack(p, other, other, **kw) as s:
            v, _ = s.read_window(5, 5, 4, 4)
            np.testing.assert_allclose(v[DEM], 1000.0 * factor, rtol=1e-6)
            assert s.dem_scale == pytest.approx(factor)
            np.testing.assert_allclose(s.sample(np.array([400_255.0]), np.array([4_999_745.0])),
                                       1000.0 * factor, rtol=1e-6)


def test_default_path_is_the_dem_grid_bit_for_bit(tmp_path, dem_path, write_raster):
    """pixel_m=None with a projected DEM: the DEM read as it is and the other layers warped
    exactly as the DEM-grid stack always did (nearest / bilinear, source dtype)."""
    ll = Transformer.from_crs(32633, 4326, always_xy=True)
    lon0, lat0 = ll.transform(399_850, 5_000_150)
    lulc = write_raster(tmp_path / "l.tif", (np.arange(20 * 14) % 9 + 1).reshape(20, 14)
                        .astype(np.uint8), "EPSG:4326", Affine(0.0006, 0, lon0, 0, -0.0006, lat0))
    rows, cols = np.mgrid[0:50, 0:30]
    amp = write_raster(tmp_path / "a.tif", (rows * 3.7 + cols ** 1.5).astype(np.float32),
                       "EPSG:32633", Affine(20, 0, 400_000, 0, -20, 5_000_000), nodata=-1.0)
    with RasterStack(dem_path, lulc, amp) as s:
        assert s.grid.crs_source == "legacy"
        vals, valid = s.read_window(-3, -2, 110, 130)
        state = pickle.loads(pickle.dumps(s))
    with rasterio.open(dem_path) as d, rasterio.open(lulc) as lc, rasterio.open(amp) as a:
        want = np.full((3, 110, 130), np.nan, np.float32)
        want[DEM, 3:103, 2:122] = np.ma.filled(d.read(1, masked=True).astype(np.float32), np.nan)
        for i, src in ((LULC, lc), (AMP, a)):
            kw = dict(crs=d.crs, transform=d.transform, width=d.width, height=d.height,
                      resampling=RESAMPLING[LAYERS[i]])
            if src.nodata is None:
                with WarpedVRT(src, add_alpha=True, **kw) as vrt:
                    band, alpha = vrt.read([1, 2])
                band = band.astype(np.float32)
                band[alpha == 0] = np.nan
            else:
                with WarpedVRT(src, src_nodata=src.nodata, nodata=src.nodata, **kw) as vrt:
                    band = np.ma.filled(vrt.read(1, masked=True).astype(np.float32), np.nan)
            want[i, 3:103, 2:122] = band
    np.testing.assert_array_equal(vals, want)  # NaN where NaN, every other bit equal
    np.testing.assert_array_equal(valid, np.isfinite(want).all(axis=0))
    with state:
        assert state.grid == s.grid and state.grid.crs_source == "legacy"


def test_pickling_carries_the_grid_and_legend(scene):
    with RasterStack(**paths(scene), pixel_m=20, crs="EPSG:32633",
                     bbox=(502_000, 4_988_000, 504_000, 4_990_000), lulc_legend="auto") as s:
        s2 = pickle.loads(pickle.dumps(s))
        want = s.read_window(10, 10, 30, 30)[0]
    with s2:
        assert (s2.grid, s2.lulc_legend, s2.pixel_m) == (s.grid, "corine", 20.0)
        assert s2.grid.shape == (228, 228)  # 2 km at 20 m plus 64 px of margin each side
        assert s2.grid.crs_source == "given"
        np.testing.assert_array_equal(s2.read_window(10, 10, 30, 30)[0], want)


@pytest.fixture(scope="module")
def huge(tmp_path_factory):
    """A 20 000 × 20 000 px DEM (10 m, 200 km) and land cover, tiled, sparse: only one block of
    each is written, so the files are tiny but a whole read would be 1.6 GB (DEM)."""
    d = tmp_path_factory.mktemp("huge")
    opts = dict(tiled=True, blockxsize=256, blockysize=256, compress="deflate", sparse_ok=True)
    t = Affine(10, 0, 300_000, 0, -10, 5_100_000)
    out = {}
    for name, dtype, nodata, value in (("dem", "float32", -9999, 321.0),
                                       ("lulc", "uint8", 0, 40), ("amp", "float32", -1, 2.0)):
        p = d / f"{name}.tif"
        with rasterio.open(p, "w", driver="GTiff", width=20_000, height=20_000, count=1,
                           dtype=dtype, crs="EPSG:32633", transform=t, nodata=nodata,
                           **opts) as dst:
            block = np.full((1024, 1024), value, dtype)
            if name == "lulc":  # WorldCover cropland, tree cover, water, mangroves
                block[:512, :512], block[512:, :512], block[:512, 512:] = 10, 80, 95
            dst.write(block, 1, window=Window(10_000, 10_000, 1024, 1024))
        out[name] = p
    return out


@pytest.mark.parametrize("kw", [{"pixel_m": 10}, {"pixel_m": 20, "lulc_legend": "auto"},
                                {"pixel_m": 30, "crs": "EPSG:32632"}])
def test_large_rasters_are_read_by_window(huge, kw):
    """A window (a patch of 80 × 80 px) touches only the blocks under it: bounded time and
    memory, where a whole read of the DEM would allocate 1.6 GB."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with RasterStack(huge["dem"], huge["lulc"], huge["amp"], **kw) as s:
            x, y = 300_000 + 10_100 * 10, 5_100_000 - 10_100 * 10
            if "crs" in kw:
                x, y = Transformer.from_crs(32633, 32632, always_xy=True).transform(x, y)
            r, c = (int(v) for v in s.to_pixel(x, y))
            vals, valid = s.read_window(r - 40, c - 40, 80, 80)
            dem = s.sample(np.array([x]), np.array([y]))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.perf_counter() - t0
    assert s.width >= 6_000 and valid[40, 40]
    np.testing.assert_allclose(vals[DEM, 40, 40], 321.0, rtol=1e-6)
    np.testing.assert_allclose(dem, 321.0, rtol=1e-6)
    if kw.get("lulc_legend") == "auto":
        assert s.lulc_legend == "worldcover"
        assert set(np.unique(vals[LULC][valid])) <= {2.0, 4.0, 6.0, 7.0}
    assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MiB allocated"
    assert elapsed < 20.0  # a full read alone takes longer on a loaded machine; seconds here
