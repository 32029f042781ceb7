"""``predict_baseline``: a model directory's baselines score a whole cloud, with exactly the
probabilities ``psirel evaluate`` gives them, into the same output file as ``psirel predict``."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyogrio
import pytest

from psirel.baselines import BASELINES
from psirel.errors import PsirelError
from psirel.infer.baseline_predict import predict_baseline
from psirel.model_dir import load_card

STAGES = ("baseline", "read", "features", "predict", "write", "total")


def cut(scene: Path, d: Path) -> tuple[Path, Path, Path, Path]:
    """The western quarter of a synthetic scene's points (spatially compact, so that they keep
    their neighbours) with the scene's rasters: a small, quick cloud to score."""
    df = pyogrio.read_dataframe(scene / "points.gpkg")
    x = df.geometry.x.to_numpy()
    part = df[x <= np.quantile(x, 0.25)].reset_index(drop=True)
    pyogrio.write_dataframe(part, d / "points.gpkg")
    return d / "points.gpkg", scene / "dem.tif", scene / "lulc.tif", scene / "amplitude.tif"


@pytest.fixture(scope="module")
def subset(tiny_scene, tmp_path_factory) -> tuple[Path, Path, Path, Path]:
    """~750 labelled points of the tiny scene (the default, shared-map ``tiny_model``'s)."""
    return cut(tiny_scene, tmp_path_factory.mktemp("baseline_subset"))


@dataclass
class Scored:
    encoder: str
    model: Path
    inputs: tuple[Path, Path, Path, Path]
    scores: dict[str, np.ndarray]       # evaluate's scores.npz
    outputs: dict[str, Path]            # predict_baseline's file per baseline
    summaries: dict[str, dict]


@pytest.fixture(scope="module", params=["shared-map", "patch"])
def scored(request, subset, tmp_path_factory) -> Scored:
    """Both encoders: evaluate streams the patch statistics of a shared-map model and reads
    those of a patch model from its float16 cache. The session's models: ``tiny_model`` and
    the patch-encoder model of ``tests/infer/conftest.py``."""
    from psirel.train.evaluate import evaluate

    d = tmp_path_factory.mktemp(f"baseline_{request.param}")
    if request.param == "shared-map":
        model, inputs = request.getfixturevalue("tiny_model"), subset
    else:
        trained = request.getfixturevalue("trained")
        model, inputs = trained.model, cut(trained.scene, d)
    evaluate(model, *inputs, d / "eval", save_scores=True, warn=lambda m: None)
    with np.load(d / "eval" / "scores.npz") as z:
        scores = {k: z[k] for k in z.files}
    outputs, summaries = {}, {}
    for name in BASELINES:
        outputs[name] = d / f"{name}.gpkg"
        # gradient boosting scored 97 rows at a time: chunking must not change a number
        summaries[name] = predict_baseline(model, *inputs, outputs[name], baseline=name,
                                           predict_rows=97)
    return Scored(request.param, model, inputs, scores, outputs, summaries)


def _read(path: Path):
    return pyogrio.read_dataframe(path)


def test_probabilities_equal_those_evaluate_gives_every_baseline(scored):
    ps = {}
    for name in BASELINES:
        p = _read(scored.outputs[name])["reliability"].to_numpy().astype(np.float32)
        assert p.shape == scored.scores[name].shape
        np.testing.assert_array_equal(p, scored.scores[name], err_msg=name)
        assert np.ptp(p) > 0, name
        ps[name] = p
    # three different scores, not one copied thrice
    assert not np.array_equal(ps["gradient_boosting"], ps["neighbour_consistency"])
    assert not np.array_equal(ps["neighbour_consistency"], ps["coherence_threshold"])


