"""Every format round-trips values, dtypes (where the format holds them), CRS and row order."""

import dataclasses
import sys
import tempfile
from pathlib import Path

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import CRS

from psirel.errors import MissingExtra, UnsupportedFormat
from psirel.io.points import PointWriter, read_points, write_points, write_predictions

FORMATS = ["gpkg", "shp", "fgb", "csv", "parquet"]
N = 57


def table(n=N, seed=1):
    """All dtypes the writers must handle, with awkward values."""
    rng = np.random.default_rng(seed)
    return {
        "pid": np.array([f"P{i}" for i in range(n - 1)] + ['a,"b" c'], dtype=object),
        "VEL": rng.normal(0, 3, n).astype(np.float32),
        "Temporal_Coherence": rng.uniform(0, 1, n),
        "height": rng.normal(300, 50, n).astype(np.float32),
        "D20200113": rng.normal(0, 2, n).astype(np.float32),
        "D20200101": np.zeros(n, np.float32),
        "n_obs": np.arange(n, dtype=np.int32),
        "big": np.arange(n, dtype=np.int64) * 2**40,
        "small": (np.arange(n) % 100 - 50).astype(np.int8),
        "flag": np.arange(n) % 3 == 0,
        "first": np.datetime64("2019-03-01") + np.arange(n).astype("timedelta64[D]"),
    }


# dtype each format gives back for each written dtype (numpy kind + size)
EXPECTED = {
    "gpkg": {"int8": "int16", "datetime64[D]": "datetime64[D]"},
    "fgb": {"int8": "int16", "datetime64[D]": "datetime64[ms]"},
    "csv": {"int8": "int16", "datetime64[D]": "datetime64[D]"},
    "parquet": {},
    "shp": {"int8": "int32", "float32": "float64", "datetime64[D]": "datetime64[D]"},
}
SHP_NAMES = {"Temporal_Coherence": "Temporal_C"}


def xy(n=N, seed=2):
    rng = np.random.default_rng(seed)
    return rng.uniform(400_000, 401_000, n), rng.uniform(5_000_000, 5_001_000, n)


@pytest.mark.parametrize("ext", FORMATS)
def test_roundtrip(tmp_path, ext):
    x, y = xy()
    cols = table()
    path = write_points(tmp_path / f"pts.{ext}", x, y, "EPSG:32633", cols)
    cloud = read_points(path)
    assert len(cloud) == N
    assert cloud.source_crs.equals(CRS.from_epsg(32633)) and cloud.crs.equals(cloud.source_crs)
    np.testing.assert_array_equal(cloud.x, x)  # float64 coordinates exact, order kept
    np.testing.assert_array_equal(cloud.y, y)
    names = {SHP_NAMES.get(k, k) if ext == "shp" else k: k for k in cols}
    if ext == "csv":
        assert list(cloud.attributes)[:2] == ["x", "y"]
        names = {"x": None, "y": None, **names}
    assert list(cloud.attributes) == list(names)
    for got_name, src_name in names.items():
        if src_name is None:
            continue
        want, got = cols[src_name], cloud.attributes[got_name]
        assert str(got.dtype) == EXPECTED[ext].get(str(want.dtype), str(want.dtype)), got_name
        if want.dtype.kind == "M":
            np.testing.assert_array_equal(got.astype("datetime64[D]"), want)
        elif want.dtype.kind == "f" and ext == "shp":  # dBASE: 15 decimals
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
        else:
            np.testing.assert_array_equal(got, want)
    # roles and the derived arrays
    assert cloud.roles["velocity"] == "VEL"
    np.testing.assert_array_equal(cloud.velocity_mm_yr, cols["VEL"])
    np.testing.assert_allclose(cloud.coherence, cols["Temporal_Coherence"].astype(np.float32))
    assert cloud.dates.tolist() == [np.datetime64("2020-01-01"), np.datetime64("2020-01-13")]
    np.testing.assert_array_equal(cloud.series_mm[:, 1], cols["D20200113"])
    np.testing.assert_array_equal(cloud.ids, cols["pid"])
    assert cloud.labels is None and cloud.height_m.dtype == np.float32


