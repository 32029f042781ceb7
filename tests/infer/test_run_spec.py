"""RunSpec: one validation of a run's options (messages name the option), one key, one
default work dir rule, for both drivers."""

from __future__ import annotations

import json

import pytest

from psirel.errors import PsirelError
from psirel.infer.run_spec import RunSpec


@pytest.fixture
def files(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.json").write_text("{}")
    paths = {}
    for name in ("p.shp", "p.dbf", "dem.tif", "lulc.tif", "amp.tif"):
        paths[name] = tmp_path / name
        paths[name].write_bytes(name.encode())
    return tmp_path, paths


def spec(files, **kw) -> RunSpec:
    root, p = files
    return RunSpec(root / "model", p["p.shp"], p["dem.tif"], p["lulc.tif"], p["amp.tif"],
                   root / "out" / "pred.gpkg", **kw)


@pytest.mark.parametrize("kw, message", [
    ({"memory_gb": 0}, r"^--memory-gb 0: must be a positive number of GiB"),
    ({"memory_gb": float("nan")}, r"^--memory-gb nan"),
    ({"threads": 0}, r"^--threads 0: must be a whole number, at least 1"),
    ({"chunk_points": 2.5}, r"^chunk_points 2.5"),
    ({"block_points": -1}, r"^block_points -1"),
    ({"device": "tpu"}, r"^--device tpu: choose one of cpu, cuda"),
    ({"precision": "fp8"}, r"^--precision fp8: choose one of fp32, int8"),
])
def test_bad_options_are_one_line_naming_the_option(files, kw, message):
    with pytest.raises(PsirelError, match=message):
        spec(files, **kw)


def test_key_covers_side_cars_precision_and_is_json(files):
    root, p = files
    a = spec(files).key(10, "onnx/cpu", 256)
    assert json.loads(json.dumps(a)) == a
    assert "p.dbf" in a["points"]["sidecars"] and a["backend"] == "onnx/cpu"
    assert spec(files, precision="int8").key(10, "onnx/cpu", 256)["backend"] == "onnx/cpu/int8"
    p["p.dbf"].write_bytes(b"other velocities")
    assert spec(files).key(10, "onnx/cpu", 256) != a


def test_default_work_dirs_are_named_after_the_full_output_name(files, tmp_path):
    root, _ = files
    gpkg = spec(files).work_dir_for(".psirel-work-")
    assert gpkg == (root / "out").resolve() / ".psirel-work-pred.gpkg"
    other = RunSpec(*[getattr(spec(files), f) for f in ("model_dir", "points", "dem", "lulc",
                                                         "amplitude")], root / "out" / "pred.csv")
    assert other.work_dir_for(".psirel-work-") != gpkg
    assert spec(files, work_dir=tmp_path / "w").work_dir_for(".psirel-work-") == tmp_path / "w"
