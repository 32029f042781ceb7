"""Both EGMS CSV header variants: coordinates, CRS, roles and series land where they should."""

import math

import numpy as np
import pytest
from pyproj import CRS, Transformer

from psirel.io.points import SENTINEL1_WAVELENGTH_MM, read_points

# A few points in Carinthia / Slovenia, UTM zone 33N
LON = np.array([13.80, 14.10, 14.50, 14.90])
LAT = np.array([46.60, 46.25, 46.05, 46.55])
DATES = ["20180103", "20180109", "20180115", "20180121"]
SERIES = np.array([[0.0, -1.2, -2.5, -3.1], [0.0, 0.4, 1.1, 0.9],
                   [0.0, 2.5, 4.75, 7.0], [0.0, -0.6, -0.2, -1.4]])

L2_HEADER = ("pid,mp_type,latitude,longitude,easting,northing,height,height_wgs84,line,pixel,rmse,"
             "temporal_coherence,amplitude_dispersion,incidence_angle,track_angle,los_east,"
             "los_north,los_up,mean_velocity,mean_velocity_std,acceleration,acceleration_std,"
             "seasonality,seasonality_std")
L3_HEADER = ("pid,easting,northing,height,rmse,mean_velocity,mean_velocity_std,acceleration,"
             "acceleration_std,seasonality,seasonality_std")


def laea(lon, lat):
    return Transformer.from_crs(4326, 3035, always_xy=True).transform(lon, lat)


def write_l2(path, lat_lon_only=False):
    e, n = laea(LON, LAT)
    lines = [L2_HEADER + "," + ",".join(DATES)]
    for i in range(len(LON)):
        row = [f"1xUj{i}Tf0D", "Original", f"{LAT[i]:.8f}", f"{LON[i]:.8f}", f"{e[i]:.2f}",
               f"{n[i]:.2f}", f"{500 + i}.5", f"{547 + i}.1", str(100 + i), str(200 + i), "1.8",
               f"{0.95 - i * 0.1:.2f}", "0.21", "39.5", "-10.2", "0.61", "-0.11", "0.78",
               f"{[-4.1, 1.2, 6.9, -1.0][i]}", "0.3", "0.01", "0.02", "1.1", "0.4"]
        lines.append(",".join(row + [f"{v:.2f}" for v in SERIES[i]]))
    text = "\n".join(lines) + "\n"
    if lat_lon_only:  # drop easting/northing: coordinates come from latitude/longitude
        text = "\n".join(",".join(c for j, c in enumerate(ln.split(",")) if j not in (4, 5))
                         for ln in text.splitlines()) + "\n"
    path.write_text(text)
    return path


def write_l3(path):
    e, n = laea(LON, LAT)
    lines = [L3_HEADER + "," + ",".join(DATES)]
    for i in range(len(LON)):
        row = [f"3P{i:04d}", f"{e[i]:.2f}", f"{n[i]:.2f}", f"{400 + i}.0", f"{1.0 + i:.1f}",
               f"{[-4.1, 1.2, 6.9, -1.0][i]}", "0.3", "0.0", "0.1", "1.0", "0.2"]
        lines.append(",".join(row + [f"{v:.2f}" for v in SERIES[i]]))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_egms_l2_basic_export(tmp_path):
    cloud = read_points(write_l2(tmp_path / "EGMS_L2b_093_0290_IW2_VV.csv"),
                        target_crs="EPSG:32633")
    assert cloud.source_crs.equals(CRS.from_epsg(3035)) and "EGMS" in cloud.crs_origin
    assert cloud.crs.equals(CRS.from_epsg(32633))
    assert cloud.roles == {"x": "easting", "y": "northing", "id": "pid",
                           "velocity": "mean_velocity", "coherence": "temporal_coherence",
                           "height": "height"}
    # the reprojected coordinates agree with pyproj from the file's lat/lon (to cm: the file
    # stores easting/northing with 2 decimals)
    ux, uy = Transformer.from_crs(4326, 32633, always_xy=True).transform(LON, LAT)
    np.testing.assert_allclose(cloud.x, ux, atol=0.01)
    np.testing.assert_allclose(cloud.y, uy, atol=0.01)
    ex, ey = Transformer.from_crs(3035, 32633, always_xy=True).transform(*cloud.source_xy)
    np.testing.assert_array_equal(cloud.x, ex)
    assert 300_000 < cloud.x.min() and cloud.x.max() < 700_000  # really UTM 33N metres
    np.testing.assert_allclose(cloud.velocity_mm_yr, [-4.1, 1.2, 6.9, -1.0], rtol=1e-6)
    np.testing.assert_allclose(cloud.coherence, [0.95, 0.85, 0.75, 0.65], rtol=1e-6)
    np.testing.assert_allclose(cloud.height_m, [500.5, 501.5, 502.5, 503.5])
    assert [str(d) for d in cloud.dates] == ["2018-01-03", "2018-01-09", "2018-01-15",
                                             "2018-01-21"]
    np.testing.assert_allclose(cloud.series_mm, SERIES, rtol=1e-6)
    assert cloud.ids.tolist() == ["1xUj0Tf0D", "1xUj1Tf0D", "1xUj2Tf0D", "1xUj3Tf0D"]
    assert cloud.attributes["mp_type"].tolist() == ["Original"] * 4
    assert list(cloud.attributes) == L2_HEADER.split(",") + DATES
    assert cloud.attributes["line"].dtype == np.int64
    assert not any("metres" in w or "m/yr" in w for w in cloud.warnings)