@pytest.mark.parametrize("ext", FORMATS)
def test_streaming_writer_chunks(tmp_path, ext):
    x, y = xy(1000)
    cols = table(1000)
    with PointWriter(tmp_path / f"s.{ext}", "EPSG:32633") as w:
        for s in range(0, 1000, 300):
            w.write(x[s:s + 300], y[s:s + 300], {k: v[s:s + 300] for k, v in cols.items()})
    assert w.count == 1000
    cloud = read_points(tmp_path / f"s.{ext}")
    np.testing.assert_array_equal(cloud.x, x)
    np.testing.assert_array_equal(cloud.ids, cols["pid"])
    np.testing.assert_array_equal(cloud.series_mm[:, 1], cols["D20200113"])


@pytest.mark.parametrize("ext", FORMATS)
def test_interrupted_writer_leaves_nothing(tmp_path, ext):
    x, y = xy()
    with pytest.raises(RuntimeError, match="boom"):
        with PointWriter(tmp_path / f"out.{ext}", "EPSG:32633") as w:
            w.write(x, y, table())
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_failed_chunk_leaves_previous_file(tmp_path):
    x, y = xy()
    target = write_points(tmp_path / "out.gpkg", x, y, "EPSG:32633", table())
    before = target.read_bytes()
    with pytest.raises(ValueError, match="differ from the first chunk"):
        with PointWriter(target, "EPSG:32633") as w:
            w.write(x, y, table())
            w.write(x, y, {"other": np.zeros(N)})
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.gpkg"]


@pytest.mark.parametrize("ext", FORMATS)
def test_write_predictions_keeps_every_attribute(tmp_path, ext):
    x, y = xy()
    cols = table()
    src = write_points(tmp_path / f"in.{ext}", x, y, "EPSG:32633", cols)
    cloud = read_points(src, target_crs="EPSG:4326")  # predictions go out in the input CRS
    rel = np.linspace(0, 1, N)
    out = write_predictions(cloud, tmp_path / f"pred.{ext}",
                            {"reliability": rel, "reliable_pred": rel > 0.5})
    back = read_points(out)
    assert back.source_crs.equals(cloud.source_crs)
    np.testing.assert_array_equal(back.x, x)
    extra = ["reliabilit", "reliable_p"] if ext == "shp" else ["reliability", "reliable_pred"]
    assert list(back.attributes) == list(cloud.attributes) + extra
    for k, v in cloud.attributes.items():
        np.testing.assert_array_equal(back.attributes[k], v)
    np.testing.assert_allclose(back.attributes[extra[0]], rel.astype(np.float32), atol=1e-7)
    assert back.attributes[extra[1]].dtype == bool
    np.testing.assert_array_equal(back.attributes[extra[1]], rel > 0.5)


def test_csv_to_gpkg_and_back_keeps_egms_coordinates(tmp_path):
    """A CSV's coordinate columns are attributes too; writing a CSV back adds no x, y."""
    p = tmp_path / "egms.csv"
    p.write_text("pid,easting,northing,mean_velocity,temporal_coherence\n"
                 "a,4321000.5,3210000.25,1.5,0.9\nb,4321010.5,3210010.25,-2.5,0.8\n")
    cloud = read_points(p)
    assert cloud.source_crs.equals(CRS.from_epsg(3035))
    out = write_predictions(cloud, tmp_path / "out.csv", {"reliability": [0.2, 0.9]})
    header = out.read_text().splitlines()[0]
    assert header == "pid,easting,northing,mean_velocity,temporal_coherence,reliability"
    back = read_points(out)
    assert back.source_crs.equals(CRS.from_epsg(3035))
    np.testing.assert_array_equal(back.source_xy[0], [4321000.5, 4321010.5])
    gpkg = write_predictions(cloud, tmp_path / "out.gpkg", {"reliability": [0.2, 0.9]})
    g = read_points(gpkg)
    np.testing.assert_array_equal(g.x, [4321000.5, 4321010.5])
    assert list(g.attributes)[:3] == ["pid", "easting", "northing"]


