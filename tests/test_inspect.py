"""psirel inspect: the facts about points and rasters, and points without raster data."""

import numpy as np
import pytest
from pyproj import Transformer
from rasterio.transform import Affine

from psirel.errors import PointsOutsideRasters
from psirel.inspect import check_points_inside, format_report, inspect_inputs
from psirel.io.points import read_points, write_points
from psirel.io.rasters import RasterStack

X0, Y0 = 400_000.0, 5_000_000.0  # conftest.dem_path: 120 × 100 px at 10 m from here
# A interior, B 10 px from the west edge, C 2 px from the top, D east of the DEM, E interior
PX = np.array([400_600.0, 400_100.0, 400_600.0, 401_250.0, 400_650.0])
PY = np.array([4_999_500.0, 4_999_500.0, 4_999_980.0, 4_999_500.0, 4_999_450.0])


@pytest.fixture
def rasters(tmp_path, dem_path, write_raster):
    """DEM (10 m), amplitude (20 m, same extent), LULC (EPSG:4326, 0.001°, 1 km wider)."""
    amp = write_raster(tmp_path / "amp.tif", np.ones((50, 60), np.float32), "EPSG:32633",
                       Affine(20, 0, X0, 0, -20, Y0))
    tr = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True)
    lon0, lat0 = tr.transform(X0 - 1000, Y0 + 1000)
    lon1, lat1 = tr.transform(X0 + 2200, Y0 - 2000)
    shape = (int((lat0 - lat1) / 0.001) + 1, int((lon1 - lon0) / 0.001) + 1)
    lulc = write_raster(tmp_path / "lulc.tif", np.full(shape, 3, np.uint8), "EPSG:4326",
                        Affine(0.001, 0, lon0, 0, -0.001, lat0), nodata=0)
    return dem_path, lulc, amp


@pytest.fixture
def points(tmp_path):
    cols = {
        "PID": np.array([f"P{i}" for i in range(5)], dtype=object),
        "Vel": np.array([-3.5, 1.25, 0.0, 7.0, -0.5], np.float32),
        "COH": np.array([0.9, 0.45, 0.7, 0.8, 0.99], np.float32),
        "D20200113": np.array([1.0, -2, 3, 0.5, 2], np.float32),
        "D20200101": np.zeros(5, np.float32),
        "D20200107": np.array([1.0, 2, -1, 0.75, 1], np.float32),
        "D20200125": np.array([2.0, -1, 4, 0.5, 3], np.float32),
        "reliable": np.array([1, 0, 1, 1, 0], np.int8),
    }
    return write_points(tmp_path / "pts.gpkg", PX, PY, "EPSG:32633", cols)


