"""Integer columns of a CSV stay exact: no float round trip (which rounds beyond 2**53)."""

import zipfile

import numpy as np
import pytest

from psirel.io.delimited import CSV_SNIFF_ROWS, TextSource, read_csv_columns
from psirel.io.points import read_points, write_predictions

BIG = 2**53 + 1          # 9007199254740993: the first integer a float64 cannot hold
HEADER = "x,y,velocity,coherence,id"


def point_csv(tmp_path, ids, name="pts.csv", csvt=None):
    """A minimal valid point CSV (UTM 33N through a .prj) with the given id texts."""
    p = tmp_path / name
    rows = [f"{400000 + i}.5,{5000000 + i}.5,{i % 7 - 3}.25,0.{i % 9 + 1},{pid}"
            for i, pid in enumerate(ids)]
    p.write_text(HEADER + "\n" + "".join(r + "\n" for r in rows))
    p.with_suffix(".prj").write_text("EPSG:32633")
    if csvt is not None:
        p.with_suffix(".csvt").write_text(csvt + "\n")
    return p


def test_big_ids_are_exact_int64(tmp_path):
    ids = [BIG, BIG + 2, -(2**62) - 1, 2**63 - 1, -(2**63)]
    p = point_csv(tmp_path, ids)
    col = read_csv_columns(p)["id"]
    assert col.dtype == np.int64 and col.tolist() == ids
    cloud = read_points(p)
    assert cloud.roles["id"] == "id" and cloud.ids.tolist() == ids


def test_big_id_after_the_sniffed_rows(tmp_path):
    """The type guess reads the first rows only; a long id further down is still exact."""
    ids = list(range(CSV_SNIFF_ROWS + 5)) + [BIG]
    col = read_csv_columns(point_csv(tmp_path, ids))["id"]
    assert col.dtype == np.int64 and col[-1] == BIG and col.tolist() == ids


def test_beyond_int64_kept_as_text(tmp_path):
    ids = ["1", "99999999999999999999", "-9223372036854775809"]
    col = read_csv_columns(point_csv(tmp_path, ids))["id"]
    assert col.dtype == object and col.tolist() == ids


def test_integers_then_decimals_are_float(tmp_path):
    ids = ["1"] * (CSV_SNIFF_ROWS + 1) + ["2.5"]
    col = read_csv_columns(point_csv(tmp_path, ids))["id"]
    assert col.dtype == np.float64 and col[-1] == 2.5


@pytest.mark.parametrize("declared", ["Integer", "Integer64", "Integer(10)"])
def test_csvt_integer_beyond_32_bits_is_exact_int64(tmp_path, declared):
    p = point_csv(tmp_path, [3_000_000_000, BIG], csvt=f"Real,Real,Real,Real,{declared}")
    col = read_csv_columns(p)["id"]
    assert col.dtype == np.int64 and col.tolist() == [3_000_000_000, BIG]


def test_csvt_types_kept_where_values_fit(tmp_path):
    p = point_csv(tmp_path, [7, -8], csvt="Real,Real,Real(Float32),Real,Integer")
    cols = read_csv_columns(p)
    assert cols["id"].dtype == np.int32 and cols["id"].tolist() == [7, -8]
    assert cols["velocity"].dtype == np.float32
    p = point_csv(tmp_path, [7, BIG], csvt="Real,Real,Real,Real,Integer64")
    assert read_csv_columns(p)["id"].dtype == np.int64


def test_csvt_integer_with_an_empty_field_elsewhere(tmp_path):
    """Empty fields send the file through GDAL's reader, which clamps a csvt Integer to 32
    bits and makes an integer column with gaps float64: the integers are re-read exactly."""
    p = tmp_path / "gaps.csv"
    p.write_text("x,y,velocity,id,small,sparse\n"
                 f"1.5,2.5,1.0,{BIG},1,{BIG}\n"
                 "1.5,2.5,,3000000000,,\n")
    p.with_suffix(".csvt").write_text("Real,Real,Real,Integer,Integer,Integer64\n")
    cols = read_csv_columns(p)
    assert cols["id"].dtype == np.int64 and cols["id"].tolist() == [BIG, 3_000_000_000]
    np.testing.assert_array_equal(cols["velocity"], [1.0, np.nan])
    np.testing.assert_array_equal(cols["small"], [1.0, np.nan])   # exact as float64
    assert cols["sparse"].tolist() == [str(BIG), None]           # not exact as float64


def test_integer_column_with_gaps_without_csvt(tmp_path):
    p = tmp_path / "gaps.csv"
    p.write_text("x,y,id,n\n1.5,2.5,9007199254740993,1\n1.5,2.5,9007199254740995,\n")
    cols = read_csv_columns(p)
    assert cols["id"].dtype == np.int64 and cols["id"].tolist() == [BIG, BIG + 2]
    np.testing.assert_array_equal(cols["n"], [1.0, np.nan])


def test_zipped_csv_ids_exact(tmp_path):
    """A CSV read out of a zip archive (EGMS) takes the file-object path of the reader."""
    src = point_csv(tmp_path, [BIG, 5])
    z = tmp_path / "pts.zip"
    with zipfile.ZipFile(z, "w") as f:
        f.write(src, "pts.csv")
    assert read_csv_columns(TextSource(z, "pts.csv"))["id"].tolist() == [BIG, 5]
    assert read_points(z, crs="EPSG:32633").ids.tolist() == [BIG, 5]


@pytest.mark.parametrize("ext", ["csv", "gpkg", "parquet"])
def test_big_id_survives_read_to_prediction_output(tmp_path, ext):
    ids = [BIG, BIG + 2, 2**63 - 1]
    cloud = read_points(point_csv(tmp_path, ids))
    rel = np.array([0.2, 0.7, 0.9], np.float32)
    out = write_predictions(cloud, tmp_path / f"out.{ext}",
                            {"reliability": rel, "reliable_pred": rel >= 0.5})
    back = read_points(out)
    assert back.roles["id"] == "id" and back.ids.tolist() == ids
    assert back.attributes["id"].dtype == np.int64


def test_text_ids_beyond_int64_survive_to_output(tmp_path):
    ids = ["99999999999999999999", "1"]
    cloud = read_points(point_csv(tmp_path, ids))
    out = write_predictions(cloud, tmp_path / "out.csv", {"reliability": np.ones(2)})
    assert read_points(out).ids.tolist() == ids
