"""Every built-in profile is recognised from a small file laid out as its processor writes it
(column names from the sources listed in :mod:`psirel.io.profiles`), and reads to the same
velocities (mm/yr), coherences, heights and series (mm)."""

import zipfile

import numpy as np
import pytest
from pyproj import CRS, Transformer

from psirel.errors import UnreadableFile
from psirel.inspect import format_report, inspect_inputs
from psirel.io.points import read_points, write_points
from psirel.io.profiles import PROFILES, find_column, match_profile, profile_named
from psirel.io.schema import parse_columns

LON = np.array([13.800, 13.804, 13.809, 13.811, 13.815, 13.819])
LAT = np.array([46.600, 46.603, 46.601, 46.607, 46.605, 46.609])
DATES = ["20200101", "20200113", "20200125"]
VEL = np.array([-4.1, 1.2, 6.9, -1.0, 2.5, -0.3])  # mm/yr
COH = np.array([0.95, 0.85, 0.75, 0.65, 0.9, 0.8])
HGT = np.array([500.5, 501.5, 502.5, 503.5, 504.5, 505.5])
SERIES = np.array([[0.0, -1.2, -2.5], [0.0, 0.4, 1.1], [0.0, 2.5, 4.75],
                   [0.0, -0.6, -0.2], [0.0, 1.5, 0.5], [0.0, -3.5, -4.0]])  # mm
N = len(LON)


def f(v) -> str:
    return repr(float(v))


def lines(path, header, rows):
    path.write_text(",".join(header) + "\n" + "".join(",".join(r) + "\n" for r in rows))
    return path


def laea(lon, lat):
    return Transformer.from_crs(4326, 3035, always_xy=True).transform(lon, lat)


def utm(lon, lat):
    return Transformer.from_crs(4326, 32633, always_xy=True).transform(lon, lat)


# ---------------------------------------------------------------------------- the exports
def egms_l2(tmp_path, name="EGMS_L2b_146_0296_IW2_VV_2018_2022_1.csv"):
    """EGMS L2a/L2b basic CSV (header as in the files of egms.land.copernicus.eu)."""
    e, n = laea(LON, LAT)
    head = ["pid", "mp_type", "latitude", "longitude", "easting", "northing", "height",
            "height_wgs84", "line", "pixel", "rmse", "temporal_coherence",
            "amplitude_dispersion", "incidence_angle", "track_angle", "los_east", "los_north",
            "los_up", "mean_velocity", "mean_velocity_std", "acceleration", "acceleration_std",
            "seasonality", "seasonality_std", *DATES]
    rows = [[f"1xUj{i}Tf0D", "Original", f(LAT[i]), f(LON[i]), f(e[i]), f(n[i]), f(HGT[i]),
             f(HGT[i] + 47), str(100 + i), str(200 + i), "1.8", f(COH[i]), "0.21", "39.5",
             "-10.2", "0.61", "-0.11", "0.78", f(VEL[i]), "0.3", "0.01", "0.02", "1.1", "0.4",
             *map(f, SERIES[i])] for i in range(N)]
    return lines(tmp_path / name, head, rows)


def egms_l3(tmp_path):
    e, n = laea(LON, LAT)
    head = ["pid", "easting", "northing", "height", "rmse", "mean_velocity",
            "mean_velocity_std", "acceleration", "acceleration_std", "seasonality",
            "seasonality_std", *DATES]
    rows = [[f"3P{i:04d}", f(e[i]), f(n[i]), f(HGT[i]), "1.0", f(VEL[i]), "0.3", "0.0", "0.1",
             "1.0", "0.2", *map(f, SERIES[i])] for i in range(N)]
    return lines(tmp_path / "EGMS_L3_E44N25_100km_U_2018_2022_1.csv", head, rows)


def tre_shp(tmp_path):
    """TRE ALTAMIRA SqueeSAR delivery: a projected shapefile with a .prj."""
    x, y = utm(LON, LAT)
    cols = {"CODE": np.array([f"A{i:05d}" for i in range(N)], dtype=object), "HEIGHT": HGT,
            "H_STDEV": np.full(N, 1.4), "VEL": VEL, "V_STDEV": np.full(N, 0.4),
            "ACC": np.zeros(N), "COHERENCE": COH, "EFF_AREA": np.array([0, 0, 120, 0, 35, 0]),
            **{f"D{d}": SERIES[:, j] for j, d in enumerate(DATES)}}
    return write_points(tmp_path / "tre_squeesar.shp", x, y, "EPSG:32633", cols)


