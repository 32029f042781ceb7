"""``--columns`` and ``--units`` on the CLI: a DePSI-style CSV in metres scores exactly as the
same cloud in mm with standard names; every wrong mapping is one line and exit code 2."""

import numpy as np
import pytest
from psirel_testing import scene_args
from pyproj import Transformer

from psirel.cli import main
from psirel.io.delimited import read_csv_columns
from psirel.io.points import read_points

DEPSI_MAP = ("x=pnt_lon,y=pnt_lat,id=pnt_id,velocity=pnt_linear,coherence=pnt_enscoh,"
             "height=pnt_height,series=d_")


def run(argv, capsys):
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def assert_one_line_error(code, err, *needles):
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def r(v) -> str:
    return repr(float(v))


@pytest.fixture(scope="module")
def exports(tiny_scene, tmp_path_factory):
    """The tiny scene's cloud twice, at the same lon/lat: standard names in mm, and as DePSI
    writes it (pnt_* names, d_YYYYMMDD, metres, a leading unnamed index column)."""
    d = tmp_path_factory.mktemp("exports")
    c = read_points(tiny_scene / "points.gpkg")
    lon, lat = Transformer.from_crs(c.source_crs, 4326, always_xy=True).transform(*c.source_xy)
    a = c.attributes
    dates = [s[1:] for s in c.series_columns]
    std = d / "standard_mm.csv"
    with open(std, "w") as fh:
        fh.write(",".join(["pid", "lon", "lat", "velocity", "coherence", "height",
                           *c.series_columns]) + "\n")
        for i in range(len(c)):
            fh.write(",".join([str(a["pid"][i]), r(lon[i]), r(lat[i]), r(a["velocity"][i]),
                               r(a["coherence"][i]), r(a["height"][i]),
                               *(r(a[s][i]) for s in c.series_columns)]) + "\n")
    dep = d / "depsi_m.csv"
    with open(dep, "w") as fh:
        fh.write(",".join(["", "pnt_id", "pnt_flags", "pnt_lat", "pnt_lon", "pnt_height",
                           "pnt_enscoh", "pnt_linear", *(f"d_{t}" for t in dates),
                           *(f"a_{t}" for t in dates)]) + "\n")
        for i in range(len(c)):
            m = [r(np.float64(a[s][i]) / 1000) for s in c.series_columns]
            fh.write(",".join([str(i), f"P{a['pid'][i]}", "100001", r(lat[i]), r(lon[i]),
                               r(a["height"][i]), r(a["coherence"][i]),
                               r(np.float64(a["velocity"][i]) / 1000), *m,
                               *(["1.5"] * len(dates))]) + "\n")
    return std, dep


def predict(model, scene, points, out, capsys, *extra):
    args = scene_args(scene)
    args[1] = str(points)
    code, text, err = run(["predict", "--model", model, *args, "--out", out, *extra], capsys)
    assert code == 0, err
    return read_csv_columns(out)["reliability"].astype(np.float64), text


def test_depsi_in_metres_scores_as_the_same_cloud_in_mm(tiny_model, tiny_scene, exports,
                                                        tmp_path, capsys):
    std, dep = exports
    ref, _ = predict(tiny_model, tiny_scene, std, tmp_path / "ref.csv", capsys)
    got, text = predict(tiny_model, tiny_scene, dep, tmp_path / "depsi.csv", capsys,
                        "--columns", DEPSI_MAP, "--units", "m")
    assert len(got) == len(ref) == 3000
    assert np.abs(got - ref).max() <= 1e-6
    assert "looks like" not in text  # the units were given: nothing to detect
    # the DePSI profile alone (no option) reads it the same way
    auto, _ = predict(tiny_model, tiny_scene, dep, tmp_path / "auto.csv", capsys)
    assert np.abs(auto - ref).max() <= 1e-6
    out = read_csv_columns(tmp_path / "depsi.csv")
    np.testing.assert_array_equal(out["pnt_linear"], read_csv_columns(dep)["pnt_linear"])


def test_inspect_prints_the_map_the_profile_and_detected_units(exports, tmp_path, capsys):
    _, dep = exports
    renamed = tmp_path / "renamed.csv"  # no profile knows these names
    text = dep.read_text().replace("pnt_", "q_", 7)
    renamed.write_text(text)
    code, out, err = run(["inspect", "--points", renamed, "--columns",
                          DEPSI_MAP.replace("pnt_", "q_")], capsys)
    assert code == 0, err
    assert "profile    none recognised" in out and "velocity ← q_linear" in out
    assert "units      m/yr and m (detected), converted to mm/yr and mm" in out
    assert "converted to mm/yr (×1000); pass --units mm" in out
    code, out, err = run(["inspect", "--points", dep], capsys)
    assert code == 0 and "profile    DePSI CSV (TU Delft) (depsi)" in out, err


@pytest.mark.parametrize("columns, units, needles", [
    ("x=pnt_lon,y=pnt_lat,velocity=pnt_velocity", None,
     ["depsi_m.csv", "no column 'pnt_velocity'", "--columns velocity=pnt_velocity", "found"]),
    ("vel=pnt_linear", None, ["--columns", "unknown role 'vel'"]),
    ("velocity", None, ["--columns", "'velocity' is not ROLE=NAME"]),
    ("series=ts_", None, ["depsi_m.csv", "no column named ts_YYYYMMDD"]),
    (None, "cm", ["--units", "'cm'"]),
])
def test_a_wrong_mapping_is_one_line_and_exit_code_2(exports, capsys, columns, units, needles):
    _, dep = exports
    argv = ["inspect", "--points", dep]
    argv += ["--columns", columns] if columns is not None else []
    argv += ["--units", units] if units is not None else []
    code, _, err = run(argv, capsys)
    assert_one_line_error(code, err, *needles)


def test_other_commands_check_the_options_first(tmp_path, capsys):
    inputs = ["--points", "p.csv", "--dem", "d.tif", "--lulc", "l.tif", "--amplitude", "a.tif"]
    code, _, err = run(["evaluate", "--model", "m", *inputs, "--out", tmp_path,
                        "--columns", "speed=v"], capsys)
    assert_one_line_error(code, err, "unknown role 'speed'")
    code, _, err = run(["predict", "--model", "m", *inputs, "--out", tmp_path / "o.gpkg",
                        "--units", "km"], capsys)
    assert_one_line_error(code, err, "--units", "'km'")
    code, _, err = run(["train", "--clouds", tmp_path / "c.csv", "--out", tmp_path / "m",
                        "--columns", "x=a,y=b"], capsys)
    assert_one_line_error(code, err, "--clouds: give columns and units as columns")