def test_report_facts(points, rasters):
    dem, lulc, amp = rasters
    r = inspect_inputs(points, dem=dem, lulc=lulc, amplitude=amp, strict=False)
    assert r.n_points == 5 and r.source_crs == "EPSG:32633" and r.crs == "EPSG:32633"
    assert r.roles == {"id": "PID", "velocity": "Vel", "coherence": "COH", "label": "reliable"}
    assert (r.n_dates, r.first_date, r.last_date) == (4, "2020-01-01", "2020-01-25")
    assert r.median_spacing_days == 6.0  # 6, 6, 12
    assert r.velocity_range == (-3.5, 7.0)
    assert r.coherence_range == pytest.approx((0.45, 0.99))
    assert r.labels == (3, 2) and r.height_range is None
    assert any("no height column" in w for w in r.warnings)
    by = {x.name: x for x in r.rasters}
    assert (by["dem"].outside, by["dem"].near_edge, by["dem"].margin_px) == (1, 2, 40)
    assert by["dem"].res == (10.0, 10.0) and by["dem"].bounds == (X0, Y0 - 1000, X0 + 1200, Y0)
    assert (by["dem"].nodata, by["dem"].dtype) == (-9999.0, "float32")
    assert (by["amplitude"].outside, by["amplitude"].near_edge) == (1, 2)
    assert by["amplitude"].margin_px == 20  # 40 DEM pixels of 10 m = 20 pixels of 20 m
    assert (by["lulc"].outside, by["lulc"].near_edge) == (0, 0)
    assert by["lulc"].crs == "EPSG:4326" and by["lulc"].units == "degree"
    assert 3 < by["lulc"].margin_px < 6  # 400 m in pixels of ~0.001° (77 m × 111 m)
    assert r.unusable == 1 and r.unusable_ids == ["P3"]

    text = format_report(r)
    assert "[" not in text  # safe to print through rich
    assert "5 points" in text and "EPSG:32633 (file)" in text
    assert "velocity ← Vel, coherence ← COH" in text and "height ← none (DEM used)" in text
    assert "4 dates, 2020-01-01 … 2020-01-25, median spacing 6 days" in text
    assert "-3.50 … 7.00 mm/yr" in text and "0.450 … 0.990" in text
    assert "3 reliable, 2 unreliable" in text
    dem_line = next(ln for ln in text.splitlines() if ln.strip().startswith("dem "))
    assert "10 x 10 m" in dem_line and "120 x 100" in dem_line and "-9999" in dem_line
    assert "2 (< 40 px)" in dem_line and "400000, 4999000, 401200, 5000000" in dem_line
    assert "1 points have no raster data (first ids: P3)" in text


def test_points_outside_the_dem_are_an_error(points, rasters):
    dem, lulc, amp = rasters
    with pytest.raises(PointsOutsideRasters) as info:
        inspect_inputs(points, dem=dem, lulc=lulc, amplitude=amp)
    msg = str(info.value)
    assert "pts.gpkg: 1 of 5 points lie outside the DEM grid (dem.tif) (first ids: P3)" in msg
    assert "\n" not in msg


def test_without_dem_only_points_outside_every_raster_count(points, rasters):
    _, lulc, amp = rasters
    r = inspect_inputs(points, lulc=lulc, amplitude=amp)  # P3 is inside the LULC: no error
    assert r.unusable == 0 and r.crs == "EPSG:32633"
    with pytest.raises(PointsOutsideRasters, match=r"outside every raster \(amp.tif\)"):
        inspect_inputs(points, amplitude=amp)


def test_points_alone_and_reprojection(tmp_path, rasters):
    ll = tmp_path / "ll.csv"
    lon, lat = Transformer.from_crs(32633, 4326, always_xy=True).transform(PX[:3], PY[:3])
    ll.write_text("lon,lat,v,coh\n" + "".join(
        f"{float(a)!r},{float(b)!r},1.5,0.5\n" for a, b in zip(lon, lat, strict=True)))
    r = inspect_inputs(ll)
    assert (r.source_crs, r.crs, r.rasters, r.n_dates) == ("EPSG:4326", "EPSG:4326", [], 0)
    assert "series     none" in format_report(r)
    r = inspect_inputs(ll, dem=rasters[0])
    assert r.crs == "EPSG:32633" and "EPSG:4326 (lon/lat read as EPSG:4326) → EPSG:32633" \
        in format_report(r)
    assert r.rasters[0].outside == 0 and r.rasters[0].near_edge == 2


def test_check_points_inside(points, rasters):
    with RasterStack(*rasters) as stack:
        cloud = read_points(points, target_crs=stack.crs)
        with pytest.raises(PointsOutsideRasters, match=r"1 of 5 points .*first ids: P3"):
            check_points_inside(cloud, stack)
        check_points_inside(cloud.subset(cloud.ids != "P3"), stack)
        # a cloud still in another CRS is reprojected from its source coordinates
        ll = read_points(points, target_crs="EPSG:4326")
        with pytest.raises(PointsOutsideRasters, match="1 of 5"):
            check_points_inside(ll, stack)


