"""Labels as an expert's: rates, their relation to coherence and to the series, and real motion
staying reliable."""

from __future__ import annotations

import json

import numpy as np
import rasterio

from psirel.scene.artefacts import ARTEFACTS, UNWRAP_TEMPORAL
from psirel.scene.deformation import LANDSLIDE, SUBSIDENCE
from psirel.scene.labels import (
    GEOMETRY,
    NOISE,
    REASONS,
    SIDELOBE,
    SPURIOUS,
    TEMPORARY,
    TOPOGRAPHIC,
    UNWRAPPING,
    VELOCITY,
    velocity_tolerance,
)
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
        # injected unwrapping errors (patches, isolated; not the slips of noisy points) barely
        # lower coherence, whatever they do to the velocity: same median as the reliable ±0.05
        only_unwrap = (((block.reasons & ~np.uint16(VELOCITY)) == UNWRAPPING)
                       & ((block.artefacts & UNWRAP_TEMPORAL) == 0))
        assert only_unwrap.sum() > 50
        assert (abs(np.median(block.coherence[only_unwrap])
                    - np.median(block.coherence[block.reliable == 1])) < 0.05)
        # noise-dominated points have low coherence
        noisy = (block.reasons & NOISE) > 0
        assert np.median(block.coherence[noisy]) < np.median(block.coherence) - 0.15


def _residual_std(cols: dict) -> np.ndarray:
    """Residual std (mm) around a linear + annual fit of the written series
    (``psirel.features.series``)."""
    from psirel.features.series import series_features

    names = [n for n in cols if n.startswith("D") and n[1:].isdigit()]
    dates = np.array([np.datetime64(f"{n[1:5]}-{n[5:7]}-{n[7:9]}") for n in names])
    feats, feat_names = series_features(np.column_stack([cols[n] for n in names]), dates)
    return feats[:, feat_names.index("series_residual_std_mm")].astype(np.float64)


def test_residual_of_the_series_alone_does_not_decide(label_scenes, read_points, auc):
    """Noisy points whose velocity holds are reliable, and several kinds of unreliable points
    have smooth series: the series' residual separates the labels only in part."""
    for seed, d in label_scenes.items():
        cols = read_points(d / "points.gpkg")
        residual, reliable = _residual_std(cols), cols["reliable"] == 1
        value = auc(residual, ~reliable)
        assert 0.55 <= value <= 0.88, (seed, value)
        assert (residual[reliable] > 3.0).sum() > 100  # noisy yet reliable
        assert (residual[~reliable] < np.median(residual[reliable])).sum() > 500  # smooth, wrong


def _class_matched_median(values: np.ndarray, lulc: np.ndarray, group: np.ndarray,
                          reference: np.ndarray) -> float:
    """Median of ``values`` over ``reference``, its points weighted so that their land-cover
    mix is that of ``group``."""
    weight = (np.bincount(lulc[group], minlength=256)
              / np.maximum(np.bincount(lulc[reference], minlength=256), 1))[lulc[reference]]
    v = values[reference]
    order = np.argsort(v)
    cum = np.cumsum(weight[order])
    return float(v[order][np.searchsorted(cum, 0.5 * cum[-1])])


def test_smooth_but_wrong_points_look_as_smooth_as_reliable_ones(truth):
    """The topography-biased, layover, spurious and sidelobe points are unreliable with series
    as smooth as reliable points' on the same land cover: their residual does not betray them."""
    from psirel.features.series import series_features
    from psirel.scene.acquisition import Acquisition

    dates = np.array(Acquisition().dates, dtype="datetime64[D]")
    rough = NOISE | TEMPORARY | UNWRAPPING
    sizes = {}
    for seed, block in truth.items():
        feats, names = series_features(block.series.astype(np.float64), dates)
        residual = feats[:, names.index("series_residual_std_mm")].astype(np.float64)
        reasons = block.reasons.astype(np.int64)
        reliable = block.reliable == 1
        groups = {"topographic": (reasons & TOPOGRAPHIC) > 0,
                  "layover": ((reasons & GEOMETRY) > 0) & block.layover,
                  "spurious": (reasons & SPURIOUS) > 0, "sidelobe": (reasons & SIDELOBE) > 0}
        for name, group in groups.items():
            group &= (reasons & rough) == 0
            sizes[seed, name] = int(group.sum())
            if group.sum() < 20:
                continue
            reference = _class_matched_median(residual, block.lulc, group, reliable)
            assert np.median(residual[group]) <= reference, (seed, name)
            assert np.median(residual[group]) < 1.2 * np.median(residual[reliable]), (seed, name)
    # every mechanism is there, in one scene at least
    for name in ("topographic", "layover", "spurious", "sidelobe"):
        assert max(sizes[s, name] for s in truth) >= 50, (name, sizes)


def test_scene_json_counts_every_mechanism(label_scenes):
    for d in label_scenes.values():
        scene = json.loads((d / "scene.json").read_text())
        reasons, artefacts = scene["label_reasons"], scene["artefacts"]
        assert set(reasons) == set(REASONS) and set(ARTEFACTS) <= set(artefacts)
        for name in ("noise_dominated", "layover_shadow", "unwrapping_error", "velocity_error",
                     "spurious_scatterer", "moisture_bias", "sidelobe"):
            assert reasons[name] > 0, name
        assert scene["terrain"]["layover_fraction"] > scene["terrain"]["active_layover_fraction"]
        assert scene["sidelobes"]["dominated_pixels"] > 0
        motion = scene["deformation"]["points_by_motion"]
        assert sum(v["points"] for v in motion.values()) == scene["n_points"]