def test_geoparquet_read_by_geopandas(tmp_path):
    gpd = pytest.importorskip("geopandas")
    x, y = xy()
    cols = table()
    path = write_points(tmp_path / "pts.parquet", x, y, "EPSG:32633", cols)
    df = gpd.read_parquet(path)
    assert df.crs.to_epsg() == 32633
    assert df.geometry.name == "geometry" and (df.geom_type == "Point").all()
    np.testing.assert_array_equal(df.geometry.x.to_numpy(), x)
    np.testing.assert_array_equal(df["VEL"].to_numpy(), cols["VEL"])
    assert list(df.columns) == [*cols, "geometry"]


def test_geoparquet_written_by_geopandas(tmp_path):
    gpd = pytest.importorskip("geopandas")
    x, y = xy()
    df = gpd.GeoDataFrame({"vel": np.arange(N, dtype=float), "coh": np.full(N, 0.5)},
                          geometry=gpd.points_from_xy(x, y), crs="EPSG:32633")
    for enc in ("WKB", "geoarrow"):
        df.to_parquet(tmp_path / f"{enc}.parquet", geometry_encoding=enc)
        cloud = read_points(tmp_path / f"{enc}.parquet")
        assert cloud.source_crs.equals(CRS.from_epsg(32633))
        np.testing.assert_array_equal(cloud.x, x)
        np.testing.assert_array_equal(cloud.velocity_mm_yr, np.arange(N))


def test_parquet_needs_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    x, y = xy()
    with pytest.raises(MissingExtra, match=r"pip install 'psirel\[parquet\]'"):
        write_points(tmp_path / "p.parquet", x, y, "EPSG:32633", table())
    assert list(tmp_path.iterdir()) == []


def test_unsupported_write_extension(tmp_path):
    with pytest.raises(UnsupportedFormat, match=r"out\.kml"):
        PointWriter(tmp_path / "out.kml", "EPSG:32633")


@pytest.mark.parametrize("ext", FORMATS)
def test_bbox(tmp_path, ext):
    x, y = xy()
    path = write_points(tmp_path / f"b.{ext}", x, y, "EPSG:32633", table())
    box = (400_200.0, 5_000_300.0, 400_700.0, 5_000_900.0)
    cloud = read_points(path, bbox=box)
    keep = (x >= box[0]) & (x <= box[2]) & (y >= box[1]) & (y <= box[3])
    assert 0 < keep.sum() < N
    np.testing.assert_array_equal(np.sort(cloud.x), np.sort(x[keep]))
    np.testing.assert_array_equal(np.sort(cloud.ids), np.sort(table()["pid"][keep]))


def test_subset(tmp_path):
    x, y = xy()
    cloud = read_points(write_points(tmp_path / "s.gpkg", x, y, "EPSG:32633", table()),
                        target_crs="EPSG:4326")
    sub = cloud.subset(cloud.velocity_mm_yr > 0)
    keep = table()["VEL"] > 0
    assert len(sub) == keep.sum()
    np.testing.assert_array_equal(sub.source_xy[0], x[keep])
    np.testing.assert_array_equal(sub.attributes["n_obs"], np.flatnonzero(keep))
    np.testing.assert_array_equal(sub.series_mm, cloud.series_mm[keep])
    assert sub.crs.equals(cloud.crs) and len(cloud) == N
    assert len(cloud.subset([3, 1])) == 2 and cloud.subset([3, 1]).ids.tolist() == ["P3", "P1"]
    # every field that holds one value per point is marked so, and subset selects from it
    n_sub = int(keep.sum())
    for f in dataclasses.fields(cloud):
        value = getattr(sub, f.name)
        if isinstance(value, np.ndarray) and f.name != "dates":
            assert f.metadata.get("per_point") and len(value) == n_sub, f.name


