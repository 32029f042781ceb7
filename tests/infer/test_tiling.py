"""Tiles with exact halos: the plan, the graph they give, and tiled predictions = whole-cloud ones.

The Dask side (workers, retries, resume, output) is in ``test_dask.py``; here tiles run in this
process (``dask="sync"``), which is the same task code without a cluster.
"""

from __future__ import annotations

import numpy as np
import pytest
from infer_support import read_output
from pyproj import Transformer
from scipy.spatial import cKDTree

from psirel.errors import PsirelError
from psirel.graph.knn import knn_table
from psirel.graph.sampling import full_neighbourhood
from psirel.infer.distributed import predict_tiled
from psirel.infer.pipeline import predict
from psirel.infer.tiling import auto_tile_m, match_rows, plan_tiles
from psirel.io.points import read_points, write_points

K, R_MAX, HOPS = 16, 100.0, 3
TOL = 1e-5


def clustered_cloud(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Uniform points over 2 km × 2 km plus dense clusters (full kNN rows) and empty gaps."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 2000, n // 2)
    y = rng.uniform(0, 2000, n // 2)
    centres = rng.uniform(0, 2000, (15, 2))
    c = centres[rng.integers(0, 15, n - n // 2)] + rng.normal(0, 40, (n - n // 2, 2))
    return np.concatenate([x, c[:, 0]]) + 500_000, np.concatenate([y, c[:, 1]]) + 4_000_000


def edges(sub, nodes_global: np.ndarray) -> np.ndarray:
    """``[E, 3]`` (target, slot, source) of a subgraph, in global ids, sorted."""
    rows, slots = np.nonzero(sub.mask)
    e = np.column_stack([nodes_global[sub.nodes[rows]], slots,
                         nodes_global[sub.nodes[sub.idx[rows, slots]]]])
    return e[np.lexsort(e.T[::-1])]


def tile_neighbourhoods_exact(x, y, tile_m: float, halo_m: float) -> list[bool]:
    """Per tile: does the kNN graph built from its points alone give its core the whole cloud's
    HOPS-hop neighbourhood (same nodes, same edges in the same slots)?"""
    whole = knn_table(x, y, k=K, r_max_m=R_MAX)
    ident = np.arange(len(x))
    same = []
    for t in plan_tiles(x, y, tile_m, halo_m).tiles:
        ref = full_neighbourhood(whole, t.core_rows, HOPS)
        local = knn_table(x[t.rows], y[t.rows], k=K, r_max_m=R_MAX)
        got = full_neighbourhood(local, np.flatnonzero(t.core), HOPS)
        same.append(np.array_equal(np.sort(t.rows[got.nodes]), np.sort(ref.nodes))
                    and np.array_equal(edges(got, t.rows), edges(ref, ident)))
    return same


# ---------------------------------------------------------------------------- the plan
def test_every_point_is_core_of_one_tile_and_boxes_hold_the_halo():
    x, y = clustered_cloud()
    plan = plan_tiles(x, y, tile_m=500.0, halo_m=HOPS * R_MAX)
    assert len(plan.tiles) >= 9
    core = np.concatenate([t.core_rows for t in plan.tiles])
    np.testing.assert_array_equal(np.sort(core), np.arange(len(x)))
    tree = cKDTree(np.column_stack([x, y]))
    for t in plan.tiles:
        assert np.all(np.diff(t.rows) > 0)  # input order: kNN ties break as in the whole cloud
        near = tree.query_ball_point(np.column_stack([x[t.core_rows], y[t.core_rows]]),
                                     HOPS * R_MAX)
        assert np.isin(np.unique(np.concatenate(near)), t.rows).all()


def test_halo_of_receptive_hops_times_r_max_gives_whole_cloud_graph():
    """The proof of :mod:`psirel.infer.tiling`, on the graph: H·r_max is enough, and less is not
    (so this test can fail)."""
    x, y = clustered_cloud()
    assert all(tile_neighbourhoods_exact(x, y, 500.0, HOPS * R_MAX))
    assert not all(tile_neighbourhoods_exact(x, y, 500.0, (HOPS - 1) * R_MAX))


def test_tile_size_checks_and_automatic_size():
    x, y = clustered_cloud(400)
    for bad in (0.0, -10.0, float("nan")):
        with pytest.raises(PsirelError, match="--tile-m"):
            plan_tiles(x, y, bad, 300.0)
    big = auto_tile_m(x, y, 300.0, memory_gb=2.0, n_workers=1, bytes_per_point=2000)
    small = auto_tile_m(x, y, 300.0, memory_gb=2.0, n_workers=16, bytes_per_point=2000)
    assert big >= small >= 600.0 and small % 10 == 0  # never under two halos
    tight = auto_tile_m(x, y, 10.0, memory_gb=1e-5, n_workers=1, bytes_per_point=2000)
    assert tight < big  # the memory budget bounds a tile's points


def test_only_occupied_cells_are_enumerated():
    """Two clusters 1,000 km apart with 1 m tiles: 10^12 cells, of which a handful hold points
    (enumerating every cell would need terabytes)."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(0, 3, 20), rng.uniform(1e6, 1e6 + 3, 20)])
    y = np.concatenate([rng.uniform(0, 3, 20), rng.uniform(1e6, 1e6 + 3, 20)])
    plan = plan_tiles(x, y, tile_m=1.0, halo_m=2.0)
    assert len(plan.tiles) <= 18
    core = np.concatenate([t.rows[t.core] for t in plan.tiles])
    assert np.array_equal(np.sort(core), np.arange(40))
    for t in plan.tiles:                    # halos never reach the other cluster
        assert (np.abs(x[t.rows] - x[t.rows[t.core][0]]) < 10).all()


def test_match_rows_pairs_by_coordinates_in_reading_order():
    xp = np.array([1.0, 2.0, 2.0, 3.0])
    yp = np.array([5.0, 6.0, 6.0, 7.0])  # rows 1 and 2 share a position
    read = np.array([3, 1, 2, 0])         # the order a reader returned them in
    perm = match_rows(xp[read], yp[read], xp, yp)
    np.testing.assert_array_equal(read[perm], [0, 1, 2, 3])
    assert match_rows(xp[:3], yp[:3], xp, yp) is None
    assert match_rows(xp + [0, 0, 0, 1e-9], yp, xp, yp) is None


# ---------------------------------------------------------------------------- predictions
@pytest.fixture(scope="module")
def reference(trained, tmp_path_factory):
    out = tmp_path_factory.mktemp("tiling_ref") / "ref.gpkg"
    predict(trained.model, *trained.inputs, out, threads=1)
    return read_output(out)["reliability"]


def test_tiled_equals_whole_cloud_and_a_smaller_halo_does_not(trained, reference, tmp_path):
    out = tmp_path / "tiled.gpkg"
    s = predict_tiled(trained.model, *trained.inputs, out, dask="sync", tile_m=640.0)
    assert s["tiles"]["total"] >= 9 and s["tiles"]["halo_m"] == HOPS * R_MAX
    diff = np.abs(read_output(out)["reliability"] - reference)
    assert diff.max() <= TOL

    cut = predict_tiled(trained.model, *trained.inputs, tmp_path / "cut.gpkg", dask="sync",
                        tile_m=640.0, halo_m=R_MAX)
    assert cut["tiles"]["halo_m"] == R_MAX
    cut_diff = np.abs(read_output(tmp_path / "cut.gpkg")["reliability"] - reference)
    assert (cut_diff > TOL).any()


def test_reprojected_csv_points_handed_to_the_tiles(trained, reference, tmp_path, monkeypatch):
    """Points in lon/lat CSV (no spatial index): each task gets its tile's points from the
    driver instead of reading the whole file again."""
    c = read_points(trained.inputs[0])
    lon, lat = Transformer.from_crs(c.crs, "EPSG:4326", always_xy=True).transform(c.x, c.y)
    pts = write_points(tmp_path / "points.csv", lon, lat, "EPSG:4326", c.attributes)
    inputs = (pts, *trained.inputs[1:])
    predict(trained.model, *inputs, tmp_path / "ref.csv", threads=1)

    def no_reading(*args, **kwargs):
        raise AssertionError("a tile read the CSV")

    monkeypatch.setattr("psirel.infer.tiling.read_points", no_reading)
    s = predict_tiled(trained.model, *inputs, tmp_path / "tiled.csv", dask="sync",
                      tile_m=900.0)
    assert s["tiles"]["total"] >= 4
    ref = read_output(tmp_path / "ref.csv")["reliability"]
    got = read_output(tmp_path / "tiled.csv")["reliability"]
    assert np.abs(got - ref).max() <= TOL
    assert np.abs(ref - reference).max() <= 1e-4  # the same cloud, only stored otherwise


def test_int8_tiles_equal_int8_whole_cloud(trained, model_copy, tmp_path):
    pytest.importorskip("onnx")
    from psirel.export.quantize import quantize_pointwise

    model = model_copy()
    quantize_pointwise(model)
    predict(model, *trained.inputs, tmp_path / "ref.gpkg", threads=1, precision="int8")
    s = predict_tiled(model, *trained.inputs, tmp_path / "tiled.gpkg", dask="sync",
                      tile_m=640.0, precision="int8")
    assert s["tiles"]["total"] >= 9
    ref = read_output(tmp_path / "ref.gpkg")["reliability"]
    assert np.abs(read_output(tmp_path / "tiled.gpkg")["reliability"] - ref).max() <= TOL
