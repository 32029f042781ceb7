"""Every user mistake gets its own exception and a one-line message naming the file."""

import numpy as np
import pyogrio.raw
import pytest
import shapely

from psirel.errors import (
    EmptyCloud,
    InputFileNotFound,
    InvalidColumn,
    InvalidValues,
    MissingColumn,
    MissingCRS,
    NotPoints,
    PsirelError,
    UnreadableFile,
    UnsupportedFormat,
)
from psirel.io.points import read_points, write_points

HEADER = "pid,x,y,velocity,coherence,D20200101,D20200113"


def csv(tmp_path, rows, header=HEADER, name="pts.csv", prj=True):
    p = tmp_path / name
    p.write_text(header + "\n" + "".join(r + "\n" for r in rows))
    if prj:
        p.with_suffix(".prj").write_text("EPSG:32633")
    return p


GOOD = [f"p{i},{400000 + i},{5000000 + i},{i - 2}.5,0.{i + 1},0,{i}.25" for i in range(6)]


def raises(exc_type, func, *args, match=None, **kw):
    with pytest.raises(exc_type) as info:
        func(*args, **kw)
    msg = str(info.value)
    assert "\n" not in msg and isinstance(info.value, PsirelError)
    if match:
        assert match in msg, msg
    return msg


def test_good_csv_reads(tmp_path):
    cloud = read_points(csv(tmp_path, GOOD))
    assert len(cloud) == 6 and cloud.roles["velocity"] == "velocity"
    np.testing.assert_array_equal(cloud.series_mm[:, 1], np.arange(6) + 0.25)


def test_missing_file(tmp_path):
    raises(InputFileNotFound, read_points, tmp_path / "nope.gpkg", match="nope.gpkg")


def test_unsupported_extension(tmp_path):
    p = tmp_path / "pts.kml"
    p.write_text("<kml/>")
    msg = raises(UnsupportedFormat, read_points, p, match="pts.kml")
    assert ".gpkg" in msg and ".csv" in msg


def test_no_crs_csv(tmp_path):
    msg = raises(MissingCRS, read_points, csv(tmp_path, GOOD, prj=False), match="pts.csv")
    assert "crs=" in msg
    assert read_points(csv(tmp_path, GOOD, prj=False), crs="EPSG:32633").crs.to_epsg() == 32633


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_no_crs_gpkg(tmp_path):
    p = tmp_path / "nocrs.gpkg"
    pyogrio.raw.write(p, shapely.to_wkb(shapely.points([1.0], [2.0])),
                      [np.array([1.0]), np.array([0.5])], ["vel", "coh"], driver="GPKG",
                      geometry_type="Point")
    raises(MissingCRS, read_points, p, match="nocrs.gpkg")


def test_easting_northing_is_egms_only_with_pid(tmp_path):
    p = csv(tmp_path, ["7,4321000,3210000,1,0.5"], header="id,easting,northing,vel,coh",
            prj=False)
    raises(MissingCRS, read_points, p, match="pts.csv: no coordinate reference system")


def test_bad_crs_argument(tmp_path):
    raises(MissingCRS, read_points, csv(tmp_path, GOOD, prj=False), crs="EPSG:99999999",
           match="EPSG:99999999")


def test_missing_velocity_column(tmp_path):
    p = csv(tmp_path, ["a,1,2,0.5,0"], header="pid,x,y,coherence,D20200101")
    msg = raises(MissingColumn, read_points, p, match="pts.csv: no velocity column")
    assert "velocity, vel, mean_velocity, v" in msg and "found pid, x, y, coherence" in msg


def test_missing_coherence_column(tmp_path):
    p = csv(tmp_path, ["a,1,2,0.5"], header="pid,x,y,vel")
    raises(MissingColumn, read_points, p, match="no coherence column")


def test_missing_coordinates(tmp_path):
    p = csv(tmp_path, ["a,1,2,0.5"], header="pid,vel,coh,z")
    raises(MissingColumn, read_points, p, match="no coordinate column")


def test_nan_velocity_counts_and_ids(tmp_path):
    rows = list(GOOD)
    rows[1] = rows[1].replace(",-1.5,", ",nan,")
    rows[4] = rows[4].replace(",2.5,", ",inf,")
    msg = raises(InvalidValues, read_points, csv(tmp_path, rows), match="pts.csv")
    assert "'velocity' has 2 NaN or infinite values (first ids: p1, p4)" in msg


def test_empty_field_falls_back_and_is_reported(tmp_path):
    rows = list(GOOD)
    rows[3] = rows[3].replace(",1.5,", ",,")
    msg = raises(InvalidValues, read_points, csv(tmp_path, rows))
    assert "'velocity' has 1 NaN" in msg and "p3" in msg


