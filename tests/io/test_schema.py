"""The column map (``--columns``) and units (``--units``): parsing, and read_points with them."""

import pickle

import numpy as np
import pytest
from pyproj import CRS

from psirel.errors import ColumnMapError, MissingColumn, MissingCRS, PsirelError
from psirel.io.points import read_points, write_points
from psirel.io.resolve import resolve_columns
from psirel.io.schema import PointSchema, parse_columns, parse_units
from psirel.io.tables import read_table

DATES = ("20200101", "20200113", "20200125")


def one_line(exc_info, *needles):
    msg = str(exc_info.value)
    assert "\n" not in msg and isinstance(exc_info.value, PsirelError)
    for n in needles:
        assert n in msg, (n, msg)
    return msg


# ---------------------------------------------------------------------------- parsing
def test_parse_columns_keeps_roles_in_canonical_order():
    s = parse_columns(" velocity=pnt_linear, X=pnt_lon,y=pnt_lat ,series=d_,", "M")
    assert s.columns == (("x", "pnt_lon"), ("y", "pnt_lat"), ("velocity", "pnt_linear"))
    assert (s.series_prefix, s.units) == ("d_", "m")
    assert s.column("velocity") == "pnt_linear" and s.column("height") is None
    assert s == parse_columns("x=pnt_lon,y=pnt_lat,series=d_,velocity=pnt_linear", "m")
    assert str(s) == "x=pnt_lon,y=pnt_lat,velocity=pnt_linear,series=d_ units=m"
    assert parse_columns(str(s).split(" ")[0], "m") == s


def test_empty_schema_is_the_default():
    for s in (parse_columns(None), parse_columns(""), PointSchema()):
        assert s.is_default and str(s) == "default" and s.to_json() == {
            "columns": {}, "series": None, "units": None}
    assert not parse_columns(None, "mm").is_default
    assert parse_columns("series=").series_prefix == ""  # bare YYYYMMDD only


def test_schema_pickles_hashes_and_round_trips_json():
    s = parse_columns("x=lon_w,y=lat_w,id=ident,series=disp_", "m")
    assert pickle.loads(pickle.dumps(s)) == s and hash(s) == hash(pickle.loads(pickle.dumps(s)))
    assert PointSchema.from_json(s.to_json()) == s
    assert s.with_units("mm").units == "mm" and s.with_units("mm").columns == s.columns
    with pytest.raises(AttributeError):
        s.units = "mm"  # frozen


@pytest.mark.parametrize("text, units, needles", [
    ("velocity", None, ["--columns", "'velocity' is not ROLE=NAME"]),
    ("vel=foo", None, ["unknown role 'vel'", "vel=foo", "velocity"]),
    ("x=a,y=b,x=c", None, ["role 'x' is given twice"]),
    ("x=lon", None, ["map both x and y", "only x"]),
    ("x=lon,y=LON", None, ["column 'LON' is mapped to both x and y"]),
    ("velocity=", None, ["'velocity=' names no column"]),
    ("series=d_,series=D", None, ["role 'series' is given twice"]),
    ("x=a,y=b", "cm", ["--units", "'cm'", "mm", "m"]),
])
def test_bad_column_maps_are_one_line_errors_naming_the_entry(text, units, needles):
    with pytest.raises(ColumnMapError) as e:
        parse_columns(text, units)
    one_line(e, *needles)


def test_bad_schema_built_directly_is_refused():
    with pytest.raises(ColumnMapError, match="unknown role 'z'"):
        PointSchema(columns=(("z", "a"),))
    with pytest.raises(ColumnMapError, match="'km'"):
        PointSchema(units="km")


def test_parse_units():
    assert [parse_units(u) for u in (None, "", " MM ", "m")] == [None, None, "mm", "m"]
    with pytest.raises(ColumnMapError, match="--units: 'metres'"):
        parse_units("metres")