def test_hand_features_equal_those_evaluate_builds(scored, tmp_path):
    """Feature by feature, bit for bit: evaluate's own steps (load_inputs, then the streamed
    statistics or the float16 patch cache) against the predict path."""
    from psirel.baselines import hand_features
    from psirel.infer.baseline_predict import point_data
    from psirel.io.cloud_grid import open_cloud
    from psirel.train.data import build_patch_cache, load_inputs
    from psirel.train.point_data import build_point_data, raster_patch_stats, streamed_patch_stats

    card = load_card(scored.model)
    f = card.features
    inputs = load_inputs(*scored.inputs, k=f.k, r_max_m=f.r_max_m, **card.raster_options())
    cloud, stack = open_cloud(*scored.inputs, card.raster_options())
    try:
        if card.shared_map:
            pstats, _ = streamed_patch_stats(inputs, card.normalizer)
            want = build_point_data(inputs, None, card.normalizer, pstats)
        else:
            patches, _ = build_patch_cache(inputs, card.normalizer, tmp_path / "cache")
            want = build_point_data(inputs, patches, card.normalizer)
            # the float16 rounding matters: without it the statistics differ
            (plain, _), _ = raster_patch_stats(cloud, stack, card.normalizer)
            assert not np.array_equal(plain, want.patch_stats)
        got, _ = point_data(card, cloud, stack, "gradient_boosting")
    finally:
        inputs.stack.close()
        stack.close()
    (xw, nw), (xg, ng) = hand_features(want), hand_features(got)
    assert ng == nw and xg.shape == xw.shape == (len(cloud), len(nw))
    np.testing.assert_array_equal(xg, xw)
    assert np.isfinite(got.patch_stats).all() and np.ptp(got.patch_stats[:, 0]) > 0


def test_output_keeps_the_input_and_thresholds_at_the_tuned_threshold(scored):
    card = load_card(scored.model)
    assert card.shared_map == (scored.encoder == "shared-map")
    src = _read(scored.inputs[0])
    for name in BASELINES:
        out = _read(scored.outputs[name])
        s = scored.summaries[name]
        thr = float(card.baseline(name)["threshold_tuned"])
        assert s["threshold"] == thr and s["backend"] == name and s["strategy"] == "baseline"
        assert list(out.columns[:-1]) == [*src.columns[:-1], "reliability", "reliability_std",
                                          "reliable_pred"]
        for col in src.columns[:-1]:  # every input attribute unchanged
            assert out[col].equals(src[col]), col
        assert out.geometry.geom_equals_exact(src.geometry, 1e-9).all()
        p = out["reliability"].to_numpy()
        np.testing.assert_array_equal(out["reliable_pred"].to_numpy(), p >= np.float32(thr))
        assert (out["reliability_std"].to_numpy() == 0).all()
        assert s["points"] == len(src)
        assert s["unreliable_fraction"] == pytest.approx(1 - (p >= np.float32(thr)).mean())
        sec = s["seconds"]
        assert all(sec[k] >= 0 for k in STAGES)
        assert sec["total"] >= sec["read"] + sec["features"] + sec["predict"] + sec["write"]
        assert s["points_per_s"]["total"] == pytest.approx(len(src) / sec["total"], rel=0.01)
        assert s["peak_rss_mb"] > 0


def test_same_input_gives_the_same_bytes(tiny_model, subset, tmp_path, monkeypatch):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    predict_baseline(tiny_model, *subset, a)  # gradient boosting: refitted each run
    predict_baseline(tiny_model, *subset, b)
    assert a.read_bytes() == b.read_bytes()
    # a GeoPackage records when it was written (gpkg_contents.last_change): pinned, the rest of
    # its bytes must agree too
    monkeypatch.setenv("OGR_CURRENT_DATE", "2000-01-01T00:00:00.000Z")
    for out in (tmp_path / "a.gpkg", tmp_path / "b.gpkg"):
        predict_baseline(tiny_model, *subset, out, baseline="coherence_threshold")
    assert (tmp_path / "a.gpkg").read_bytes() == (tmp_path / "b.gpkg").read_bytes()


