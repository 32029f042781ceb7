"""Plausibility warnings (units, missing optional columns) and CRS bookkeeping."""

import numpy as np
from pyproj import CRS

from psirel.io.points import read_points, write_points

XY = (np.linspace(400_000, 401_000, 200), np.linspace(5_000_000, 5_001_000, 200))


def write(tmp_path, columns, name="p.gpkg", crs="EPSG:32633"):
    return write_points(tmp_path / name, *XY, crs, columns)


def test_plausible_mm_cloud_has_no_unit_warning(tmp_path, point_columns):
    cloud = read_points(write(tmp_path, point_columns(200)))
    assert cloud.warnings == []
    assert cloud.roles["height"] == "height" and cloud.labels is not None


def test_series_in_metres_and_velocity_in_m_per_year(tmp_path, point_columns):
    mm = point_columns(200)
    cols = dict(mm)
    for k in ("velocity", "D20200101", "D20200113", "D20200125"):
        cols[k] = mm[k].astype(np.float64) / 1000
    cloud = read_points(write(tmp_path, cols))
    text = " | ".join(cloud.warnings)
    assert "column 'velocity' looks like m/yr" in text and "converted to mm/yr" in text
    assert "time series (D20200101 … D20200125) look like metres" in text
    assert "converted to mm (×1000)" in text and "--units mm" in text
    assert (cloud.units, cloud.units_origin) == ("m", "detected")
    np.testing.assert_allclose(cloud.velocity_mm_yr, mm["velocity"], rtol=1e-6)
    np.testing.assert_allclose(cloud.series_mm[:, 2], mm["D20200125"], rtol=1e-6)
    np.testing.assert_array_equal(cloud.attributes["velocity"], cols["velocity"])  # file's own


def test_units_mm_keeps_metric_looking_values_and_reports_them(tmp_path, point_columns):
    from psirel.io.schema import PointSchema

    cols = point_columns(200)
    for k in ("velocity", "D20200101", "D20200113", "D20200125"):
        cols[k] = cols[k] / 1000
    cloud = read_points(write(tmp_path, cols), schema=PointSchema(units="mm"))
    assert (cloud.units, cloud.units_origin) == ("mm", "--units")
    np.testing.assert_array_equal(cloud.velocity_mm_yr, cols["velocity"])
    assert any("looks like m/yr (99 % of |v| < 0.05); expected mm/yr" in w
               for w in cloud.warnings)


def test_only_one_metric_looking_quantity_is_reported_not_converted(tmp_path, point_columns):
    cols = point_columns(200)
    cols["velocity"] = cols["velocity"] / 1000  # the series stay in mm
    cloud = read_points(write(tmp_path, cols))
    assert cloud.units == "mm"
    np.testing.assert_array_equal(cloud.velocity_mm_yr, cols["velocity"])
    assert any("not converted" in w and "--units m" in w for w in cloud.warnings)


def test_missing_height_and_series_are_warnings(tmp_path):
    rng = np.random.default_rng(0)
    cloud = read_points(write(tmp_path, {"vel": rng.normal(0, 3, 200),
                                         "coh": rng.uniform(0, 1, 200)}))
    assert cloud.height_m is None and cloud.series_mm.shape == (200, 0)
    assert cloud.dates.dtype == np.dtype("datetime64[D]") and len(cloud.dates) == 0
    assert any("no height column" in w for w in cloud.warnings)
    assert any("no time-series columns" in w for w in cloud.warnings)


def test_partial_heights_warn_and_stay_nan(tmp_path, point_columns):
    cols = point_columns(200)
    cols["height"][[3, 7]] = np.nan
    cloud = read_points(write(tmp_path, cols))
    assert np.isnan(cloud.height_m).sum() == 2
    assert any("2 missing heights" in w for w in cloud.warnings)


def test_crs_argument_overrides_file_with_warning(tmp_path, point_columns):
    cloud = read_points(write(tmp_path, point_columns(200)), crs="EPSG:32632")
    assert cloud.source_crs.equals(CRS.from_epsg(32632)) and cloud.crs_origin == "argument"
    assert any("file declares EPSG:32633; using EPSG:32632" in w for w in cloud.warnings)


def test_geographic_gpkg_is_lon_lat(tmp_path, point_columns):
    lon, lat = np.full(200, 14.5), np.linspace(46.0, 46.1, 200)
    p = write_points(tmp_path / "ll.gpkg", lon, lat, "EPSG:4326", point_columns(200))
    cloud = read_points(p, target_crs="EPSG:32633")
    assert cloud.source_xy[0][0] == 14.5 and cloud.source_xy[1][-1] == 46.1
    assert 400_000 < cloud.x[0] < 700_000 and 5_090_000 < cloud.y[0] < 5_100_000