# ---------------------------------------------------------------------------- reading
def custom_csv(tmp_path, name="custom.csv", scale=1.0):
    """Columns no alias or profile knows, plus a decoy 'velocity' column; lon/lat in degrees."""
    rng = np.random.default_rng(1)
    n = 50
    lon, lat = 14.5 + rng.uniform(0, 0.01, n), 46.0 + rng.uniform(0, 0.01, n)
    v = rng.normal(0, 3, n)
    series = np.column_stack([np.zeros(n), rng.normal(0, 2, n), rng.normal(0, 3, n)])
    head = ["ident", "lon_wgs84", "lat_wgs84", "v_los", "velocity", "tcoh", "hgt",
            *(f"disp_{d}" for d in DATES), *(f"D{d}" for d in DATES)]
    lines = [",".join(head)]
    for i in range(n):
        row = [f"Q{i}", repr(float(lon[i])), repr(float(lat[i])), repr(float(v[i] * scale)),
               "99.0", f"{0.3 + i / 100:.2f}", f"{300 + i}.5",
               *(repr(float(x * scale)) for x in series[i]),
               "1.0", "2.0", "3.0"]
        lines.append(",".join(row))
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p, {"lon": lon, "lat": lat, "v": v, "series": series}


MAP = "x=lon_wgs84,y=lat_wgs84,id=ident,velocity=v_los,coherence=tcoh,height=hgt,series=disp_"


def test_mapped_roles_win_over_aliases(tmp_path):
    p, truth = custom_csv(tmp_path)
    cloud = read_points(p, schema=parse_columns(MAP))
    assert cloud.roles == {"x": "lon_wgs84", "y": "lat_wgs84", "id": "ident",
                           "velocity": "v_los", "coherence": "tcoh", "height": "hgt"}
    np.testing.assert_allclose(cloud.velocity_mm_yr, truth["v"], rtol=1e-6)  # not 'velocity'
    assert cloud.series_columns == tuple(f"disp_{d}" for d in DATES)  # not D<date>
    np.testing.assert_allclose(cloud.series_mm, truth["series"], rtol=1e-6, atol=1e-6)
    assert cloud.source_crs.equals(CRS.from_epsg(4326))
    assert cloud.crs_origin == "lon_wgs84/lat_wgs84 read as EPSG:4326"
    np.testing.assert_array_equal(cloud.source_xy[0], truth["lon"])
    assert cloud.ids[0] == "Q0" and cloud.profile is None and cloud.units == "mm"
    # without the map the aliases pick the decoy column and the D<date> columns
    plain = read_points(p, schema=parse_columns("x=lon_wgs84,y=lat_wgs84,coherence=tcoh"))
    assert plain.roles["velocity"] == "velocity" and plain.series_columns[0] == "D20200101"


def test_resolution_says_where_each_role_came_from(tmp_path):
    p, _ = custom_csv(tmp_path)
    res = resolve_columns(p, read_table(p), parse_columns("x=lon_wgs84,y=lat_wgs84,id=ident"))
    assert res.origin == {"x": "--columns", "y": "--columns", "id": "--columns",
                          "velocity": "alias", "height": "alias"}  # 'hgt' is an alias
    assert res.geographic and res.series_rule == "DYYYYMMDD or YYYYMMDD" and res.units is None


def test_units_m_converts_in_float64_before_the_cast(tmp_path):
    p, truth = custom_csv(tmp_path, scale=1e-3)
    cloud = read_points(p, schema=parse_columns(MAP, "m"))
    assert (cloud.units, cloud.units_origin) == ("m", "--units")
    v_m = cloud.attributes["v_los"]
    np.testing.assert_array_equal(cloud.velocity_mm_yr, (v_m * 1000.0).astype(np.float32))
    d_m = cloud.attributes["disp_20200125"]
    np.testing.assert_array_equal(cloud.series_mm[:, 2], (d_m * 1000.0).astype(np.float32))
    assert not any("look" in w for w in cloud.warnings)  # told, so nothing to detect