def test_nan_in_series(tmp_path):
    rows = list(GOOD)
    rows[2] = rows[2][: rows[2].rindex(",")] + ",nan"
    msg = raises(InvalidValues, read_points, csv(tmp_path, rows))
    assert "'D20200113' has 1 points with NaN" in msg and "p2" in msg


def test_nan_coordinates(tmp_path):
    rows = list(GOOD)
    rows[0] = "p0,nan,5000000,1,0.5,0,0"
    raises(InvalidValues, read_points, csv(tmp_path, rows), match="'x/y' has 1 missing")


def test_coherence_out_of_range(tmp_path):
    rows = [r.replace(",0.3,", ",30,") for r in GOOD]
    msg = raises(InvalidValues, read_points, csv(tmp_path, rows), match="'coherence' has 1")
    assert "percent" in msg


def test_words_in_numeric_column(tmp_path):
    rows = list(GOOD)
    rows[5] = rows[5].replace(",3.5,", ",fast,")
    raises(InvalidColumn, read_points, csv(tmp_path, rows), match="'velocity' is not numeric")


def test_bad_date_column(tmp_path):
    p = csv(tmp_path, ["a,1,2,0.5,0.5,0"], header="pid,x,y,vel,coh,D20201301")
    raises(InvalidColumn, read_points, p, match="column 'D20201301'")


def test_labels(tmp_path):
    p = csv(tmp_path, [r + f",{i % 2}" for i, r in enumerate(GOOD)], header=HEADER + ",reliable")
    assert read_points(p).labels.tolist() == [0, 1, 0, 1, 0, 1]
    assert read_points(p).labels.dtype == np.int8
    p = csv(tmp_path, [r + f",{i % 3}" for i, r in enumerate(GOOD)],
            header=HEADER + ",Truth", name="l2.csv")
    assert read_points(p).labels is None
    msg = raises(InvalidValues, read_points, p, label="truth", match="l2.csv")
    assert "'Truth' has 2 labels other than 0 and 1 (first ids: p2, p5)" in msg
    raises(MissingColumn, read_points, p, label="expert", match="no label column")


def test_empty_csv(tmp_path):
    raises(EmptyCloud, read_points, csv(tmp_path, []), match="pts.csv: contains no points")
    (tmp_path / "zero.csv").write_text("")
    raises(EmptyCloud, read_points, tmp_path / "zero.csv", crs=32633, match="zero.csv")


def test_empty_gpkg_and_empty_bbox(tmp_path):
    p = write_points(tmp_path / "e.gpkg", np.empty(0), np.empty(0), "EPSG:32633",
                     {"vel": np.empty(0), "coh": np.empty(0)})
    raises(EmptyCloud, read_points, p, match="e.gpkg")
    p = write_points(tmp_path / "one.gpkg", [1.0], [2.0], "EPSG:32633",
                     {"vel": [1.0], "coh": [0.5]})
    raises(EmptyCloud, read_points, p, bbox=(10, 10, 20, 20), match="inside the bbox")


def test_not_points(tmp_path):
    p = tmp_path / "lines.gpkg"
    lines = shapely.linestrings([[[0, 0], [1, 1]], [[1, 1], [2, 3]]])
    pyogrio.raw.write(p, shapely.to_wkb(lines), [np.array([1.0, 2.0]), np.array([0.5, 0.5])],
                      ["vel", "coh"], driver="GPKG", geometry_type="LineString",
                      crs="EPSG:32633")
    raises(NotPoints, read_points, p, match="lines.gpkg: geometries must be points, found 2 of"
           " type LineString")


def test_single_part_multipoints_are_points(tmp_path):
    p = tmp_path / "mp.gpkg"
    mp = shapely.multipoints([[[5.0, 6.0]], [[7.0, 8.0]]])
    pyogrio.raw.write(p, shapely.to_wkb(mp), [np.array([1.0, 2.0]), np.array([0.5, 0.5])],
                      ["vel", "coh"], driver="GPKG", geometry_type="MultiPoint",
                      crs="EPSG:32633")
    assert read_points(p).x.tolist() == [5.0, 7.0]


@pytest.mark.parametrize("ext", ["gpkg", "fgb", "shp", "parquet"])
def test_corrupt_file(tmp_path, ext):
    p = tmp_path / f"bad.{ext}"
    p.write_bytes(b"\x00garbage" * 50)
    raises(UnreadableFile, read_points, p, match=f"bad.{ext}: cannot be read")


def test_ragged_csv(tmp_path):
    rows = list(GOOD)
    rows[3] = "p3,1,2"
    raises(UnreadableFile, read_points, csv(tmp_path, rows), match="row 4 has 3 fields")