def mintpy_shp(tmp_path):
    """``save_qgis``: EPSG:4326, CODE = 8 hex digits, H_STDEV 0 and EFF_AREA 1 everywhere."""
    cols = {"CODE": np.array([hex(i + 1)[2:].zfill(8) for i in range(N)], dtype=object),
            "HEIGHT": HGT, "H_STDEV": np.zeros(N), "VEL": VEL, "V_STDEV": np.full(N, 0.5),
            "COHERENCE": COH, "EFF_AREA": np.ones(N, np.int32),
            **{f"D{d}": SERIES[:, j] for j, d in enumerate(DATES)}}
    return write_points(tmp_path / "ts.shp", LON, LAT, "EPSG:4326", cols)


def sarvey(tmp_path, ext="gpkg"):
    """``sarvey_export``: EPSG:4326, names cut to 10 characters (st_consistency)."""
    cols = {"point_id": np.arange(N, dtype=np.int64) + 17, "velocity": VEL, "coherence": COH,
            "omega": np.full(N, 0.8), "st_consist": np.full(N, 2.1),
            "dem_error": np.full(N, -1.5), "dem": HGT,
            "lifetime": np.array(["CCS"] * N, dtype=object),
            "scattering": np.array(["PS"] * N, dtype=object),
            **{f"D{d}": SERIES[:, j] for j, d in enumerate(DATES)}}
    return write_points(tmp_path / f"p2_coh80_ts.{ext}", LON, LAT, "EPSG:4326", cols)


def depsi(tmp_path, name="depsi_ps.csv"):
    """DePSI CSV as pandas writes it (leading unnamed index), d_/a_/h2ph_ per date, metres."""
    head = ["", "pnt_id", "pnt_flags", "pnt_lat", "pnt_lon", "pnt_line", "pnt_pixel",
            "pnt_height", "pnt_demheight", "pnt_demheight_highres", "pnt_enscoh",
            "pnt_ampconsist", "pnt_linear", *(f"d_{d}" for d in DATES),
            *(f"a_{d}" for d in DATES), *(f"h2ph_{d}" for d in DATES)]
    rows = [[str(i), f"L{3234 + i:08d}P00006283", "100001", f(LAT[i]), f(LON[i]),
             str(3234 + i), "6283", f(HGT[i]), "48.8", "43.45", f(COH[i]), "0.54",
             f(VEL[i] / 1000), *(f(v / 1000) for v in SERIES[i]), "1.99", "2.77", "3.27",
             "-0.49", "-0.26", "-0.31"] for i in range(N)]
    return lines(tmp_path / name, head, rows)


def stamps(tmp_path):
    """``ps_export_gis.m``: CODE, LON, LAT, HEIGHT, COHERENCE, VLOS, D<yyyymmdd>."""
    head = ["CODE", "LON", "LAT", "HEIGHT", "COHERENCE", "VLOS", *(f"D{d}" for d in DATES)]
    rows = [[f"PS_{i + 1}", f(LON[i]), f(LAT[i]), f(HGT[i]), f(COH[i]), f(VEL[i]),
             *map(f, SERIES[i])] for i in range(N)]
    return lines(tmp_path / "stamps_gis.csv", head, rows)


def sarproz(tmp_path):
    """SARPROZ sparse data export with time series: dates as YY/MM/DD."""
    head = ["ID", "LAT", "LON", "SVET", "LVET", "HEIGHT", "HEIGHT WRT DEM", "SIGMA HEIGHT",
            "VEL", "SIGMA VEL", "SEASONAL", "CUMUL.DISP.", "COHER", "IN", "FIN", "STDEV",
            "20/01/01", "20/01/13", "20/01/25"]
    rows = [[str(i + 1), f(LAT[i]), f(LON[i]), str(161 + i), "540", f(HGT[i]), "2.1", "0.8",
             f(VEL[i]), "0.4", "0.1", f(SERIES[i, -1]), f(COH[i]), "1", "72", "0.6",
             *map(f, SERIES[i])] for i in range(N)]
    return lines(tmp_path / "sarproz_export.csv", head, rows)