def test_egms_latitude_longitude_only(tmp_path):
    cloud = read_points(write_l2(tmp_path / "egms_ll.csv", lat_lon_only=True),
                        target_crs="EPSG:32633")
    assert cloud.source_crs.equals(CRS.from_epsg(4326))
    assert cloud.roles["x"] == "longitude" and cloud.roles["y"] == "latitude"
    ux, uy = Transformer.from_crs(4326, 32633, always_xy=True).transform(LON, LAT)
    np.testing.assert_allclose(cloud.x, ux, atol=1e-6)
    np.testing.assert_allclose(cloud.y, uy, atol=1e-6)


def test_egms_l3_ortho_export_derives_coherence_from_rmse(tmp_path):
    cloud = read_points(write_l3(tmp_path / "EGMS_L3_E44N25_100km_U.csv"),
                        target_crs="EPSG:32633")
    assert cloud.source_crs.equals(CRS.from_epsg(3035))
    ex, ey = Transformer.from_crs(3035, 32633, always_xy=True).transform(*laea(LON, LAT))
    np.testing.assert_allclose(cloud.x, ex, atol=0.01)
    np.testing.assert_allclose(cloud.y, ey, atol=0.01)
    assert cloud.roles["coherence"] == "rmse" and cloud.roles["velocity"] == "mean_velocity"
    rmse = np.array([1.0, 2.0, 3.0, 4.0])
    want = np.exp(-0.5 * (4 * math.pi * rmse / SENTINEL1_WAVELENGTH_MM) ** 2)
    np.testing.assert_allclose(cloud.coherence, want, rtol=1e-6)
    assert 0.6 < cloud.coherence.min() < cloud.coherence.max() < 1  # 4 mm → 0.66, 1 mm → 0.97
    assert any("derived from 'rmse'" in w for w in cloud.warnings)
    np.testing.assert_allclose(cloud.series_mm, SERIES, rtol=1e-6)
    assert cloud.ids.tolist() == ["3P0000", "3P0001", "3P0002", "3P0003"]


def test_egms_explicit_crs_wins(tmp_path):
    cloud = read_points(write_l3(tmp_path / "l3.csv"), crs="EPSG:3035")
    assert cloud.crs_origin == "argument" and cloud.source_crs.equals(CRS.from_epsg(3035))


@pytest.mark.parametrize("sep", [";", "\t"])
def test_other_delimiters(tmp_path, sep):
    p = tmp_path / "semi.csv"
    p.write_text(f"ID{sep}X{sep}Y{sep}VEL{sep}COH\n7{sep}1.5{sep}2.5{sep}-1{sep}0.5\n")
    cloud = read_points(p, crs=32633)
    assert cloud.ids.tolist() == [7] and cloud.x.tolist() == [1.5]
    assert cloud.velocity_mm_yr.tolist() == [-1.0]