NO_TORCH_NO_SKLEARN = """
import json, sys
for m in ("torch", "sklearn"):
    sys.modules[m] = None  # 'import sklearn' now raises ImportError, as without psirel[train]
from psirel.errors import MissingExtra
from psirel.infer.baseline_predict import predict_baseline
model, points, dem, lulc, amp, out = sys.argv[1:]
result = {}
for name in ("coherence_threshold", "neighbour_consistency"):
    s = predict_baseline(model, points, dem, lulc, amp, f"{out}/{name}.gpkg", baseline=name)
    result[name] = s["points"]
try:
    predict_baseline(model, points, dem, lulc, amp, f"{out}/gradient_boosting.gpkg")
except MissingExtra as exc:
    result["gradient_boosting"] = str(exc)
result["imported"] = [m for m in sys.modules if m.split(".")[0] in ("torch", "sklearn")
                      and sys.modules[m] is not None]
print(json.dumps(result))
"""


def test_numpy_baselines_need_neither_torch_nor_sklearn(tiny_model, subset, tmp_path):
    res = subprocess.run([sys.executable, "-c", NO_TORCH_NO_SKLEARN, str(tiny_model),
                          *map(str, subset), str(tmp_path)], capture_output=True, text=True,
                         check=True)
    result = json.loads(res.stdout.strip().splitlines()[-1])
    assert result["imported"] == []
    assert result["gradient_boosting"] == ("--baseline gradient_boosting needs the 'train' "
                                           "extra: pip install 'psirel[train]'")
    assert not (tmp_path / "gradient_boosting.gpkg").exists()
    for name in ("coherence_threshold", "neighbour_consistency"):
        ref = tmp_path / f"ref_{name}.gpkg"
        predict_baseline(tiny_model, *subset, ref, baseline=name)
        a = _read(tmp_path / f"{name}.gpkg")["reliability"].to_numpy()
        np.testing.assert_array_equal(a, _read(ref)["reliability"].to_numpy())


def test_unknown_baseline_is_one_line_listing_the_known(tmp_path):
    with pytest.raises(PsirelError) as e:
        predict_baseline(tmp_path / "no-model", "p.gpkg", "d.tif", "l.tif", "a.tif",
                         tmp_path / "o.gpkg", baseline="xgboost")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("--baseline xgboost")
    assert all(name in msg for name in BASELINES)
    assert not (tmp_path / "o.gpkg").exists()


def test_bad_inputs_name_the_file_and_write_nothing(tiny_model, subset, tmp_path):
    points, dem, lulc, amp = subset
    out = tmp_path / "o.gpkg"
    with pytest.raises(PsirelError, match="missing.gpkg"):
        predict_baseline(tiny_model, tmp_path / "missing.gpkg", dem, lulc, amp, out,
                         baseline="coherence_threshold")
    bad = tmp_path / "dem.tif"
    bad.write_bytes(b"not a GeoTIFF" * 10)
    with pytest.raises(PsirelError) as e:
        predict_baseline(tiny_model, points, bad, lulc, amp, out,
                         baseline="coherence_threshold")
    assert str(bad) in str(e.value) and "\n" not in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dem.tif"]


def test_nothing_is_written_unless_every_point_is_scored(tiny_model, subset, tmp_path,
                                                          monkeypatch):
    import psirel.infer.baseline_predict as bp

    class Broken:
        def predict_proba(self, data):
            p = np.full(data.n_points, 0.5)
            p[3] = np.nan
            return np.stack([1 - p, p], axis=1)

    monkeypatch.setattr(bp, "load_baseline", lambda d, training=None: Broken())
    with pytest.raises(PsirelError, match=r"1 of \d+ reliabilities are not finite.*row 3"):
        predict_baseline(tiny_model, *subset, tmp_path / "o.gpkg",
                         baseline="coherence_threshold")
    assert list(tmp_path.iterdir()) == []