def test_metres_are_detected_and_the_warning_says_how_to_override(tmp_path):
    p, _ = custom_csv(tmp_path, scale=1e-3)
    cloud = read_points(p, schema=parse_columns(MAP))
    assert (cloud.units, cloud.units_origin) == ("m", "detected")
    text = " | ".join(cloud.warnings)
    assert "column 'v_los' looks like m/yr" in text and "converted to mm/yr (×1000)" in text
    assert "time series (disp_20200101 … disp_20200125) look like metres" in text
    assert "pass --units mm" in text
    np.testing.assert_array_equal(cloud.velocity_mm_yr,
                                  (cloud.attributes["v_los"] * 1000.0).astype(np.float32))


def test_a_mapped_column_missing_from_the_file_names_column_and_file(tmp_path):
    p, _ = custom_csv(tmp_path)
    with pytest.raises(ColumnMapError) as e:
        read_points(p, schema=parse_columns(MAP.replace("v_los", "v_lost")))
    one_line(e, "custom.csv", "no column 'v_lost'", "--columns velocity=v_lost",
             "found ident, lon_wgs84")


def test_a_series_prefix_matching_nothing_is_an_error(tmp_path):
    p, _ = custom_csv(tmp_path)
    with pytest.raises(ColumnMapError) as e:
        read_points(p, schema=parse_columns("x=lon_wgs84,y=lat_wgs84,series=ts_"))
    one_line(e, "custom.csv", "no column named ts_YYYYMMDD", "series=ts_")


def test_projected_columns_need_a_crs(tmp_path):
    p = tmp_path / "en.csv"
    p.write_text("e_m,n_m,vel,coh\n400000.5,5000000.5,1.5,0.5\n400010.5,5000010.5,-2.5,0.6\n")
    schema = parse_columns("x=e_m,y=n_m")
    with pytest.raises(MissingCRS, match="en.csv: no coordinate reference system"):
        read_points(p, schema=schema)
    cloud = read_points(p, schema=schema, crs="EPSG:32633")
    assert cloud.x.tolist() == [400000.5, 400010.5] and cloud.roles["x"] == "e_m"


def test_xy_map_on_a_file_with_geometry_is_refused(tmp_path, point_columns):
    p = write_points(tmp_path / "g.gpkg", np.arange(5.0), np.arange(5.0), "EPSG:32633",
                     {**point_columns(5), "east": np.arange(5.0), "north": np.arange(5.0)})
    with pytest.raises(ColumnMapError) as e:
        read_points(p, schema=parse_columns("x=east,y=north"))
    one_line(e, "g.gpkg", "has point geometry")
    cloud = read_points(p, schema=parse_columns("velocity=north"))
    assert cloud.roles["velocity"] == "north" and cloud.velocity_mm_yr.tolist() == [0, 1, 2, 3, 4]


def test_label_from_the_map_and_a_conflicting_label_option(tmp_path, point_columns):
    cols = {**point_columns(5), "truth": np.array([1, 0, 1, 1, 0], np.int8)}
    p = write_points(tmp_path / "l.gpkg", np.arange(5.0), np.arange(5.0), "EPSG:32633", cols)
    cloud = read_points(p, schema=parse_columns("label=truth"))
    assert cloud.roles["label"] == "truth" and cloud.labels.tolist() == [1, 0, 1, 1, 0]
    assert read_points(p, label="truth", schema=parse_columns("label=TRUTH")).labels is not None
    with pytest.raises(ColumnMapError) as e:
        read_points(p, label="reliable", schema=parse_columns("label=truth"))
    one_line(e, "l.gpkg", "--label reliable and --columns label=truth")


def test_a_mapped_column_is_not_found_again_by_alias(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("x,y,coh,quality\n1,2,1.5,0.5\n3,4,-2.5,0.6\n")
    cloud = read_points(p, crs=32633, schema=parse_columns("velocity=coh,coherence=quality"))
    assert cloud.velocity_mm_yr.tolist() == [1.5, -2.5] and cloud.roles["coherence"] == "quality"
    with pytest.raises(MissingColumn, match="c.csv: no coherence column"):
        read_points(p, crs=32633, schema=parse_columns("velocity=coh"))
