"""The files a scene is made of: columns, dtypes, dates, rasters, georeferencing, determinism."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
import rasterio

from psirel.errors import PsirelError
from psirel.scene.estimation import temporal_coherence
from psirel.scene.generate import generate_scene, iter_chunks
from psirel.scene.landcover import CLASS_CODES
from psirel.scene.params import SceneParams
from psirel.scene.psi_points import PointBlock
from psirel.scene.world import BLOCK_POINTS, build_world

HEAD = ["pid", "velocity", "coherence", "height", "reliable"]


def _series(cols: dict) -> tuple[list[str], np.ndarray]:
    names = [n for n in cols if n.startswith("D") and n[1:].isdigit()]
    return names, np.column_stack([cols[n] for n in names])


def test_points_columns_in_order_with_dtypes(label_scenes, read_points):
    cols = read_points(label_scenes[11] / "points.gpkg")
    names = [n for n in cols if not n.startswith(("x", "y", "_"))]
    assert names[:5] == HEAD
    assert all(n.startswith("D") and len(n) == 9 for n in names[5:])
    assert cols["_crs"] == "EPSG:32632"
    assert cols["pid"].dtype == np.int64
    np.testing.assert_array_equal(cols["pid"], np.arange(20_000))
    for name in ("velocity", "coherence", "height", *names[5:]):
        assert cols[name].dtype == np.float32, name
    assert np.issubdtype(cols["reliable"].dtype, np.integer)  # int8 is stored as GPKG int16
    assert set(np.unique(cols["reliable"])) == {0, 1}
    assert 0.0 <= cols["coherence"].min() and cols["coherence"].max() <= 1.0
    # realistic UTM coordinates inside the raster footprint
    with rasterio.open(label_scenes[11] / "dem.tif") as src:
        b = src.bounds
    assert b.left <= cols["x"].min() and cols["x"].max() <= b.right
    assert b.bottom <= cols["y"].min() and cols["y"].max() <= b.top
    assert 500_000 < cols["x"].mean() < 800_000 and 5_000_000 < cols["y"].mean() < 5_300_000


def test_series_dates_every_12_days_from_zero(label_scenes, read_points):
    cols = read_points(label_scenes[11] / "points.gpkg")
    names, series = _series(cols)
    dates = [dt.datetime.strptime(n[1:], "%Y%m%d").date() for n in names]
    assert 55 <= len(dates) <= 65
    assert dates[0] == dt.date(2019, 1, 6)
    assert {(b - a).days for a, b in zip(dates[:-1], dates[1:], strict=True)} == {12}
    np.testing.assert_array_equal(series[:, 0], 0.0)
    scene = json.loads((label_scenes[11] / "scene.json").read_text())
    assert scene["acquisition"]["dates"] == [d.isoformat() for d in dates]
    # millimetres, not metres: a few mm of noise and tens of mm of motion
    assert 1.0 < np.percentile(np.abs(series[:, -1]), 90) < 200.0


def test_velocity_is_the_line_fit_of_the_written_series(label_scenes, read_points):
    cols = read_points(label_scenes[12] / "points.gpkg")
    names, series = _series(cols)
    days = np.array([(dt.datetime.strptime(n[1:], "%Y%m%d") -
                      dt.datetime.strptime(names[0][1:], "%Y%m%d")).days for n in names])
    years = days / 365.25
    tc = years - years.mean()
    expected = (series.astype(np.float64) @ tc) / (tc @ tc)
    np.testing.assert_allclose(cols["velocity"], expected, atol=1e-3)
    assert np.percentile(np.abs(cols["velocity"]), 99) > 5.0  # there is real motion


def test_coherence_is_computed_from_the_series(label_scenes, read_points):
    cols = read_points(label_scenes[12] / "points.gpkg")
    _, series = _series(cols)
    years = np.arange(series.shape[1]) * 12 / 365.25
    again = temporal_coherence(series[:3000], years, 55.5)
    np.testing.assert_allclose(cols["coherence"][:3000], again, atol=1e-4)


def test_rasters_georeferenced_with_expected_dtypes(label_scenes):
    d = label_scenes[11]
    scene = json.loads((d / "scene.json").read_text())
    expect = {"dem.tif": "float32", "lulc.tif": "uint8", "amplitude.tif": "float32"}
    for name, dtype in expect.items():
        with rasterio.open(d / name) as src:
            assert src.crs.to_epsg() == 32632
            assert src.dtypes[0] == dtype
            assert src.width == src.height == scene["size_px"] == 283 + 80
            assert tuple(src.transform)[:6] == pytest.approx(scene["transform"])
            assert src.res == (10.0, 10.0)
            assert src.profile["tiled"] and src.block_shapes[0] == (256, 256)
            assert src.compression.name.lower() == "deflate"
            data = src.read(1)
            if name == "lulc.tif":
                assert src.nodata == 0
                assert set(np.unique(data)) <= set(CLASS_CODES)
            elif name == "dem.tif":
                assert 100.0 < data.min() and 200.0 < np.ptp(data) < 2500.0  # m, real relief
            else:
                assert data.min() > 0 and np.isfinite(data).all()


def test_height_is_dem_plus_scatterer(label_scenes, read_points):
    d = label_scenes[11]
    cols = read_points(d / "points.gpkg")
    with rasterio.open(d / "dem.tif") as src:
        t, dem_grid = src.transform, src.read(1)
    rows = np.floor((t.f - cols["y"]) / -t.e).astype(int)
    cs = np.floor((cols["x"] - t.c) / t.a).astype(int)
    dem = dem_grid[rows, cs]
    above = cols["height"] - dem
    slope_err = 15.0  # bilinear DEM inside a steep pixel vs the pixel's value (m)
    assert np.all(above > -slope_err) and np.all(above < 40.0 + slope_err)
    assert np.median(above) > 0.0


def test_same_seed_same_bytes_other_seed_differs(make_scene, read_points, tmp_path):
    a = make_scene(3_000, 5)
    b = tmp_path / "again"
    generate_scene(b, n_points=3_000, seed=5)
    c = make_scene(3_000, 6)
    assert (a / "scene.json").read_bytes() == (b / "scene.json").read_bytes()
    pa, pb, pc = (read_points(x / "points.gpkg") for x in (a, b, c))
    for name in pa:
        if name != "_crs":
            np.testing.assert_array_equal(pa[name], pb[name], err_msg=name)
    for name in ("dem.tif", "lulc.tif", "amplitude.tif"):
        with rasterio.open(a / name) as ra, rasterio.open(b / name) as rb:
            np.testing.assert_array_equal(ra.read(1), rb.read(1))
        with rasterio.open(a / name) as ra, rasterio.open(c / name) as rc:
            assert not np.array_equal(ra.read(1), rc.read(1))
    assert (a / "scene.json").read_bytes() != (c / "scene.json").read_bytes()
    assert not np.array_equal(pa["velocity"], pc["velocity"])


def test_results_do_not_depend_on_chunk_size():
    world = build_world(SceneParams(n_points=3 * BLOCK_POINTS - 100, seed=3, size_px=256))
    one = PointBlock.concat(list(iter_chunks(world, chunk_blocks=1)))
    two = PointBlock.concat(list(iter_chunks(world, chunk_blocks=2)))
    assert len(one) == len(two) == 3 * BLOCK_POINTS - 100
    for name in PointBlock.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(one, name), getattr(two, name), err_msg=name)


def test_scene_json_matches_the_points(label_scenes, read_points):
    for d in label_scenes.values():
        scene = json.loads((d / "scene.json").read_text())
        cols = read_points(d / "points.gpkg")
        rate = 1.0 - cols["reliable"].mean()
        assert scene["label_rates"]["unreliable"] == pytest.approx(rate, abs=1e-6)
        classes = scene["land_cover"]["classes"]
        assert sum(c["points"] for c in classes) == scene["n_points"] == len(cols["pid"])
        assert sum(c["pixels"] for c in classes) == scene["size_px"] ** 2
        assert {c["code"] for c in classes} == set(CLASS_CODES)
        assert scene["acquisition"]["wavelength_mm"] == 55.5
        assert scene["acquisition"]["revisit_days"] == 12
        assert scene["acquisition"]["los_enu"][0] < 0  # right-looking ascending: looks east
        assert scene["artefacts"]["unwrapping_patches"] == len(scene["unwrapping_patches"])
        assert all(isinstance(v, int) for v in scene["label_reasons"].values())
        assert "time" not in json.dumps(scene).lower().replace("time series", "")


def test_progress_and_argument_checks(tmp_path):
    calls = []
    scene = generate_scene(tmp_path / "p", n_points=500, seed=1, size_px=64,
                           progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (500, 500) and scene["size_px"] == 64
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == [
        "amplitude.tif", "dem.tif", "lulc.tif", "points.gpkg", "scene.json"]
    with pytest.raises(PsirelError, match="format"):
        generate_scene(tmp_path / "q", n_points=10, fmt="xlsx")
    with pytest.raises(PsirelError, match="points"):
        generate_scene(tmp_path / "q", n_points=0)


@pytest.mark.parametrize("fmt", ["shp", "parquet", "csv"])
def test_other_formats_hold_the_same_points(fmt, make_scene):
    """The project's reader gets the same values from every format the CLI offers."""
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    from psirel.io.points import read_points

    ref = read_points(make_scene(1_500, 2, size_px=96) / "points.gpkg")
    other = read_points(make_scene(1_500, 2, size_px=96, fmt=fmt) / f"points.{fmt}")
    assert other.crs.to_epsg() == 32632 and not other.warnings
    np.testing.assert_allclose(other.x, ref.x, atol=1e-6)
    np.testing.assert_array_equal(other.velocity_mm_yr, ref.velocity_mm_yr)
    np.testing.assert_array_equal(other.series_mm, ref.series_mm)
    np.testing.assert_array_equal(other.labels, ref.labels)
