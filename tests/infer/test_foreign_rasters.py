"""A model trained on 10 m WorldCover rasters in UTM, run on rasters as users have them.

From the session's tiny scene (UTM 32N, 10 m, WorldCover codes) and the model trained on it,
the fixtures below build the same scene the way a user gets it:

* the DEM in EPSG:4326 at 1 arc-second (≈ 21 × 31 m here, bilinear from the scene's),
* the land cover in EPSG:3035 with CORINE level-3 codes (each WorldCover class written as a
  CORINE code of the same semantic class, nearest) and no ``LULC_LEGEND`` tag,
* the amplitude in UTM 32N at 20 m (average of 2 × 2 scene pixels),
* the points in UTM 33N, the neighbouring zone (≈ 4° from its central meridian).

``predict`` warps the rasters lazily onto the model's grid. The reference is the same scene
prepared by hand: every foreign raster warped with ``rasterio.warp.reproject`` onto exactly the
grid ``predict`` samples on (``prepare(...).stack.grid``), written as plain GeoTIFFs in the
grid's CRS with the points, and predicted again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
from pyproj import Transformer
from rasterio.enums import Resampling
from rasterio.transform import Affine
from rasterio.warp import reproject, transform_bounds
from scipy.stats import rankdata

from psirel.inspect import inspect_inputs
from psirel.io import legends
from psirel.io.grid import Grid, crs_name
from psirel.io.rasters import LayerInfo, RasterStack

ARCSEC = 1 / 3600
POINTS_CRS = "EPSG:32633"  # the scene lies in zone 32: UTM 33N is a different projected CRS
# A CORINE level-3 code for each semantic class (checked against the crosswalk below).
CORINE_OF = {1: 112, 2: 311, 3: 321, 4: 211, 5: 332, 6: 512, 7: 411, 8: 335}
CORINE_NODATA = 999  # CORINE's "no data"
NODATA = -9999.0
RESAMPLING = {r.name: r for r in (Resampling.nearest, Resampling.bilinear, Resampling.average)}
# |Δ reliability| allowed between the lazily warped inputs and the same warped by hand: room
# for GDAL's approximate transformer, well below real mistakes (measured: see the test)
MAX_ABS_DIFF = 5e-4
MEAN_ABS_DIFF = 2e-5


@dataclass
class Inputs:
    points: Path
    dem: Path
    lulc: Path
    amplitude: Path

    @property
    def args(self) -> tuple[Path, Path, Path, Path]:
        return self.points, self.dem, self.lulc, self.amplitude


# ------------------------------------------------------------------ helpers
def write_tif(path: Path, array: np.ndarray, crs, transform: Affine, nodata=None) -> Path:
    """A plain one-band GeoTIFF (no tags)."""
    with rasterio.open(path, "w", driver="GTiff", width=array.shape[1], height=array.shape[0],
                       count=1, dtype=array.dtype, crs=crs, transform=transform,
                       nodata=nodata) as dst:
        dst.write(array, 1)
    return path


def lattice(bounds, res: float) -> tuple[Affine, int, int]:
    """A north-up grid of ``res`` pixels covering ``bounds``, edges on multiples of ``res``."""
    left, bottom = np.floor(bounds[0] / res) * res, np.floor(bounds[1] / res) * res
    right, top = np.ceil(bounds[2] / res) * res, np.ceil(bounds[3] / res) * res
    return (Affine(res, 0, left, 0, -res, top), int(round((right - left) / res)),
            int(round((top - bottom) / res)))


def warp(src_path: Path, dst_path: Path, crs, transform: Affine, width: int, height: int,
         resampling: Resampling, dtype: str, dst_nodata=None,
         lut: np.ndarray | None = None) -> Path:
    """``src_path`` (its codes through ``lut`` when given) warped onto a grid with
    ``rasterio.warp.reproject`` and written with ``dst_nodata`` (None: no nodata value)."""
    with rasterio.open(src_path) as src:
        a, src_nodata = src.read(1), src.nodata
        if lut is not None:
            a, src_nodata = lut[a], CORINE_NODATA
        out = np.full((height, width), 0 if dst_nodata is None else dst_nodata, dtype)
        reproject(a, out, src_transform=src.transform, src_crs=src.crs, src_nodata=src_nodata,
                  dst_transform=transform, dst_crs=crs, dst_nodata=dst_nodata,
                  resampling=resampling)
    return write_tif(dst_path, out, crs, transform, dst_nodata)


def write_points_in(src: Path, dst: Path, crs) -> Path:
    """The point file ``src`` with every attribute as it is, its geometry reprojected to
    ``crs``."""
    meta, _, geometry, fields = pyogrio.raw.read(src)
    g = shapely.from_wkb(geometry)
    x, y = Transformer.from_crs(meta["crs"], crs, always_xy=True).transform(
        shapely.get_x(g), shapely.get_y(g))
    pyogrio.raw.write(dst, shapely.to_wkb(shapely.points(x, y)), fields, meta["fields"],
                      crs=crs_name(crs), layer="psi", geometry_type="Point", driver="GPKG")
    return dst


def read_scores(path: Path) -> dict[str, np.ndarray]:
    meta, _, _, fields = pyogrio.raw.read(path)
    return dict(zip(meta["fields"], fields, strict=True))


def roc_auc(labels: np.ndarray, score: np.ndarray) -> float:
    """ROC-AUC of ``score`` for label 1 (Mann-Whitney U over the ranks, ties averaged)."""
    pos = np.asarray(labels) == 1
    n1, n0 = int(pos.sum()), int((~pos).sum())
    return float((rankdata(score)[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def corine_lut() -> np.ndarray:
    """WorldCover code → a CORINE code of the same semantic class (CORINE no data elsewhere)."""
    corine = legends.crosswalk("corine")
    lut = np.full(256, CORINE_NODATA, np.uint16)
    for code, semantic in legends.crosswalk("worldcover").items():
        assert corine[CORINE_OF[semantic]] == semantic
        lut[code] = CORINE_OF[semantic]
    return lut


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def foreign(tiny_scene, tmp_path_factory) -> Inputs:
    """The tiny scene as a user has it: 1" DEM in EPSG:4326, CORINE in EPSG:3035 (untagged),
    20 m amplitude in UTM 32N, points in UTM 33N."""
    d = tmp_path_factory.mktemp("foreign")
    s = tiny_scene
    with rasterio.open(s / "dem.tif") as dem:
        crs, bounds = dem.crs, dem.bounds
    t, w, h = lattice(transform_bounds(crs, "EPSG:4326", *bounds, densify_pts=21), ARCSEC)
    warp(s / "dem.tif", d / "dem_4326.tif", "EPSG:4326", t, w, h, Resampling.bilinear,
         "float32", NODATA)
    t, w, h = lattice(transform_bounds(crs, "EPSG:3035", *bounds, densify_pts=21), 10.0)
    warp(s / "lulc.tif", d / "clc_3035.tif", "EPSG:3035", t, w, h, Resampling.nearest, "uint16",
         CORINE_NODATA, lut=corine_lut())
    t, w, h = lattice(bounds, 20.0)
    # no nodata value, as the scene's amplitude: psirel warps it with an alpha band
    warp(s / "amplitude.tif", d / "amp_20m.tif", crs, t, w, h, Resampling.average, "float32")
    write_points_in(s / "points.gpkg", d / "points_utm33.gpkg", POINTS_CRS)
    return Inputs(d / "points_utm33.gpkg", d / "dem_4326.tif", d / "clc_3035.tif",
                  d / "amp_20m.tif")


@dataclass
class Runs:
    model: Path  # the tiny model (trained on the scene's 10 m WorldCover rasters in UTM 32N)
    grid: Grid  # the grid predict samples the foreign inputs on
    layers: dict[str, LayerInfo]  # the foreign rasters, as that stack opens them
    legend: str | None  # the legend that stack detected
    hand: Inputs  # the foreign inputs warped by hand onto ``grid``
    labels: np.ndarray  # reliable (1) / unreliable (0)
    foreign: np.ndarray  # reliability: foreign inputs, legend detected
    by_hand: np.ndarray  # reliability: inputs warped by hand, legend named
    scene: np.ndarray  # reliability: the scene's own 10 m UTM rasters (the control)


@pytest.fixture(scope="module")
def runs(foreign, tiny_scene, request, tmp_path_factory) -> Runs:
    pytest.importorskip("torch")  # to train the model
    from psirel.infer.pipeline import predict
    from psirel.infer.prepared import prepare
    from psirel.model_dir import load_card

    model = request.getfixturevalue("tiny_model")
    d = tmp_path_factory.mktemp("runs")
    scene = prepare(load_card(model), *foreign.args)  # what predict opens, as it opens it
    try:
        grid, legend = scene.stack.grid, scene.stack.lulc_legend
        layers = {i.name: i for i in scene.stack.layer_infos()}
    finally:
        scene.stack.close()
    h = d / "hand"
    h.mkdir()
    on_grid = (grid.crs, grid.transform, grid.width, grid.height)
    hand = Inputs(write_points_in(foreign.points, h / "points.gpkg", grid.crs),
                  warp(foreign.dem, h / "dem.tif", *on_grid,
                       RESAMPLING[layers["dem"].resampling], "float32", NODATA),
                  warp(foreign.lulc, h / "lulc.tif", *on_grid,
                       RESAMPLING[layers["lulc"].resampling], "uint16", CORINE_NODATA),
                  warp(foreign.amplitude, h / "amp.tif", *on_grid,
                       RESAMPLING[layers["amplitude"].resampling], "float32", NODATA))
    predict(model, *foreign.args, d / "foreign.gpkg")
    predict(model, *hand.args, d / "hand.gpkg", lulc_legend="corine")
    predict(model, tiny_scene / "points.gpkg", tiny_scene / "dem.tif", tiny_scene / "lulc.tif",
            tiny_scene / "amplitude.tif", d / "scene.gpkg")
    out = {k: read_scores(d / f"{k}.gpkg") for k in ("foreign", "hand", "scene")}
    for o in out.values():  # the same points in the same order
        np.testing.assert_array_equal(o["pid"], out["foreign"]["pid"])
    return Runs(model=model, grid=grid, layers=layers, legend=legend, hand=hand,
                labels=np.asarray(out["foreign"]["reliable"]),
                **{k: np.asarray(out[v]["reliability"], np.float64) for k, v in
                   (("foreign", "foreign"), ("by_hand", "hand"), ("scene", "scene"))})


# ------------------------------------------------------------------ tests
def test_foreign_rasters_score_as_the_scene_warped_by_hand(runs):
    """Lazily warped foreign rasters score as the same rasters warped by hand onto the grid.

    Measured (tiny scene, tiny model): |Δ| 0, the scores bit for bit, ROC-AUC 0.6242 both.
    The 273 × 273 px grid fits one 512 px block of the warped VRT, so GDAL warps each layer in
    one piece exactly as ``reproject`` does, with the same 1/8-pixel approximation of the
    transformation (both 0.19 m off an exact warp of the DEM here).

    The tolerance leaves room for GDAL warping by other chunks (a VRT of several blocks, or
    another GDAL): the VRT with a 1/1000-pixel approximation instead moves the scores here by
    max 2.2e-4, mean 7e-6. Mistakes move them more: the DEM half a pixel off by mean 6e-5
    (max 1.1e-3), the DEM resampled nearest 1.2e-4, the amplitude half a pixel off 3e-4, the
    land cover one pixel off 6e-4, one CORINE class mapped to another semantic class 1.7e-3.
    """
    assert runs.legend == "corine"  # detected from the codes: the raster has no tag
    assert {k: (v.warped, v.resampling) for k, v in runs.layers.items()} == {
        "dem": (True, "bilinear"), "lulc": (True, "nearest"), "amplitude": (True, "bilinear")}
    assert runs.grid.pixel_m == 10.0
    with RasterStack(runs.hand.dem, runs.hand.lulc, runs.hand.amplitude, pixel_m=10.0,
                     lulc_legend="corine") as s:  # the reference really is on that grid
        assert s.grid == runs.grid
        assert not any(i.warped for i in s.layer_infos())
    d = np.abs(runs.foreign - runs.by_hand)
    assert np.isfinite(runs.foreign).all() and np.isfinite(runs.by_hand).all()
    assert d.max() <= MAX_ABS_DIFF, f"max |Δ reliability| {d.max():.3g}"
    assert d.mean() <= MEAN_ABS_DIFF, f"mean |Δ reliability| {d.mean():.3g}"
    auc_f, auc_h = roc_auc(runs.labels, runs.foreign), roc_auc(runs.labels, runs.by_hand)
    assert abs(auc_f - auc_h) <= 1e-3, (auc_f, auc_h)
    # the check has teeth: the scene's own 10 m rasters (a finer DEM and amplitude) move the
    # scores far more than the tolerance (measured max 3e-2, mean 1.7e-3)
    control = np.abs(runs.foreign - runs.scene)
    assert control.mean() > 10 * MEAN_ABS_DIFF, control.mean()


def test_cli_predict_names_the_legend(foreign, runs, tmp_path):
    from typer.testing import CliRunner

    from psirel.cli import app

    f = foreign
    out = tmp_path / "cli.gpkg"
    result = CliRunner().invoke(app, [
        "predict", "--model", str(runs.model), "--points", str(f.points),
        "--dem", str(f.dem), "--lulc", str(f.lulc), "--amplitude", str(f.amplitude),
        "--out", str(out), "--lulc-legend", "corine"])
    assert result.exit_code == 0, (result.output, result.exception)
    # the legend named or detected, the same mapping: the same scores
    np.testing.assert_allclose(np.asarray(read_scores(out)["reliability"], np.float64),
                               runs.foreign, atol=1e-6)


def test_inspect_reports_the_detected_corine_legend(foreign):
    rep = inspect_inputs(*foreign.args, pixel_m=10.0)
    assert rep.lulc_legend.legend == "corine" and rep.lulc_legend.how == "detected"
    assert set(rep.lulc_legend.codes) <= set(CORINE_OF.values())
    assert rep.lulc_legend.unknown == []
    assert rep.grid.pixel_m == 10.0


def test_inspect_reports_the_grid_predict_samples_on(foreign, runs):
    rep = inspect_inputs(*foreign.args, pixel_m=runs.grid.pixel_m)
    assert (rep.grid.crs, rep.grid.shape) == (crs_name(runs.grid.crs), runs.grid.shape)


def test_predict_samples_on_the_points_crs(runs):
    assert crs_name(runs.grid.crs) == POINTS_CRS