@settings(max_examples=25, deadline=None)
@given(f64=hnp.arrays(np.float64, 6, elements=st.floats(allow_subnormal=True)),
       f32=hnp.arrays(np.float32, 6, elements=st.floats(width=32)),
       words=st.lists(st.text(st.characters(exclude_categories=["Cs"],
                                            exclude_characters="\x00\r"), max_size=8),
                      min_size=6, max_size=6))
def test_csv_values_are_bit_exact(f64, f32, words):
    """float64 as repr, float32 with 9 digits: both read back identical; strings survive
    quoting (commas, quotes, newlines, blanks). NaN and inf too, outside the checked roles.
    (A lone carriage return inside a string reads back as a newline: text-mode reading.)"""
    with tempfile.TemporaryDirectory() as d:
        p = write_points(Path(d) / "h.csv", np.arange(6.0), np.zeros(6), "EPSG:32633",
                         {"a": f64, "b": f32, "w": np.array(words, dtype=object),
                          "vel": np.ones(6), "coh": np.ones(6)})
        cloud = read_points(p)
    np.testing.assert_array_equal(cloud.attributes["a"], f64)
    assert cloud.attributes["b"].dtype == np.float32
    np.testing.assert_array_equal(cloud.attributes["b"], f32)
    assert cloud.attributes["w"].tolist() == words


@pytest.mark.parametrize("ext", ["gpkg", "shp"])
def test_arrow_and_feature_writes_give_the_same_file_contents(tmp_path, ext, monkeypatch):
    """GDAL's Arrow stream (pyarrow installed) and pyogrio.raw.write (not) write one content:
    values, dtypes, nulls (float NaN and None strings), row order, CRS; appended chunks too."""
    pytest.importorskip("pyarrow")
    import pyogrio

    import psirel.io.sinks as sinks

    x, y = xy(1000)
    cols = {k: v for k, v in table(1000).items() if v.dtype.kind != "M"}
    cols["note_value"] = np.linspace(0, 1, 1000)
    cols["note_value"][[3, 500]] = np.nan
    cols["pid"][7] = None
    calls = []
    real = pyogrio.write_arrow
    monkeypatch.setattr(pyogrio, "write_arrow", lambda *a, **k: calls.append(1) or real(*a, **k))

    def write(name: str) -> Path:
        with PointWriter(tmp_path / f"{name}.{ext}", "EPSG:32633") as w:
            for s in range(0, 1000, 400):
                w.write(x[s:s + 400], y[s:s + 400], {k: v[s:s + 400] for k, v in cols.items()})
        return tmp_path / f"{name}.{ext}"

    arrow = read_points(write("arrow"))
    assert len(calls) == 3                       # every chunk through the Arrow stream
    monkeypatch.setattr(sinks, "optional_pyarrow", lambda: None)
    plain = read_points(write("plain"))
    assert len(calls) == 3                       # none this time
    assert list(arrow.attributes) == list(plain.attributes)
    for name, a in arrow.attributes.items():
        b = plain.attributes[name]
        assert a.dtype == b.dtype, name
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert np.isnan(arrow.attributes["note_value"][[3, 500]]).all()
    assert arrow.attributes["pid"][7] is None
    np.testing.assert_array_equal(arrow.x, plain.x)
    np.testing.assert_array_equal(arrow.x, x)
    assert arrow.source_crs.equals(plain.source_crs)
    # a column the Arrow path does not carry (dates) sends the chunk the feature way
    write_points(tmp_path / f"dated.{ext}", x, y, "EPSG:32633", table(1000))
    assert len(calls) == 3


