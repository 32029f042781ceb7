"""Inputs are read before they are trusted: rasters with no data under the points, truncated
files and non-finite heights end in one line or a stated fallback, never in plausible-looking
output; nothing non-finite is ever written."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
from psirel_testing import scene_args

from psirel.cli import main
from psirel.errors import PsirelError
from psirel.infer.pipeline import output_columns, predict


def _copy_scene(tiny_scene: Path, dest: Path) -> Path:
    return Path(shutil.copytree(tiny_scene, dest))


def _void_dem(scene: Path, share: float, nodata: float = -9999.0) -> None:
    """Set the left ``share`` of the DEM's columns to nodata (points cover the scene evenly)."""
    p = scene / "dem.tif"
    with rasterio.open(p) as src:
        prof, dem = src.profile, src.read(1)
    dem[:, : int(round(share * dem.shape[1]))] = nodata
    prof.update(nodata=nodata)
    with rasterio.open(p, "w", **prof) as dst:
        dst.write(dem, 1)


def _one_line_error(code: int, err: str, *needles: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


@pytest.mark.parametrize("share", [1.0, 0.7])
def test_dem_without_data_under_the_points_is_refused(share, tiny_scene, tiny_model, tmp_path,
                                                      capsys):
    scene = _copy_scene(tiny_scene, tmp_path / "s")
    _void_dem(scene, share)
    code = main(["inspect", *scene_args(scene)])
    _one_line_error(code, capsys.readouterr().err, "dem.tif", "no data")
    out = tmp_path / "pred.gpkg"
    code = main(["predict", "--model", str(tiny_model), *scene_args(scene), "--out", str(out)])
    _one_line_error(code, capsys.readouterr().err, "dem.tif", "no data")
    assert not out.exists()


def test_some_nodata_is_a_warning_with_the_count(tiny_scene, tmp_path, capsys):
    scene = _copy_scene(tiny_scene, tmp_path / "s")
    _void_dem(scene, 0.2)
    assert main(["inspect", *scene_args(scene)]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if "dem" in ln and "no data under" in ln)
    n_bad = int(line.split("no data under ")[1].split(" of ")[0])
    assert 0 < n_bad < 0.5 * 3000


def test_truncated_raster_fails_in_inspect_naming_it(tiny_scene, tmp_path, capsys):
    scene = _copy_scene(tiny_scene, tmp_path / "s")
    amp = scene / "amplitude.tif"
    data = amp.read_bytes()
    amp.write_bytes(data[: len(data) // 2])
    code = main(["inspect", *scene_args(scene)])
    _one_line_error(code, capsys.readouterr().err, "amplitude.tif")


def test_non_finite_heights_and_dem_voids_get_the_stated_fallbacks(tiny_scene, tiny_model,
                                                                   tmp_path):
    scene = _copy_scene(tiny_scene, tmp_path / "s")
    pts = scene / "points.gpkg"
    df = pyogrio.read_dataframe(pts)
    h = df["height"].to_numpy(float).copy()
    west = np.argsort(df.geometry.x.to_numpy())[:50]
    h[west[:40]], h[west[40:]] = np.nan, np.inf     # no usable height of their own ...
    h[:20] = np.nan                                 # ... and 20 elsewhere, on the DEM
    df["height"] = h
    pts.unlink()
    pyogrio.write_dataframe(df, pts)
    _void_dem(scene, 0.2)                          # ... with a DEM void under the 50 west
    warnings: list[str] = []
    s = predict(tiny_model, *scene_args(scene)[1::2], tmp_path / "pred.gpkg",
                warn=warnings.append)
    rel = pyogrio.read_dataframe(tmp_path / "pred.gpkg")["reliability"].to_numpy()
    assert np.isfinite(rel).all() and (rel >= 0).all() and (rel <= 1).all()
    fb = s["fallbacks"]
    assert fb["height_from_dem_median"] >= len(west)     # (a few of the 20 may be in it too)
    assert fb["height_from_dem"] + fb["height_from_dem_median"] == len(set(west) | set(range(20)))
    assert any("DEM's median height" in w for w in warnings)
    assert any("no data under" in w for w in warnings)


def test_no_non_finite_reliability_is_ever_written():
    rel = np.array([[0.2, 0.0], [np.nan, 0.0], [1.5, 0.0]], np.float32)
    with pytest.raises(PsirelError, match=r"^2 of 3 reliabilities are not finite numbers in "
                                          r"\[0, 1\] \(first at row 1\)"):
        output_columns(rel, 0.5)
    ok = output_columns(np.array([[0.2, 0.1], [0.7, 0.0]], np.float32), 0.5)
    assert ok["reliable_pred"].tolist() == [False, True]


def test_an_unwritable_output_is_one_line(tiny_scene, tiny_model, capsys):
    code = main(["predict", "--model", str(tiny_model), *scene_args(tiny_scene), "--out",
                 "/proc/psirel-out.gpkg"])
    _one_line_error(code, capsys.readouterr().err, "/proc/psirel-out.gpkg")
