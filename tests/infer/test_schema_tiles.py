"""The column map reaches every driver: tiles (pickled as Dask would) read their box with it
and with the units the whole cloud was read in; a changed map never resumes stale results."""

from __future__ import annotations

import pickle

import numpy as np
import pyogrio.raw
import pytest
from pyproj import Transformer

import psirel.infer.executors as executors
from psirel.errors import WorkDirMismatch
from psirel.infer.distributed import predict_tiled
from psirel.infer.pipeline import predict
from psirel.infer.run_spec import RunSpec
from psirel.infer.workdir import WorkDir
from psirel.io.points import read_points
from psirel.io.schema import PointSchema, parse_columns

TILE_M = 640.0  # the 2000-point scene spans ~1.9 km: several tiles
# names no alias or profile knows: only the map says which is which
MAP = "x=lon_w,y=lat_w,id=ident,velocity=vlos_m,coherence=q,height=h_m,series=disp_"


def r(v) -> str:
    return repr(float(v))


def read_output(path) -> dict[str, np.ndarray]:
    """Every attribute of an output file, whatever its columns are called."""
    meta, _, _, fields = pyogrio.raw.read(path, read_geometry=False)
    return dict(zip(meta["fields"], fields, strict=True))


@pytest.fixture(scope="module")
def custom(trained, tmp_path_factory):
    """The trained scene's cloud as a CSV in metres under unknown names, and as a CSV in mm
    with standard names, at the same lon/lat."""
    d = tmp_path_factory.mktemp("custom")
    c = read_points(trained.inputs[0])
    lon, lat = Transformer.from_crs(c.source_crs, 4326, always_xy=True).transform(*c.source_xy)
    a, series = c.attributes, c.series_columns
    std, met = d / "std.csv", d / "metres.csv"
    with open(std, "w") as fs, open(met, "w") as fm:
        fs.write(",".join(["pid", "lon", "lat", "velocity", "coherence", "height", *series]))
        fm.write(",".join(["ident", "lon_w", "lat_w", "vlos_m", "q", "h_m",
                           *(f"disp_{s[1:]}" for s in series)]))
        for i in range(len(c)):
            common = [str(a["pid"][i]), r(lon[i]), r(lat[i])]
            fs.write("\n" + ",".join([*common, r(a["velocity"][i]), r(a["coherence"][i]),
                                      r(a["height"][i]), *(r(a[s][i]) for s in series)]))
            fm.write("\n" + ",".join([*common, r(np.float64(a["velocity"][i]) / 1000),
                                      r(a["coherence"][i]), r(a["height"][i]),
                                      *(r(np.float64(a[s][i]) / 1000) for s in series)]))
    return std, met


def test_tiles_read_with_the_schema_and_the_whole_clouds_units(trained, custom, tmp_path,
                                                               monkeypatch):
    std, met = custom
    _, dem, lulc, amp = trained.inputs
    predict(trained.model, std, dem, lulc, amp, tmp_path / "ref.gpkg", threads=1)
    ref = read_output(tmp_path / "ref.gpkg")["reliability"]
    schema = parse_columns(MAP)  # units left to detection: metres
    predict(trained.model, met, dem, lulc, amp, tmp_path / "one.gpkg", threads=1,
            schema=schema)
    assert np.abs(read_output(tmp_path / "one.gpkg")["reliability"] - ref).max() <= 1e-6

    seen = []
    real = executors.run_tile

    def as_on_a_worker(task):
        task = pickle.loads(pickle.dumps(task))  # what a Dask worker receives
        seen.append(task.schema)
        return real(task)

    monkeypatch.setattr(executors, "run_tile", as_on_a_worker)
    s = predict_tiled(trained.model, met, dem, lulc, amp, tmp_path / "tiled.gpkg", dask="sync",
                      tile_m=TILE_M, threads=1, schema=schema)
    assert s["tiles"]["total"] > 1 and len(seen) == s["tiles"]["total"]
    assert set(seen) == {schema.with_units("m")}  # pinned: no tile decides from its points
    got = read_output(tmp_path / "tiled.gpkg")
    assert np.abs(got["reliability"] - ref).max() <= 1e-5
    np.testing.assert_array_equal(got["vlos_m"], read_points(met, schema=schema)
                                  .attributes["vlos_m"])  # the file's own values go out
    assert got["reliability"].dtype == np.float32


def test_run_key_holds_the_schema_and_a_changed_map_is_refused(trained, tmp_path):
    pts, dem, lulc, amp = trained.inputs

    def key(schema=None):
        spec = RunSpec(trained.model, pts, dem, lulc, amp, tmp_path / "o.gpkg", schema=schema)
        return spec.key(10, "onnx/cpu", 256)

    a, b = key(parse_columns("velocity=v1", "m")), key(parse_columns("velocity=v2", "m"))
    assert a["schema"] == {"columns": {"velocity": "v1"}, "series": None, "units": "m"}
    assert key()["schema"] == PointSchema().to_json()
    WorkDir(tmp_path / "wd", a)
    with pytest.raises(WorkDirMismatch, match="--columns/--units"):
        WorkDir(tmp_path / "wd", b)