def test_grid_and_legend_of_a_geographic_dem(tmp_path, points, write_raster):
    """A DEM in EPSG:4326 at 1": the grid is UTM 33N at the model's pixel size (or the DEM's
    rounded one); CORINE codes in EPSG:3035 are recognised."""
    tr = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True)
    lon0, lat0 = tr.transform(X0 - 1000, Y0 + 1000)
    arc = 1 / 3600
    dem = write_raster(tmp_path / "dem_ll.tif", np.full((150, 150), 500.0, np.float32),
                       "EPSG:4326", Affine(arc, 0, lon0, 0, -arc, lat0), nodata=-9999)
    to_laea = Transformer.from_crs("EPSG:32633", "EPSG:3035", always_xy=True)
    lx, ly = to_laea.transform(X0 - 1500, Y0 + 1500)
    codes = np.array([111, 211, 311, 512], np.uint16)[np.add.outer(np.arange(50) // 10,
                                                                   np.arange(50) // 10) % 4]
    lulc = write_raster(tmp_path / "clc.tif", codes, "EPSG:3035",
                        Affine(100, 0, lx, 0, -100, ly), nodata=999)
    r = inspect_inputs(points, dem=dem, lulc=lulc, strict=False, pixel_m=10)
    assert (r.grid.crs, r.grid.pixel_m, r.grid.origin) == ("EPSG:32633", 10.0, "the points' CRS")
    lon, lat = tr.transform(PX, PY)
    ll = write_points(tmp_path / "ll.gpkg", np.asarray(lon), np.asarray(lat), "EPSG:4326",
                      {"vel": np.zeros(5), "coh": np.ones(5)})
    r = inspect_inputs(ll, dem=dem, lulc=lulc, strict=False, pixel_m=10)
    assert (r.grid.crs, r.grid.pixel_m) == ("EPSG:32633", 10.0)
    assert r.grid.origin == "UTM zone 33N chosen for a geographic DEM"
    assert r.crs == "EPSG:32633"  # the points are reported in the grid's CRS
    assert r.lulc_legend.legend == "corine" and r.lulc_legend.how == "detected"
    assert r.lulc_legend.codes == [111, 211, 311, 512] and r.lulc_legend.unknown == []
    text = format_report(r)
    assert "grid       EPSG:32633 (UTM zone 33N chosen for a geographic DEM), 10 m pixels" \
        in text
    assert "land cover corine (detected; codes 111, 211, 311, 512)" in text
    by = {x.name: x for x in r.rasters}
    assert by["dem"].units == "degree" and 14 < by["dem"].margin_px < 16  # 400 m in ~26 m px
    r = inspect_inputs(points, dem=dem, lulc=lulc, strict=False)  # DEM's own resolution
    assert r.grid.pixel_m == 25.0  # 1" at 45°N: 30.9 m × 21.9 m


def test_grid_of_a_projected_dem_and_undetected_legend(points, rasters):
    dem, lulc, amp = rasters  # the LULC holds only code 3
    r = inspect_inputs(points, dem=dem, lulc=lulc, amplitude=amp, strict=False,
                       lulc_legend="worldcover")
    assert (r.grid.crs, r.grid.pixel_m, r.grid.shape) == ("EPSG:32633", 10.0, (100, 120))
    assert r.grid.origin == "the DEM's grid"
    assert r.lulc_legend.legend == "worldcover" and r.lulc_legend.unknown == [3]
    text = format_report(r)
    assert "grid       EPSG:32633 (the DEM's grid), 10 m pixels, 120 x 100" in text
    assert "codes not in the worldcover legend: 3" in text
    r = inspect_inputs(points, dem=dem, lulc=lulc, strict=False, pixel_m=20)
    assert r.grid.origin == "the points' CRS" and r.grid.shape == (50, 60)
    assert {x.name: x for x in r.rasters}["dem"].margin_px == 80  # 40 px of 20 m in 10 m px