EXPORTS = {
    "egms-l2": (egms_l2, "EPSG:3035", "1xUj0Tf0D"),
    "egms-l3": (egms_l3, "EPSG:3035", "3P0000"),
    "tre": (tre_shp, "EPSG:32633", "A00000"),
    "mintpy": (mintpy_shp, "EPSG:4326", "00000001"),
    "sarvey": (sarvey, "EPSG:4326", 17),
    "depsi": (depsi, "EPSG:4326", "L00003234P00006283"),
    "stamps": (stamps, "EPSG:4326", "PS_1"),
    "sarproz": (sarproz, "EPSG:4326", 1),
}


def test_every_profile_has_an_export_here():
    assert sorted(EXPORTS) == sorted(p.name for p in PROFILES)


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_export_is_recognised_and_reads_the_same_values(tmp_path, name):
    write, crs, first_id = EXPORTS[name]
    cloud = read_points(write(tmp_path), target_crs="EPSG:32633")
    assert cloud.profile == name
    assert cloud.source_crs.equals(CRS.from_user_input(crs)), cloud.source_crs
    ux, uy = utm(LON, LAT)
    np.testing.assert_allclose(cloud.x, ux, atol=1e-3)
    np.testing.assert_allclose(cloud.y, uy, atol=1e-3)
    np.testing.assert_allclose(cloud.velocity_mm_yr, VEL, rtol=1e-6)
    np.testing.assert_allclose(cloud.series_mm, SERIES, rtol=1e-6, atol=1e-9)
    assert [str(d) for d in cloud.dates] == ["2020-01-01", "2020-01-13", "2020-01-25"]
    np.testing.assert_allclose(cloud.height_m, HGT, rtol=1e-6)
    if name != "egms-l3":  # L3 has no coherence: derived from rmse (tested below)
        np.testing.assert_allclose(cloud.coherence, COH, rtol=1e-6)
    assert cloud.ids[0] == first_id
    assert not any("look like" in w or "looks like" in w for w in cloud.warnings)
    assert cloud.units == profile_named(name).units


def test_depsi_reads_metres_and_only_its_d_columns(tmp_path):
    cloud = read_points(depsi(tmp_path))
    assert (cloud.units, cloud.units_origin) == ("m", "DePSI CSV (TU Delft) profile")
    assert cloud.series_columns == tuple(f"d_{d}" for d in DATES)  # not a_ or h2ph_
    assert cloud.roles == {"x": "pnt_lon", "y": "pnt_lat", "id": "pnt_id",
                           "velocity": "pnt_linear", "coherence": "pnt_enscoh",
                           "height": "pnt_height"}
    assert list(cloud.attributes)[0] == "field_1"  # pandas' unnamed index, named as GDAL does
    np.testing.assert_array_equal(cloud.attributes["pnt_linear"], VEL / 1000)  # file's own


def test_units_option_overrides_the_profile(tmp_path):
    cloud = read_points(depsi(tmp_path), schema=parse_columns(None, "mm"))
    np.testing.assert_allclose(cloud.velocity_mm_yr, VEL / 1000, rtol=1e-6)
    assert cloud.units_origin == "--units"


def test_egms_l3_coherence_from_rmse(tmp_path):
    cloud = read_points(egms_l3(tmp_path))
    assert cloud.roles["coherence"] == "rmse" and 0.9 < cloud.coherence.min() < 1
    assert any("derived from 'rmse'" in w for w in cloud.warnings)


def test_sarvey_shapefile_too(tmp_path):
    assert read_points(sarvey(tmp_path, "shp")).profile == "sarvey"


def test_mintpy_and_tre_differ_by_their_constant_fields(tmp_path):
    m = read_points(mintpy_shp(tmp_path))
    names = list(m.attributes)
    assert match_profile(names, m.attributes).name == "mintpy"
    varied = {**m.attributes, "H_STDEV": np.full(N, 1.2)}
    assert match_profile(names, varied).name == "tre"
    assert match_profile(names).name == "tre"  # without values, names alone


def test_egms_zip_as_downloaded_reads_like_its_csv(tmp_path):
    csv = egms_l2(tmp_path)
    z = tmp_path / "EGMS_L2b_146_0296_IW2_VV_2018_2022_1.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(csv, arcname=csv.name)
        zf.writestr(csv.with_suffix(".xml").name, "<metadata/>")
    csv_cloud, zip_cloud = read_points(csv), read_points(z)
    assert zip_cloud.profile == "egms-l2" and zip_cloud.source_crs.equals(CRS.from_epsg(3035))
    np.testing.assert_array_equal(zip_cloud.series_mm, csv_cloud.series_mm)
    np.testing.assert_array_equal(zip_cloud.source_xy[0], csv_cloud.source_xy[0])
    assert list(zip_cloud.attributes) == list(csv_cloud.attributes)
    assert list(tmp_path.iterdir()).count(z) == 1 and len(list(tmp_path.iterdir())) == 2


