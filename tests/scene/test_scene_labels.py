"""Labels as an expert's: rates, their relation to coherence, and real motion staying reliable."""

from __future__ import annotations

import json

import numpy as np
import rasterio

from psirel.scene.deformation import LANDSLIDE, SUBSIDENCE
from psirel.scene.labels import GEOMETRY, NOISE, UNWRAPPING, velocity_tolerance
from psirel.scene.landcover import BUILT_UP, FOREST
from psirel.scene.params import point_margin_px


def test_unreliable_rate_between_10_and_30_percent(label_scenes, read_points):
    for seed, d in label_scenes.items():
        rate = 1.0 - read_points(d / "points.gpkg")["reliable"].mean()
        assert 0.10 <= rate <= 0.30, (seed, rate)


def test_coherence_separates_labels_only_in_part(label_scenes, read_points, auc):
    for seed, d in label_scenes.items():
        cols = read_points(d / "points.gpkg")
        value = auc(cols["coherence"], cols["reliable"] == 1)
        assert 0.6 <= value <= 0.9, (seed, value)


def test_unreliable_more_often_where_coherence_is_low(label_scenes, read_points):
    for d in label_scenes.values():
        cols = read_points(d / "points.gpkg")
        coh, bad = cols["coherence"], cols["reliable"] == 0
        low, high = np.quantile(coh, [0.25, 0.75])
        rate_low, rate_high = bad[coh <= low].mean(), bad[coh >= high].mean()
        assert rate_low > 2.0 * rate_high
        assert rate_high > 0.01  # some unreliable points look perfectly coherent


def test_points_denser_on_built_up_than_on_forest(label_scenes, read_points):
    for d in label_scenes.values():
        cols = read_points(d / "points.gpkg")
        with rasterio.open(d / "lulc.tif") as src:
            lulc, t = src.read(1), src.transform
        rows = np.floor((t.f - cols["y"]) / -t.e).astype(int)
        cs = np.floor((cols["x"] - t.c) / t.a).astype(int)
        at_point = lulc[rows, cs]
        km2 = abs(t.a * t.e) / 1e6
        density = {code: (at_point == code).sum() / ((lulc == code).sum() * km2)
                   for code in (BUILT_UP, FOREST)}  # points per km² of the class
        assert density[BUILT_UP] > 10.0 * density[FOREST] > 0.0
        # and the point area's (raster less its margin) mean density is about 2,500 points/km²
        m = point_margin_px(lulc.shape[0])
        inner = (lulc.shape[0] - 2 * m) * (lulc.shape[1] - 2 * m)
        assert 2000.0 < len(at_point) / (inner * km2) < 3000.0
        assert rows.min() >= m and cs.min() >= m  # no point in the margin
        scene = json.loads((d / "scene.json").read_text())
        by_code = {c["code"]: c for c in scene["land_cover"]["classes"]}
        assert by_code[BUILT_UP]["points"] == (at_point == BUILT_UP).sum()


def test_real_large_motion_is_mostly_reliable(truth):
    fast_total, fast_reliable = 0, 0
    for block in truth.values():
        moving = np.isin(block.source, (SUBSIDENCE, LANDSLIDE)) & (np.abs(block.true_velocity) > 5)
        fast_total += moving.sum()
        fast_reliable += (block.reliable[moving] == 1).sum()
        # the velocities are real: far from zero, and measured well where reliable
        ok = moving & (block.reliable == 1)
        assert np.median(np.abs(block.velocity[ok])) > 5.0
        err = np.abs(block.velocity[ok] - block.true_velocity[ok])
        assert np.all(err <= velocity_tolerance(block.true_velocity[ok]) + 1e-9)
    assert fast_total > 500
    assert fast_reliable / fast_total > 0.7


def test_velocity_anomaly_alone_does_not_decide(truth, auc):
    for block in truth.values():
        speed = np.abs(block.velocity)
        # |velocity| predicts unreliability only in part ...
        assert auc(-speed, block.reliable == 1) < 0.85
        # ... many fast points are reliable, many unreliable points barely move
        assert (block.reliable[speed > 5] == 1).sum() > 500
        assert (block.reliable[speed < 2] == 0).sum() > 300


def test_every_unreliable_point_has_a_reason(truth):
    for block in truth.values():
        assert np.all((block.reasons == 0) == (block.reliable == 1))
        # each mechanism contributes (layover and shadow hold few points)
        assert np.count_nonzero(block.reasons & NOISE) > 200
        assert np.count_nonzero(block.reasons & UNWRAPPING) > 200
        assert np.count_nonzero(block.reasons & GEOMETRY) > 0
        # unwrapping errors barely lower coherence: same median as the reliable points ±0.05
        only_unwrap = block.reasons == UNWRAPPING
        assert (abs(np.median(block.coherence[only_unwrap])
                    - np.median(block.coherence[block.reliable == 1])) < 0.05)
        # noise-dominated points have low coherence
        noisy = (block.reasons & NOISE) > 0
        assert np.median(block.coherence[noisy]) < np.median(block.coherence) - 0.15