@pytest.mark.filterwarnings("ignore:Normalized/laundered field name")
@pytest.mark.parametrize("ext", ["gpkg", "shp", "fgb"])
def test_arrow_read_gives_what_raw_read_gives(tmp_path, ext):
    """The Arrow read of an OGR file equals pyogrio.raw.read's, nulls included (integers and
    booleans with nulls as float64 NaN, strings None); dates fall back to raw.read."""
    pytest.importorskip("pyarrow")
    import pyarrow as pa
    import pyogrio
    import pyogrio.raw

    from psirel.io.tables import _read_ogr_arrow, points_wkb

    x, y = xy(50)
    pa_table = pa.table({
        "n": pa.array([None if i % 7 == 0 else i for i in range(50)], pa.int32()),
        "big": pa.array(np.arange(50, dtype=np.int64) * 2**40),
        "ok": pa.array([None if i % 5 == 0 else i % 2 == 0 for i in range(50)], pa.bool_()),
        "extra_value": pa.array([None if i % 3 == 0 else i / 3 for i in range(50)],
                                pa.float64()),
        "velocity": pa.array(np.linspace(-3, 3, 50, dtype=np.float32)),
        "coherence": pa.array(np.linspace(0, 1, 50)),
        "name": pa.array([None if i % 4 == 0 else f"P{i}" for i in range(50)], pa.string()),
        "geometry": pa.array(points_wkb(x, y), pa.binary()),
    })
    path = tmp_path / f"nulls.{ext}"
    pyogrio.write_arrow(pa_table, path, layer="nulls", geometry_name="geometry",
                        geometry_type="Point", crs="EPSG:32633",
                        layer_options={"SPATIAL_INDEX": "NO"} if ext == "fgb" else None)
    layer = str(pyogrio.list_layers(path)[0, 0])
    meta, _, geom, fields = pyogrio.raw.read(path, layer=layer)
    got = _read_ogr_arrow(path, layer, None)
    assert got is not None
    meta2, geom2, fields2 = got
    assert list(meta2["fields"]) == list(meta["fields"])
    for name, a, b in zip(meta["fields"], fields, fields2, strict=True):
        assert a.dtype == b.dtype, name
        if a.dtype == object:
            assert a.tolist() == b.tolist(), name
        else:
            np.testing.assert_array_equal(a, b, err_msg=name)
    assert geom.tolist() == geom2.tolist()
    # what the reader returns is the same either way
    cloud = read_points(path, crs=None)
    assert np.isnan(cloud.attributes["n"][0]) and cloud.attributes["name"][0] is None
    np.testing.assert_array_equal(cloud.x, x)
    dated = write_points(tmp_path / f"dated.{ext}", x, y, "EPSG:32633", table(50))
    assert _read_ogr_arrow(dated, str(pyogrio.list_layers(dated)[0, 0]), None) is None


def test_same_points_same_geopackage_bytes(tmp_path, monkeypatch):
    """GeoPackage stamps the write time into gpkg_contents; the writer fixes it, so the same
    input gives byte-identical files at any time of day (and leaves GDAL's option as found)."""
    import hashlib
    import sqlite3
    import time

    import pyogrio

    import psirel.io.sinks as sinks

    x, y = xy()
    cols = {k: v for k, v in table().items() if v.dtype.kind != "M"}
    digests = []
    for i in range(2):   # the stamp has milliseconds: two writes differ without the fix
        time.sleep(0.05)
        path = write_points(tmp_path / f"p{i}.gpkg", x, y, "EPSG:32633", cols)
        digests.append(hashlib.sha256(path.read_bytes()).hexdigest())
        assert pyogrio.get_gdal_config_option("OGR_CURRENT_DATE") is None
    # a value from the environment is not turned into an option that outlives the variable
    monkeypatch.setenv("OGR_CURRENT_DATE", "2010-01-01T00:00:00Z")
    write_points(tmp_path / "env.gpkg", x, y, "EPSG:32633", cols)
    monkeypatch.delenv("OGR_CURRENT_DATE")
    assert pyogrio.get_gdal_config_option("OGR_CURRENT_DATE") is None
    assert digests[0] == digests[1]
    with sqlite3.connect(tmp_path / "p0.gpkg") as db:
        (stamp,) = db.execute("select last_change from gpkg_contents").fetchone()
    assert stamp.startswith(sinks.WRITE_DATE[:10])