def test_zip_with_empty_fields_goes_through_gdal_vsizip(tmp_path):
    p = tmp_path / "gaps.csv"
    p.write_text("pid,x,y,velocity,coherence,height\na,400000,5000000,1.5,0.5,\n"
                 "b,400010,5000010,-2.5,0.6,301\n")
    z = tmp_path / "gaps.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(p, arcname="gaps.csv")
        zf.writestr("gaps.prj", "EPSG:32633")
    cloud = read_points(z)
    assert cloud.source_crs.equals(CRS.from_epsg(32633)) and np.isnan(cloud.height_m[0])


def test_zip_without_one_csv_is_an_error(tmp_path):
    z = tmp_path / "none.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("readme.xml", "<metadata/>")
    with pytest.raises(UnreadableFile, match="none.zip: cannot be read .no CSV inside"):
        read_points(z)
    two = tmp_path / "two.zip"
    csv = egms_l2(tmp_path)
    with zipfile.ZipFile(two, "w") as zf:
        zf.write(csv, arcname="a.csv")
        zf.write(csv, arcname="b.csv")
    with pytest.raises(UnreadableFile, match="holds 2 CSV files"):
        read_points(two)
    assert len(read_points(two, layer="b.csv")) == N
    with pytest.raises(UnreadableFile, match="no member 'c.csv'"):
        read_points(two, layer="c.csv")
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(UnreadableFile, match="bad.zip: cannot be read"):
        read_points(bad)


def test_signature_matching():
    l2 = ["pid", "mp_type", "latitude", "longitude", "easting", "northing", "rmse",
          "temporal_coherence", "amplitude_dispersion", "mean_velocity", "20200101"]
    assert match_profile(l2).name == "egms-l2"  # L3's signature fits too, but is ruled out
    assert match_profile(["pid", "easting", "northing", "rmse", "mean_velocity"]).name \
        == "egms-l3"
    shp = ["pid", "easting", "northing", "temporal_c", "amplitude_", "mean_veloc"]
    assert match_profile(shp).name == "egms-l2"  # names a shapefile cut to 10 characters
    assert find_column(shp, "mean_velocity") == "mean_veloc"
    assert find_column(["VEL"], "vel") == "VEL" and find_column(["VEL"], "vlos") is None
    assert match_profile(["x", "y", "velocity", "coherence"]) is None


def test_profile_role_falls_back_to_aliases_when_its_column_is_absent(tmp_path):
    """The EGMS 2019-2023 release names the height height_ortho."""
    p = tmp_path / "egms2023.csv"
    p.write_text("pid,mp_type,easting,northing,height_ortho,rmse_ts,temporal_coherence,"
                 "amplitude_dispersion,mean_velocity,20200101,20200113\n"
                 "a,0,4321000.5,3210000.25,12.5,2,0.9,0.3,1.5,0,1.25\n"
                 "b,0,4321010.5,3210010.25,13.5,2,0.8,0.3,-2.5,0,-0.75\n")
    cloud = read_points(p)
    assert cloud.profile == "egms-l2" and cloud.roles["height"] == "height_ortho"
    assert cloud.crs_origin == "EGMS L2a/L2b (basic / calibrated) CSV convention: " \
                               "easting/northing → EPSG:3035"


def test_a_mapping_wins_over_the_profile(tmp_path):
    cloud = read_points(depsi(tmp_path), schema=parse_columns("height=pnt_demheight"))
    assert cloud.profile == "depsi" and cloud.roles["height"] == "pnt_demheight"
    np.testing.assert_allclose(cloud.height_m, 48.8, rtol=1e-6)


def test_inspect_says_which_profile_matched(tmp_path):
    text = format_report(inspect_inputs(depsi(tmp_path)))
    assert "profile    DePSI CSV (TU Delft) (depsi)" in text
    assert "units      m/yr and m (DePSI CSV (TU Delft) profile), converted to mm/yr and mm" \
        in text
    assert "velocity ← pnt_linear" in text and "3 dates" in text
    plain = format_report(inspect_inputs(sarvey(tmp_path)))
    assert "profile    SARvey sarvey_export (sarvey)" in plain and "units      mm/yr and mm" \
        in plain
