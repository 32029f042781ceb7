"""``psirel train --clouds``: three clouds of different CRS and date sampling, then evaluate and
predict, a model trained with 12-day series scoring 24-day series."""

import json
import re

import numpy as np
import pyogrio
import pytest
import rasterio
from rasterio.warp import Resampling, calculate_default_transform, reproject

from psirel.cli import main
from psirel.io.points import read_points
from psirel.scene import generate_scene

pytest.importorskip("torch")


def _every_other_date(points, out, crs="EPSG:4326"):
    """The cloud with its 24-day series (every other date) and its points in ``crs``."""
    df = pyogrio.read_dataframe(points)
    dates = [c for c in df.columns if re.fullmatch(r"D\d{8}", c)]
    df = df.drop(columns=dates[1::2]).to_crs(crs)
    pyogrio.write_dataframe(df, out, layer="psi")


def _warp(src_path, dst_path, crs="EPSG:32633"):
    with rasterio.open(src_path) as src:
        tr, w, h = calculate_default_transform(src.crs, crs, src.width, src.height,
                                               *src.bounds, resolution=src.res[0])
        prof = {**src.profile, "crs": crs, "transform": tr, "width": w, "height": h}
        with rasterio.open(dst_path, "w", **prof) as dst:
            reproject(rasterio.band(src, 1), rasterio.band(dst, 1), dst_crs=crs,
                      dst_transform=tr, resampling=Resampling.nearest
                      if "lulc" in src_path.name else Resampling.bilinear)


@pytest.fixture(scope="module")
def clouds(tmp_path_factory):
    root = tmp_path_factory.mktemp("clouds")
    for name, seed in (("a", 21), ("b", 22), ("c", 23)):
        generate_scene(root / name, n_points=1500, seed=seed)
    _every_other_date(root / "b" / "points.gpkg", root / "b" / "points24.gpkg")
    (root / "c" / "utm33").mkdir()
    for layer in ("dem", "lulc", "amplitude"):
        _warp(root / "c" / f"{layer}.tif", root / "c" / "utm33" / f"{layer}.tif")
    csv = root / "clouds.csv"
    csv.write_text("points,dem,lulc,amplitude,split\n"
                   "a/points.gpkg,a/dem.tif,a/lulc.tif,a/amplitude.tif,train\n"
                   "b/points24.gpkg,b/dem.tif,b/lulc.tif,b/amplitude.tif,train\n"
                   "c/points.gpkg,c/utm33/dem.tif,c/utm33/lulc.tif,c/utm33/amplitude.tif,val\n")
    return root, csv


def test_three_clouds_train_evaluate_and_predict(clouds, tmp_path, capsys):
    root, csv = clouds
    model = tmp_path / "model"
    assert main(["train", "--clouds", str(csv), "--out", str(model), "--epochs", "1",
                 "--max-steps", "3", "--batch-size", "128", "--ensemble", "2"]) == 0
    meta = json.loads((model / "model.json").read_text())
    recs = meta["training"]["clouds"]
    assert [r["n_dates"] for r in recs] == [61, 31, 61]
    # the grid is in the points' CRS (DESIGN §4): cloud c's rasters in UTM 33 are warped onto it
    assert [r["crs"] for r in recs] == ["EPSG:32632", "EPSG:32632", "EPSG:32632"]
    assert [r["split"]["validation"] for r in recs][2] == "whole cloud"
    assert recs[2]["split"]["n_val"] == recs[2]["n_points"] and recs[0]["split"]["n_val"] == 0
    assert all(len(r[k]["sha256"]) == 64 for r in recs for k in ("points", "dem", "lulc",
                                                                    "amplitude"))
    assert meta["ensemble"]["members"] == 2 and meta["calibration"]["method"] == "platt"
    # a model trained on 12-day (and 24-day) series scores a 24-day cloud, in another CRS
    b = root / "b"
    args = ["--points", str(b / "points24.gpkg"), "--dem", str(b / "dem.tif"),
            "--lulc", str(b / "lulc.tif"), "--amplitude", str(b / "amplitude.tif")]
    out = tmp_path / "pred.gpkg"
    assert main(["predict", "--model", str(model), *args, "--out", str(out)]) == 0
    pred = read_points(out)
    rel, std = pred.attributes["reliability"], pred.attributes["reliability_std"]
    assert np.isfinite(rel).all() and ((rel >= 0) & (rel <= 1)).all() and (std >= 0).all()
    assert std.max() > 0   # two members disagree somewhere
    assert main(["evaluate", "--model", str(model), *args, "--out", str(tmp_path / "ev")]) == 0
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["uncertainty"]["members"] == 2 and m["n_points"] == len(rel)


def test_clouds_and_one_cloud_options_exclude_each_other(clouds, tmp_path, capsys):
    root, csv = clouds
    assert main(["train", "--clouds", str(csv), "--points", str(root / "a" / "points.gpkg"),
                 "--out", str(tmp_path / "m")]) == 2
    assert "drop --points" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "m")]) == 2
    assert "missing option(s) --points, --dem, --lulc, --amplitude" in capsys.readouterr().err
